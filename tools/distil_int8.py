"""Quantisation-aware distillation of an image classifier on any Keras backend, checkpointed.

``zoo export NAME --format tflite --quantize int8 --qat-steps N --qat-checkpoint DIR`` runs the
distillation and the conversion in one TensorFlow process. This tool runs the distillation
alone, on whichever backend ``KERAS_BACKEND`` names, into the same checkpoint folder: on a
machine with an accelerator and JAX or PyTorch but no TensorFlow, say. The export then finds the
finished checkpoint (same weights, images and settings: ``zoo.export.distillation_inputs``)
and goes straight to converting; an unfinished one it continues.

Two steps, the first where the dataset is (it needs TensorFlow to read it):

    ZOO_DATA_DIR=../shared/data python -m tools.distil_int8 prepare efficientnet_lite0.in1k \\
        --data cifar10 --out /tmp/qat-images.npz
    KERAS_BACKEND=jax python -m tools.distil_int8 run efficientnet_lite0.in1k \\
        --images /tmp/qat-images.npz --steps 10000 --checkpoint ./qat-state

``prepare`` writes the train images the export draws (``zoo.export.QAT_IMAGES``, or ``--images N``
for an export with ``--qat-images N``; in its order,
at the dataset's own size): a copy of dataset images, to keep out of the repository. ``run``
resizes them as the weights' preprocessing says (with ``keras.ops`` off TensorFlow: the same
resize, computed by another backend) and calibrates on the first
``zoo.export.CALIBRATION_IMAGES`` of them, as the export does. ``run`` takes the export's
settings that change the distillation, to match the export that will convert it: ``--rounding``,
``--equalize``, ``--keep-kernels`` (``--qat-keep-kernels``), ``--calibration-images``,
``--finer-first K`` (``--stem-pieces K``), ``--depthwise-pieces`` and ``--expansion-pieces``; the
export's own best recipe (README) is ``run NAME ... --rounding sequential --equalize --keep-kernels
--calibration-images 500 --finer-first 2 --depthwise-pieces 2``.
"""

from __future__ import annotations

import argparse
import os
import time
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")


def prepare(name: str, data: str, out: str, count: int | None = None) -> int:
    """Save the export's first ``count`` distillation images of ``data`` (source size) to ``out`` (.npz)."""
    import numpy as np

    import zoo
    from zoo.export import QAT_IMAGES
    from zoo.export._write import _real_images

    if os.path.lexists(out):
        raise SystemExit(f"{out} exists: this tool never replaces a file; choose a new path")
    entry = zoo.weights_entry(name)
    images = _real_images(entry, count or QAT_IMAGES, data, None, "train", geometry=False)
    if images is None:
        raise SystemExit(f"{data}'s train split is not under ZOO_DATA_DIR; set it to the data folder")
    with open(out, "xb") as f:  # never replaces a file
        np.savez(f, images=images, data=np.array(data))
    print(f"wrote {out}: {len(images)} {data} train images {images.shape[1:]}")
    return 0


def _has_tensorflow() -> bool:
    try:
        import tensorflow  # noqa: F401
    except ImportError:
        return False
    return True


