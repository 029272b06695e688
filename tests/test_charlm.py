"""Character language model toolkit (zoo.charlm) on the real Tiny Shakespeare text.

Needs the shared data directory (``ZOO_DATA_DIR`` holding ``text/tinyshakespeare.txt``).
Models are tiny (one LSTM layer of 32 units) so the file runs in well under a minute on a CPU.
"""

from __future__ import annotations

import math
import subprocess
import sys

import numpy as np
import pytest

from zoo.data import resolve_data_dir, text_transform
from zoo.errors import InputError
from zoo.tasks import language_model as charlm
from zoo.weights.manifest import WeightsEntry

LOG65 = math.log(65)


@pytest.fixture(scope="module")
def data_dir():
    root = resolve_data_dir()
    if root is None or not (root / "text" / "tinyshakespeare.txt").is_file():
        pytest.skip(
            "Tiny Shakespeare not found: set ZOO_DATA_DIR to the shared data directory "
            "(the one holding text/tinyshakespeare.txt)"
        )
    return root


@pytest.fixture(scope="module")
def train_text(data_dir):
    return charlm.load_text("tiny_shakespeare", "train", data_dir=data_dir)


@pytest.fixture(scope="module")
def valid_text(data_dir):
    return charlm.load_text("tiny_shakespeare", "validation", data_dir=data_dir)


@pytest.fixture(scope="module")
def vocab(train_text):
    return charlm.char_vocab(train_text)


def _tiny_model(seed=0, **kwargs):
    import keras

    from zoo.models.lstm import lstm_charlm

    keras.utils.set_random_seed(seed)
    return lstm_charlm(**{"units": 32, "num_layers": 1, "embed_dim": 16, **kwargs})


