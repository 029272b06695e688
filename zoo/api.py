"""The public Python API: ``load``, ``build``, ``list_models``, ``info``, ``pull`` and ``verify``.

This is the one loader path: build the model, resolve the weights files,
verify them, load them and adapt the model to the request. Nothing else in the
package opens weight files.
"""

from __future__ import annotations

import fnmatch
import inspect
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import zoo.models  # noqa: F401  (registers every builder)
from zoo import registry as _registry
from zoo.errors import (
    InputError,
    ManifestError,
    NoPretrainedWeightsError,
    UnknownModelError,
    WeightsFormatError,
)
from zoo.fileio import sha256_file
from zoo.weights.manifest import PACKAGE_DIR, WeightsEntry, WeightsFile, load_manifest
from zoo.weights.resolve import (
    check_file,
    find_local,
    pinned_sha256,
    private_verified_copies,
    resolve_files,
    verify_local_copy,
)

SAFE_WEIGHT_SUFFIXES = (".weights.h5", ".keras")
PICKLE_SUFFIXES = (".pt", ".pth", ".pkl", ".pickle", ".bin", ".ckpt", ".joblib", ".npy")


@dataclass(frozen=True)
class ModelInfo:
    """Read-only metadata of one architecture and all of its weights entries.

    Attributes:
        architecture: Canonical architecture name.
        display_name: Human-readable name.
        family: Family name.
        paper: Short citation.
        paper_url: Link to the paper.
        task: The model's task.
        description: One line on the variant.
        default_weights: ``"arch.tag"`` of the default weights, or ``None``.
        weights: Every weights entry of the architecture.
    """

    architecture: str
    display_name: str
    family: str
    paper: str
    paper_url: str
    task: str
    description: str
    default_weights: str | None
    weights: tuple[WeightsEntry, ...]

    def to_dict(self) -> dict[str, Any]:
        """Return the metadata as plain JSON data."""
        d = {k: v for k, v in vars(self).items() if k != "weights"}
        d["weights"] = {w.name: w.to_dict() for w in self.weights}
        return d


def _entries_for(arch: str) -> list[WeightsEntry]:
    return sorted(
        (e for e in load_manifest().values() if e.architecture == arch),
        key=lambda e: (not e.default, e.tag),
    )


def list_weights(name: str) -> list[str]:
    """Return the ``"arch.tag"`` names of every weights entry of an architecture, default first."""
    return [e.name for e in _entries_for(_registry.get_spec(name).name)]


def list_models(
    pattern: str | None = None, *, task: str | None = None, pretrained: bool | None = None
) -> list[str]:
    """List architectures, or weights names, matching an fnmatch pattern.

    Args:
        pattern: Wildcard such as ``"resnet*"`` or ``"*.mnist"`` (case-insensitive).
        task: Keep only models of this task (see ``zoo.registry.TASKS``).
        pretrained: ``None`` lists architectures; ``True`` lists weights names
            (``"arch.tag"``); ``False`` lists architectures without any weights.

    Returns:
        Sorted names.
    """
    if pattern is not None and not isinstance(pattern, str):
        raise InputError(f"pattern must be a wildcard string such as 'resnet*', got {pattern!r}")
    specs = _registry.list_architectures(task=task)
    pat = pattern.lower() if pattern else None
    entries = load_manifest()
    with_weights = {e.architecture for e in entries.values()}
    if pretrained:
        names = sorted(e.name for e in entries.values() if e.architecture in {s.name for s in specs})
    else:
        names = [s.name for s in specs if pretrained is None or s.name not in with_weights]
    if pat is None:
        return names
    families = {s.name: s.family for s in specs}
    return [
        n for n in names if fnmatch.fnmatch(n, pat) or fnmatch.fnmatch(families.get(n.split(".")[0], ""), pat)
    ]


