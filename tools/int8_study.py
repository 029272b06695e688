"""Study: how far an int8 TFLite image classifier moves from Keras, and what its activation ranges change.

On the first ``--images`` test images of ``--data`` (shaped as the export shapes them), or with
``--split train`` the first of the train images ``--qat-steps`` distils on, it measures:

- the float Keras model's gap between its two largest logits (small gaps flip at the slightest noise);
- top-1 agreement with Keras and the logit error (standard deviation) of the int8 model with
  TFLite's own min/max activation ranges, with the quantile ranges ``zoo export`` uses, and with
  TFLite's int16 activations and int8 weights (``--int16``; slow reference kernels);
- the float Keras model with only its weights rounded as TFLite's int8 rounds them (symmetric,
  one scale per output channel), all layers and each kind of layer alone, and all layers with
  empirical bias correction on the calibration images (``--weights-only``);
- the float Keras model with only some activations rounded to their int8 grid, as
  ``int8_simulation`` rounds them: the first alone, all the others, all (``--activations``);
- the float Keras model with only its first activation rounded, on narrower ranges than the
  export's (``--first-ranges 4,3``: ``[lo, hi]`` cut at each top): whether a range a quantiser
  could learn (LSQ, PACT) would round it more finely at less cost than the values it clips;
- the float Keras model with int8-rounded activations, its first rounded ``k`` times more finely,
  then every one (``--finer-first 2,4``), and the int8 file ``zoo export`` makes of the same function with its
  first activation held as ``k`` ReLU6 copies, ``k`` times magnified and shifted, that the
  depthwise convolution after it, made a full convolution, adds back in its int32 accumulator
  (``--first-pieces 2``: every tensor still int8, the stem's output in ``256 k`` steps);
- the int8 model as ``zoo export`` makes it (bias-corrected) with its first convolutions left in
  float (``--float-first 2,3``): two keep the stem's output from being rounded at all;
- how closely the int8 simulation that distillation trains follows the int8 file it stands for,
  with TFLite's calibrated ranges and with the simulation's own (``--simulation``; with
  ``--distilled DIR``, on the weights of a finished ``zoo export --qat-checkpoint DIR``);
- the float Keras model against itself on the same images changed by less than the eye sees
  (``--perturbations``): one grey level of random noise (each pixel -1, 0 or +1), a one-pixel
  shift, a mirror; how much top-1 agreement the images' near-ties allow at all;
- what the int8 logits' own rounding costs: the Keras logits rounded to the int8 model's output
  grid (tied top-1 logits, which ``argmax`` resolves to the first class, are counted);
- the model with each ReLU6 output's channels scaled up into [0, 6] before the depthwise
  convolution that scales them back (``--equalize 1,2``; cross-layer equalization for ReLU6, at
  margins over each channel's calibration maximum): in float, with int8-rounded activations, and
  as the int8 file ``zoo export`` makes of it;
- the int8 file as ``zoo export`` makes it with its activation ranges cut at other calibration
  quantiles than the export's (``--quantiles 1e-3,1e-2``): a narrower range, a finer step, more
  values saturated;
- with ``--streams``, all of the above for the model with its linear streams' channels equalised
  first, as ``zoo export --equalize`` makes it;
- any int8 file ``zoo export`` wrote for the entry (``--file PATH``, repeatable), a distilled one say,
  with its latency at batch 1 and 64 (best of several calls; files side by side in one run), and
  with ``--builtin-kernels`` its outputs on TFLite's builtin int8 kernels as well as XNNPACK's.

Each model is reported by its top-1 agreement with Keras, its logit error, how often Keras'
top-1 is among its five largest outputs, and its top-1 agreement on the images whose Keras
top-1 logit leads the second by at least ``--clear-gap``. Also:

- the latency of the two int8 models side by side at batch 1 and 64 (best of several calls).

Usage:
    ZOO_DATA_DIR=../shared/data python -m tools.int8_study [--entry efficientnet_lite0.in1k] \\
        [--data cifar10] [--images 1000] [--split test] [--int16 500] \\
        [--float-ops DEPTHWISE_CONV_2D,FULLY_CONNECTED,CONV_2D] [--weights-only] [--activations] \\
        [--perturbations] [--first-ranges 4,3] [--finer-first 2,4] [--first-pieces 2] [--float-first 2,3] \\
        [--equalize 1,2] [--streams] [--simulation] \\
        [--distilled DIR [--distilled-steps 1000]] [--quantiles 1e-3,1e-2] [--file e.tflite] \\
        [--builtin-kernels] [--clear-gap 0.3]
"""

from __future__ import annotations

import argparse
import functools
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
from tools._results import best_time  # noqa: E402  (after the log level)
from tools.distil_int8 import finer_levels  # noqa: E402


def numbers(kind: type, low: float, high: float = float("inf")):
    """An argparse type: comma-separated ``kind`` numbers in ``(low, high)`` (``''``: none)."""

    def parse(text: str) -> list:
        try:
            values = [kind(item) for item in text.split(",") if item.strip()]
        except ValueError:
            what = "whole numbers" if kind is int else "numbers"
            raise argparse.ArgumentTypeError(f"{text!r}: expected comma-separated {what}") from None
        if any(not low < value < high for value in values):
            bound = f"between {low:g} and {high:g}" if high < float("inf") else f"above {low:g}"
            raise argparse.ArgumentTypeError(f"{text!r}: each value must be {bound}")
        return values

    return parse