@pytest.fixture(scope="module")
def trained(train_text, vocab):
    """A tiny LSTM trained for about 200 steps on the first 200k training characters."""
    import keras

    model = _tiny_model()
    model.compile(
        optimizer=keras.optimizers.Adam(1e-2),
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    ds = charlm.sequence_dataset(
        train_text[:200_000], vocab=vocab, sequence_length=64, batch_size=32, shuffle=True, seed=0
    )
    model.fit(ds, epochs=2, verbose=0, shuffle=False)
    return model


def test_import_does_not_load_tensorflow():
    code = "import sys, zoo.charlm; assert 'tensorflow' not in sys.modules, 'tensorflow imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_vocab_spec_and_encoding(train_text, valid_text, vocab):
    assert len(train_text) == 1_003_854 and len(valid_text) == 111_540
    assert len(vocab) == 65 and vocab == sorted(vocab) and vocab[:2] == ["\n", " "]
    assert set(valid_text) <= set(vocab)
    spec = charlm.char_spec(vocab)
    assert spec == {
        "type": "text",
        "tokenizer": "char",
        "vocab": vocab,
        "max_length": None,
        "lowercase": False,
    }
    ids = charlm.encode(train_text, vocab)
    assert ids.dtype == np.int32 and ids.shape == (len(train_text),)
    assert charlm.decode(ids[:500], vocab) == train_text[:500]
    # Same ids as the manifest spec's TensorFlow encoder, out-of-vocab characters dropped by both.
    sample = "Hello, Jos\u00e9!\tWorld\u2014" + train_text[:200]
    assert np.array_equal(text_transform(spec)(sample).numpy(), charlm.encode(sample, vocab))
    assert charlm.decode(charlm.encode("caf\u00e9\t", vocab), vocab) == "caf"
    with pytest.raises(InputError, match="'\\\\t'"):
        charlm.encode("a\tb", vocab, unknown="raise")
    with pytest.raises(InputError, match="single characters"):
        charlm.char_spec(["ab", "c"])
    with pytest.raises(InputError):
        charlm.decode([0, 65], vocab)


def _windows(ds):
    xs, ys = zip(*[(x.numpy(), y.numpy()) for x, y in ds], strict=True)
    return np.concatenate(xs), np.concatenate(ys)


def test_unshuffled_windows_in_text_order(train_text, vocab):
    ids = charlm.encode(train_text[:10_000], vocab)
    ds = charlm.sequence_dataset(ids, vocab=vocab, sequence_length=50, batch_size=8)
    assert int(ds.cardinality()) == (9_999 // 50) // 8 == 24
    x, y = _windows(ds)
    assert x.shape == y.shape == (24 * 8, 50) and x.dtype == np.int32
    starts = np.arange(x.shape[0]) * 50
    assert np.array_equal(x, ids[starts[:, None] + np.arange(50)])
    assert np.array_equal(y, ids[starts[:, None] + np.arange(1, 51)])
    x2, _ = _windows(ds)
    assert np.array_equal(x, x2)  # deterministic across passes
    keep = charlm.sequence_dataset(ids, vocab=vocab, sequence_length=50, batch_size=8, drop_remainder=False)
    assert int(keep.cardinality()) == 25 and _windows(keep)[0].shape[0] == 199


def _starts(x, y, ids, length):
    """Start of every (inputs, targets) window in ``ids``; fails if one is not a window of the text."""
    index = {w.tobytes(): s for s, w in enumerate(np.lib.stride_tricks.sliding_window_view(ids, length + 1))}
    windows = np.concatenate([x, y[:, -1:]], axis=1)
    assert np.array_equal(y[:, :-1], x[:, 1:])  # targets are the inputs shifted by one
    return np.array([index[w.tobytes()] for w in windows])


def test_shuffled_windows_fresh_each_epoch_and_reproducible(train_text, vocab):
    text, length = train_text[:10_000], 50
    ids = charlm.encode(text, vocab)

    def windows(**kwargs):
        return charlm.sequence_dataset(
            text, vocab=vocab, sequence_length=length, batch_size=8, shuffle=True, **{"seed": 7, **kwargs}
        )

    ds = windows()
    assert int(ds.cardinality()) == ((10_000 - length) // length) // 8
    epochs = [_windows(ds) for _ in range(3)]
    offsets = set()
    for x, y in epochs:
        starts = _starts(x, y, ids, length)
        assert len(set(starts)) == len(starts) and len(set(starts % length)) == 1  # non-overlapping
        assert not np.array_equal(starts, np.sort(starts))  # shuffled order
        offsets.add(int(starts[0] % length))
    assert len(offsets) > 1  # a fresh random shift of the window grid
    assert not np.array_equal(epochs[0][0], epochs[1][0]) and not np.array_equal(epochs[1][0], epochs[2][0])
    again = windows()
    for x, _ in epochs:
        assert np.array_equal(_windows(again)[0], x)
    resumed = windows(initial_epoch=2)
    assert np.array_equal(_windows(resumed)[0], epochs[2][0])
    other = windows(seed=8)
    assert not np.array_equal(_windows(other)[0], epochs[0][0])


def test_evaluation_windows_score_every_character_once():
    n, length, burn_in = 1_000, 64, 16
    starts, mask = charlm.evaluation_windows(n, length, burn_in)
    positions = (starts[:, None] + np.arange(length)[None, :] + 1)[mask > 0]
    assert np.array_equal(np.sort(positions), np.arange(1, n))
    context = np.broadcast_to(np.arange(length), mask.shape)[mask > 0]
    assert np.all((context >= burn_in) | (positions <= length))


def test_nats_per_char_matches_a_direct_computation(valid_text, vocab):
    import keras

    model = _tiny_model(seed=1)
    text = valid_text[:300]
    ids = charlm.encode(text, vocab)
    length, burn_in = 64, 16
    total = 0.0
    for j, start in enumerate(range(0, len(ids) - 1, length - burn_in)):
        window = ids[start : start + length + 1]
        logits = keras.ops.convert_to_numpy(model(window[None, :-1], training=False)[0]).astype(np.float64)
        shifted = logits - logits.max(axis=-1, keepdims=True)
        log_probs = shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))
        loss = -log_probs[np.arange(len(window) - 1), window[1:]]
        total += float(loss.sum() if j == 0 else loss[burn_in:].sum())
        if start + length >= len(ids) - 1:
            break
    result = charlm.evaluate_nats_per_char(
        model, text, vocab=vocab, sequence_length=length, burn_in=burn_in, batch_size=3
    )
    assert result["num_chars"] == 299
    assert result["nats_per_char"] == pytest.approx(total / 299, rel=1e-5)
    assert result["bits_per_char"] == pytest.approx(result["nats_per_char"] / math.log(2))


def test_untrained_model_is_near_uniform(valid_text, vocab):
    result = charlm.evaluate_nats_per_char(_tiny_model(), valid_text[:5_000], vocab=vocab)
    assert result["num_chars"] == 4_999
    assert abs(result["nats_per_char"] - LOG65) < 0.1


def test_trained_model_beats_uniform(trained, valid_text, vocab):
    result = charlm.evaluate_nats_per_char(trained, valid_text[:5_000], vocab=vocab)
    assert result["nats_per_char"] < LOG65 - 1.0, result


def test_step_path_matches_full_model(trained, vocab):
    import keras

    def numpy(x):
        return keras.ops.convert_to_numpy(x)

    stepper = charlm.CharStepper(trained)
    prefix = "ROMEO:\nWhat light"
    ids = charlm.encode(prefix, vocab)
    states = stepper.initial_state(1)
    for t, token in enumerate(ids):
        logits, states = stepper.step(np.array([token], np.int32), states)
        row = numpy(logits[0]).astype(np.float64)
        probs = np.exp(row - row.max()) / np.exp(row - row.max()).sum()
        if t >= len(ids) - 5:
            reference = charlm.next_char_probabilities(trained, prefix[: t + 1], vocab=vocab)
            np.testing.assert_allclose(probs, reference, atol=1e-6)
    # Two stacked layers, random weights: logits of every position agree.
    deep = _tiny_model(seed=2, num_layers=2)
    stepper = charlm.CharStepper(deep)
    states = stepper.initial_state(2)
    batch = np.stack([ids, ids[::-1]]).astype(np.int32)
    full = numpy(deep(batch, training=False))
    for t in range(batch.shape[1]):
        logits, states = stepper.step(batch[:, t], states)
        np.testing.assert_allclose(numpy(logits), full[:, t], atol=1e-5)
    # The traced sampling loop and the full-model sliding window draw the same text for a seed.
    assert charlm.generate(trained, "ROMEO:", 40, vocab=vocab, seed=5, method="step") == charlm.generate(
        trained, "ROMEO:", 40, vocab=vocab, seed=5, method="window"
    )


def test_generate(trained, vocab):
    text = charlm.generate(trained, "ROMEO:\n", 300, vocab=vocab, seed=1)
    assert len(text) == 300 and set(text) <= set(vocab)
    assert charlm.generate(trained, "ROMEO:\n", 300, vocab=vocab, seed=1) == text
    assert charlm.generate(trained, "ROMEO:\n", 300, vocab=vocab, seed=2) != text
    assert charlm.generate(trained, "ROMEO:\n", 0, vocab=vocab, seed=1) == ""
    assert len(charlm.generate(trained, "A", 5, vocab=vocab)) == 5  # one-character prompt, unseeded
    greedy = charlm.generate(trained, "ROMEO:\n", 30, vocab=vocab, temperature=0, seed=1)
    assert charlm.generate(trained, "ROMEO:\n", 30, vocab=vocab, temperature=0, seed=9) == greedy
    assert charlm.generate(trained, "ROMEO:\n", 30, vocab=vocab, top_k=1, seed=3) == greedy
    context = "ROMEO:\n"
    for char in greedy[:3]:  # greedy is the argmax of the full model's distribution
        assert vocab[int(np.argmax(charlm.next_char_probabilities(trained, context, vocab=vocab)))] == char
        context += char
    sampled = charlm.generate(trained, "ROMEO:\n", 300, vocab=vocab, top_k=5, temperature=0.8, seed=1)
    assert len(sampled) == 300


def test_bad_inputs(trained, vocab, train_text):
    with pytest.raises(InputError, match="'#'"):
        charlm.generate(trained, "ab#c", 10, vocab=vocab)
    with pytest.raises(InputError, match="n_chars"):
        charlm.generate(trained, "abc", -1, vocab=vocab)
    with pytest.raises(InputError, match="temperature"):
        charlm.generate(trained, "abc", 5, vocab=vocab, temperature=-0.5)
    with pytest.raises(InputError, match="prompt"):
        charlm.generate(trained, "", 5, vocab=vocab)
    with pytest.raises(InputError, match="top_k"):
        charlm.generate(trained, "abc", 5, vocab=vocab, top_k=0)
    with pytest.raises(InputError, match="predicts 65"):
        charlm.generate(trained, "abc", 5, vocab=vocab[:-1])
    with pytest.raises(InputError, match="burn_in"):
        charlm.evaluate_nats_per_char(trained, train_text[:500], vocab=vocab, sequence_length=32, burn_in=32)
    with pytest.raises(InputError, match="at least 65"):
        charlm.sequence_dataset(train_text[:64], vocab=vocab, sequence_length=64, batch_size=1)
    with pytest.raises(InputError, match="batch_size"):
        charlm.sequence_dataset(train_text[:1_000], vocab=vocab, sequence_length=64, batch_size=32)


def _entry(vocab, tokenizer="char"):
    spec = (
        charlm.char_spec(vocab)
        if tokenizer == "char"
        else {
            "type": "text",
            "tokenizer": "wordpiece",
            "vocab": "vocab.txt",
            "max_length": 64,
            "lowercase": True,
        }
    )
    arch = "lstm_charlm" if tokenizer == "char" else "bert_mini"
    return WeightsEntry.from_dict(
        f"{arch}.test",
        {
            "architecture": arch,
            "tag": "test",
            "default": False,
            "description": "test weights",
            "files": [
                {"filename": "model.weights.h5", "sha256": "0" * 64, "size": 1, "format": "keras.weights.h5"}
            ],
            "sources": [{"type": "package", "path": "pretrained/none"}],
            "builder_kwargs": {"units": 32, "num_layers": 1, "embed_dim": 16},
            "input_shape": [None],
            "num_classes": None,
            "labels": None,
            "preprocessing": spec,
            "dataset": {"name": "tiny_shakespeare", "split": "validation"},
            "metrics": [],
            "references": [],
            "num_params": 1,
            "license": "MIT",
            "recipe": {"command": "pytest"},
        },
    )


def test_evaluate_model_dispatches_char_entries(vocab, data_dir, monkeypatch):
    from zoo.tasks import text_classify as evaluate_text
    from zoo.tasks.evaluate import evaluate_model

    result = evaluate_model(_tiny_model(), _entry(vocab), data_dir=data_dir)
    assert set(result) == {"nats_per_char", "bits_per_char", "num_chars"}
    assert result["num_chars"] == 111_539  # the whole validation split but its first character
    assert abs(result["nats_per_char"] - LOG65) < 0.1
    calls = []
    monkeypatch.setattr(evaluate_text, "evaluate_text", lambda *a, **k: calls.append(k) or {"ok": 1.0})
    assert evaluate_model(object(), _entry(vocab, "wordpiece"), data_dir=data_dir) == {"ok": 1.0}
    assert len(calls) == 1


def test_generate_cli_from_a_registered_char_model(trained, vocab, tmp_path, monkeypatch):
    """``zoo generate`` loads verified weights by name, takes their vocabulary, and is seeded."""
    import json

    from click.testing import CliRunner

    from tests._records import write_manifest_file
    from zoo.cli import cli
    from zoo.models._common import count_parameters
    from zoo.weights.manifest import file_record

    folder = tmp_path / "charlm"
    folder.mkdir()
    weights = folder / "tiny.weights.h5"
    trained.save_weights(weights)
    record = {
        "architecture": "lstm_charlm",
        "tag": "tiny",
        "default": True,
        "description": "test weights",
        "files": [file_record(weights, "keras.weights.h5")],
        "sources": [{"type": "local", "path": str(folder)}],
        "builder_kwargs": {"units": 32, "num_layers": 1, "embed_dim": 16},
        "input_shape": None,
        "num_classes": None,
        "labels": None,
        "preprocessing": charlm.char_spec(vocab),
        "dataset": {"name": "tiny_shakespeare", "split": "validation"},
        "metrics": [],
        "references": [],
        "num_params": count_parameters(trained),
        "license": "MIT",
        "recipe": {"command": "pytest"},
    }
    runner = CliRunner()
    wrong = runner.invoke(cli, ["generate", "lenet5", "-p", "x"])  # the real manifest: not a char model
    assert wrong.exit_code == 1 and "lenet5 is an image-classification model" in wrong.output
    assert "language models (lstm_charlm)" in wrong.output
    manifest = write_manifest_file(tmp_path / "m.json", {"lstm_charlm.tiny": record})
    monkeypatch.setenv("ZOO_MANIFEST", str(manifest))
    args = ["generate", "lstm_charlm.tiny", "--prompt", "ROMEO:", "-n", "40", "--seed", "3", "--json"]
    first, again = runner.invoke(cli, args), runner.invoke(cli, args)
    assert first.exit_code == 0, first.output
    text = json.loads(first.output)["text"]
    assert json.loads(first.output)["weights"] == "lstm_charlm.tiny"
    assert text == json.loads(again.output)["text"] and len(text) == 40 and set(text) <= set(vocab)
    assert text == charlm.generate(trained, "ROMEO:", 40, vocab=vocab, seed=3, temperature=0.8)
    assert charlm.generate(trained, "ROMEO:", 40, vocab="lstm_charlm.tiny", seed=3, temperature=0.8) == text
    assert charlm.generate(trained, "ROMEO:", 40, seed=3, temperature=0.8) == text  # by model.name
    plain = runner.invoke(cli, ["generate", "lstm", "-p", "ROMEO:", "-n", "10", "-t", "0"])
    assert plain.exit_code == 0 and plain.output.startswith("ROMEO:")
    bad = runner.invoke(cli, ["generate", "lstm", "-p", "ROMEO€", "-n", "5"])
    assert bad.exit_code == 1 and "€" in bad.output