def info(name: str) -> ModelInfo:
    """Return the read-only metadata of an architecture (a ``.tag`` part is ignored).

    For a fine-tuned model folder, the metadata of its architecture with the folder's own
    weights as the only entry.
    """
    folder = model_folder(name)
    if folder is not None:
        entry = folder_entry(folder)
        spec, entries = _registry.get_spec(entry.architecture), [entry]
    else:
        spec = _registry.get_spec(name)
        entries = _entries_for(spec.name)
    default = next((e.name for e in entries if e.default), None)
    return ModelInfo(
        architecture=spec.name,
        display_name=spec.display_name,
        family=spec.family,
        paper=spec.paper,
        paper_url=spec.paper_url,
        task=spec.task,
        description=spec.description,
        default_weights=default,
        weights=tuple(entries),
    )


#: The record a fine-tuned model folder carries (a manifest record with a ``local`` source).
CARD = _registry.MODEL_CARD
_MAX_CARD_BYTES = 1 << 20


def model_folder(name: str | os.PathLike[str]) -> Path | None:
    """The fine-tuned model folder ``name`` points at, or ``None`` for a zoo name.

    A folder is named by an explicit path (a ``Path``, or a string with a folder
    separator or a leading ``.`` or ``~``) to a folder holding ``card.json``, or to
    the ``model.keras`` inside one, or by ``hf://OWNER/NAME@REVISION`` for such a
    folder on the Hub (fetched at that revision). A bare word is always a zoo name.
    """
    if not isinstance(name, str | os.PathLike):
        raise TypeError(f"a model is named by a string ('lenet5') or a folder path, got {name!r}")
    text = os.fspath(name)
    if text.startswith(HUB_PREFIX):
        return _hub_folder(text)
    explicit = isinstance(name, os.PathLike) or "/" in text or os.sep in text or text.startswith((".", "~"))
    if not explicit:
        return None
    path = Path(text).expanduser()
    if path.name == "model.keras" and path.is_file():
        path = path.parent
    return path if (path / CARD).is_file() else None


#: Prefix of a model folder on the Hugging Face Hub: ``hf://OWNER/NAME@REVISION``.
HUB_PREFIX = "hf://"


def _hub_folder(reference: str) -> Path:
    """Fetch ``hf://OWNER/NAME@REVISION`` (a folder written by zoo finetune) into the Hub cache."""
    import re

    from zoo.weights.resolve import fetch_hub_folder

    match = re.fullmatch(r"hf://([\w.-]+/[\w.-]+)@([\w./-]+)", reference)
    if match is None:
        raise InputError(
            f"{reference!r} is not a Hub model reference; write hf://OWNER/NAME@REVISION "
            "(a 40-hex commit pins exactly what loads)"
        )
    return fetch_hub_folder(match.group(1), match.group(2))


def folder_entry(folder: str | os.PathLike[str]) -> WeightsEntry:
    """The weights entry of a fine-tuned model folder, read from its ``card.json``.

    The entry's name is the folder's absolute path, so it can be passed wherever a
    model name goes; its files are found in the folder and checked against the
    card's sha256 before anything is loaded.

    Raises:
        InputError: When the folder has no readable, valid card.
    """
    import dataclasses
    import json

    root = Path(folder).expanduser().resolve()
    card_path = root / CARD
    try:
        if card_path.stat().st_size > _MAX_CARD_BYTES:
            raise InputError(f"{card_path} is too large to be a zoo card")
        card = json.loads(card_path.read_text(encoding="utf-8"))
        card["sources"] = [{"type": "local", "path": str(root)}]  # where it is now, not where it was made
        entry = WeightsEntry.from_dict(f"{card['architecture']}.{card['tag']}", card)
    except (OSError, ValueError, KeyError, TypeError, ManifestError) as exc:
        raise InputError(
            f"{root} is not a readable zoo model folder ({exc}); give a folder written by zoo finetune"
        ) from exc
    _registry.get_spec(entry.architecture)  # an architecture this zoo knows
    return dataclasses.replace(entry, name=str(root))


