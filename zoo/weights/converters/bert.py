"""BERT checkpoints into the zoo's BERT builders: Google's TensorFlow format and Hugging Face's.

Two source formats, one target (:mod:`zoo.models.bert`, any size):

* Google's TensorFlow checkpoints (``bert_model.ckpt.index`` +
  ``bert_model.ckpt.data-00000-of-00001``), read with ``tf.train.load_checkpoint``
  (a TensorFlow checkpoint is protobuf + raw tensors, never pickle). Variables:
  ``bert/embeddings/word_embeddings``, ``bert/embeddings/LayerNorm/gamma``,
  ``bert/encoder/layer_N/attention/self/query/kernel``, ...,
  ``bert/pooler/dense/kernel``. Kernels are ``(in, out)``, as in Keras.
* Hugging Face ``BertModel`` safetensors (``model.safetensors``), read with
  ``safetensors.numpy``: ``embeddings.word_embeddings.weight``,
  ``encoder.layer.N.attention.self.query.weight``, ... with or without a
  ``bert.`` prefix. Linear weights are ``(out, in)`` and are transposed.

Conversion is strict. Every weight of the model is filled from exactly one
tensor with the shape checked; every tensor is used or belongs to a known part
that the zoo model does not have (the pre-training heads ``cls/...`` /
``cls.*``, the ``position_ids`` buffer, optimizer slots ``adam_m``/``adam_v``,
``global_step``); the sizes inferred from the tensors must agree with
``config.json`` and with the model (number of heads, activation, LayerNorm
epsilon included). Anything else raises :class:`~zoo.errors.WeightsFormatError`.

A classification head is read from Hugging Face's ``classifier.weight/bias``
(``BertForSequenceClassification``) or Google's ``output_weights/output_bias``
(``run_classifier.py``). Safetensors files are applied in the order the entry
lists them, later ones replacing or adding tensors: a packaged fine-tune can
ship only the tensors that differ from its base checkpoint. Such a delta file
names its base entry in its safetensors metadata (``{"zoo_base": "arch.tag"}``)
and the converter loads that entry's verified files first.

The functions below are pure (arrays in, arrays out) apart from the readers;
the registered converters ``bert_tf_checkpoint`` and ``bert_hf_safetensors``
tie them to the loader.
"""

from __future__ import annotations

import json
import math
import os
import re
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from zoo.errors import WeightsFormatError
from zoo.weights.converters import register_converter

#: Per encoder layer: (zoo layer suffix, path inside the layer in both formats, kind).
_LAYER_PARTS = (
    ("attention_self_query", ("attention", "self", "query"), "dense"),
    ("attention_self_key", ("attention", "self", "key"), "dense"),
    ("attention_self_value", ("attention", "self", "value"), "dense"),
    ("attention_output_dense", ("attention", "output", "dense"), "dense"),
    ("attention_output_LayerNorm", ("attention", "output", "LayerNorm"), "norm"),
    ("intermediate_dense", ("intermediate", "dense"), "dense"),
    ("output_dense", ("output", "dense"), "dense"),
    ("output_LayerNorm", ("output", "LayerNorm"), "norm"),
)
_EMBEDDINGS = (
    ("embeddings_word_embeddings", ("embeddings", "word_embeddings"), "embedding"),
    ("embeddings_position_embeddings", ("embeddings", "position_embeddings"), "embedding"),
    ("embeddings_token_type_embeddings", ("embeddings", "token_type_embeddings"), "embedding"),
    ("embeddings_LayerNorm", ("embeddings", "LayerNorm"), "norm"),
)
_POOLER = ("pooler_dense", ("pooler", "dense"), "dense")
HEAD = "head"

#: Tensors that belong to parts the zoo model does not have, by format.
TF_IGNORED = (
    r"^cls/",  # masked-LM and next-sentence pre-training heads
    r"(^|/)adam_[mv]$",  # Adam slots left in some checkpoints
    r"^global_step$",
    r"^_CHECKPOINTABLE_OBJECT_GRAPH$",
)
HF_IGNORED = (
    r"^cls\.",  # masked-LM and next-sentence pre-training heads
    r"^embeddings\.position_ids$",  # a buffer of arange(max_positions)
)

