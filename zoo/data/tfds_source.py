"""Any tensorflow-datasets dataset by name: ``"tfds:NAME[/CONFIG][:SPLIT]"``.

Parsing is pure Python; loading imports ``tensorflow_datasets`` lazily.
"""

from __future__ import annotations

import difflib
import os
import re
import shutil
import socket
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from zoo._lazy import quiet_logger
from zoo.errors import DataError, missing_dependency

__all__ = ["PREFIX", "TfdsRef", "is_tfds_string", "parse_tfds", "load_tfds", "tfds_info"]

PREFIX = "tfds:"

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_CONFIG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]*$")
_SPLIT_PART = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*(\[[^\[\]]*\])?$")
_VERSION = re.compile(r"^\d+\.\d+\.\d+$")
_FORMAT = "'tfds:NAME[/CONFIG][:SPLIT]', e.g. 'tfds:mnist', 'tfds:glue/sst2:validation'"


@dataclass(frozen=True)
class TfdsRef:
    """A parsed ``tfds:`` string.

    Attributes:
        name: The builder name, e.g. ``"glue"``.
        config: The builder config, e.g. ``"sst2"``, or ``None``.
        split: The split expression (tfds syntax, e.g. ``"train[:10%]"``), or ``None``.
    """

    name: str
    config: str | None = None
    split: str | None = None

    @property
    def builder_name(self) -> str:
        """``NAME`` or ``NAME/CONFIG`` as ``tfds.load`` takes it."""
        return f"{self.name}/{self.config}" if self.config else self.name

    def __str__(self) -> str:
        return PREFIX + self.builder_name + (f":{self.split}" if self.split else "")


def is_tfds_string(value: Any) -> bool:
    """Whether ``value`` is a string starting with ``tfds:`` (case and spaces forgiven)."""
    return isinstance(value, str) and value.strip().lower().startswith(PREFIX)


def parse_tfds(value: str) -> TfdsRef:
    """Parse ``"tfds:NAME[/CONFIG][:SPLIT]"``.

    The split is everything after the first ``:`` following the name, so tfds
    slicing such as ``"tfds:mnist:train[:10%]+test"`` works.

    Args:
        value: The string to parse.

    Returns:
        The parsed reference.

    Raises:
        DataError: If the string does not have that form.
    """
    if not is_tfds_string(value):
        raise DataError(f"{value!r} is not a tfds dataset string; expected {_FORMAT}")
    body = value.strip()[len(PREFIX) :].strip()
    if not body:
        raise DataError(f"{value!r} names no dataset; expected {_FORMAT}")
    name_part, sep, split = body.partition(":")
    name_part = name_part.strip()
    split = split.strip()
    if sep and not split:
        raise DataError(f"{value!r} has an empty split after ':'; expected {_FORMAT}")
    name, slash, config = name_part.partition("/")
    name, config = name.strip(), config.strip()
    if not _NAME.match(name):
        raise DataError(
            f"{value!r}: {name!r} is not a tensorflow-datasets name (lower-case letters, "
            f"digits and '_'); expected {_FORMAT}"
        )
    if slash and not _CONFIG.match(config):
        raise DataError(f"{value!r}: bad or empty config {config!r}; expected {_FORMAT}")
    if split:
        if _VERSION.match(split):
            raise DataError(
                f"{value!r}: {split!r} looks like a version; versions are not supported, "
                f"the part after ':' is the split; expected {_FORMAT}"
            )
        parts = [p.strip() for p in split.split("+")]
        if not all(_SPLIT_PART.match(p) for p in parts):
            raise DataError(
                f"{value!r}: {split!r} is not a tfds split expression such as 'train', "
                f"'test[:10%]' or 'train+validation'; expected {_FORMAT}"
            )
        split = "+".join(parts)
    return TfdsRef(name=name, config=config or None, split=split or None)