def _check_folder_weights(folder: Path, weights: Any) -> None:
    """A model folder has its own weights: refuse any other choice (a tag, a file, ``None``)."""
    if weights != "default":
        raise InputError(f"{folder} is a model folder: it has its own weights, so drop weights={weights!r}")


def weights_entry(name: str, weights: str = "default") -> WeightsEntry:
    """Return the manifest entry that ``name`` (and an optional tag in ``weights``) selects.

    ``name`` may also be a fine-tuned model folder (see :func:`model_folder`).

    Raises:
        UnknownModelError: Unknown architecture or tag.
        NoPretrainedWeightsError: The architecture has no weights entry.
    """
    folder = model_folder(name)
    if folder is not None:
        _check_folder_weights(folder, weights)
        return folder_entry(folder)
    spec = _registry.get_spec(name)
    _, name_tag = _registry.split_name(name)
    tag = name_tag if weights == "default" else weights
    norm = _registry.normalize
    if name_tag and weights not in ("default", None) and norm(name_tag) != norm(weights):
        raise UnknownModelError(f"{name!r} names tag {name_tag!r} but weights={weights!r}; give one")
    entries = _entries_for(spec.name)
    if not entries:
        raise NoPretrainedWeightsError(
            f"{spec.name} has no pretrained weights yet; build it with zoo.load({spec.name!r}, "
            "weights=None) or train it (see tools/train.py)"
        )
    if tag is None or tag == "default":
        default = next((e for e in entries if e.default), None)
        if default is None:
            raise NoPretrainedWeightsError(
                f"{spec.name} has no default weights; choose one of {[e.name for e in entries]}"
            )
        return default
    for entry in entries:
        if _registry.normalize(entry.tag) == _registry.normalize(tag):
            return entry
    tags = [e.tag for e in entries]
    close = _registry.suggest(tag, tags)
    hint = f" Did you mean {', '.join(repr(c) for c in close)}?" if close else ""
    raise UnknownModelError(
        f"{spec.name} has no weights tagged {tag!r}.{hint} Available: {', '.join(tags)}", close
    )


def _build_deferred(spec: _registry.ModelSpec, kwargs: dict[str, Any]) -> Any:
    """Build a model whose weights are about to be overwritten, without running its initialisers.

    On JAX each initialiser is an XLA compilation (seconds per model) that loading then
    discards, so the variables start uninitialised (Keras' deferred initialisation) until
    :func:`_finish_deferred`. Other backends initialise eagerly and cheaply: a plain build.
    """
    import keras

    # Under a keras.distribution, a variable gets its layout only when initialised: build plainly.
    if keras.backend.backend() != "jax" or keras.distribution.distribution() is not None:
        return _call_builder(spec, kwargs)
    with keras.StatelessScope(initialize_variables=False):
        return _call_builder(spec, kwargs)


def _finish_deferred() -> None:
    """Initialise the deferred variables that loading did not set (a no-op off JAX)."""
    import keras

    if keras.backend.backend() != "jax":
        return
    # Keras keeps deferred variables in a global list and has no public call to finish it early.
    from keras.src.backend.common import global_state

    pending = global_state.get_global_attribute("uninitialized_variables") or []
    global_state.set_global_attribute("uninitialized_variables", [])
    for variable in pending:
        if variable._value is None:  # the weights did not set it: initialise as usual
            variable._deferred_initialize()