def converter(saved: Path, calibration, int16: bool = False):
    """TFLite's full-integer converter of ``saved`` with its own (min/max) calibration."""
    import tensorflow as tf

    from zoo.export.quantize import _int8_converter

    conv = _int8_converter(saved, calibration)
    if int16:  # ops without a 16x8 kernel (the uint8 input's cast) stay float
        conv.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
            tf.lite.OpsSet.TFLITE_BUILTINS,
        ]
    return conv


def op_order(blob: bytes) -> list[tuple[str, str]]:
    """``(kind, output tensor name)`` of the TFLite model's operators, in graph order."""
    from tensorflow.lite.python import schema_py_generated as schema
    from tensorflow.lite.tools import flatbuffer_utils

    kinds = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
    model = flatbuffer_utils.read_model_from_bytearray(bytearray(blob))
    graph, order = model.subgraphs[0], []
    for op in graph.operators:
        code = model.operatorCodes[op.opcodeIndex]
        kind = kinds.get(max(code.builtinCode, code.deprecatedBuiltinCode), "?")
        order.append((kind, graph.tensors[op.outputs[0]].name.decode()))
    return order


def op_outputs(blob: bytes) -> dict[str, list[str]]:
    """Output tensor names of the TFLite model's operators, by operator kind (``CONV_2D``, ...)."""
    names: dict[str, list[str]] = {}
    for kind, name in op_order(blob):
        names.setdefault(kind, []).append(name)
    return names


def output_grid(blob: bytes) -> tuple[float, int] | None:
    """Scale and zero point of the int8 logits the last ``FULLY_CONNECTED`` writes (``None``: float)."""
    from zoo.export import tflite_interpreter

    names = op_outputs(blob).get("FULLY_CONNECTED")
    if not names:
        return None
    for tensor in tflite_interpreter(model_content=blob).get_tensor_details():
        if tensor["name"] == names[-1]:
            scale, zero = tensor["quantization"]
            return (float(scale), int(zero)) if scale else None
    return None


def run_batches(blob: bytes, batches: list, xnnpack: bool = True) -> object:
    """The TFLite model's outputs on each batch, concatenated (float32).

    ``xnnpack=False``: on TFLite's builtin kernels, without the XNNPACK delegate the interpreter
    applies by default (XNNPACK rounds each requantisation once, the builtin kernels mostly twice).
    """
    import numpy as np
    import tensorflow as tf

    from zoo.export import tflite_interpreter

    resolver = tf.lite.experimental.OpResolverType
    kernels = resolver.AUTO if xnnpack else resolver.BUILTIN_WITHOUT_DEFAULT_DELEGATES
    interp = tflite_interpreter(model_content=blob, experimental_op_resolver_type=kernels)
    given, out = interp.get_input_details()[0], interp.get_output_details()[0]
    outputs = []
    for images in batches:
        interp.resize_tensor_input(given["index"], list(images.shape))
        interp.allocate_tensors()
        interp.set_tensor(given["index"], images.astype(given["dtype"]))
        interp.invoke()
        outputs.append(interp.get_tensor(out["index"]).astype(np.float32))
    return np.concatenate(outputs)


def latency_ms(blob: bytes, images, batch: int) -> float:
    from zoo.export import tflite_interpreter

    interp = tflite_interpreter(model_content=blob)
    given = interp.get_input_details()[0]
    interp.resize_tensor_input(given["index"], [batch, *images.shape[1:]])
    interp.allocate_tensors()

    def call():
        interp.set_tensor(given["index"], images[:batch].astype(given["dtype"]))
        interp.invoke()

    return 1000 * best_time(call, 10, warmup=True)


def weight_rounding(model, inputs: list, report) -> None:
    """Report the Keras model with its weights on the int8 grid: every layer, then each kind alone."""
    import numpy as np

    from zoo.export import rounded_weights
    from zoo.export.quantize import _kernel_layers
    from zoo.tasks.inference import predict_fn

    forward = predict_fn(model, fold=False)  # the model itself, as the export checks it
    kinds: dict[str, int] = {}
    for _, kind, _ in _kernel_layers(model):
        kinds[kind] = kinds.get(kind, 0) + 1
    choices = {"layers": list(kinds)} | ({k: [k] for k in kinds} if len(kinds) > 1 else {})
    for label, chosen in choices.items():
        with rounded_weights(model, only=chosen):
            got = np.concatenate([np.asarray(forward(x)) for x in inputs])
        count = sum(kinds[k] for k in chosen)
        report(f"Keras with int8-rounded weights, {count} {label[:-1] if count == 1 else label}", got)


def activation_rounding(model, calibration, inputs: list, report) -> None:
    """Report Keras with only some activations rounded as the int8 model rounds them (weights float).

    The first quantised activation (the stem's output, for a convolutional network) alone,
    every other one, and all of them: which rounding the int8 model's error enters at.
    """
    import numpy as np

    from zoo.export import int8_simulation, quantized_outputs

    names = [layer.name for layer in quantized_outputs(model)]
    choices = {
        f"the first ({names[0]}) alone": names[:1],
        f"all {len(names) - 1} but the first": names[1:],
        f"all {len(names)}": names,
    }
    for label, chosen in choices.items():
        simulation = int8_simulation(model, calibration, only=chosen)
        got = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
        report(f"Keras with float weights, int8-rounded activations: {label}", got)