def _tfds() -> Any:
    try:
        import tensorflow_datasets as tfds
    except ImportError as err:
        raise missing_dependency(
            "this dataset is not in ZOO_DATA_DIR, and reading it from tensorflow-datasets",
            "tfds",
            ("tensorflow-datasets",),
        ) from err
    return tfds


def _check_known(ref: TfdsRef) -> Any:
    tfds = _tfds()
    known = tfds.list_builders()
    if ref.name not in known:
        close = difflib.get_close_matches(ref.name, known, n=3, cutoff=0.6)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        raise DataError(
            f"tensorflow-datasets has no dataset {ref.name!r}.{hint} "
            "See https://www.tensorflow.org/datasets/catalog/overview"
        )
    return tfds


def _builder(ref: TfdsRef, data_dir: str | None) -> Any:
    """The tfds builder of ``ref``, or ``None`` when tfds cannot make one (load_tfds then reports why)."""
    tfds = _tfds()
    try:
        with quiet_logger("absl"):  # tfds warns of every dataset it has not prepared
            return tfds.builder(ref.builder_name, data_dir=data_dir)
    except Exception:
        return None


#: Environment variables that send downloads through a proxy, which resolves the names itself.
PROXY_VARIABLES = ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY", "all_proxy")


def unresolvable(hosts: Iterable[str]) -> list[str]:
    """Those of ``hosts`` whose name this machine cannot resolve (no network, or no such host)."""
    missing = []
    for host in hosts:
        try:
            socket.getaddrinfo(host, 443)
        except (OSError, UnicodeError):
            missing.append(host)
    return missing


def _downloads_for_real(builder: Any) -> bool:
    """False under ``tfds.testing.mock_data``, whose ``download_and_prepare`` downloads nothing."""
    method = getattr(type(builder), "download_and_prepare", None)
    return getattr(method, "__module__", "").startswith("tensorflow_datasets.core")


def _check_download(ref: TfdsRef, data_dir: str | None, hint: str) -> None:
    """Before tfds downloads ``ref``: fail at once when no download host resolves, else say so.

    tfds retries an unreachable host for minutes; this fails in a second instead (not
    through a proxy, which resolves names itself). Then one :class:`DataWarning` says a
    download starts (``hint`` appended). Nothing happens for a dataset tfds has prepared.
    """
    from zoo.data.folders import DataWarning

    builder = _builder(ref, data_dir)
    if builder is None:
        return
    with quiet_logger("absl"):  # tfds warns of every dataset it has not prepared
        if builder.is_prepared() or not _downloads_for_real(builder):
            return
    hosts = sorted({host for url in (builder.url_infos or {}) if (host := urlsplit(url).hostname)})
    proxied = any(os.environ.get(v) for v in PROXY_VARIABLES)
    if hosts and not proxied and len(unresolvable(hosts)) == len(hosts):
        raise DataError(
            f"tensorflow-datasets would download {ref.builder_name!r} from {', '.join(hosts)}, "
            "which this machine cannot resolve (offline?); connect to the network, or prepare "
            "the dataset elsewhere with `tfds build` and copy it into TFDS_DATA_DIR"
        )
    doing = (
        f"downloading {ref.builder_name!r} from {', '.join(hosts)}"
        if hosts
        else f"preparing {ref.builder_name!r}"
    )
    warnings.warn(
        f"{doing} with tensorflow-datasets (Ctrl-C stops it){hint}",
        DataWarning,
        stacklevel=4,
    )


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}"


