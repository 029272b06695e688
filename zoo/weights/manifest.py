"""The weights manifest: one strictly validated record per weights entry.

The manifest is data written by tools (``tools/`` scripts call
:func:`write_manifest`); nothing edits it by hand. Records are keyed by
``"arch.tag"`` and the file is written with sorted keys for clean diffs.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from zoo.errors import ManifestError

SCHEMA_VERSION = 1
#: The installed ``zoo`` package folder (packaged weights live under it).
PACKAGE_DIR = Path(__file__).resolve().parents[1]
_HEX40 = re.compile(r"^[0-9a-f]{40}$")
_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_NAME = re.compile(r"^[a-z0-9_]+\.[a-z0-9_]+$")

FORMATS = ("keras.weights.h5", "keras", "safetensors", "tf-checkpoint", "config", "vocab", "npz")
SOURCE_TYPES = ("package", "hf", "python-package", "local")


def _check_keys(where: str, record: dict[str, Any], required: set[str], optional: set[str]) -> None:
    if not isinstance(record, dict):
        raise ManifestError(f"{where}: expected an object, got {type(record).__name__}")
    missing = required - record.keys()
    unknown = record.keys() - required - optional
    if missing:
        raise ManifestError(f"{where}: missing keys {sorted(missing)}")
    if unknown:
        raise ManifestError(f"{where}: unknown keys {sorted(unknown)}")


def _frozen(value: Any) -> Any:
    """Return a read-only deep copy of JSON data (dicts become mapping proxies, lists tuples)."""
    if isinstance(value, dict):
        return MappingProxyType({k: _frozen(v) for k, v in value.items()})
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _thawed(value: Any) -> Any:
    """Return plain JSON data from :func:`_frozen` data."""
    if isinstance(value, MappingProxyType | dict):
        return {k: _thawed(v) for k, v in value.items()}
    if isinstance(value, tuple | list):
        return [_thawed(v) for v in value]
    return value


@dataclass(frozen=True)
class WeightsFile:
    """One file of a weights entry.

    Attributes:
        filename: File name (relative to the source location).
        sha256: Lower-case hex sha256 of the whole file (may be ``None`` for ``"hub"``).
        size: Size in bytes (may be ``None`` for ``"hub"``).
        format: One of :data:`FORMATS`.
        sha256_source: ``"computed"`` when this project hashed the file itself;
            ``"hub"`` for third-party files whose hash could not be obtained here:
            a download is checked against the Hub's own metadata at the pinned
            revision (the LFS sha256, or the git blob sha1 of small files), and a
            cached copy against the content hash its cache blob is named after.
    """

    filename: str
    sha256: str | None
    size: int | None
    format: str
    sha256_source: str = "computed"

    @classmethod
    def from_dict(cls, where: str, d: dict[str, Any]) -> WeightsFile:
        """Validate a manifest ``files`` item; ``where`` names it in errors."""
        _check_keys(where, d, {"filename", "sha256", "size", "format"}, {"sha256_source"})
        src = d.get("sha256_source", "computed")
        if src not in ("computed", "hub"):
            raise ManifestError(f"{where}: sha256_source must be 'computed' or 'hub'")
        optional = src == "hub"
        if not (optional and d["sha256"] is None) and not _HEX64.match(str(d["sha256"])):
            raise ManifestError(f"{where}: sha256 must be 64 lower-case hex digits")
        if not (optional and d["size"] is None) and (not isinstance(d["size"], int) or d["size"] <= 0):
            raise ManifestError(f"{where}: size must be a positive integer")
        if d["format"] not in FORMATS:
            raise ManifestError(f"{where}: format must be one of {FORMATS}")
        if "/" in d["filename"] or d["filename"].startswith("."):
            raise ManifestError(f"{where}: filename must be a plain file name")
        return cls(d["filename"], d["sha256"], d["size"], d["format"], src)


@dataclass(frozen=True)
class WeightsSource:
    """Where the files of a weights entry can be found.

    Attributes:
        type: ``"package"`` (a folder inside the installed ``zoo`` package),
            ``"hf"`` (a Hugging Face Hub repo at a pinned revision),
            ``"python-package"`` (a folder inside another installed Python package) or
            ``"local"`` (a folder on disk, as in the card ``zoo finetune`` writes).
        path: Folder for ``package`` / ``python-package`` sources.
        repo_id: Hub repo for ``hf`` sources.
        revision: Full 40-hex commit for ``hf`` sources.
        subfolder: Optional folder inside the Hub repo.
        package: Import name of the other Python package.
        pip: The pip requirement that installs that package.
    """

    type: str
    path: str | None = None
    repo_id: str | None = None
    revision: str | None = None
    subfolder: str | None = None
    package: str | None = None
    pip: str | None = None

    @classmethod
    def from_dict(cls, where: str, d: dict[str, Any]) -> WeightsSource:
        """Validate a manifest ``sources`` item; ``where`` names it in errors."""
        kind = d.get("type") if isinstance(d, dict) else None
        if kind == "package":
            _check_keys(where, d, {"type", "path"}, set())
        elif kind == "hf":
            _check_keys(where, d, {"type", "repo_id", "revision"}, {"subfolder"})
            if not _HEX40.match(str(d["revision"])):
                raise ManifestError(f"{where}: revision must be a full 40-hex commit sha")
        elif kind == "python-package":
            _check_keys(where, d, {"type", "package", "path", "pip"}, set())
        elif kind == "local":
            _check_keys(where, d, {"type", "path"}, set())
        else:
            raise ManifestError(f"{where}: source type must be one of {SOURCE_TYPES}")
        return cls(**d)

    def describe(self) -> str:
        """Return a one-line human description of the source."""
        if self.type == "hf":
            sub = f"/{self.subfolder}" if self.subfolder else ""
            return f"hf://{self.repo_id}{sub}@{self.revision}"
        if self.type == "python-package":
            return f"python package {self.package} ({self.pip})"
        if self.type == "local":
            return f"local folder {self.path}"
        return f"packaged zoo/{self.path}"


@dataclass(frozen=True)
class Metric:
    """A metric this project measured, with the command that measured it.

    ``num_examples`` is how many examples it was measured on, where recorded (fine-tune
    cards record it: a small held-out fold makes a coarse figure).
    """

    name: str
    value: float
    split: str
    command: str
    dataset: str
    higher_is_better: bool
    num_examples: int | None = None

    @classmethod
    def from_dict(cls, where: str, d: dict[str, Any]) -> Metric:
        """Validate a manifest ``metrics`` item; ``where`` names it in errors."""
        required = {"name", "value", "split", "command", "dataset", "higher_is_better"}
        _check_keys(where, d, required, {"num_examples"})
        if not isinstance(d["value"], int | float):
            raise ManifestError(f"{where}: value must be a number")
        count = d.get("num_examples")
        if count is not None and (not isinstance(count, int) or isinstance(count, bool) or count <= 0):
            raise ManifestError(f"{where}: num_examples must be a positive integer, got {count!r}")
        return cls(**d)

    def to_dict(self) -> dict[str, Any]:
        """The record as JSON data, without ``num_examples`` when it is not recorded."""
        return {k: v for k, v in vars(self).items() if not (k == "num_examples" and v is None)}


@dataclass(frozen=True)
class Reference:
    """A published number to compare against, with its citation."""

    name: str
    value: float
    citation: str
    note: str = ""

    @classmethod
    def from_dict(cls, where: str, d: dict[str, Any]) -> Reference:
        """Validate a manifest ``references`` item; ``where`` names it in errors."""
        _check_keys(where, d, {"name", "value", "citation"}, {"note"})
        return cls(**d)


#: An entry's keys, in the order the manifest writes them.
RECORD_KEYS = (
    "architecture",
    "tag",
    "default",
    "description",
    "files",
    "sources",
    "converter",
    "builder_kwargs",
    "input_shape",
    "num_classes",
    "labels",
    "preprocessing",
    "dataset",
    "metrics",
    "references",
    "num_params",
    "license",
    "recipe",
    "golden",
    "library_versions",
    "notes",
)
_OPTIONAL = {"converter", "golden", "library_versions", "notes"}
_REQUIRED = set(RECORD_KEYS) - _OPTIONAL


@dataclass(frozen=True)
class WeightsEntry:
    """One weights entry of the manifest: everything needed to load and trust a set of weights.

    Attributes mirror the manifest keys; mappings and lists are read-only.
    """

    name: str
    architecture: str
    tag: str
    default: bool
    description: str
    files: tuple[WeightsFile, ...]
    sources: tuple[WeightsSource, ...]
    builder_kwargs: MappingProxyType
    input_shape: tuple[int | None, ...] | None
    num_classes: int | None
    labels: tuple[str, ...] | None
    preprocessing: MappingProxyType
    dataset: MappingProxyType
    metrics: tuple[Metric, ...]
    references: tuple[Reference, ...]
    num_params: int
    license: str
    recipe: MappingProxyType
    converter: str | None = None
    golden: MappingProxyType | None = None
    library_versions: MappingProxyType | None = None
    notes: str = ""

    @classmethod
    def from_dict(cls, name: str, d: dict[str, Any]) -> WeightsEntry:
        """Validate one manifest record and return it as a read-only entry."""
        where = f"manifest entry {name!r}"
        _check_keys(where, d, _REQUIRED, _OPTIONAL)
        if not _NAME.match(name) or name != f"{d['architecture']}.{d['tag']}":
            raise ManifestError(f"{where}: key must be '<architecture>.<tag>' in lower case")
        if not isinstance(d["default"], bool):
            raise ManifestError(f"{where}: default must be true or false")
        if not d["files"] or not d["sources"]:
            raise ManifestError(f"{where}: needs at least one file and one source")
        _check_keys(f"{where} dataset", d["dataset"], {"name", "split"}, {"notes", "columns", "kfold"})
        if "columns" in d["dataset"]:  # CSV/TSV/JSONL data read from other than its text/label columns
            _check_keys(f"{where} dataset columns", d["dataset"]["columns"], {"text", "label"}, set())
        kfold = d["dataset"].get("kfold", [2, 0])  # the fold held out of data without splits
        if not (isinstance(kfold, list) and len(kfold) == 2 and all(type(v) is int for v in kfold)):
            raise ManifestError(f"{where} dataset kfold: expected [k, i], got {kfold!r}")
        _check_keys(
            f"{where} recipe", d["recipe"], {"command"}, {"notes", "wall_time_s", "images_per_second"}
        )
        if d["labels"] is not None and d["num_classes"] != len(d["labels"]):
            raise ManifestError(f"{where}: labels must have num_classes entries")
        if "golden" in d:
            _check_keys(f"{where} golden", d["golden"], {"filename", "sha256", "size", "atol"}, set())
        entry = cls(
            name=name,
            architecture=d["architecture"],
            tag=d["tag"],
            default=d["default"],
            description=d["description"],
            files=tuple(WeightsFile.from_dict(f"{where} files[{i}]", f) for i, f in enumerate(d["files"])),
            sources=tuple(
                WeightsSource.from_dict(f"{where} sources[{i}]", s) for i, s in enumerate(d["sources"])
            ),
            builder_kwargs=_frozen(d["builder_kwargs"]),
            input_shape=None if d["input_shape"] is None else tuple(d["input_shape"]),
            num_classes=d["num_classes"],
            labels=None if d["labels"] is None else tuple(d["labels"]),
            preprocessing=_frozen(d["preprocessing"]),
            dataset=_frozen(d["dataset"]),
            metrics=tuple(Metric.from_dict(f"{where} metrics[{i}]", m) for i, m in enumerate(d["metrics"])),
            references=tuple(
                Reference.from_dict(f"{where} references[{i}]", r) for i, r in enumerate(d["references"])
            ),
            num_params=d["num_params"],
            license=d["license"],
            recipe=_frozen(d["recipe"]),
            converter=d.get("converter"),
            golden=_frozen(d["golden"]) if "golden" in d else None,
            library_versions=_frozen(d["library_versions"]) if "library_versions" in d else None,
            notes=d.get("notes", ""),
        )
        if entry.golden is not None and entry.package_source is None:
            raise ManifestError(f"{where}: a golden pair ships in the package; add a package source")
        return entry

    def to_dict(self) -> dict[str, Any]:
        """Return the record as plain JSON data (the inverse of :meth:`from_dict`)."""
        d: dict[str, Any] = {
            "architecture": self.architecture,
            "tag": self.tag,
            "default": self.default,
            "description": self.description,
            "files": [
                {k: v for k, v in vars(f).items() if not (k == "sha256_source" and v == "computed")}
                for f in self.files
            ],
            "sources": [{k: v for k, v in vars(s).items() if v is not None} for s in self.sources],
            "builder_kwargs": _thawed(self.builder_kwargs),
            "input_shape": None if self.input_shape is None else list(self.input_shape),
            "num_classes": self.num_classes,
            "labels": None if self.labels is None else list(self.labels),
            "preprocessing": _thawed(self.preprocessing),
            "dataset": _thawed(self.dataset),
            "metrics": [m.to_dict() for m in self.metrics],
            "references": [
                {k: v for k, v in vars(r).items() if not (k == "note" and not v)} for r in self.references
            ],
            "num_params": self.num_params,
            "license": self.license,
            "recipe": _thawed(self.recipe),
        }
        if self.converter is not None:
            d["converter"] = self.converter
        if self.golden is not None:
            d["golden"] = _thawed(self.golden)
        if self.library_versions is not None:
            d["library_versions"] = _thawed(self.library_versions)
        if self.notes:
            d["notes"] = self.notes
        return d

    def metric(self, name: str) -> Metric | None:
        """Return the measured metric called ``name``, if any."""
        return next((m for m in self.metrics if m.name == name), None)

    @property
    def package_source(self) -> WeightsSource | None:
        """The source whose files ship inside the zoo package, or None if the weights are fetched."""
        return next((s for s in self.sources if s.type == "package"), None)

    @property
    def total_size(self) -> int | None:
        """Total size in bytes of the entry's files, or None while a Hub file's size is not pinned yet."""
        if any(f.size is None for f in self.files):
            return None
        return sum(f.size for f in self.files)


def parse_manifest(data: dict[str, Any]) -> dict[str, WeightsEntry]:
    """Validate a whole manifest document and return its entries keyed by name.

    Raises:
        ManifestError: On unknown or missing keys, bad values, or two defaults for one architecture.
    """
    _check_keys("manifest", data, {"schema_version", "weights"}, set())
    if data["schema_version"] != SCHEMA_VERSION:
        raise ManifestError(
            f"manifest schema_version {data['schema_version']} is not {SCHEMA_VERSION}; "
            "upgrade zoo or regenerate the manifest with its tools"
        )
    entries = {name: WeightsEntry.from_dict(name, rec) for name, rec in data["weights"].items()}
    defaults: dict[str, str] = {}
    for entry in entries.values():
        if entry.default:
            if entry.architecture in defaults:
                raise ManifestError(
                    f"architecture {entry.architecture!r} has two default weights: "
                    f"{defaults[entry.architecture]!r} and {entry.name!r}"
                )
            defaults[entry.architecture] = entry.name
    return entries


def manifest_path() -> Path:
    """Return the path of the manifest: ``ZOO_MANIFEST`` if set, else the packaged copy."""
    override = os.environ.get("ZOO_MANIFEST")
    if override:
        return Path(override)
    return PACKAGE_DIR / "weights_manifest.json"


@lru_cache(maxsize=4)
def _load_cached(path: str, mtime_ns: int) -> dict[str, WeightsEntry]:
    try:
        with open(path, encoding="utf-8") as fh:
            data = json.load(fh)
    except FileNotFoundError as exc:
        raise ManifestError(f"weights manifest not found at {path}; reinstall zoo") from exc
    except json.JSONDecodeError as exc:
        raise ManifestError(f"weights manifest {path} is not valid JSON: {exc}") from exc
    return parse_manifest(data)


def load_manifest(path: str | os.PathLike[str] | None = None) -> dict[str, WeightsEntry]:
    """Return every weights entry of the manifest, keyed by ``"arch.tag"``."""
    p = Path(path) if path is not None else manifest_path()
    try:
        mtime = p.stat().st_mtime_ns
    except OSError:
        mtime = 0
    return _load_cached(str(p), mtime)


def dumps_manifest(entries: dict[str, WeightsEntry]) -> str:
    """Serialise entries as the canonical, sorted manifest text."""
    doc = {
        "schema_version": SCHEMA_VERSION,
        "weights": {name: entries[name].to_dict() for name in sorted(entries)},
    }
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def write_manifest(entries: dict[str, WeightsEntry], path: str | os.PathLike[str]) -> None:
    """Validate and atomically write the manifest (for tools; never edit it by hand)."""
    text = dumps_manifest(entries)
    parse_manifest(json.loads(text))
    path = Path(path).resolve()  # write through the packaged symlink, never replace it
    from zoo.fileio import atomic_path

    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    _load_cached.cache_clear()


def repo_manifest_path() -> Path:
    """Return the top-level ``weights_manifest.json`` of a source checkout (for tools)."""
    return PACKAGE_DIR.parent / "weights_manifest.json"


def file_record(path: str | os.PathLike[str], format: str) -> dict[str, Any]:
    """Return the manifest ``files`` item of a local file: name, sha256, size and format."""
    from zoo.fileio import sha256_file

    p = Path(path)
    return {"filename": p.name, "sha256": sha256_file(p), "size": p.stat().st_size, "format": format}


def library_versions() -> dict[str, str]:
    """Return the versions of the libraries that produce weights, for the manifest."""
    from importlib import metadata

    versions = {}
    for name, dist in (
        ("keras", "keras"),
        ("tensorflow", "tensorflow"),
        ("numpy", "numpy"),
        ("zoo", "keras-zoo"),
    ):
        try:
            versions[name] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            continue
    return versions


def upsert_entries(
    records: dict[str, dict[str, Any]], path: str | os.PathLike[str] | None = None
) -> dict[str, WeightsEntry]:
    """Add or replace manifest records and write the manifest (the tools' only way in).

    A record marked ``default`` clears the default flag of the architecture's other entries.

    Args:
        records: Records keyed by ``"arch.tag"``, in manifest form.
        path: Manifest to update; defaults to the checkout's top-level manifest.

    Returns:
        The full, validated set of entries that was written.
    """
    target = Path(path) if path is not None else repo_manifest_path()
    entries = dict(load_manifest(target)) if target.exists() else {}
    for name, record in records.items():
        entry = WeightsEntry.from_dict(name, record)
        if entry.default:
            for other in list(entries.values()):
                if other.architecture == entry.architecture and other.name != name and other.default:
                    entries[other.name] = WeightsEntry.from_dict(
                        other.name, {**other.to_dict(), "default": False}
                    )
        entries[name] = entry
    write_manifest(entries, target)
    return entries