def first_range(model, calibration, tops: list[float], inputs: list, report) -> None:
    """Report Keras with only its first int8 activation rounded, on the export's range and narrower ones.

    Also how that activation's calibration values fill the export's range (their quantiles, and
    the share at or above its top), which says what a narrower range would clip.
    """
    import keras
    import numpy as np

    from zoo.export import int8_ranges, int8_simulation, quantized_outputs, split_activations

    first = quantized_outputs(model)[0].name
    ranges = int8_ranges(model, calibration)
    lo, hi = ranges[first]
    if below := [t for t in tops if t <= lo]:
        raise SystemExit(f"--first-ranges: {below} not above the bottom of {first}'s range, {lo:g}")
    split = split_activations(model)  # as the int8 model holds it: before a tanh TFLite runs apart, say
    values = np.asarray(
        keras.Model(split.input, split.get_layer(first).output).predict(calibration, verbose=0)
    )
    print(
        f"{first} on the calibration images: range [{lo:.3f}, {hi:.3f}]; 50/90/99% quantiles "
        f"{np.quantile(values, [0.5, 0.9, 0.99]).round(3)}; "
        f"{100 * np.mean(values >= hi):.2f}% at or above its top"
    )
    for top in [hi, *tops]:
        simulation = int8_simulation(model, calibration, only=[first], ranges={**ranges, first: (lo, top)})
        got = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
        report(f"Keras with float weights, only {first} rounded, on [{lo:g}, {top:g}]", got)


def finer_first(model, calibration, factors: list[int], inputs: list, report) -> None:
    """Report Keras with float weights and int8-rounded activations, the first rounded ``k`` times finer.

    The first activation alone, then with every other one: what a first activation held more
    finely than int8's 256 steps of its range (as ``zoo.export.first_in_pieces`` holds it) would win;
    then every activation ``k`` times finer (no int8 model does that): what finer activations could
    win at all.
    """
    import numpy as np

    from zoo.export import int8_simulation, quantized_outputs

    names = [layer.name for layer in quantized_outputs(model)]
    cases = [(names[:1], f"the first ({names[0]}) alone, {k}x finer", k, names[:1]) for k in [1, *factors]]
    cases += [(None, f"all {len(names)}, the first {k}x finer", k, names[:1]) for k in [1, *factors]]
    cases += [(None, f"all {len(names)}, every one {k}x finer", k, names) for k in factors]
    for only, label, k, fine in cases:
        simulation = int8_simulation(model, calibration, only=only, levels={n: 255 * k + 1 for n in fine})
        got = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
        report(f"Keras with float weights, int8-rounded activations: {label}", got)


def _finer_sets(model) -> list[tuple[str, list[str]]]:
    """Sets of int8 activations an int8 file could hold in pieces, each with the ones before it.

    The first (``zoo export --stem-pieces``); each ReLU6 after a depthwise convolution that a 1x1
    convolution reads (``--depthwise-pieces``); each ReLU6 a depthwise convolution reads
    (``--expansion-pieces``); a ReLU6 that a global pooling reads (the convolution before it could
    make the copies and the dense layer after it add them back); then every one (no int8 file
    could do that). A set the one before it already holds is left out.
    """
    import keras

    from zoo.export import quantized_outputs
    from zoo.export.pieces import _expansion_sites
    from zoo.export.simulation import _parent, _producer, _users, split_activations

    split = split_activations(model)
    users = _users(split)
    quantized = quantized_outputs(split)

    def read_by(layer, kind) -> bool:
        after = users.get(id(layer.output), [])
        return len(after) == 1 and isinstance(after[0], kind)

    def after_depthwise(layer) -> bool:
        producer = _producer(layer)
        return producer is not None and isinstance(_parent(producer), keras.layers.DepthwiseConv2D)

    first = [quantized[0].name]
    depthwise = [q.name for q in quantized[1:] if after_depthwise(q) and read_by(q, keras.layers.Conv2D)]
    expansion = [relu.name for _, _, relu, _ in _expansion_sites(split)]
    pooled = [q.name for q in quantized[1:] if read_by(q, keras.layers.GlobalAveragePooling2D)]
    sets = [
        ("the first", first),
        (f"the first and {len(depthwise)} depthwise outputs", first + depthwise),
        (f"those and {len(expansion)} expansion outputs", first + depthwise + expansion),
        (f"those and {len(pooled)} pooled", first + depthwise + expansion + pooled),
        (f"all {len(quantized)}", [q.name for q in quantized]),
    ]
    return [item for i, item in enumerate(sets) if i == 0 or item[1] != sets[i - 1][1]]


def sequential_finer(model, seen, factors: list[int], inputs: list, report) -> None:
    """Report the int8 simulation of the kernels ``--rounding sequential`` rounds, some activations finer.

    For each factor ``k`` and each set of :func:`_finer_sets`, the kernels are rounded layer after
    layer on a simulation that holds that set ``k`` times finer, and that simulation is compared:
    what holding more activations in pieces could add to the sequential rounding.
    """
    import numpy as np

    from zoo.export import int8_simulation
    from zoo.export.sequential import sequentially_rounded

    for k in factors:
        for label, names in _finer_sets(model):
            levels = {name: 255 * k + 1 for name in names}
            rounded, _ = sequentially_rounded(model, seen, levels=levels)
            simulation = int8_simulation(rounded, seen, levels=levels)
            got = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
            report(f"int8 simulation, kernels rounded layer after layer, {label} {k}x finer", got)


