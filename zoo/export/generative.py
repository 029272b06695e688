"""Generative models as samplers, and the character model as one step.

The VAE decoder and the DCGAN generator take latent vectors and return images; the
character model takes ids and its state and returns logits and the next state.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

from zoo.export._common import ExportError, ExportResult, _size_bytes
from zoo.export._write import (
    _check,
    _export_record,
    _export_result,
    _Owner,
    _write_checked,
    _write_savedmodel,
)
from zoo.export.runtimes import run_export, tflite_interpreter

#: Fixed standard-normal latent vectors (seed 0) that check a sampler export.
SAMPLER_CHECKS = 16


def _sampler_model(model: Any) -> Any:
    """The latent -> images part of a VAE (decoder, sigmoid) or a DCGAN (generator, rescaled to [0, 1])."""
    import keras

    latent = keras.Input((model.latent_dim,), name="latent")
    if hasattr(model, "decoder"):
        images = keras.layers.Activation("sigmoid", name="images")(model.decoder(latent))
    else:  # tanh's [-1, 1] to [0, 1], clipped as DCGAN.generate clips (rounding leaves it by 6e-8)
        scaled = keras.layers.Rescaling(0.5, offset=0.5)(model.generator(latent))
        images = keras.layers.ReLU(max_value=1.0, name="images")(scaled)
    return keras.Model(latent, images, name=f"{model.name}_sampler")


def _export_sampler(entry: Any, fmt: str, out: Path, overwrite: bool) -> ExportResult:
    """Export a VAE's decoder or a DCGAN's generator as latent -> images (see the module docstring)."""
    import numpy as np

    from zoo import api

    model = api.load(entry.name)
    sampler = _sampler_model(model)
    z = np.random.default_rng(0).standard_normal((SAMPLER_CHECKS, model.latent_dim)).astype("float32")
    expected = model.decode(z) if hasattr(model, "decoder") else model._images(z)
    image_shape = list(sampler.output_shape[1:])
    contract = {
        "inputs": ["latent"],
        "dtype": "float32",
        "shape": ["batch", model.latent_dim],
        "distribution": "standard normal",
    }
    record = {
        **_export_record(entry, contract),
        "output": {"name": "images", "shape": ["batch", *image_shape], "range": [0.0, 1.0]},
    }
    command = f"zoo export {entry.name} --format {fmt}"
    inputs = {"weights": entry.name, "format": fmt, "quantize": None, "preprocessing": False}
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_savedmodel(sampler, None, (model.latent_dim,), saved, input_name="latent")
        got = _write_checked(
            saved,
            fmt,
            _Owner(out, command, inputs, overwrite),
            record,
            run=lambda fmt, artifact: run_export(fmt, artifact, z),
            check=lambda got: _check(got, expected, None, fmt),
            annotate={"dims": ("batch",), "kind": "a sampler: latent -> images", "output": "images"},
        )
    result = _export_result(out, fmt, None, False, got, expected)
    result.input_shape, result.kind = (model.latent_dim,), "sampler"
    result.description = (
        f"float32 latent vectors ({model.latent_dim}, standard normal) -> images {image_shape}"
    )
    return result


def _char_step_fn(model: Any) -> tuple[Any, dict[str, Any]]:
    """The character model's one-step function over a dict of tensors, and its input signature."""
    import tensorflow as tf

    from zoo.tasks.language_model import CharStepper

    stepper = CharStepper(model)
    names = [f"state_{i}_{k}" for i, sizes in enumerate(stepper.state_sizes) for k in range(len(sizes))]
    sizes = [size for layer_sizes in stepper.state_sizes for size in layer_sizes]
    signature = {"ids": tf.TensorSpec((None,), tf.int32, name="ids")}
    signature.update(
        {n: tf.TensorSpec((None, s), tf.float32, name=n) for n, s in zip(names, sizes, strict=True)}
    )

    def step(x: dict[str, Any]) -> dict[str, Any]:
        states, start = [], 0
        for layer_sizes in stepper.state_sizes:
            states.append([x[name] for name in names[start : start + len(layer_sizes)]])
            start += len(layer_sizes)
        logits, new = stepper.step(x["ids"], states)
        flat = [t for layer_states in new for t in layer_states]
        return {"logits": logits, **{f"next_{n}": t for n, t in zip(names, flat, strict=True)}}

    return step, signature