def transforms(entry: Any, keras_ops: bool | None = None) -> tuple[Any, Any]:
    """``(resize, normalise)``: uint8 source images -> uint8 export-size images -> model inputs.

    With TensorFlow installed (whichever the Keras backend), the library's own functions; without
    it, the same steps in ``keras.ops``: a resize to one side (square images) or to a size, a centre
    crop, a centred zero padding, scale, mean and std (no colour conversion). ``keras_ops``
    chooses (default: ``keras.ops`` only without TensorFlow).
    """
    import keras

    from zoo.export._write import _export_resize, _image_contract

    baked, shape = _image_contract(entry)
    if not (keras_ops if keras_ops is not None else not _has_tensorflow()):
        import zoo.data

        return _export_resize(entry), zoo.data.image_transform(baked)
    spec, ops = dict(entry.preprocessing), keras.ops

    def resize(images: Any) -> Any:
        x = ops.cast(images, "float32")
        x = x[..., None] if len(x.shape) == 3 else x  # one channel, stored without its axis
        size = spec["resize"] or list(shape[:2])
        if isinstance(size, int):
            if x.shape[1] != x.shape[2]:
                raise SystemExit("off TensorFlow, this tool resizes square images only")
            size = [size, size]
        x = ops.image.resize(x, size, interpolation=spec["interpolation"], antialias=True)
        top, left = (size[0] - shape[0]) // 2, (size[1] - shape[1]) // 2
        x = x[:, top : top + shape[0], left : left + shape[1]]
        return ops.cast(ops.clip(ops.round(x), 0, 255), "uint8")

    def normalise(images: Any) -> Any:
        x = ops.cast(images, "float32")
        if baked["pad_to"] is not None:
            h, w = baked["pad_to"]
            top, left = (h - shape[0]) // 2, (w - shape[1]) // 2
            x = ops.pad(x, [(0, 0), (top, h - shape[0] - top), (left, w - shape[1] - left), (0, 0)])
        x = x * float(baked["scale"])
        x = x - ops.array(baked["mean"], "float32") if baked["mean"] is not None else x
        return x / ops.array(baked["std"], "float32") if baked["std"] is not None else x

    return resize, normalise


#: :func:`run`'s settings and their defaults, those of ``zoo export``.
SETTINGS: dict[str, Any] = {
    "finer_first": 1,
    "every": False,
    "rounding": "per-layer",
    "equalize": False,
    "keep_kernels": False,
    "calibration_images": None,  # zoo.export.CALIBRATION_IMAGES
    "depthwise_pieces": 1,
    "expansion_pieces": 1,
}


def finer_levels(model: Any, k: int, every: bool = False) -> dict[str, int] | None:
    """``int8_simulation``'s ``levels``: the first int8 activation ``k`` times finer, as
    ``zoo export --stem-pieces k`` holds it, or with ``every`` each one (no int8 file holds that:
    a study of what finer activations could win). ``None`` for ``k`` = 1."""
    from zoo.export import quantized_outputs
    from zoo.export.pieces import pieces_levels

    if not every or k == 1:
        return pieces_levels(model, k)
    return {layer.name: 255 * k + 1 for layer in quantized_outputs(model)}


def run(name: str, images_path: str, steps: int, checkpoint: str, **settings: Any) -> int:
    """Distil ``name``'s int8 model for ``steps`` on the prepared images, saving to ``checkpoint``.

    ``settings`` (each optional) are those of :data:`SETTINGS`. ``finer_first`` > 1 simulates the
    first int8 activation that many times finer, as ``zoo export --stem-pieces`` holds it
    (``zoo.export.first_in_pieces``), and ``depthwise_pieces`` and ``expansion_pieces`` > 1
    the activations ``--depthwise-pieces`` and ``--expansion-pieces`` hold: that export, with
    ``--qat-checkpoint`` at this folder, converts the finished state. With ``every``, each
    activation ``finer_first`` times finer: a study (``tools.int8_study --distilled``), which no
    export converts. ``rounding``, ``equalize``, ``keep_kernels`` and ``calibration_images`` are
    ``zoo export``'s ``--rounding``, ``--equalize``, ``--qat-keep-kernels`` and
    ``--calibration-images``.
    """
    import keras
    import numpy as np

    import zoo
    from zoo.errors import InputError
    from zoo.export import (
        CALIBRATION_IMAGES,
        ResizedImages,
        distil_int8,
        distillation_inputs,
        distillation_start,
        equalized,
    )
    from zoo.export.image import _loaded
    from zoo.export.pieces import depthwise_levels, expansion_levels

    start_time = time.perf_counter()
    how = {**SETTINGS, **settings}
    how["calibration_images"] = how["calibration_images"] or CALIBRATION_IMAGES
    entry = zoo.weights_entry(name)
    try:  # refused as the export refuses them
        model = _loaded(entry, how["equalize"])
        held = depthwise_levels(model, how["depthwise_pieces"])
        held = {**expansion_levels(model, how["expansion_pieces"]), **held}
    except InputError as e:
        raise SystemExit(str(e)) from e
    with np.load(images_path) as saved:
        source, data = saved["images"], str(saved["data"])
    resize, normalise = transforms(entry)
    train = ResizedImages(source, resize)
    seen = np.asarray(normalise(train[: how["calibration_images"]]))
    model = equalized(model, seen)[0] if how["equalize"] else model
    finer = finer_levels(model, how["finer_first"], how["every"]) or {}
    levels = {**finer, **held} or None
    recorded = {key: how[key] for key in ("rounding", "keep_kernels", "calibration_images")}
    inputs = distillation_inputs(
        entry, source, steps=steps, data=data, levels=levels, equalized=how["equalize"], **recorded
    )
    start, corrected = distillation_start(model, seen, how["rounding"], levels)
    print(f"{keras.backend.backend()}: {len(train)} {data} images {seen.shape[1:]}; {corrected} corrected")
    options = {
        "transform": normalise,
        "start": start,
        "checkpoint": checkpoint,
        "inputs": inputs,
        "levels": levels,
        "keep_kernels": how["keep_kernels"],
    }
    distil_int8(model, train, seen, steps=steps, **options)
    print(f"distilled {steps} steps into {checkpoint} in {time.perf_counter() - start_time:.0f} s")
    return 0