def _call_builder(spec: _registry.ModelSpec, kwargs: dict[str, Any]) -> Any:
    params = inspect.signature(spec.builder).parameters
    unknown = [k for k in kwargs if k not in params]
    if unknown:
        raise InputError(
            f"{spec.name} does not take {', '.join(map(repr, unknown))}; it takes {', '.join(params)}"
        )
    num_classes = kwargs.get("num_classes")
    if num_classes is not None and (
        isinstance(num_classes, bool) or not isinstance(num_classes, int) or not 1 <= num_classes <= 10**6
    ):
        raise InputError(f"num_classes must be a whole number from 1 to 1,000,000, got {num_classes!r}")
    shape = kwargs.get("input_shape")
    if shape is not None and (
        not isinstance(shape, tuple | list)
        or not shape
        or any(d is not None and (isinstance(d, bool) or not isinstance(d, int) or d < 1) for d in shape)
    ):
        raise InputError(f"input_shape must be a tuple of positive sizes like (32, 32, 3), got {shape!r}")
    if shape is not None and spec.task == "image-classification" and len(shape) != 3:
        raise InputError(
            f"{spec.name}'s input_shape is (height, width, channels), like (32, 32, 3); got {tuple(shape)!r}"
        )
    try:
        return spec.builder(**kwargs)
    except (ValueError, TypeError) as exc:  # the builder or Keras refused the arguments
        raise InputError(f"cannot build {spec.name} with {kwargs}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    """The line of a builder's or Keras' error that says what went wrong.

    Keras wraps a layer's refusal as "Exception encountered when calling X.call()", with the
    reason (in ANSI bold) on a later line; that reason is given, after the layer's class.
    """
    lines = [line.strip() for line in re.sub(r"\x1b\[[0-9;]*m", "", str(exc)).splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    wrapped = re.fullmatch(r"Exception encountered when calling (\w+)\.call\(\)\.", lines[0])
    return f"{wrapped.group(1)}: {lines[1]}" if wrapped and len(lines) > 1 else lines[0]


def build(name: str, **kwargs: Any) -> Any:
    """Build an architecture with random weights.

    Args:
        name: Architecture, family or alias name (a ``.tag`` part is ignored).
        **kwargs: Keyword arguments of the builder (``num_classes``, ``input_shape``...).

    Returns:
        A fresh ``keras.Model``.
    """
    return _call_builder(_registry.get_spec(name), kwargs)


def pull(name: str, weights: str = "default") -> dict[str, Path]:
    """Return verified local paths of a weights entry's files, downloading them if needed."""
    return resolve_files(weights_entry(name, weights))


def _entry_kwargs(spec: _registry.ModelSpec, entry: WeightsEntry) -> dict[str, Any]:
    params = inspect.signature(spec.builder).parameters
    kwargs = dict(entry.builder_kwargs)
    if "num_classes" in params and entry.num_classes is not None:
        kwargs.setdefault("num_classes", entry.num_classes)
    if "input_shape" in params and entry.input_shape is not None:
        kwargs.setdefault("input_shape", tuple(entry.input_shape))
    return kwargs


def _load_file(model: Any, path: Path) -> None:
    """Load a user's own weights file of a safe format into ``model``."""
    name = path.name.lower()
    if name.endswith(PICKLE_SUFFIXES):
        raise WeightsFormatError(
            f"{path.name}: refusing a pickle-based format, which can run code; "
            "convert it to .weights.h5 or safetensors first"
        )
    if not name.endswith(SAFE_WEIGHT_SUFFIXES):
        raise WeightsFormatError(
            f"{path.name}: unsupported weights file; use a Keras .weights.h5 or .keras file"
        )
    if not path.is_file():
        raise WeightsFormatError(f"weights file {path} does not exist")
    if name.endswith(".h5"):
        _check_h5_arrays(path, model)
    elif name.endswith(".keras"):
        check_keras_archive(path)
    try:
        model.load_weights(str(path))
    except Exception as exc:  # Keras raises ValueError, OSError or KeyError on bad files
        raise WeightsFormatError(
            f"{path.name} does not fit {model.name}: {str(exc).splitlines()[0]}"
        ) from exc
    import keras
    import numpy as np

    for variable in model.weights:
        value = keras.ops.convert_to_numpy(variable.value)
        if value.dtype.kind == "f" and not np.all(np.isfinite(value)):
            raise WeightsFormatError(
                f"{path.name}: {variable.path} holds NaN or infinite values; these weights are "
                "broken (a diverged training?): use another file"
            )


def _check_h5_arrays(path: Path, model: Any) -> None:
    """Refuse an HDF5 weights file holding integer arrays where the model has only float weights."""
    import h5py

    if any(getattr(v, "dtype", "float32").startswith(("int", "uint")) for v in model.weights):
        return  # the model keeps integer state: dtypes alone cannot tell
    found: list[str] = []

    def visit(name: str, item: Any) -> None:
        if isinstance(item, h5py.Dataset) and item.dtype.kind in "iub" and item.size > 1:
            found.append(name)

    try:
        with h5py.File(path, "r") as handle:
            handle.visititems(visit)
    except OSError as exc:
        raise WeightsFormatError(f"{path.name}: not a readable HDF5 weights file ({exc})") from exc
    if found:
        raise WeightsFormatError(
            f"{path.name}: {found[0]} holds integers, but every weight of {model.name} is a float; "
            "this is not a weights file of this model"
        )


def _load_entry(model: Any, entry: WeightsEntry, paths: dict[str, Path]) -> None:
    if entry.converter:
        from zoo.weights import converters

        converters.get(entry.converter)(model, paths, entry)
        return
    weights_files = [f for f in entry.files if f.format == "keras.weights.h5"]
    if len(weights_files) != 1:
        raise WeightsFormatError(f"{entry.name}: expected one .weights.h5 file or a converter")
    _load_file(model, paths[weights_files[0].filename])


#: Suffixes that make a ``weights`` string a file path rather than a tag.
WEIGHTS_SUFFIXES = (
    ".h5",
    ".keras",
    ".safetensors",
    ".npz",
    ".pth",
    ".pt",
    ".bin",
    ".pkl",
    ".pickle",
    ".ckpt",
)


def is_weights_path(weights: str | os.PathLike[str]) -> bool:
    """Whether ``weights`` names a file: a ``Path``, a string with a separator or a weights suffix.

    A bare word (``"default"``, ``"mnist"``) is always a tag, even when a file of that
    name exists in the working directory.
    """
    if isinstance(weights, os.PathLike):
        return True
    text = str(weights)
    return "/" in text or os.sep in text or text.lower().endswith(WEIGHTS_SUFFIXES)


def load(
    name: str,
    weights: str | os.PathLike[str] | None = "default",
    *,
    num_classes: int | None = None,
    include_top: bool | None = None,
    input_shape: tuple[int, ...] | None = None,
    **builder_kwargs: Any,
) -> Any:
    """Build a model and load verified pretrained weights into it.

    Args:
        name: ``"arch"``, ``"arch.tag"``, a family name (``"resnet"``) or an alias;
            case, ``-``, ``_`` and spaces do not matter.
        weights: ``"default"``, a tag (``"mnist"``), ``None`` for random
            initialisation, or a path to a local ``.weights.h5`` / ``.keras`` file.
            A bare word is always a tag; a path must be explicit: a ``Path``, a
            string with a folder separator, or a weights file suffix.
        num_classes: New number of classes; a different value from the weights'
            replaces the ``head`` layer and keeps every backbone weight.
        include_top: ``False`` drops the classifier and returns features; ``True``
            adds one. ``None`` (the default) keeps what the weights have (with
            ``weights=None``: the builder's default), or adds one when
            ``num_classes`` is given.
        input_shape: Input shape ``(H, W, C)``; a different channel count adapts the
            first layer's kernels.
        **builder_kwargs: Other builder arguments (``pooling="avg"``...).

    Returns:
        A ready ``keras.Model``.

    Raises:
        UnknownModelError: Unknown name or tag.
        NoPretrainedWeightsError: No weights for the architecture (use ``weights=None``).
        WeightsVerificationError: A file failed its sha256 or size check.
        OfflineError: Weights not cached and the Hub unreachable.
    """
    folder = model_folder(name)
    if folder is not None:
        return _load_folder(folder, weights, num_classes, include_top, input_shape, builder_kwargs)
    spec = _registry.get_spec(name)
    params = inspect.signature(spec.builder).parameters
    request = dict(builder_kwargs)
    if include_top is None and num_classes is not None:
        include_top = True  # asking for a number of classes asks for a classifier
    if include_top is not None and "include_top" in params:
        request["include_top"] = bool(include_top)
    elif include_top is False:
        raise InputError(f"{spec.name} has no classifier top to remove")
    for key, value in (("num_classes", num_classes), ("input_shape", input_shape)):
        if value is not None:
            request[key] = tuple(value) if key == "input_shape" else value

    local_file = weights is not None and is_weights_path(weights)
    if weights is None or local_file:
        model = _call_builder(spec, request)
        if local_file:
            _load_file(model, Path(weights))
        return model

    entry = weights_entry(name, str(weights))
    source_kwargs = _entry_kwargs(spec, entry)
    if "include_top" in params:  # the weights' own form: with a classifier when they have one
        source_kwargs["include_top"] = entry.num_classes is not None
    return _load_pretrained(spec, entry, source_kwargs, {**source_kwargs, **request})


def _load_pretrained(
    spec: _registry.ModelSpec,
    entry: WeightsEntry,
    source_kwargs: dict[str, Any],
    target_kwargs: dict[str, Any],
) -> Any:
    """Build the weights' own model, load the verified files, then adapt it to ``target_kwargs``."""
    paths = resolve_files(entry)
    try:
        source = _build_deferred(spec, source_kwargs)
        with tempfile.TemporaryDirectory(prefix="zoo-load-") as private:
            # load the bytes that were hashed, not a path another process could change meanwhile
            _load_entry(source, entry, private_verified_copies(entry, paths, Path(private)))
    finally:
        _finish_deferred()
    if target_kwargs == source_kwargs:
        return source

    from zoo.weights.adapt import transfer_weights

    try:
        target = _build_deferred(spec, target_kwargs)
        skip = ("head",) if target_kwargs.get("num_classes") != source_kwargs.get("num_classes") else ()
        transfer_weights(source, target, skip=skip)
    finally:
        _finish_deferred()
    return target


def _load_folder(
    folder: Path,
    weights: Any,
    num_classes: int | None,
    include_top: bool | None,
    input_shape: tuple[int, ...] | None,
    builder_kwargs: dict[str, Any],
) -> Any:
    """Load a fine-tuned model folder's ``model.keras`` after checking it against its card."""
    _check_folder_weights(folder, weights)
    entry = folder_entry(folder)
    asked = {"include_top": include_top is False, "input_shape": input_shape, **builder_kwargs}
    changes = [k for k, v in asked.items() if v not in (None, False)]
    if changes:
        raise InputError(
            f"{folder} loads as it was fine-tuned; {', '.join(changes)} cannot change it "
            "(num_classes can: it gives a fresh head)"
        )
    model_file = next((f for f in entry.files if f.format == "keras"), None)
    if model_file is None:
        raise InputError(f"{folder}: its card names no .keras model file")
    paths = resolve_files(entry)
    with tempfile.TemporaryDirectory(prefix="zoo-load-") as private:
        copies = private_verified_copies(entry, paths, Path(private))  # load the bytes that were hashed
        model = load_keras(copies[model_file.filename])
    if num_classes is None or num_classes == entry.num_classes:
        return model
    return _with_new_head(model, entry, num_classes)


def _with_new_head(model: Any, entry: WeightsEntry, num_classes: int) -> Any:
    """A fine-tuned folder's model with a fresh ``num_classes`` head in place of its ``head`` layer."""
    import keras

    head = next((layer for layer in model.layers if layer.name == "head"), None)
    if head is None or model.layers[-1] is not head or not isinstance(head, keras.layers.Dense):
        raise InputError(
            f"{entry.name} ends in no Dense 'head' layer to replace with a {num_classes}-class one"
        )
    fresh = keras.layers.Dense.from_config({**head.get_config(), "units": num_classes})
    return keras.Model(model.input, fresh(head.input), name=model.name)  # the same input structure


def load_keras(path: str | os.PathLike[str]) -> Any:
    """Load a whole ``.keras`` model file (e.g. from ``zoo finetune``) in Keras safe mode.

    Safe mode refuses Lambda layers and any other serialised code; the zoo's own
    custom layers are registered first so that zoo models load in a fresh process.
    """
    import keras

    from zoo.models._common import register_custom_objects

    p = Path(path)
    if not p.is_file() or not p.name.endswith(".keras"):
        raise WeightsFormatError(f"{p}: expected an existing .keras file")
    check_keras_archive(p)
    register_custom_objects()
    try:
        return keras.saving.load_model(str(p), safe_mode=True)
    except Exception as exc:  # Keras raises ValueError, TypeError or OSError on bad files
        raise WeightsFormatError(f"{p.name} could not be loaded safely: {str(exc).splitlines()[0]}") from exc


#: Limits checked before a ``.keras`` archive is inflated or its model built.
MAX_ARCHIVE_MEMBER_BYTES = 4 * 2**30
MAX_INFLATION_RATIO = 100
MAX_CONFIG_BYTES = 16 * 2**20
MAX_LAYER_SIZE = 2**20  # units, filters, embedding rows... of any one layer
_SIZE_KEYS = frozenset(
    {
        "units",
        "filters",
        "input_dim",
        "output_dim",
        "num_heads",
        "key_dim",
        "value_dim",
        "intermediate_size",
        "hidden_size",
        "vocab_size",
    }
)


def check_keras_archive(path: Path) -> None:
    """Refuse a ``.keras`` file that would inflate or build far beyond its size, before loading it.

    Raises:
        WeightsFormatError: For a file that is not a zip archive, a member that inflates past
            :data:`MAX_ARCHIVE_MEMBER_BYTES` or more than :data:`MAX_INFLATION_RATIO` times its
            compressed size, or a layer configured larger than :data:`MAX_LAYER_SIZE`.
    """
    import json
    import zipfile

    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
            for member in members:
                big = member.file_size > MAX_ARCHIVE_MEMBER_BYTES
                bomb = member.file_size > 64 * 2**20 and (
                    member.file_size > MAX_INFLATION_RATIO * max(member.compress_size, 1)
                )
                if big or bomb:
                    raise WeightsFormatError(
                        f"{path.name}: its member {member.filename} inflates to {member.file_size:,} "
                        f"bytes from {member.compress_size:,}; refusing to unpack it"
                    )
            config = next((m for m in members if m.filename == "config.json"), None)
            if config is None or config.file_size > MAX_CONFIG_BYTES:
                raise WeightsFormatError(f"{path.name}: no readable config.json; not a Keras model file")
            data = json.loads(archive.read(config))
    except (zipfile.BadZipFile, OSError, ValueError, UnicodeDecodeError) as exc:
        raise WeightsFormatError(f"{path.name}: not a readable .keras archive ({exc})") from exc

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key in _SIZE_KEYS and isinstance(value, int) and value > MAX_LAYER_SIZE:
                    raise WeightsFormatError(
                        f"{path.name}: {where or 'its config'} asks for {key}={value:,}, more than "
                        f"{MAX_LAYER_SIZE:,}; refusing to build it"
                    )
                walk(value, node.get("name", where) if isinstance(node.get("name"), str) else where)
        elif isinstance(node, list):
            for item in node:
                walk(item, where)

    walk(data, "")


@dataclass(frozen=True)
class VerifyResult:
    """The outcome of re-hashing one local file of a weights entry."""

    weights: str
    filename: str
    status: str  # "ok", "bad", "missing" or "skipped" (golden check asked, no golden pair recorded)
    path: str | None
    detail: str = ""


def read_golden(path: str | os.PathLike[str]) -> tuple[Any, Any]:
    """Read a golden ``.npz``: ``(inputs, outputs)``.

    The inputs are the array ``inputs``, or for models with named inputs (BERT's
    ``input_ids``, ``token_type_ids``, ``attention_mask``) a dict of every other array.
    """
    import numpy as np

    with np.load(path, allow_pickle=False) as data:
        outputs = data["outputs"]
        if "inputs" in data.files:
            return data["inputs"], outputs
        return {k: data[k] for k in data.files if k != "outputs"}, outputs


def _check_golden(entry: WeightsEntry) -> VerifyResult:
    """Load the entry and compare its outputs on the golden inputs with the recorded outputs."""
    import numpy as np

    golden = entry.golden
    path = PACKAGE_DIR / entry.package_source.path / golden["filename"]  # golden files ship packaged
    problem = check_file(path, WeightsFile(golden["filename"], golden["sha256"], golden["size"], "npz"))
    if problem:
        return VerifyResult(entry.name, golden["filename"], "bad", str(path), problem)
    from zoo.backend import compiled, to_numpy

    inputs, expected = read_golden(path)
    model = load(entry.name)
    out = np.asarray(to_numpy(compiled(lambda x: model(x, training=False))(inputs)))
    diff = float(np.max(np.abs(out - expected)))
    status = "ok" if diff <= golden["atol"] else "bad"
    return VerifyResult(
        entry.name,
        golden["filename"],
        status,
        str(path),
        f"golden outputs max |diff| {diff:.2e} (atol {golden['atol']:g})",
    )


def verify(
    names: str | os.PathLike[str] | list[str | os.PathLike[str]] | None = None, *, golden: bool = False
) -> list[VerifyResult]:
    """Re-hash packaged or cached files against the manifest, without downloading.

    Args:
        names: A weights or architecture name (or a fine-tuned model folder), or a list
            of them; ``None`` checks every entry.
        golden: Also load each entry that keeps a golden input/output pair and
            check that the model reproduces the recorded outputs (imports TensorFlow).

    Returns:
        One result per file; ``status`` is ``"ok"``, ``"bad"`` or ``"missing"``
        (not packaged here and not in the cache). With ``golden``, one more per entry:
        the golden check's, or ``"skipped"`` for an entry without a golden pair.
    """
    manifest = load_manifest()
    if isinstance(names, str | os.PathLike):
        names = [names]
    if names:
        entries = [weights_entry(n) for n in names]
    else:
        entries = [manifest[k] for k in sorted(manifest)]
    results = []
    for entry in entries:
        for file in entry.files:
            path = find_local(entry, file)
            if path is None:
                results.append(
                    VerifyResult(entry.name, file.filename, "missing", None, f"run 'zoo pull {entry.name}'")
                )
                continue
            problem = verify_local_copy(entry, file, path)
            detail = problem or ""
            if problem is None and file.sha256 is None:  # no hash from a source the project trusts
                pin = pinned_sha256(entry, file)
                if pin is not None and sha256_file(path) != pin:
                    problem = detail = f"differs from the sha256 pinned on first use ({pin[:12]}...)"
                else:
                    detail = "no published sha256: matches the Hub's hash" + (
                        " and the sha256 pinned on first use" if pin else "; pinned on first load"
                    )
            results.append(
                VerifyResult(entry.name, file.filename, "bad" if problem else "ok", str(path), detail)
            )
        files_ok = all(r.status == "ok" for r in results if r.weights == entry.name)
        if golden and entry.golden is None:
            results.append(
                VerifyResult(entry.name, "-", "skipped", None, "no golden input/output pair recorded")
            )
        elif golden and files_ok:
            results.append(_check_golden(entry))
    return results