def _run_char_step(fmt: str, artifact: Path | bytes, feed: dict[str, Any]) -> dict[str, Any]:
    """Run an exported character step (folder, TFLite bytes or ONNX file) on ``feed``; outputs by name."""
    import numpy as np
    import tensorflow as tf

    if fmt == "savedmodel":
        loaded = tf.saved_model.load(str(artifact))
        return {
            k: np.asarray(v) for k, v in loaded.serve({k: tf.constant(v) for k, v in feed.items()}).items()
        }
    if fmt == "tflite":
        runner = tflite_interpreter(model_content=artifact).get_signature_runner()
        return {k: np.asarray(v) for k, v in runner(**feed).items()}
    import onnxruntime as ort

    session = ort.InferenceSession(str(artifact), providers=["CPUExecutionProvider"])
    return dict(zip([o.name for o in session.get_outputs()], session.run(None, feed), strict=True))


def _export_char_step(entry: Any, fmt: str, out: Path, overwrite: bool) -> ExportResult:
    """Export the character model as one step with its state (see the module docstring)."""
    import keras
    import numpy as np
    import tensorflow as tf

    from zoo import api

    model = api.load(entry.name)
    step, signature = _char_step_fn(model)
    rng = np.random.default_rng(0)
    vocab = list(entry.preprocessing["vocab"])
    feed = {"ids": rng.integers(0, len(vocab), 4).astype("int32")}
    feed.update(
        {
            n: rng.standard_normal((4, s.shape[1])).astype("float32")
            for n, s in signature.items()
            if n != "ids"
        }
    )
    expected = {
        k: keras.ops.convert_to_numpy(v)
        for k, v in step({k: tf.constant(v) for k, v in feed.items()}).items()
    }
    contract = {
        "inputs": list(signature),
        "dtype": {"ids": "int32", "states": "float32"},
        "shape": {n: ["batch", *s.shape[1:]] for n, s in signature.items()},
        "start": "every state zeros; feed back next_state_* after each step",
        "vocab": vocab,
    }
    record = {
        **_export_record(entry, contract),
        "output": {"name": "logits", "shape": ["batch", len(vocab)], "states": "next_<input state name>"},
        "labels": [],
    }
    command = f"zoo export {entry.name} --format {fmt}"
    inputs = {"weights": entry.name, "format": fmt, "quantize": None, "preprocessing": False}

    def step_diff(got: dict[str, Any]) -> float:
        return max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)

    def check(got: dict[str, Any]) -> None:
        if (diff := step_diff(got)) > 1e-4:
            raise ExportError(
                f"the exported step differs from Keras by {diff:.3g} (more than 1e-4): nothing written"
            )

    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        archive = keras.export.ExportArchive()
        archive.add_endpoint(name="serve", fn=step, input_signature=[signature])
        archive.write_out(str(saved), verbose=False)
        got = _write_checked(
            saved,
            fmt,
            _Owner(out, command, inputs, overwrite),
            record,
            run=lambda fmt, artifact: _run_char_step(fmt, artifact, feed),
            check=check,
            annotate={"dims": (), "kind": "one character step with its recurrent state", "output": None},
        )
    result = ExportResult(str(out), fmt, None, False, step_diff(got), 1e-4, _size_bytes(out))
    result.kind = "char-step"
    result.description = (
        f"int32 ids (batch,) and {len(signature) - 1} float32 states (zeros to start) -> logits over "
        f"{len(vocab)} characters and the next states"
    )
    return result