def load_tfds(
    ref: TfdsRef,
    split: str,
    *,
    as_supervised: bool = False,
    data_dir: str | None = None,
    download: bool = True,
    hint: str = "",
) -> tuple[Any, Any]:
    """Call ``tfds.load`` and turn its failures into :class:`DataError`.

    A download that cannot reach its hosts fails at once; one that starts is announced
    with a :class:`~zoo.data.folders.DataWarning`.

    Args:
        ref: The dataset reference.
        split: The split expression to load.
        as_supervised: Passed to ``tfds.load``.
        data_dir: tfds' own data directory (``None``: tfds' default / ``TFDS_DATA_DIR``).
        download: Whether tfds may download and prepare the dataset.
        hint: Appended to the download's warning (e.g. where a local copy would go).

    Returns:
        ``(dataset, tfds.core.DatasetInfo)``.
    """
    tfds = _check_known(ref)
    if download:
        _check_download(ref, data_dir, hint)
    created = _new_paths(ref, data_dir)
    try:
        return tfds.load(
            ref.builder_name,
            split=split,
            as_supervised=as_supervised,
            shuffle_files=False,
            with_info=True,
            data_dir=data_dir,
            download=download,
        )
    except BaseException as err:  # tfds raises many unrelated types: report them all alike
        _remove_new(created)
        if not isinstance(err, Exception):  # Ctrl-C: stop, with what tfds made removed
            raise
        raise DataError(
            f"tensorflow-datasets could not load {ref.builder_name!r} split {split!r} "
            f"({_first_line(err)}); check the split and config names, your network, or "
            "prepare it first with `tfds build`"
        ) from err


def _new_paths(ref: TfdsRef, data_dir: str | None) -> list[Path]:
    """The folders a download of ``ref`` would create that do not exist yet (outermost first)."""
    from tensorflow_datasets.core import constants

    root = Path(data_dir or constants.DATA_DIR).expanduser()
    if not root.exists():
        return [root]
    return [path for path in (root / ref.name, root / "downloads") if not path.exists()]


def _remove_new(paths: list[Path]) -> None:
    # A failed download leaves only what tfds made for it; nothing that was there before is touched.
    for path in paths:
        shutil.rmtree(path, ignore_errors=True)


def _spec_text(spec: Any) -> str:
    shape = tuple(spec.shape) if spec.shape is not None else None
    tf_dtype = getattr(spec, "tf_dtype", None)  # newer tfds deprecates (and logs) ``.dtype``
    dtype = tf_dtype if tf_dtype is not None else spec.dtype
    dtype = getattr(dtype, "name", str(dtype))
    return f"{dtype} {shape}"


def tfds_info(ref: TfdsRef, tfds_dataset_info: Any = None) -> dict[str, Any]:
    """Return the fields of a :class:`~zoo.data.DatasetInfo` (all but ``task``) for a tfds dataset.

    Args:
        ref: The dataset reference.
        tfds_dataset_info: A ``tfds.core.DatasetInfo`` already at hand (from
            ``tfds.load``); looked up with ``tfds.builder`` when ``None``.
    """
    if tfds_dataset_info is None:
        tfds = _check_known(ref)
        try:
            with quiet_logger("absl"):  # tfds warns of every dataset it has not prepared
                tfds_dataset_info = tfds.builder(ref.builder_name).info
        except Exception as err:
            raise DataError(
                f"tensorflow-datasets cannot describe {ref.builder_name!r} ({_first_line(err)})"
            ) from err
    info = tfds_dataset_info
    features: dict[str, str] = {}
    label_names: tuple[str, ...] = ()
    try:
        flat = info.features.get_tensor_info()
        if isinstance(flat, dict):
            features = {k: _spec_text(v) for k, v in flat.items()}
        if "label" in info.features and hasattr(info.features["label"], "names"):
            label_names = tuple(info.features["label"].names)
    except Exception:  # pragma: no cover - exotic feature structures
        pass
    supervised = info.supervised_keys
    if supervised is not None and not (len(supervised) == 2 and all(isinstance(k, str) for k in supervised)):
        supervised = None
    description = (info.description or "").strip()
    return {
        "name": PREFIX + ref.builder_name,
        "splits": {name: int(s.num_examples) for name, s in info.splits.items()},
        "label_names": label_names,
        "features": features,
        "supervised_keys": tuple(supervised) if supervised else None,
        "source": f"tensorflow-datasets {ref.builder_name}",
        "homepage": info.homepage or "",
        "notes": description.split("\n")[0] if description else "",
        "location": PREFIX + ref.builder_name,
    }
