"""Image classifiers (and the EfficientNet backbone) to every format.

Float or quantised, preprocessing baked in, checked on sample images and, with data, on
the test split.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from zoo.errors import DataError, InputError
from zoo.export._common import (
    CALIBRATION_IMAGES,
    CLIP_QUANTILE,
    INT8_SETTINGS,
    QAT_BATCH,
    QAT_IMAGES,
    QAT_LEARNING_RATE,
    ExportResult,
    Ranges,
)
from zoo.export._write import (
    _check,
    _export_resize,
    _export_result,
    _image_contract,
    _image_record,
    _keras_reference,
    _Owner,
    _real_images,
    _sample_images,
    _write_checked,
    _write_savedmodel,
)
from zoo.export.distil import (
    ResizedImages,
    _DistillationState,
    distil_int8,
    distillation_inputs,
    distillation_start,
)
from zoo.export.equalize import MAX_SCALE, equalized, linear_streams
from zoo.export.pieces import (
    depthwise_in_pieces,
    depthwise_levels,
    expansion_in_pieces,
    expansion_levels,
    first_in_pieces,
    pieces_levels,
)
from zoo.export.quantize import _tflite_bytes, rounded_weights
from zoo.export.runtimes import in_top_k, run_export, tflite_interpreter
from zoo.export.sequential import sequentially_rounded, unsupported
from zoo.export.simulation import int8_ranges, split_activations


@dataclass(frozen=True)
class _DataParts:
    """Where an int8 export calibrates and distils (``train``) and is measured (``test``).

    Each part is ``(split, zoo.data.load options)``; ``own`` when the data is the entry's
    own dataset (its labels are the model's). The parts never share images where the data
    allows it: a fine-tune's held-out fold, and other data's test split, or else the part
    ``zoo finetune`` would hold out of it (its validation split, or fold 0 of 10).
    """

    name: str
    own: bool
    train: tuple[str, dict[str, Any]]
    test: tuple[str, dict[str, Any]]

    def describe(self, part: tuple[str, dict[str, Any]]) -> str:
        """``part`` as records name it: ``"split"``, with the fold it holds out or keeps."""
        split, options = part
        if "kfold" not in options:
            return split
        k, fold = options["kfold"]
        return (
            f"{split} (fold {fold} of {k} held out)" if split == "train" else f"{split} (fold {fold} of {k})"
        )


def _data_parts(entry: Any, data: str | None, data_dir: str | None) -> _DataParts:
    """The :class:`_DataParts` of ``data`` (``None``: the entry's own dataset)."""
    import zoo.data
    from zoo.tasks.classify import own_data_options
    from zoo.train.finetune import held_out_splits

    if data in (None, entry.dataset["name"]):
        options = own_data_options(entry)  # a fine-tuned folder's held-out fold
        name = str(entry.dataset["name"])
        return _DataParts(name, True, ("train", options), (str(entry.dataset["split"]), options))
    info = zoo.data.info(data, data_dir=data_dir)
    if "test" in info.splits:
        return _DataParts(data, False, ("train", {}), ("test", {}))
    try:
        train, held, _ = held_out_splits(data, data_dir, {})
    except DataError:  # unlabelled, or too few images to hold any out: every part is all of it
        only = (next(iter(info.splits), "train"), {})
        return _DataParts(data, False, only, only)
    options = {key: held[key] for key in ("kfold",) if key in held}
    return _DataParts(data, False, (train["split"], options), (held["split"], options))


def _calibration_inputs(
    entry: Any,
    shape: tuple[int, ...],
    baked: dict[str, Any],
    preprocessing: bool,
    parts: _DataParts,
    data_dir: str | None,
    required: bool,
    count: int = CALIBRATION_IMAGES,
) -> tuple[Any, str]:
    """The int8 calibration inputs and their source.

    Up to ``count`` images of ``parts.train``; random ones when it is the entry's own dataset
    and not on this machine. A dataset the user named (``required``) must be readable.
    """
    import numpy as np

    import zoo.data

    split, options = parts.train
    images = _real_images(entry, count, parts.name, data_dir, split, required=required, **options)
    if images is None:
        images, source = _sample_images(shape, count), "random images (no dataset found)"
    else:  # all there are, when fewer than asked for
        source = f"{len(images)} {parts.name} {parts.describe(parts.train)} images"
    if not preprocessing:
        images = np.asarray(zoo.data.image_transform(baked)(images))
    return images, source


def _loaded(entry: Any, equalize: bool) -> Any:
    """``entry``'s Keras model; refused, with ``equalize``, when it has no :func:`linear_streams`."""
    from zoo import api

    model = api.load(entry.name)
    if equalize and not linear_streams(model):
        raise InputError(
            f"--equalize scales the channels of linear streams (batch norms or sums read only by "
            f"convolutions, as in EfficientNet-Lite); {entry.name} has none: leave out --equalize"
        )
    return model


def _export_image(
    entry: Any,
    fmt: str,
    out: Path,
    *,
    quantize: str | None,
    preprocessing: bool,
    samples: int,
    data: str | None,
    data_dir: str | None,
    evaluate: bool,
    overwrite: bool,
    int8: dict[str, Any] | None = None,
) -> ExportResult:
    """Export an image classifier (see :func:`export`; ``int8`` its int8 keywords) to ``out``."""
    import numpy as np

    import zoo.data

    int8 = {**INT8_SETTINGS, **(int8 or {})}
    model = _loaded(entry, int8["equalize"])
    # a model without the activations the pieces hold is refused before anything is measured
    pieces_levels(model, int8["stem_pieces"])
    depthwise_levels(model, int8["depthwise_pieces"])
    expansion_levels(model, int8["expansion_pieces"])
    baked, shape = _image_contract(entry)
    expected, feed = _keras_reference(model, baked, _sample_images(shape, samples), preprocessing)
    record = _image_record(entry, baked, shape, preprocessing, model)
    inputs = {"weights": entry.name, "format": fmt, "quantize": quantize, "preprocessing": preprocessing}
    recorded = {key: value for key, value in int8.items() if key != "qat_checkpoint"}
    inputs.update({key: value for key, value in recorded.items() if value != INT8_SETTINGS[key]})
    command = f"zoo export {entry.name} --format {fmt}"
    extra: dict[str, Any] = {}
    calibration = ranges = None
    to_int8 = fmt == "tflite" and quantize == "int8"
    parts = _data_parts(entry, data, data_dir) if to_int8 or (evaluate and fmt == "tflite") else None
    test = _evaluation_split(entry, parts, data_dir) if evaluate and parts is not None else None
    if to_int8:
        calibration, extra["calibration"] = _calibration_inputs(
            entry, shape, baked, preprocessing, parts, data_dir, data is not None, int8["calibration_images"]
        )
        extra["activation_ranges"] = f"calibration quantiles {CLIP_QUANTILE:g} to {1 - CLIP_QUANTILE:g}"
    with tempfile.TemporaryDirectory(prefix="zoo-export-") as tmpdir:
        saved = Path(tmpdir) / "saved_model"
        _write_savedmodel(model, baked if preprocessing else None, shape, saved)
        quantized_from = saved
        if calibration is not None:
            quantized_from = Path(tmpdir) / "int8_weights"
            transform = zoo.data.image_transform(baked)
            seen = np.asarray(transform(calibration)) if preprocessing else calibration
            qat = _qat_settings(int8, overwrite)
            start = _equalized(model, seen, extra) if int8["equalize"] else model
            weights = (entry, start, seen, transform, parts, data_dir, extra)
            ranges = _int8_weights(
                weights,
                qat,
                (*(int8[f"{kind}_pieces"] for kind in ("stem", "depthwise", "expansion")), int8["rounding"]),
                lambda m: _write_savedmodel(m, baked if preprocessing else None, shape, quantized_from),
            )
        got = _write_checked(
            saved,
            fmt,
            _Owner(out, command, inputs, overwrite),
            {**record, "quantize": quantize, **extra} if fmt == "tflite" else record,
            run=lambda fmt, artifact: run_export(fmt, artifact, feed),
            check=lambda got: _check(got, expected, quantize, fmt),
            annotate={"dims": ("batch",), "kind": "an image classifier on uint8 images"},
            tflite=lambda saved: _tflite_bytes(quantized_from, quantize, calibration, ranges),
        )
    result = _export_result(out, fmt, quantize, preprocessing, got, expected)
    result.metrics.update(extra)
    result.input_shape = shape if preprocessing else tuple(model.input_shape[1:])
    if test is not None:
        result.metrics.update(_compare_on_test(entry, model, out, preprocessing, test))
    return result


def _qat_settings(int8: dict[str, Any], overwrite: bool) -> dict[str, Any] | None:
    """What :func:`_distilled` needs of :func:`export`'s int8 keywords; ``None``: no distillation."""
    if not int8["qat_steps"]:
        return None
    return {
        "steps": int8["qat_steps"],
        "checkpoint": int8["qat_checkpoint"],
        "overwrite": overwrite,
        "images": int8["qat_images"] or QAT_IMAGES,
        "equalized": int8["equalize"],
        "keep_kernels": int8["qat_keep_kernels"],
        "calibration_images": int8["calibration_images"],
    }


def _equalized(model: Any, seen: Any, extra: dict[str, Any]) -> Any:
    """:func:`equalized` ``model`` on the calibration inputs ``seen``; ``extra`` records how."""
    import numpy as np

    copy, done = equalized(model, seen)
    scales = np.concatenate(done["scales"])
    extra["equalization"] = (
        f"the channels of {done['streams']} linear streams ({done['tensors']} tensors: sums "
        f"and the linear layers feeding them) scaled towards their stream's widest on the calibration "
        f"images, the {done['readers']} kernels reading them inversely (scales median "
        f"{np.median(scales):.2f}, at most {scales.max():.2f}, cap {MAX_SCALE:g}); in float "
        f"max |diff| {done['max_diff']:.1e}"
    )
    return copy


def _in_pieces(model: Any, pieces: tuple[int, int, int], ranges: Callable[[], Ranges]) -> tuple[Any, Ranges]:
    """``model`` with its first, depthwise and expansion activations in ``pieces`` int8 pieces.

    ``ranges`` gives the int8 ranges :func:`depthwise_in_pieces` and :func:`expansion_in_pieces`
    magnify by (called only for them). Returns the model and the ranges TFLite must give their pieces.
    """
    stem, depthwise, expansion = pieces
    held, given = first_in_pieces(model, stem), {}
    if depthwise > 1 or expansion > 1:
        measured = ranges()
        held, given = expansion_in_pieces(held, expansion, measured)
        held, more = depthwise_in_pieces(held, depthwise, measured)
        given = {**given, **more}
    return held, given


def _held_levels(model: Any, pieces: tuple[int, int, int], extra: dict[str, Any]) -> dict[str, int] | None:
    """The simulation's ``levels`` for what ``pieces`` hold (:func:`_in_pieces`); ``extra`` says so."""
    stem, depthwise, expansion = pieces
    finer, expanded = depthwise_levels(model, depthwise), expansion_levels(model, expansion)
    if stem > 1:
        extra["stem_pieces"] = (
            f"the first activation held in {stem} int8 pieces that the convolution after it adds "
            f"back: {255 * stem} steps of its range"
        )
    for key, k, held, what in (
        ("depthwise_pieces", depthwise, finer, "after {n} depthwise convolution{s}"),
        ("expansion_pieces", expansion, expanded, "read by {n} depthwise convolution{s}"),
    ):
        if k > 1:
            where = what.format(n=len(held), s="s" if len(held) != 1 else "")
            extra[key] = (
                f"the activations {where} held in {k} int8 pieces that the convolution reading each "
                f"adds back: {255 * k} steps of their ranges"
            )
    return {**(pieces_levels(model, stem) or {}), **expanded, **finer} or None


def _int8_weights(
    weights: tuple[Any, ...],
    qat: dict[str, Any] | None,
    how: tuple[int, int, int, str],
    write: Callable[[Any], None],
) -> Ranges | None:
    """Hand ``write`` the model TFLite converts to int8; the activation ranges it must keep, if any.

    ``weights`` is ``(entry, model, seen, transform, parts, data_dir, extra)``. With ``qat``, the
    weights :func:`_distilled` (its ranges returned); else the model's, on TFLite's grid with
    biases corrected (TFLite's own ranges but the pieces'). ``how`` is ``(pieces, depthwise,
    expansion, rounding)``: ``pieces`` > 1 holds the first activation in that many int8 pieces
    (:func:`first_in_pieces`), ``depthwise`` > 1 the depthwise convolutions'
    (:func:`depthwise_in_pieces`), ``expansion`` > 1 those the depthwise convolutions read
    (:func:`expansion_in_pieces`), which the rounding and distillation simulate as that much
    finer; ``rounding`` ``"sequential"`` rounds layer after layer on what the int8 model feeds
    each (:func:`sequentially_rounded`; a model :func:`unsupported` objects to is refused), else
    each layer on the float inputs; with ``qat``, the rounding distillation starts from.
    """
    entry, model, seen, transform, parts, data_dir, extra = weights
    *held_as, rounding = how
    levels = _held_levels(model, tuple(held_as), extra)
    reason = unsupported(model) if rounding == "sequential" else None
    if reason is not None:
        raise InputError(
            f"--rounding sequential takes a model of plain layers with one input; {model.name} "
            f"{reason}: leave out --rounding"
        )
    if qat is not None:  # weights distilled through a simulation of the int8 model
        qat["levels"], qat["rounding"] = levels, rounding
        distilled, ranges = _distilled(entry, model, seen, qat, transform, parts, data_dir, extra)
        held, given = _in_pieces(distilled, tuple(held_as), lambda: ranges)
        write(held)
        return {**ranges, **given}
    if rounding == "sequential":  # TFLite converts weights already on its grid, biases corrected
        rounded, counts = sequentially_rounded(model, seen, levels=levels)
        held, given = _in_pieces(rounded, tuple(held_as), lambda: int8_ranges(rounded, seen))
        write(held)
        extra["weight_rounding"] = (
            f"{counts['layers']} kernels rounded layer after layer on the calibration images as the "
            f"int8 model feeds them ({counts['fitted']} first fitted to the float layer's output), "
            "with error compensation (GPTQ)"
        )
        extra["bias_correction"] = (
            f"{counts['corrected']} of {counts['layers']} layers, on the calibration images"
        )
        return given or None
    held, given = _in_pieces(model, tuple(held_as), lambda: int8_ranges(model, seen))
    with rounded_weights(held, seen) as rounded:  # each layer on what the float model feeds it
        write(held)
    corrected, compensated = rounded.pop("corrected"), rounded.pop("compensated")
    count = sum(len(layers) for layers in rounded.values())
    extra["weight_rounding"] = (
        f"{len(compensated)} of {count} kernels rounded with error compensation (GPTQ) "
        "on the calibration images"
    )
    extra["bias_correction"] = f"{len(corrected)} of {count} layers, on the calibration images"
    return given or None


def _distilled(
    entry: Any,
    model: Any,
    seen: Any,
    qat: dict[str, Any],
    transform: Callable[[Any], Any],
    parts: _DataParts,
    data_dir: str | None,
    extra: dict[str, Any],
) -> tuple[Any, Ranges]:
    """``model`` after ``qat["steps"]`` of :func:`distil_int8` on ``qat["images"]`` of ``parts.train``.

    ``qat["checkpoint"]`` is where its state is kept; ``extra`` records how it was made.
    Returns the distilled model, its activations split as the ranges name them
    (:func:`split_activations`), and the activation ranges its simulation rounded to.
    """
    import numpy as np

    steps, data, (split, options) = qat["steps"], parts.name, parts.train
    try:
        source = _real_images(
            entry, qat["images"], data, data_dir, split, geometry=False, required=True, **options
        )
    except DataError as e:
        raise InputError(f"--qat-steps trains on {data}'s train split: {e}; or leave out --qat-steps") from e
    train = ResizedImages(source, _export_resize(entry))
    levels, rounding, keep_kernels = qat["levels"], qat["rounding"], qat["keep_kernels"]
    settings = {key: qat[key] for key in ("equalized", "keep_kernels", "calibration_images")}
    split = parts.describe(parts.train)
    inputs = distillation_inputs(
        entry, source, steps=steps, data=data, split=split, levels=levels, rounding=rounding, **settings
    )
    start, corrected = distillation_start(model, seen, rounding, levels)
    ranges = int8_ranges(start, seen)
    distilled = distil_int8(
        model,
        train,
        seen,
        steps=steps,
        transform=transform,
        start=start,
        checkpoint=qat["checkpoint"],
        inputs=inputs,
        overwrite=qat["overwrite"],
        ranges=ranges,
        levels=levels,
        keep_kernels=keep_kernels,
    )
    trained = ", batch norms and biases only" if keep_kernels else ""
    extra["qat"] = (
        f"{steps} steps of quantisation-aware distillation{trained} (batch {QAT_BATCH}, Adam "
        f"{QAT_LEARNING_RATE:g} with cosine decay, logits' squared error + KL) on "
        f"{len(train)} {data} {parts.describe(parts.train)} images"
    )
    how = "layer after layer on what the int8 model feeds them, " if rounding == "sequential" else ""
    extra["weight_rounding"] = (
        f"distillation started from kernels rounded {how}with error compensation (GPTQ) on the "
        "calibration images; "
        + (
            "they keep those int8 values"
            if keep_kernels
            else "TFLite rounds the distilled ones to nearest, as distillation simulated"
        )
    )
    extra["bias_correction"] = f"{corrected} layers, on the calibration images, before distilling"
    extra["activation_ranges"] = (
        f"those distillation simulated: calibration quantiles {CLIP_QUANTILE:g} to "
        f"{1 - CLIP_QUANTILE:g} of the bias-corrected model"
    )
    if qat["checkpoint"] is not None:  # the state may come from another machine and backend
        with np.load(Path(qat["checkpoint"]) / _DistillationState.FILE) as saved:
            extra["qat_state"] = f"kept in --qat-checkpoint, last saved by Keras on {saved['backend']}"
    return split_activations(distilled), ranges


def _evaluation_split(entry: Any, parts: _DataParts, data_dir: str | None) -> tuple[str, bool, Any]:
    """``("name:split", own, dataset)``: the batches of ``parts.test`` at the export's input size.

    Built before anything is exported, so that missing data fails before a file is written.
    """
    import zoo.data

    split, options = parts.test
    ds = zoo.data.load(parts.name, split, data_dir=data_dir, as_supervised=True, **options)
    geometry = _export_resize(entry)  # before batching: a user's photos differ in size
    where = f"{parts.name}:{parts.describe(parts.test)}"
    return where, parts.own, ds.map(lambda x, y: (geometry(x), y)).batch(256)


def _compare_on_test(
    entry: Any, model: Any, path: Path, preprocessing: bool, test: tuple[str, bool, Any]
) -> dict[str, float]:
    """Top-1 agreement of the TFLite file with Keras on ``test``, and both accuracies.

    Also how often Keras' top-1 class is among the file's five largest outputs
    (``top5_agreement``): near-ties that int8 rounding reorders still keep it there.

    ``test`` comes from :func:`_evaluation_split`; accuracies are given only when its
    data is the entry's own (the labels are the model's). Both see the images as the
    export's callers give them (resized there by :func:`zoo.preprocessing.geometry_transform`),
    so the figures measure the conversion alone.
    """
    import numpy as np

    import zoo.data
    from zoo.progress import progress
    from zoo.tasks.inference import predict_fn

    where, own, ds = test
    baked = zoo.data.image_transform(_image_contract(entry)[0])
    fn = predict_fn(model, fold=False)
    keras_ok = tfl_ok = agree = in_top5 = total = 0
    interp = tflite_interpreter(model_path=str(path))
    inp = interp.get_input_details()[0]
    for sized, y in progress(ds, "comparing with Keras"):
        images = np.asarray(sized)
        model_inputs = np.asarray(baked(images))
        keras_top = np.argmax(np.asarray(fn(model_inputs)), -1)
        feed = images if preprocessing else model_inputs
        interp.resize_tensor_input(inp["index"], list(feed.shape))
        interp.allocate_tensors()
        interp.set_tensor(inp["index"], feed.astype(inp["dtype"]))
        interp.invoke()
        tfl_out = interp.get_tensor(interp.get_output_details()[0]["index"])
        tfl_top = np.argmax(tfl_out, -1)
        keras_ok += int(np.sum(keras_top == y.numpy()))
        tfl_ok += int(np.sum(tfl_top == y.numpy()))
        agree += int(np.sum(tfl_top == keras_top))
        in_top5 += int(np.sum(in_top_k(tfl_out, keras_top)))
        total += len(y)
    result = {
        "top1_agreement": 100 * agree / total,
        "top5_agreement": 100 * in_top5 / total,
        "num_examples": total,
        "evaluation_data": where,
    }
    if own:
        result.update(keras_top1_accuracy=100 * keras_ok / total, tflite_top1_accuracy=100 * tfl_ok / total)
    return result