def _run_parser(sub: Any) -> None:
    """``run``'s arguments."""
    from zoo.export import MAX_CALIBRATION_IMAGES, ROUNDINGS
    from zoo.export.pieces import MAX_PIECES

    r = sub.add_parser("run", help="distil on the Keras backend in use, into a checkpoint folder")
    r.add_argument("name")
    r.add_argument("--images", required=True, help="the .npz that prepare wrote")
    r.add_argument("--steps", type=int, required=True)
    r.add_argument("--checkpoint", required=True, help="folder of the state (resumed when it matches)")
    r.add_argument(
        "--finer-first",
        type=int,
        default=1,
        help="simulate the first int8 activation this many times finer, for zoo export --stem-pieces",
    )
    r.add_argument(
        "--finer-all",
        action="store_true",
        help="with --finer-first K, every int8 activation K times finer (a study; no export converts it)",
    )
    r.add_argument(
        "--rounding",
        choices=ROUNDINGS,
        default="per-layer",
        help="where distillation starts, as zoo export --rounding says (default: per-layer)",
    )
    r.add_argument(
        "--equalize", action="store_true", help="as zoo export --equalize: streams equalised first"
    )
    r.add_argument(
        "--keep-kernels",
        action="store_true",
        help="as zoo export --qat-keep-kernels: only batch norms and biases trained",
    )
    r.add_argument(
        "--calibration-images",
        type=int,
        choices=range(1, MAX_CALIBRATION_IMAGES + 1),
        metavar=f"1..{MAX_CALIBRATION_IMAGES}",
        help="as zoo export --calibration-images (default: its default)",
    )
    for kind in ("depthwise", "expansion"):
        r.add_argument(
            f"--{kind}-pieces",
            type=int,
            choices=range(1, MAX_PIECES + 1),
            metavar=f"1..{MAX_PIECES}",
            default=1,
            help=f"simulate the activations zoo export --{kind}-pieces K holds, K times finer",
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="verb", required=True)
    p = sub.add_parser("prepare", help="save the export's distillation images (needs the dataset)")
    p.add_argument("name")
    p.add_argument("--data", required=True)
    p.add_argument("--out", required=True, help="a new .npz file")
    p.add_argument("--images", type=int, help="how many (zoo export's --qat-images; default: its default)")
    _run_parser(sub)
    args = parser.parse_args()
    if args.verb == "prepare" and args.images is not None:
        from zoo.export import QAT_BATCH

        if args.images < QAT_BATCH:  # zoo export --qat-images refuses the same
            parser.error(f"--images must be at least one batch ({QAT_BATCH}), got {args.images}")
    if args.verb == "prepare":
        return prepare(args.name, args.data, args.out, args.images)
    if args.finer_first < 1:
        parser.error(f"--finer-first must be at least 1, got {args.finer_first}")
    if args.finer_all and args.finer_first == 1:
        parser.error("--finer-all needs --finer-first K (K > 1): how many times finer")
    settings = {key: getattr(args, key) for key in SETTINGS if key != "every"}
    return run(args.name, args.images, args.steps, args.checkpoint, every=args.finer_all, **settings)


if __name__ == "__main__":
    raise SystemExit(main())