def first_pieces(model, seen, calibration, factors: list[int], contract, batches: list, report) -> None:
    """Report the int8 file as ``zoo export`` makes it (quantile ranges, bias correction) of
    ``zoo.export.first_in_pieces`` of the model, for each ``k``, with its latency beside the export's."""
    import numpy as np

    from zoo.export import CLIP_QUANTILE, first_in_pieces, rounded_weights
    from zoo.export._write import _write_savedmodel
    from zoo.export.quantize import _int8_files

    baked, shape = contract
    sample = np.concatenate(batches)[:64]
    with tempfile.TemporaryDirectory(prefix="zoo-int8-pieces-") as tmp:
        for k in [1, *factors]:
            pieces = model if k == 1 else first_in_pieces(model, k)
            if k > 1:
                diff = np.abs(
                    np.asarray(pieces.predict_on_batch(seen[:16]))
                    - np.asarray(model.predict_on_batch(seen[:16]))
                )
                print(f"the first activation in {k} pieces, in float: max |diff| {diff.max():.1e} from Keras")
            with rounded_weights(pieces, seen):
                _write_savedmodel(pieces, baked, shape, Path(tmp) / f"k{k}")
            blob = _int8_files(Path(tmp) / f"k{k}", calibration, [CLIP_QUANTILE])[0]
            what = "as zoo export makes it" if k == 1 else f"its first activation in {k} pieces"
            speed = ", ".join(f"batch {b} {latency_ms(blob, sample, b):.2f} ms" for b in (1, 64))
            report(
                f"int8 {what} (bias-corrected; {len(blob) / 1e6:.2f} MB; {speed})", run_batches(blob, batches)
            )


def first_in_float(corrected: Path, calibration, batches: list, counts: list[int], report) -> None:
    """Report the bias-corrected int8 model with its first convolutions (of any kind) left in float."""
    from tensorflow.lite.python import convert

    from zoo.export.quantize import _int8_calibration, _with_ranges

    calibrated = _with_ranges(_int8_calibration(converter(corrected, calibration), calibration))
    kinds = op_order(calibrated)
    convs = [name for kind, name in kinds if kind in ("CONV_2D", "DEPTHWISE_CONV_2D")]
    for count in counts:
        blob = convert.mlir_quantize(calibrated, denylisted_nodes=convs[:count])
        label = f"int8 as zoo export makes it, the first {count} convolutions in float"
        report(f"{label} ({len(blob) / 1e6:.1f} MB)", run_batches(blob, batches))


def simulation_fidelity(
    start, ranges, seen, calibration, contract, inputs: list, batches: list, folder, report
) -> None:
    """Report how closely ``int8_simulation`` (what distillation trains) follows the file it stands for.

    ``start`` holds the weights, ``ranges`` the simulation's activation ranges (as distillation
    set them) and ``seen`` the calibration images as model inputs. Reported: the simulation,
    kernels on the int8 grid; the int8 file of those weights with TFLite's calibrated ranges and
    with the simulation's (as a distilled export gives them); how often each file's top-1 is
    the simulation's.
    """
    import numpy as np

    from zoo.export import int8_simulation, rounded_weights
    from zoo.export._write import _write_savedmodel
    from zoo.export.quantize import _tflite_bytes

    with rounded_weights(start):  # the simulation copies the kernels on the int8 grid
        simulation = int8_simulation(start, seen, ranges=ranges)
    simulated = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
    report("the int8 simulation distillation trains", simulated)
    _write_savedmodel(start, *contract, folder)
    for label, given in (("TFLite's calibrated ranges", None), ("the simulation's", ranges)):
        got = run_batches(_tflite_bytes(folder, "int8", calibration, given), batches)
        report(f"the int8 file of those weights, {label}", got)
        same = 100 * np.mean(got.argmax(-1) == simulated.argmax(-1))
        spread = np.std(got - simulated)
        print(f"  its top-1 is the simulation's on {same:.2f}%; logit difference std {spread:.3f}")


def distilled_pieces(
    start, ranges, seen, calibration, contract, inputs: list, batches: list, folder, report, k: int = 2
) -> None:
    """Report the simulation distillation trained with its first activation ``k`` times finer, and
    the int8 file of those weights with that activation in ``k`` pieces (``zoo.export.first_in_pieces``)."""
    import numpy as np

    from zoo.export import first_in_pieces, int8_simulation, rounded_weights
    from zoo.export._write import _write_savedmodel
    from zoo.export.pieces import pieces_levels
    from zoo.export.quantize import _tflite_bytes

    levels = pieces_levels(start, k)
    (first,) = levels
    with rounded_weights(start):  # the simulation copies the kernels on the int8 grid
        simulation = int8_simulation(start, seen, ranges=ranges, levels=levels)
    simulated = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
    report(f"the int8 simulation distillation trained, {first} {k}x finer", simulated)
    _write_savedmodel(first_in_pieces(start, k), *contract, folder)
    got = run_batches(_tflite_bytes(folder, "int8", calibration, ranges), batches)
    report(f"the int8 file of those weights, {first} in {k} pieces, the simulation's ranges", got)
    same = 100 * np.mean(got.argmax(-1) == simulated.argmax(-1))
    print(
        f"  its top-1 is the simulation's on {same:.2f}%; logit difference std {np.std(got - simulated):.3f}"
    )


