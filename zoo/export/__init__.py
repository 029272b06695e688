"""Export zoo models for deployment: SavedModel, TFLite (float32, float16, int8) and ONNX.

Image classifiers: the input transform of the weights entry is baked in by default,
so exported models take raw ``uint8`` images ``(N, H, W, C)``.

Text classifiers (word-level LSTMs and BERT-family models, packaged or fine-tuned
folders) export to SavedModel and ONNX and take int32 token ids ``(batch, seq_len)``:
``input_ids`` (LSTM), or ``input_ids``, ``token_type_ids`` and ``attention_mask``
(BERT). The entry's vocabulary goes beside the model (``vocab.txt`` inside a
SavedModel folder, ``X.vocab.txt`` beside ``X.onnx``) with the input contract
(``zoo_export.json`` in the folder, ``metadata_props`` in the ONNX model), so a
runtime can tokenise texts the way the model was trained.

Generative models (the VAE and the DCGAN) export as samplers: the VAE's decoder and
the DCGAN's generator take float32 latent vectors ``(N, latent_dim)`` (draw them from
a standard normal) and return images ``(N, H, W, C)`` with pixels in ``[0, 1]`` (the
VAE: Bernoulli means; the DCGAN: its ``tanh`` output rescaled), to every format.

The character language model exports as one step with its state: ``ids`` (int32,
``(N,)``, the current characters) and ``state_<layer>_<k>`` (float32, zeros to start)
in; ``logits`` over the next character and ``next_state_<layer>_<k>`` out. The
vocabulary is in the export's record; sampling is the caller's.

Before an export is reported as done, its outputs are compared with the Keras
model's on sample inputs (for text: built-in English sentences of different lengths,
tokenised with the entry's own tokenizer); nothing is written when they differ.

The package, bottom to top: ``_common`` (types, constants), ``runtimes`` (running exports),
``rounding`` (kernels rounded with error compensation), ``quantize`` (TFLite conversion, int8
post-training quantisation), ``simulation`` (int8 as Keras computes it), ``equalize`` (the
channels of linear streams brought to one range), ``pieces`` (the first activation held in
pieces), ``sequential`` (kernels rounded layer after layer on the int8 model's inputs),
``distil`` (quantisation-aware distillation), ``_write`` (contracts, files, records, checks),
``image``, ``text`` and ``generative`` (one exporter per kind of
model), ``api`` (:func:`export`) and ``forward`` (ONNX Runtime behind ``--runtime``).
"""

from __future__ import annotations

from zoo.export._common import (
    CALIBRATION_IMAGES,
    CLIP_QUANTILE,
    FORMATS,
    MAX_CALIBRATION_IMAGES,
    QAT_BATCH,
    QAT_IMAGES,
    QAT_LEARNING_RATE,
    QUANTIZE,
    ROUNDINGS,
    TEXT_FORMATS,
    TEXT_SAMPLES,
    TEXT_TOLERANCE,
    TOLERANCE,
    ExportError,
    ExportResult,
    Ranges,
)
from zoo.export.api import export
from zoo.export.distil import (
    QAT_CHECKPOINT_EVERY,
    ResizedImages,
    distil_int8,
    distillation_inputs,
    distillation_start,
)
from zoo.export.equalize import equalized, linear_streams
from zoo.export.forward import ONNX_FORWARD_VERSION, onnx_forward
from zoo.export.generative import SAMPLER_CHECKS
from zoo.export.pieces import MAX_PIECES, depthwise_in_pieces, expansion_in_pieces, first_in_pieces
from zoo.export.quantize import bias_corrected, bias_corrections, int8_weights, rounded_weights
from zoo.export.runtimes import (
    compile_openvino,
    in_top_k,
    onnx_record,
    openvino_record,
    run_export,
    run_onnx,
    run_openvino,
    run_tflite,
    tflite_interpreter,
    tflite_record,
)
from zoo.export.sequential import sequentially_rounded
from zoo.export.simulation import (
    FIXED_RANGES,
    FUSED_ACTIVATIONS,
    int8_ranges,
    int8_simulation,
    quantized_outputs,
    split_activations,
)

__all__ = [
    "CALIBRATION_IMAGES",
    "MAX_CALIBRATION_IMAGES",
    "CLIP_QUANTILE",
    "ExportError",
    "ExportResult",
    "FIXED_RANGES",
    "FORMATS",
    "FUSED_ACTIVATIONS",
    "MAX_PIECES",
    "ONNX_FORWARD_VERSION",
    "QAT_BATCH",
    "QAT_CHECKPOINT_EVERY",
    "QAT_IMAGES",
    "QAT_LEARNING_RATE",
    "QUANTIZE",
    "ROUNDINGS",
    "Ranges",
    "ResizedImages",
    "SAMPLER_CHECKS",
    "TEXT_FORMATS",
    "TEXT_SAMPLES",
    "TEXT_TOLERANCE",
    "TOLERANCE",
    "bias_corrected",
    "bias_corrections",
    "compile_openvino",
    "distil_int8",
    "distillation_inputs",
    "distillation_start",
    "equalized",
    "export",
    "depthwise_in_pieces",
    "expansion_in_pieces",
    "first_in_pieces",
    "in_top_k",
    "int8_ranges",
    "int8_simulation",
    "int8_weights",
    "linear_streams",
    "onnx_forward",
    "onnx_record",
    "openvino_record",
    "quantized_outputs",
    "rounded_weights",
    "sequentially_rounded",
    "run_export",
    "run_onnx",
    "run_openvino",
    "run_tflite",
    "split_activations",
    "tflite_interpreter",
    "tflite_record",
]
