"""The one builder of weights-manifest records.

Every tool that writes the manifest (``tools/train.py``, ``tools/train_text.py``,
``tools/add_hub_entries.py``, ``tools/add_bert_entries.py``,
``tools/convert_efficientnet_lite0.py``) and the ``card.json`` of ``zoo finetune``
build their record with :func:`make_record`, so the record has one shape and one key
order, and a malformed record fails where it is made, with the manifest's own
:class:`~zoo.errors.ManifestError`.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from zoo.errors import ManifestError
from zoo.weights.manifest import _OPTIONAL, RECORD_KEYS, WeightsEntry, file_record  # the schema's keys


def _plain(value: Any) -> Any:
    """Return a plain JSON copy of ``value``: mappings become dicts, lists and tuples lists."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def golden_record(path: str | os.PathLike[str], *, atol: float) -> dict[str, Any]:
    """Return the manifest ``golden`` item of a golden input/output ``.npz`` file.

    Args:
        path: The golden file.
        atol: Absolute tolerance the packaged model must reproduce the outputs to.

    Returns:
        ``{"filename", "sha256", "size", "atol"}``, hashed from the file.
    """
    record = file_record(path, "npz")
    return {**{k: v for k, v in record.items() if k != "format"}, "atol": atol}


def make_record(
    *,
    architecture: str,
    tag: str,
    default: bool,
    description: str,
    files: Sequence[Mapping[str, Any]],
    sources: Sequence[Mapping[str, Any]],
    builder_kwargs: Mapping[str, Any],
    input_shape: Sequence[int | None] | None,
    num_classes: int | None,
    labels: Sequence[str] | None,
    preprocessing: Mapping[str, Any],
    dataset: Mapping[str, Any],
    metrics: Sequence[Mapping[str, Any]],
    references: Sequence[Mapping[str, Any]],
    num_params: int,
    license: str,
    recipe: Mapping[str, Any],
    converter: str | None = None,
    golden: Mapping[str, Any] | None = None,
    library_versions: Mapping[str, str] | None = None,
    notes: str | None = None,
) -> dict[str, Any]:
    """Build one weights-manifest record, validated against the manifest schema.

    The arguments are the record's keys. The four optional keys appear in the
    record only when given (not ``None``); an empty ``notes`` string is kept as
    given. Mappings and sequences are copied into plain dicts and lists, so the
    record shares nothing with its arguments and read-only entry fields
    (:class:`~zoo.weights.manifest.WeightsEntry`'s mapping proxies and tuples)
    can be passed as they are.

    Args:
        architecture: Registered architecture name.
        tag: Weights tag; the record's manifest key is ``"<architecture>.<tag>"``.
        default: Whether these are the architecture's default weights.
        description: One-line human description.
        files: ``files`` items (see :func:`zoo.weights.manifest.file_record`).
        sources: ``sources`` items, where the files can be found.
        builder_kwargs: Keyword arguments of the architecture's builder.
        input_shape: Model input shape without the batch axis, or ``None``.
        num_classes: Number of output classes, or ``None``.
        labels: Class names (``num_classes`` of them), or ``None``.
        preprocessing: The preprocessing spec.
        dataset: ``{"name", "split"}`` and optional ``"notes"`` and ``"columns"`` (``{"text", "label"}``: the
            columns of CSV/TSV/JSONL data, where not those).
        metrics: Metrics measured here, with the commands that measured them.
        references: Published numbers to compare against.
        num_params: Number of trainable parameters.
        license: License of the weights.
        recipe: ``{"command"}`` and optional ``"notes"``, ``"wall_time_s"``,
            ``"images_per_second"``.
        converter: Converter the files load through, if any.
        golden: Golden input/output file (see :func:`golden_record`), if any.
        library_versions: Versions of the libraries that produced the weights, if recorded.
        notes: Free-text notes, if any.

    Returns:
        The record, with its keys in the manifest's order.

    Raises:
        ManifestError: If the record does not pass
            :meth:`WeightsEntry.from_dict <zoo.weights.manifest.WeightsEntry.from_dict>`.
    """
    given = locals()
    record = {key: _plain(given[key]) for key in RECORD_KEYS if not (key in _OPTIONAL and given[key] is None)}
    name = f"{architecture}.{tag}"
    try:
        WeightsEntry.from_dict(name, record)
    except (TypeError, KeyError, AttributeError, ValueError) as exc:  # a value of the wrong type
        raise ManifestError(
            f"manifest entry {name!r}: malformed record ({type(exc).__name__}: {exc})"
        ) from exc
    return record