def distilled_all(start, ranges, seen, inputs: list, report, k: int) -> None:
    """Report the simulation distillation trained with every int8 activation ``k`` times finer
    (``tools.distil_int8 run --finer-first k --finer-all``; no int8 file holds it, so no file),
    and those distilled weights on the int8 grid with no activation rounded."""
    import numpy as np

    from zoo.export import int8_simulation, rounded_weights

    with rounded_weights(start):  # the simulation copies the kernels on the int8 grid
        simulation = int8_simulation(start, seen, ranges=ranges, levels=finer_levels(start, k, every=True))
        kernels_only = np.concatenate([np.asarray(start.predict_on_batch(x)) for x in inputs])
    simulated = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
    report(f"the int8 simulation, every activation {k}x finer", simulated)
    report("those weights on the int8 grid, no activation rounded", kernels_only)


def simulated_weights(
    entry, model, seen, transform, data: str, distilled: str | None, steps: int, finer: int = 1, every=False
):
    """The bias-corrected weights, or those of the finished distillation in ``distilled`` (run
    with its first activation, or with ``every`` each, ``finer`` times finer), and the activation
    ranges distillation simulates for them."""
    from zoo.export import QAT_IMAGES, bias_corrected, int8_ranges
    from zoo.export.image import _data_parts, _distilled

    if distilled is None:
        start, _ = bias_corrected(model, seen)
        return "bias-corrected weights", start, int8_ranges(start, seen)
    qat = {"steps": steps, "checkpoint": distilled, "overwrite": False, "images": QAT_IMAGES}
    qat["levels"] = finer_levels(model, finer, every)
    weights, ranges = _distilled(entry, model, seen, qat, transform, _data_parts(entry, data, None), None, {})
    return f"weights distilled for {steps} steps", weights, ranges


def simulation_study(args, entry, model, transform, contract, images: tuple, tmp: Path, report) -> None:
    """``--simulation`` and ``--distilled``: the simulation distillation trains (or trained, with
    ``--distilled-finer``, ``--distilled-finer-all``) against Keras and the int8 file."""
    seen, calibration, inputs, batches = images
    finer, every = args.distilled_finer, args.distilled_finer_all
    label, start, ranges = simulated_weights(
        entry, model, seen, transform, args.data, args.distilled, args.distilled_steps, finer, every
    )
    print(f"{label}:")
    if every:
        distilled_all(start, ranges, seen, inputs, report, finer)
        return
    check = functools.partial(distilled_pieces, k=finer) if finer > 1 else simulation_fidelity
    check(start, ranges, seen, calibration, contract, inputs, batches, tmp / "simulated", report)


def perturbations(forward, transform, batches: list, report) -> None:
    """Report the float Keras model on its own inputs changed by less than the eye sees."""
    import numpy as np

    rng = np.random.default_rng(0)
    changes = {
        "one grey level of noise (-1, 0 or +1 per pixel)": lambda x: np.clip(
            x.astype(np.int16) + rng.integers(-1, 2, x.shape), 0, 255
        ).astype(np.uint8),
        "shifted one pixel right": lambda x: np.concatenate([x[:, :, :1], x[:, :, :-1]], axis=2),
        "mirrored": lambda x: x[:, :, ::-1],
    }
    for label, change in changes.items():
        got = np.concatenate([np.asarray(forward(np.asarray(transform(change(x))))) for x in batches])
        report(f"Keras (float) on its images {label}", got)


def equalized(model, seen, margin: float):
    """A copy of ``model`` with each ReLU6 output's channels scaled up into [0, 6] before a depthwise
    convolution, which scales them back (cross-layer equalization, Nagel et al. 2019, for ReLU6).

    TFLite rounds an activation on one grid for all its channels; a channel whose values stay
    well under 6 is rounded coarsely for its size. Scaling channel ``c`` of the batch norm
    before the ReLU6 by ``s_c`` and the depthwise kernel's channel ``c`` by ``1 / s_c`` leaves the
    model as it was wherever the channel stays under ``6 / s_c``; ``s_c = 6 / (margin * max_c)``
    (at most 16, at least 1), ``max_c`` the channel's largest value on ``seen``. Above that the
    copy clips where the model does not: how much the float copy agrees with the model says it.

    Returns:
        The copy, and how many ReLU6 outputs it scales.
    """
    import keras
    import numpy as np

    from zoo.export.simulation import _parent, _users

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    users = _users(copy)
    sites = [
        (_parent(relu), relu, users[id(relu.output)][0])
        for relu in copy.layers
        if isinstance(relu, keras.layers.ReLU)
        and relu.max_value == 6
        and isinstance(_parent(relu), keras.layers.BatchNormalization)
        and [type(user) for user in users.get(id(relu.output), [])] == [keras.layers.DepthwiseConv2D]
    ]
    if not sites:
        return copy, 0
    probe = keras.Model(copy.input, [relu.output for _, relu, _ in sites])
    highest = [np.zeros(relu.output.shape[-1]) for _, relu, _ in sites]
    for start in range(0, len(seen), 20):
        outputs = probe.predict_on_batch(seen[start : start + 20])
        for i, values in enumerate(outputs if isinstance(outputs, list) else [outputs]):
            values = np.asarray(values)
            highest[i] = np.maximum(highest[i], values.reshape(-1, values.shape[-1]).max(0))
    for (norm, _, depthwise), top in zip(sites, highest, strict=True):
        scale = np.clip(6.0 / (margin * np.maximum(top, 1e-6)), 1.0, 16.0)
        norm.gamma.assign(keras.ops.convert_to_numpy(norm.gamma) * scale)
        norm.beta.assign(keras.ops.convert_to_numpy(norm.beta) * scale)
        depthwise.kernel.assign(keras.ops.convert_to_numpy(depthwise.kernel) / scale[None, None, :, None])
    return copy, len(sites)


