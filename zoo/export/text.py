"""Text classifiers and sentence encoders: SavedModel and ONNX taking int32 token ids.

The vocabulary goes beside the model; a classifier gives ``logits``, an encoder ``embeddings``.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

from zoo.errors import InputError
from zoo.export._common import TEXT_SAMPLES, TEXT_TOLERANCE, ExportError, ExportResult, _json, _size_bytes
from zoo.export._write import _annotate_onnx, _export_record, _move_savedmodel, _write_onnx
from zoo.export.runtimes import _run_savedmodel, run_onnx


def _vocab_target(out: Path) -> Path:
    """The vocabulary file beside an ONNX text export: ``X.vocab.txt`` for ``X.onnx``."""
    name = out.name
    stem = name[: -len(".onnx")] if name.lower().endswith(".onnx") and len(name) > len(".onnx") else name
    return out.with_name(f"{stem}.vocab.txt")


def _takes_named_inputs(model: Any) -> bool:
    """Whether the model takes a dict of token-id inputs (BERT; a reloaded ``.keras`` lists them)."""
    return isinstance(model.input, dict) or len(model.inputs) > 1


def _text_input_names(model: Any, sample: dict[str, Any]) -> tuple[str, ...]:
    """The exported model's input names: those of the tokenised ``sample``, matched to the model."""
    names = tuple(sample)
    if _takes_named_inputs(model):
        wanted = list(model.input) if isinstance(model.input, dict) else [t.name for t in model.inputs]
        if set(wanted) != set(names):
            raise ExportError(f"the model takes inputs {sorted(wanted)}, its tokenizer makes {list(names)}")
    elif names != ("input_ids",):
        raise ExportError(f"the model takes one input, its tokenizer makes {list(names)}")
    return names


def _model_feed(model: Any, feed: dict[str, Any]) -> Any:
    """What the Keras model takes for ``feed``: the dict itself (BERT) or its one array (LSTM)."""
    return feed if _takes_named_inputs(model) else feed["input_ids"]


def _write_text_savedmodel(model: Any, names: tuple[str, ...], path: Path, output: str = "logits") -> None:
    """Write a SavedModel whose ``serve`` endpoint takes a dict of int32 token ids ``(batch, seq_len)``."""
    import keras
    import tensorflow as tf

    signature = {key: tf.TensorSpec((None, None), tf.int32, name=key) for key in names}

    def serve(inputs: dict[str, Any]) -> Any:
        return {output: model(_model_feed(model, inputs), training=False)}

    # The endpoint tracks the variables it uses; ``archive.track(model)`` as well would store them twice.
    archive = keras.export.ExportArchive()
    archive.add_endpoint(name="serve", fn=serve, input_signature=[signature])
    archive.write_out(str(path), verbose=False)


def _vocab_bytes(entry: Any, spec: dict[str, Any]) -> bytes:
    """The entry's vocabulary as the bytes of a ``vocab.txt`` (one token a line, id = line number)."""
    vocab = spec["vocab"]
    if isinstance(vocab, str):
        return Path(vocab).read_bytes()
    if isinstance(vocab, (list, tuple)):
        return "".join(f"{token}\n" for token in vocab).encode("utf-8")
    raise InputError(
        f"{entry.name} tokenises without a vocabulary (character code points); zoo export handles text "
        "classifiers with a vocabulary"
    )


def _special_ids(spec: dict[str, Any], vocab: bytes) -> dict[str, int | None]:
    """Ids of the special tokens a runtime needs: ``[UNK]`` (and ``[CLS]``, ``[SEP]`` for WordPiece)."""
    from zoo.preprocessing.specs import UNK_TOKEN

    if spec["tokenizer"] == "wordpiece":
        from zoo.preprocessing.wordpiece import WordPieceTokenizer

        tok = WordPieceTokenizer(spec["vocab"], lowercase=spec["lowercase"])
        return {"unk_id": tok.unk_id, "cls_id": tok.cls_id, "sep_id": tok.sep_id}
    tokens = vocab.decode("utf-8").splitlines()  # as zoo.preprocessing reads a word or char vocabulary
    return {"unk_id": tokens.index(UNK_TOKEN) if UNK_TOKEN in tokens else None}  # None: OOV words dropped


#: What a sentence encoder's export outputs, as its record says.
EMBEDDINGS = "the L2-normalised masked mean of the last hidden states, as zoo.text.encode gives"