#: config.json keys (the same names in Google's bert_config.json and Hugging Face's).
CONFIG_SIZES = (
    "vocab_size",
    "hidden_size",
    "num_hidden_layers",
    "intermediate_size",
    "max_position_embeddings",
    "type_vocab_size",
)
_ACTIVATIONS = ("gelu",)  # exact (erf) GELU, as the zoo builds it


# --------------------------------------------------------------------------------------
# Readers
# --------------------------------------------------------------------------------------


def read_tf_checkpoint(prefix: str | os.PathLike[str]) -> dict[str, Any]:
    """Read every variable of a TensorFlow checkpoint into float32/int numpy arrays.

    Args:
        prefix: The checkpoint prefix (``.../bert_model.ckpt``), whose ``.index``
            and ``.data-*`` files lie beside each other.

    Raises:
        WeightsFormatError: When TensorFlow cannot read the checkpoint.
    """
    import numpy as np
    import tensorflow as tf

    try:
        reader = tf.train.load_checkpoint(str(prefix))
        names = sorted(reader.get_variable_to_shape_map())
        return {name: np.asarray(reader.get_tensor(name)) for name in names}
    except (tf.errors.OpError, ValueError) as exc:
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsFormatError(
            f"{Path(prefix).name}: not a readable TensorFlow checkpoint ({first})"
        ) from exc


def read_safetensors(path: str | os.PathLike[str]) -> tuple[dict[str, Any], dict[str, str]]:
    """Read a safetensors file: ``(tensors, metadata)``.

    Raises:
        WeightsFormatError: On a malformed file or a dtype numpy cannot hold (bfloat16).
    """
    from safetensors import safe_open

    tensors: dict[str, Any] = {}
    try:
        with safe_open(str(path), framework="np") as fh:
            metadata = dict(fh.metadata() or {})
            for name in fh.keys():
                tensors[name] = fh.get_tensor(name)
    except Exception as exc:  # safetensors raises SafetensorError, TypeError or OSError
        first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise WeightsFormatError(f"{Path(path).name}: not a readable safetensors file ({first})") from exc
    return tensors, metadata


def read_config(path: str | os.PathLike[str] | None) -> dict[str, Any] | None:
    """Read a BERT ``config.json`` (Google's or Hugging Face's); ``None`` passes through."""
    if path is None:
        return None
    try:
        config = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WeightsFormatError(f"{Path(path).name}: not a readable JSON config ({exc})") from exc
    if not isinstance(config, dict):
        raise WeightsFormatError(f"{Path(path).name}: a BERT config must be a JSON object")
    return config


# --------------------------------------------------------------------------------------
# Naming: zoo layer -> source tensor names
# --------------------------------------------------------------------------------------


def _parts(num_layers: int) -> list[tuple[str, tuple[str, ...], str]]:
    parts = list(_EMBEDDINGS)
    for i in range(num_layers):
        for suffix, path, kind in _LAYER_PARTS:
            parts.append((f"encoder_layer_{i}_{suffix}", ("encoder", f"layer_{i}", *path), kind))
    parts.append(_POOLER)
    return parts


def _tf_names(path: tuple[str, ...], kind: str) -> list[str]:
    base = "bert/" + "/".join(path)
    if kind == "embedding":
        return [base]
    if kind == "norm":
        return [f"{base}/gamma", f"{base}/beta"]
    return [f"{base}/kernel", f"{base}/bias"]


def _hf_names(path: tuple[str, ...], kind: str) -> list[str]:
    base = ".".join(p.replace("layer_", "layer.") for p in path)
    if kind == "embedding":
        return [f"{base}.weight"]
    return [f"{base}.weight", f"{base}.bias"]


def _count_layers(names: Iterable[str], pattern: str) -> int:
    found = {int(m.group(1)) for n in names if (m := re.match(pattern, n))}
    if found != set(range(len(found))):
        raise WeightsFormatError(f"encoder layers are not numbered 0..N-1: {sorted(found)}")
    return len(found)


def _unused_error(fmt: str, unused: list[str]) -> WeightsFormatError:
    shown = ", ".join(unused[:8]) + (f" and {len(unused) - 8} more" if len(unused) > 8 else "")
    return WeightsFormatError(f"{fmt} checkpoint has tensors the zoo BERT cannot place: {shown}")