def equalization(model, seen, margins: list[float], inputs: list, batches: list, export, report) -> None:
    """Report :func:`equalized` copies of ``model``: in float, with int8-rounded activations, as int8 files.

    ``export`` is the baked preprocessing, input shape and calibration images of the int8 files.
    """
    import numpy as np

    from zoo.export import int8_simulation, rounded_weights
    from zoo.export._write import _write_savedmodel
    from zoo.export.quantize import _tflite_bytes
    from zoo.tasks.inference import predict_fn

    baked, shape, calibration = export

    def make_file(weights) -> bytes:  # the int8 file zoo export makes of these weights
        with tempfile.TemporaryDirectory(prefix="zoo-int8-study-") as tmp:
            with rounded_weights(weights, seen):
                _write_savedmodel(weights, baked, shape, Path(tmp) / "saved_model")
            return _tflite_bytes(Path(tmp) / "saved_model", "int8", calibration)

    report("int8 as zoo export makes it (bias-corrected)", run_batches(make_file(model), batches))
    for margin in margins:
        copy, count = equalized(model, seen, margin)
        label = f"equalized before {count} depthwise convolutions (margin {margin:g})"
        forward = predict_fn(copy, fold=False)
        report(f"Keras {label}, float", np.concatenate([np.asarray(forward(x)) for x in inputs]))
        simulation = int8_simulation(copy, seen)
        got = np.concatenate([np.asarray(simulation.predict_on_batch(x)) for x in inputs])
        report(f"Keras {label}, float weights, int8-rounded activations", got)
        report(f"int8 as zoo export makes it, {label}", run_batches(make_file(copy), batches))


def float_ops(saved: Path, calibration, kinds: str, batches: list, report) -> None:
    """The int8 model with quantile ranges (no bias correction), each kind of operator left in float."""
    from tensorflow.lite.python import convert

    from zoo.export.quantize import _int8_calibration, _with_ranges

    calibrated = _with_ranges(_int8_calibration(converter(saved, calibration), calibration))
    outputs = op_outputs(calibrated)
    for kind in kinds.split(","):
        names = outputs.get(kind, [])
        blob = convert.mlir_quantize(calibrated, denylisted_nodes=names)
        report(
            f"int8 quantile ranges, the {len(names)} {kind} ops in float ({len(blob) / 1e6:.1f} MB)",
            run_batches(blob, batches),
        )


def given_file(path: str, name: str, batches: list, report, error, builtin: bool = False) -> None:
    """Report an int8 file ``zoo export`` wrote of ``name`` (``error``: refuse another), and its latency.

    ``builtin``: on TFLite's builtin kernels too (:func:`run_batches`).
    """
    import numpy as np

    from zoo.export import tflite_record

    record = tflite_record(path) or {}
    contract = record.get("input_contract", {})
    if record.get("weights") != name or record.get("quantize") != "int8" or contract.get("dtype") != "uint8":
        error(f"{path}: not an int8 zoo export of {name} taking uint8 images")
    label = f"the int8 file {path} ({record.get('qat', 'no distillation')})"
    blob = Path(path).read_bytes()
    report(label, run_batches(blob, batches))
    if builtin:
        report(f"{label} on TFLite's builtin kernels", run_batches(blob, batches, xnnpack=False))
    sample = np.concatenate(batches)[:64]
    print("  its latency: " + ", ".join(f"batch {b} {latency_ms(blob, sample, b):.2f} ms" for b in (1, 64)))