def _text_contract(
    entry: Any, spec: dict[str, Any], names: tuple[str, ...], vocab: bytes, vocab_name: str
) -> dict[str, Any]:
    """The record that lets a runtime reproduce a text export's inputs and read its outputs."""
    import hashlib

    contract = {
        "inputs": list(names),
        "dtype": "int32",
        "shape": ["batch", "sequence"],
        "tokenizer": spec["tokenizer"],
        "lowercase": spec["lowercase"],
        "max_length": spec["max_length"],
        "pad_id": 0,
        **_special_ids(spec, vocab),
        "vocab": vocab_name,
        "vocab_sha256": hashlib.sha256(vocab).hexdigest(),
    }
    return _export_record(entry, contract)


def _check_text(got: list[Any], expected: list[Any], fmt: str) -> float:
    """Return the max |diff| of a text export on the sample batches; refuse it beyond the tolerance."""
    import numpy as np

    pairs = zip(got, expected, strict=True)
    diff = max(float(np.max(np.abs(np.asarray(g, np.float32) - e))) for g, e in pairs)
    if not diff <= TEXT_TOLERANCE:  # NaN fails too
        raise ExportError(
            f"exported {fmt} model differs from Keras by {diff:.3g} (> {TEXT_TOLERANCE:g}) on token ids; "
            "nothing was written"
        )
    return diff


def _text_samples(entry: Any, model: Any) -> tuple[list[dict[str, Any]], list[Any]]:
    """Tokenised :data:`TEXT_SAMPLES` (all of them, then the first alone) and the Keras logits on them."""
    import numpy as np

    from zoo.tasks.text_classify import encode_texts

    feeds = [encode_texts(entry, list(TEXT_SAMPLES)), encode_texts(entry, list(TEXT_SAMPLES[:1]))]
    expected = [np.asarray(model.predict_on_batch(_model_feed(model, feed)), np.float32) for feed in feeds]
    return feeds, expected


def _export_text(entry: Any, fmt: str, out: Path, overwrite: bool) -> ExportResult:
    """Export a text classifier or sentence encoder as a SavedModel folder or an ONNX file.

    The vocabulary file goes beside it. A sentence encoder (an entry without labels) is
    exported as token ids -> its sentence embeddings (:func:`zoo.tasks.embed.sentence_embedding_model`).
    """
    from zoo import api, outputs
    from zoo.preprocessing import local_text_spec
    from zoo.tasks.embed import sentence_embedding_model

    spec = local_text_spec(entry)
    vocab = _vocab_bytes(entry, spec)
    vocab_out = out / "vocab.txt" if fmt == "savedmodel" else _vocab_target(out)
    if fmt == "onnx":  # before any work, as for ``out``
        outputs.check_file_target(vocab_out, overwrite)
    model = api.load(entry.name)
    output = "logits" if entry.num_classes is not None else "embeddings"
    if output == "embeddings":
        model = sentence_embedding_model(model)
    feeds, expected = _text_samples(entry, model)
    names = _text_input_names(model, feeds[0])
    record = _text_contract(entry, spec, names, vocab, vocab_out.name)
    if output == "embeddings":
        width = int(model.output.shape[-1])
        record["output"] = {"name": output, "shape": ["batch", width], "meaning": EMBEDDINGS}
    command = f"zoo export {entry.name} --format {fmt}"
    inputs = {"weights": entry.name, "format": fmt, "inputs": list(names)}
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_text_savedmodel(model, names, saved, output)
        if fmt == "savedmodel":
            diff = _check_text([_run_savedmodel(saved, feed) for feed in feeds], expected, fmt)
            (saved / "vocab.txt").write_bytes(vocab)
            (saved / "zoo_export.json").write_text(_json(record), encoding="utf-8")
            _move_savedmodel(saved, out, command=command, inputs=inputs, overwrite=overwrite)
        else:
            path = Path(tmpdir) / "model.onnx"
            _write_onnx(saved, path)
            kind = "a text classifier" if output == "logits" else "a sentence encoder"
            _annotate_onnx(path, record, kind=f"{kind} on int32 token ids", output=output)
            diff = _check_text([run_onnx(path, feed) for feed in feeds], expected, fmt)
            with (
                outputs.output_file(out, overwrite=overwrite, command=command) as part,
                outputs.output_file(vocab_out, overwrite=overwrite, command=command) as vocab_part,
            ):
                shutil.copyfile(path, part)
                vocab_part.write_bytes(vocab)
    size = _size_bytes(out)
    result = ExportResult(str(out), fmt, None, False, diff, TEXT_TOLERANCE, size)
    result.inputs, result.vocab, result.kind = names, str(vocab_out), "text"
    return result