def _take(tensors: Mapping[str, Any], name: str, fmt: str) -> Any:
    if name not in tensors:
        raise WeightsFormatError(f"{fmt} checkpoint lacks {name!r}")
    return tensors[name]


def convert_tf_checkpoint(tensors: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Map Google BERT checkpoint variables onto zoo layer weights.

    Args:
        tensors: Variable name -> array, as :func:`read_tf_checkpoint` returns.

    Returns:
        Zoo layer name -> its weights in Keras order (``[kernel, bias]``,
        ``[gamma, beta]`` or ``[embeddings]``), float32; ``"head"`` when the
        checkpoint holds a ``run_classifier.py`` classifier.

    Raises:
        WeightsFormatError: On a missing variable or one that is neither used nor ignorable.
    """
    import numpy as np

    num_layers = _count_layers(tensors, r"^bert/encoder/layer_(\d+)/")
    used: set[str] = set()
    layers: dict[str, list[Any]] = {}
    for layer, path, kind in _parts(num_layers):
        names = _tf_names(path, kind)
        layers[layer] = [np.asarray(_take(tensors, n, "TensorFlow"), np.float32) for n in names]
        used.update(names)
    if "output_weights" in tensors or "output_bias" in tensors:
        weights = np.asarray(_take(tensors, "output_weights", "TensorFlow"), np.float32)
        bias = np.asarray(_take(tensors, "output_bias", "TensorFlow"), np.float32)
        layers[HEAD] = [weights.T, bias]  # run_classifier.py stores (num_labels, hidden)
        used.update(("output_weights", "output_bias"))
    unused = sorted(n for n in tensors if n not in used and not any(re.search(p, n) for p in TF_IGNORED))
    if unused:
        raise _unused_error("TensorFlow", unused)
    return layers


def strip_hf_prefix(tensors: Mapping[str, Any]) -> dict[str, Any]:
    """Remove the ``bert.`` prefix of ``BertFor...`` checkpoints (heads keep their names)."""
    prefixed = [n for n in tensors if n.startswith("bert.")]
    if not prefixed:
        return dict(tensors)
    plain = [n for n in tensors if n.startswith(("embeddings.", "encoder.", "pooler."))]
    if plain:
        raise WeightsFormatError(
            f"checkpoint mixes 'bert.'-prefixed and unprefixed encoder tensors ({plain[0]!r})"
        )
    return {n.removeprefix("bert."): v for n, v in tensors.items()}


def convert_hf_state(tensors: Mapping[str, Any]) -> dict[str, list[Any]]:
    """Map Hugging Face ``BertModel`` tensors onto zoo layer weights.

    Args:
        tensors: Tensor name -> array (``bert.`` prefix allowed), e.g. from
            :func:`read_safetensors`. Legacy LayerNorm names ``gamma``/``beta``
            are accepted.

    Returns:
        Zoo layer name -> weights in Keras order, float32 (linear weights
        transposed to ``(in, out)``); ``"head"`` from ``classifier.*``.

    Raises:
        WeightsFormatError: On a missing tensor or one that is neither used nor ignorable.
    """
    import numpy as np

    state = strip_hf_prefix(tensors)
    for name in list(state):  # legacy names of old PyTorch BERT checkpoints
        if ".LayerNorm." in name and name.endswith((".gamma", ".beta")):
            new = (
                name.removesuffix(".gamma") + ".weight"
                if name.endswith(".gamma")
                else name.removesuffix(".beta") + ".bias"
            )
            if new in state:
                raise WeightsFormatError(f"checkpoint holds both {name!r} and {new!r}")
            state[new] = state.pop(name)
    num_layers = _count_layers(state, r"^encoder\.layer\.(\d+)\.")
    used: set[str] = set()
    layers: dict[str, list[Any]] = {}
    parts = _parts(num_layers)
    if "classifier.weight" in state or "classifier.bias" in state:
        parts.append((HEAD, ("classifier",), "dense"))
    for layer, path, kind in parts:
        names = _hf_names(path, kind)
        values = [np.asarray(_take(state, n, "Hugging Face"), np.float32) for n in names]
        if kind == "dense":
            if values[0].ndim != 2:
                raise WeightsFormatError(f"{names[0]} must be 2-D, got shape {values[0].shape}")
            values[0] = np.ascontiguousarray(values[0].T)
        layers[layer] = values
        used.update(names)
    unused = sorted(n for n in state if n not in used and not any(re.search(p, n) for p in HF_IGNORED))
    if unused:
        raise _unused_error("Hugging Face", unused)
    return layers


def to_hf_state(model: Any, layers: Iterable[str] | None = None) -> dict[str, Any]:
    """Export zoo BERT layers as Hugging Face tensors (the inverse of :func:`convert_hf_state`).

    Args:
        model: A zoo BERT model.
        layers: Zoo layer names to export (default: every weighted layer). The
            classifier ``head`` becomes ``classifier.weight``/``classifier.bias``.

    Returns:
        Tensor name -> float32 array, linear weights as ``(out, in)``.
    """
    import numpy as np

    num_layers = sum(1 for la in model.layers if re.fullmatch(r"encoder_layer_\d+_attention_self", la.name))
    parts = {layer: (path, kind) for layer, path, kind in _parts(num_layers)}
    parts[HEAD] = (("classifier",), "dense")
    wanted = list(layers) if layers is not None else [la.name for la in model.layers if la.weights]
    out: dict[str, Any] = {}
    for name in wanted:
        if name not in parts:
            raise WeightsFormatError(f"layer {name!r} has no Hugging Face BERT name")
        path, kind = parts[name]
        values = [np.asarray(v, np.float32) for v in model.get_layer(name).get_weights()]
        if kind == "dense":
            values[0] = np.ascontiguousarray(values[0].T)
        out.update(zip(_hf_names(path, kind), values, strict=True))
    return out


# --------------------------------------------------------------------------------------
# Sizes and assignment
# --------------------------------------------------------------------------------------


def infer_sizes(layers: Mapping[str, list[Any]]) -> dict[str, int]:
    """Return the ``config.json`` sizes implied by converted layer weights."""
    vocab, hidden = layers["embeddings_word_embeddings"][0].shape
    return {
        "vocab_size": int(vocab),
        "hidden_size": int(hidden),
        "num_hidden_layers": sum(1 for n in layers if n.endswith("_attention_self_query")),
        "intermediate_size": int(layers["encoder_layer_0_intermediate_dense"][0].shape[1])
        if "encoder_layer_0_intermediate_dense" in layers
        else 0,
        "max_position_embeddings": int(layers["embeddings_position_embeddings"][0].shape[0]),
        "type_vocab_size": int(layers["embeddings_token_type_embeddings"][0].shape[0]),
    }


def model_config(model: Any) -> dict[str, Any]:
    """Return the sizes, heads, activation and LayerNorm epsilon of a zoo BERT model."""
    attention = [la for la in model.layers if re.fullmatch(r"encoder_layer_\d+_attention_self", la.name)]
    word = model.get_layer("embeddings_word_embeddings")
    config: dict[str, Any] = {
        "vocab_size": int(word.input_dim),
        "hidden_size": int(word.output_dim),
        "num_hidden_layers": len(attention),
        "max_position_embeddings": int(model.get_layer("embeddings_position_embeddings").max_length),
        "type_vocab_size": int(model.get_layer("embeddings_token_type_embeddings").input_dim),
        "layer_norm_eps": float(model.get_layer("embeddings_LayerNorm").epsilon),
    }
    if attention:
        config["num_attention_heads"] = int(attention[0].num_heads)
        config["intermediate_size"] = int(model.get_layer("encoder_layer_0_intermediate_dense").units)
    return config


def check_config(config: Mapping[str, Any] | None, sizes: Mapping[str, int], model: Any) -> None:
    """Check a checkpoint's sizes against its ``config.json`` and the model built for it.

    Raises:
        WeightsFormatError: On any disagreement, or a config the zoo cannot build
            (activation other than exact GELU, another position embedding type).
    """
    built = model_config(model)
    problems = [f"{k}: checkpoint {v}, model {built[k]}" for k, v in sizes.items() if built.get(k) != v]
    if config is not None:
        for key in CONFIG_SIZES:
            if key in config and int(config[key]) != sizes[key]:
                problems.append(f"{key}: config.json {config[key]}, checkpoint {sizes[key]}")
        heads = config.get("num_attention_heads")
        if heads is not None and int(heads) != built.get("num_attention_heads"):
            problems.append(
                f"num_attention_heads: config.json {heads}, model {built.get('num_attention_heads')}"
            )
        act = config.get("hidden_act", "gelu")
        if act not in _ACTIVATIONS:
            problems.append(f"hidden_act {act!r}: the zoo BERT uses exact GELU ('gelu')")
        kind = config.get("position_embedding_type", "absolute")
        if kind != "absolute":
            problems.append(f"position_embedding_type {kind!r}: the zoo BERT has absolute positions")
        eps = config.get("layer_norm_eps")
        if eps is not None and not math.isclose(float(eps), built["layer_norm_eps"], rel_tol=1e-6):
            problems.append(f"layer_norm_eps: config.json {eps}, model {built['layer_norm_eps']}")
    if problems:
        raise WeightsFormatError("checkpoint does not fit " + model.name + ": " + "; ".join(problems))


def assign_weights(model: Any, layers: Mapping[str, list[Any]], *, fresh_head: bool = False) -> list[str]:
    """Fill every weighted layer of ``model`` from converted weights, checking shapes.

    Args:
        model: A zoo BERT model, with or without a classification top.
        layers: Zoo layer name -> weights, from a ``convert_*`` function.
        fresh_head: Allow the model's ``head`` to keep its initialisation when
            the checkpoint has no classifier (an encoder loaded with a new top).

    Returns:
        The names of the layers that were filled.

    Raises:
        WeightsFormatError: On a model layer without weights in the checkpoint,
            checkpoint weights without a layer, or a shape mismatch; nothing is
            assigned then.
    """
    model_layers = {la.name: la for la in model.layers if la.weights}
    missing = [n for n in model_layers if n not in layers and not (n == HEAD and fresh_head)]
    if missing:
        raise WeightsFormatError(f"checkpoint has no weights for {model.name} layers {missing[:6]}")
    extra = [n for n in layers if n not in model_layers and n != HEAD]
    if extra:
        raise WeightsFormatError(f"checkpoint has layers that {model.name} lacks: {extra[:6]}")
    plan = []
    for name, layer in model_layers.items():
        if name not in layers:
            continue
        want = [tuple(w.shape) for w in layer.weights]
        got = [tuple(v.shape) for v in layers[name]]
        if want != got:
            raise WeightsFormatError(f"layer {name!r}: checkpoint shapes {got}, {model.name} needs {want}")
        plan.append((layer, layers[name]))
    for layer, values in plan:
        layer.set_weights(values)
    return [layer.name for layer, _ in plan]


def load_tf_checkpoint(
    model: Any,
    prefix: str | os.PathLike[str],
    config: Mapping[str, Any] | None = None,
    *,
    fresh_head: bool = False,
) -> list[str]:
    """Read a Google BERT checkpoint and fill ``model`` with it (strict; see the module doc)."""
    layers = convert_tf_checkpoint(read_tf_checkpoint(prefix))
    check_config(config, infer_sizes(layers), model)
    return assign_weights(model, layers, fresh_head=fresh_head)


def load_hf_safetensors(
    model: Any,
    files: Iterable[str | os.PathLike[str]],
    config: Mapping[str, Any] | None = None,
    *,
    fresh_head: bool = False,
) -> list[str]:
    """Read Hugging Face safetensors files (later files override earlier ones) and fill ``model``."""
    tensors: dict[str, Any] = {}
    for path in files:
        part, _ = read_safetensors(path)
        tensors.update(strip_hf_prefix(part))
    layers = convert_hf_state(tensors)
    check_config(config, infer_sizes(layers), model)
    return assign_weights(model, layers, fresh_head=fresh_head)


# --------------------------------------------------------------------------------------
# Registered converters
# --------------------------------------------------------------------------------------


def _files(entry: Any, paths: Mapping[str, Path], fmt: str) -> list[Path]:
    return [paths[f.filename] for f in entry.files if f.format == fmt]


def _config(entry: Any, paths: Mapping[str, Path]) -> dict[str, Any] | None:
    configs = _files(entry, paths, "config")
    if len(configs) > 1:
        raise WeightsFormatError(f"{entry.name}: more than one config file")
    return read_config(configs[0]) if configs else None


def _fresh_head(entry: Any) -> bool:
    # Weights recorded without classes have no classifier: a top that the loader builds on them is new.
    return entry.num_classes is None


def _checkpoint_prefix(entry: Any, paths: Mapping[str, Path], stack: list[Any]) -> Path:
    files = _files(entry, paths, "tf-checkpoint")
    index = [p for p in files if p.name.endswith(".index")]
    if len(index) != 1:
        raise WeightsFormatError(f"{entry.name}: expected one .index file among its tf-checkpoint files")
    prefix = index[0].name.removesuffix(".index")
    data = [p for p in files if p.name.startswith(prefix + ".data-")]
    if not data:
        raise WeightsFormatError(f"{entry.name}: no {prefix}.data-* file beside {index[0].name}")
    if all(p.parent == index[0].parent for p in data):
        return index[0].parent / prefix
    # Files resolved to different folders: link them side by side, as TensorFlow needs.
    tmp = tempfile.TemporaryDirectory(prefix="zoo-ckpt-")
    stack.append(tmp)
    for p in [index[0], *data]:
        os.symlink(p.resolve(), Path(tmp.name) / p.name)
    return Path(tmp.name) / prefix


@register_converter("bert_tf_checkpoint")
def tf_checkpoint_converter(model: Any, paths: dict[str, Path], entry: Any) -> None:
    """Load a Google BERT TensorFlow checkpoint entry (``tf-checkpoint`` + optional ``config`` files)."""
    stack: list[Any] = []
    try:
        prefix = _checkpoint_prefix(entry, paths, stack)
        try:
            load_tf_checkpoint(model, prefix, _config(entry, paths), fresh_head=_fresh_head(entry))
        except WeightsFormatError as exc:
            raise WeightsFormatError(f"{entry.name}: {exc}") from exc
    finally:
        for tmp in stack:
            tmp.cleanup()


def _base_files(
    entry: Any, deltas: list[Path], own_folder: str | os.PathLike[str]
) -> tuple[list[Path], dict[str, Any] | None]:
    """Resolve the base entry that delta files name in their metadata: its safetensors and config.

    The base's files are copied (and hashed) into ``own_folder``, which the caller removes.
    """
    from zoo.weights.manifest import load_manifest
    from zoo.weights.resolve import private_verified_copies, resolve_files

    bases = {read_safetensors(p)[1].get("zoo_base") for p in deltas} - {None}
    if not bases:
        return [], None
    if len(bases) > 1:
        raise WeightsFormatError(f"{entry.name}: its files name different bases {sorted(bases)}")
    base_name = bases.pop()
    base = load_manifest().get(base_name)
    if base is None:
        raise WeightsFormatError(f"{entry.name}: its base {base_name!r} is not a manifest entry")
    if base.name == entry.name:
        raise WeightsFormatError(f"{entry.name}: names itself as its base")
    folder = Path(own_folder) / "base"  # beside the caller's private copies, removed with them
    base_paths = private_verified_copies(base, resolve_files(base), folder)  # load what was hashed
    return _files(base, base_paths, "safetensors"), _config(base, base_paths)


@register_converter("bert_hf_safetensors")
def hf_safetensors_converter(model: Any, paths: dict[str, Path], entry: Any) -> None:
    """Load a Hugging Face BERT entry: safetensors files in manifest order, optional config.

    When a file names a base entry (``zoo_base`` metadata), that entry's
    verified safetensors come first and the entry's own files override them.
    """
    own = _files(entry, paths, "safetensors")
    if not own:
        raise WeightsFormatError(f"{entry.name}: no safetensors file")
    import tempfile

    with tempfile.TemporaryDirectory(prefix="zoo-load-base-") as private:
        base_files, base_config = _base_files(entry, own, private)
        config = _config(entry, paths) or base_config
        try:
            load_hf_safetensors(model, [*base_files, *own], config, fresh_head=_fresh_head(entry))
        except WeightsFormatError as exc:
            raise WeightsFormatError(f"{entry.name}: {exc}") from exc