def compared_images(entry, data: str, split: str, n: int) -> list:
    """The first ``n`` images compared, in batches of 100 at the export's input size.

    ``split="test"``: ``data``'s test split in its order. ``split="train"``: the train images
    ``zoo export --qat-steps`` distils on, in the order it takes them (the first 200 are its
    calibration images), to see whether distillation follows Keras better where it trained.
    Both resized as the export's callers resize them (``_export_resize``).
    """
    import numpy as np

    import zoo.data
    from zoo.export._write import _export_resize, _real_images

    if split == "train":
        images = _real_images(entry, n - n % 100, data, None, "train")
        if images is None:
            raise SystemExit(f"{data}'s train split is not on this machine: set ZOO_DATA_DIR to its folder")
        return [images[i : i + 100] for i in range(0, len(images), 100)]
    geometry = _export_resize(entry)
    test = zoo.data.load(data, "test", batch_size=100, as_supervised=True)
    return [np.asarray(geometry(raw)) for raw, _ in test.take(n // 100)]


def studied(model, seen, streams: bool):
    """``model``, or with ``streams`` its copy with its linear streams equalised on ``seen``."""
    if not streams:
        return model
    from zoo.export import equalized

    copy, done = equalized(model, seen)
    print(f"{done['streams']} linear streams equalised, max |diff| in float {done['max_diff']:.1e}")
    return copy


def main() -> int:
    from zoo.export import CLIP_QUANTILE

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--entry", default="efficientnet_lite0.in1k", help="an image classifier's weights")
    parser.add_argument("--data", default="cifar10", help="dataset compared on (see --split)")
    parser.add_argument("--images", type=int, default=1000, help="images compared (a multiple of 100)")
    parser.add_argument(
        "--split",
        choices=("test", "train"),
        default="test",
        help="compare on --data's first test images, or on the first train images --qat-steps "
        "distils on (the first 200 are the calibration images)",
    )
    parser.add_argument(
        "--int16", type=int, default=500, help="of those, images for int16 activations (0: skip)"
    )
    parser.add_argument(
        "--float-ops",
        default="DEPTHWISE_CONV_2D,FULLY_CONNECTED,CONV_2D",
        help="comma-separated TFLite operator kinds, each tried left in float ('' : skip)",
    )
    parser.add_argument(
        "--weights-only",
        action="store_true",
        help="also run Keras with only its weights rounded to TFLite's int8 grid",
    )
    parser.add_argument(
        "--activations",
        action="store_true",
        help="also run Keras with only some activations rounded to their int8 grid (float weights)",
    )
    parser.add_argument(
        "--first-ranges",
        type=numbers(float, 0),
        default=[],
        help="comma-separated tops: also Keras with only its first activation rounded, its range cut at each",
    )
    parser.add_argument(
        "--finer-first",
        type=numbers(int, 1),
        default=[],
        help="comma-separated factors: also Keras with int8-rounded activations, the first that many "
        "times finer (alone and with all the others)",
    )
    parser.add_argument(
        "--sequential-finer",
        type=numbers(int, 1),
        default=[],
        help="comma-separated factors: the int8 simulation after --rounding sequential, with the first "
        "activation, then also those a depthwise convolution makes, those one reads, the pooled ones, "
        "then every one, that many times finer",
    )
    parser.add_argument(
        "--first-pieces",
        type=numbers(int, 1),
        default=[],
        help="comma-separated counts: also the int8 file as zoo export makes it with its first "
        "activation held in that many pieces (its depthwise convolution made a full one)",
    )
    parser.add_argument(
        "--float-first",
        type=numbers(int, 0),
        default=[],
        help="comma-separated counts: the bias-corrected int8 model, that many first convolutions in float",
    )
    parser.add_argument(
        "--simulation",
        action="store_true",
        help="also compare the int8 simulation distillation trains with the int8 file it stands for",
    )
    parser.add_argument(
        "--distilled",
        help="--simulation on the weights of this finished --qat-checkpoint folder (default images)",
    )
    parser.add_argument("--distilled-steps", type=int, default=1000, help="the steps --distilled was run for")
    parser.add_argument(
        "--distilled-finer",
        type=int,
        default=1,
        help="--distilled was run with tools.distil_int8 --finer-first K: its simulation, and its int8 "
        "file with the first activation in K pieces",
    )
    parser.add_argument(
        "--distilled-finer-all",
        action="store_true",
        help="--distilled was run with tools.distil_int8 --finer-first K --finer-all: its simulation only",
    )
    parser.add_argument(
        "--clear-gap",
        type=float,
        default=0.3,
        help="also report top-1 agreement on the images whose Keras top-1 leads its top-2 by this much",
    )
    parser.add_argument(
        "--file",
        action="append",
        default=[],
        help="an int8 TFLite file of the entry (as zoo export writes it) to compare too; repeatable",
    )
    parser.add_argument(
        "--builtin-kernels",
        action="store_true",
        help="run each --file on TFLite's builtin int8 kernels too, without the XNNPACK delegate",
    )
    parser.add_argument(
        "--equalize",
        type=numbers(float, 0),
        default=[],
        help="comma-separated margins: also the model with ReLU6 channels equalized before depthwise "
        "convolutions, each channel scaled to reach 6 at margin x its calibration maximum",
    )
    parser.add_argument(
        "--streams",
        action="store_true",
        help="study the model with its linear streams' channels equalised first, as zoo export "
        "--equalize makes it (the same function in float; Keras' logits stay the original's)",
    )
    parser.add_argument(
        "--quantiles",
        type=numbers(float, 0, 0.5),
        default=[],
        help="comma-separated clip quantiles: also the int8 file as zoo export makes it with each "
        f"(the export's: {CLIP_QUANTILE:g})",
    )
    parser.add_argument(
        "--perturbations",
        action="store_true",
        help="also run Keras on its images with one grey level of noise, shifted a pixel, mirrored",
    )
    args = parser.parse_args()

    import numpy as np

    import zoo
    import zoo.data
    from zoo import api
    from zoo.export import CALIBRATION_IMAGES, in_top_k, rounded_weights
    from zoo.export._write import _image_contract, _write_savedmodel
    from zoo.export.image import _calibration_inputs, _data_parts
    from zoo.export.quantize import _int8_files, _tflite_bytes
    from zoo.tasks.inference import predict_fn

    entry = zoo.weights_entry(args.entry)
    model = api.load(entry.name)
    baked, shape = _image_contract(entry)
    parts = _data_parts(entry, args.data, None)
    calibration, source = _calibration_inputs(entry, shape, baked, True, parts, None, required=True)
    transform, forward = zoo.data.image_transform(baked), predict_fn(model, fold=False)
    batches, keras_inputs, keras_logits = [], [], []
    for images in compared_images(entry, args.data, args.split, args.images):
        batches.append(images)
        keras_inputs.append(np.asarray(transform(images)))
        keras_logits.append(np.asarray(forward(keras_inputs[-1])))
    want = np.concatenate(keras_logits)
    top2 = np.sort(want, axis=-1)[:, -2:]
    gap = top2[:, 1] - top2[:, 0]
    compared = "test images" if args.split == "test" else "train images distillation draws from"
    print(f"{entry.name} on the first {len(want)} {args.data} {compared}; calibration: {source}")
    print(
        "Keras top-1 vs top-2 logit gap: 5/10/25/50% quantiles "
        f"{np.quantile(gap, [0.05, 0.1, 0.25, 0.5]).round(3)}; under 0.1 for "
        f"{100 * np.mean(gap < 0.1):.1f}%, under 0.3 for {100 * np.mean(gap < 0.3):.1f}% of images"
    )

    def report(label: str, got, n: int) -> None:
        same = got.argmax(-1) == want[:n].argmax(-1)
        top5 = 100 * np.mean(in_top_k(got, want[:n].argmax(-1)))
        clear = gap[:n] >= args.clear_gap
        tied = 100 * np.mean((got == got.max(-1, keepdims=True)).sum(-1) > 1)  # argmax takes the first
        print(
            f"{label}: top-1 agreement {100 * np.mean(same):.2f}% of {n}, logit error std "
            f"{np.std(got - want[:n]):.3f}, Keras' top-1 in its top 5 on {top5:.2f}%, top-1 agreement "
            f"{100 * np.mean(same[clear]) if clear.any() else float('nan'):.2f}% on the "
            f"{100 * np.mean(clear):.1f}% with a Keras gap of at least {args.clear_gap}"
            + (f", top-1 tied on {tied:.2f}%" if tied else "")
        )

    whole = lambda label, got: report(label, got, len(want))  # noqa: E731
    seen = np.asarray(transform(np.asarray(calibration)))
    model = studied(model, seen, args.streams)
    studies = {
        "perturbations": lambda: perturbations(forward, transform, batches, whole),
        "weights_only": lambda: weight_rounding(model, keras_inputs, whole),
        "activations": lambda: activation_rounding(model, seen, keras_inputs, whole),
        "first_ranges": lambda: first_range(model, seen, args.first_ranges, keras_inputs, whole),
        "finer_first": lambda: finer_first(model, seen, args.finer_first, keras_inputs, whole),
        "sequential_finer": lambda: sequential_finer(model, seen, args.sequential_finer, keras_inputs, whole),
        "first_pieces": lambda: first_pieces(
            model, seen, calibration, args.first_pieces, (baked, shape), batches, whole
        ),
        "equalize": lambda: equalization(
            model, seen, args.equalize, keras_inputs, batches, (baked, shape, calibration), whole
        ),
    }
    for flag in (flag for flag in studies if getattr(args, flag)):
        studies[flag]()
    for path in args.file:
        given_file(path, entry.name, batches, whole, parser.error, args.builtin_kernels)
    with tempfile.TemporaryDirectory(prefix="zoo-int8-study-") as tmp:
        if args.simulation or args.distilled:
            images = (seen, calibration, keras_inputs, batches)
            simulation_study(args, entry, model, transform, (baked, shape), images, Path(tmp), whole)
        saved = Path(tmp) / "saved_model"
        _write_savedmodel(model, baked, shape, saved)
        minmax = converter(saved, calibration).convert()
        quantile = _tflite_bytes(saved, "int8", calibration)
        report("int8, TFLite min/max ranges", run_batches(minmax, batches), len(want))
        report("int8, quantile ranges, no bias correction", run_batches(quantile, batches), len(want))
        grid = output_grid(quantile)
        if grid:  # what the int8 logits' own rounding costs: Keras' logits on that grid
            scale, zero = grid
            rounded = (np.clip(np.round(want / scale) + zero, -128, 127) - zero) * scale
            report(f"Keras logits on that model's int8 output grid (step {scale:.4f})", rounded, len(want))
        corrected = Path(tmp) / "corrected"
        if args.weights_only or args.float_first or args.quantiles:  # one bias correction for all
            with rounded_weights(model, np.asarray(transform(np.asarray(calibration)))) as rounded:
                rounded.pop("corrected"), rounded.pop("compensated")
                count = sum(len(group) for group in rounded.values())
                label = f"{count} layers, biases corrected on {len(calibration)} calibration images"
                if args.weights_only:  # the model studied (--streams: the equalised copy)
                    studied_forward = predict_fn(model, fold=False)
                    got = np.concatenate([np.asarray(studied_forward(x)) for x in keras_inputs])
                    report(f"Keras with int8-rounded weights, {label}", got, len(want))
                _write_savedmodel(model, baked, shape, corrected)
        if args.float_first:
            first_in_float(
                corrected, calibration, batches, args.float_first, lambda a, b: report(a, b, len(want))
            )
        quantiles = args.quantiles
        chosen = ([CLIP_QUANTILE] if args.weights_only else []) + quantiles
        blobs = _int8_files(corrected, calibration, chosen) if chosen else []  # one calibration pass
        if args.weights_only:
            label = "int8 as zoo export makes it: quantile ranges, weights rounded and bias-corrected"
            report(label, run_batches(blobs.pop(0), batches), len(want))
        for q, blob in zip(quantiles, blobs, strict=True):
            label = f"int8 as zoo export makes it, activation ranges cut at the {q:g} quantiles"
            report(label, run_batches(blob, batches), len(want))
        if args.float_ops:
            float_ops(saved, calibration, args.float_ops, batches, whole)
        if args.int16:
            n = min(args.int16, len(want)) // 100
            start = time.perf_counter()
            got = run_batches(converter(saved, calibration, int16=True).convert(), batches[:n])
            seconds = (time.perf_counter() - start) / (100 * n)
            report(f"int16 activations, int8 weights ({seconds:.2f} s per image)", got, 100 * n)
        sample = np.concatenate(batches)[:64]
        for batch in (1, 64):
            a, b = latency_ms(minmax, sample, batch), latency_ms(quantile, sample, batch)
            print(f"batch {batch} latency: min/max ranges {a:.2f} ms, quantile ranges {b:.2f} ms")
    print(f"({CALIBRATION_IMAGES} calibration images)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
