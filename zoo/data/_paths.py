"""Finding the data directory and verifying the files in it.

Pure Python: nothing here imports TensorFlow.
"""

from __future__ import annotations

import logging
import os
import threading
from pathlib import Path

from zoo.errors import DataError
from zoo.fileio import sha256_file

__all__ = ["DATA_DIR_ENV", "resolve_data_dir", "verify_file", "clear_checksum_cache"]

logger = logging.getLogger("zoo.data")

#: Environment variable naming the directory holding local copies of the named datasets.
DATA_DIR_ENV = "ZOO_DATA_DIR"

#: Name of the checksum file (``sha256sum`` format) looked up at the data directory root.
CHECKSUM_FILE = "SHA256SUMS"

_lock = threading.Lock()
# (resolved path, size, mtime_ns) -> verified sha256 hex digest.
_verified: dict[tuple[str, int, int], str] = {}
# resolved data dir -> {relative posix path: sha256} parsed from SHA256SUMS (None: no file).
_sums: dict[str, dict[str, str] | None] = {}


def resolve_data_dir(data_dir: str | os.PathLike[str] | None = None) -> Path | None:
    """Return the data directory to read local copies of named datasets from.

    Args:
        data_dir: An explicit directory; it overrides the ``ZOO_DATA_DIR``
            environment variable.

    Returns:
        The directory as an absolute path, or ``None`` when neither ``data_dir``
        nor ``ZOO_DATA_DIR`` is set.

    Raises:
        DataError: If the chosen directory does not exist.
    """
    origin = "data_dir"
    if data_dir is None:
        env = os.environ.get(DATA_DIR_ENV, "").strip()
        if not env:
            return None
        data_dir, origin = env, f"${DATA_DIR_ENV}"
    path = Path(data_dir).expanduser()
    if not path.is_dir():
        raise DataError(
            f"data directory {str(path)!r} (from {origin}) does not exist or is not a "
            f"directory; create it or point {origin} at the folder holding the datasets"
        )
    return path.resolve()


def _read_sums(data_dir: Path) -> dict[str, str] | None:
    key = str(data_dir)
    if key in _sums:
        return _sums[key]
    sums_path = data_dir / CHECKSUM_FILE
    table: dict[str, str] | None = None
    if sums_path.is_file():
        table = {}
        for lineno, line in enumerate(sums_path.read_text(encoding="utf-8").splitlines(), 1):
            line = line.strip()
            if not line or line.startswith("#"):
                continue
            parts = line.split(None, 1)
            if len(parts) != 2 or len(parts[0]) != 64:
                raise DataError(f"{sums_path}:{lineno} is not a 'SHA256  path' line; fix or remove the file")
            digest, name = parts
            name = name.lstrip("*").strip()
            table[Path(name).as_posix().removeprefix("./")] = digest.lower()
    _sums[key] = table
    return table


def _sha256(path: Path) -> str:
    return sha256_file(path)


def verify_file(data_dir: Path, relative: str) -> Path:
    """Check one dataset file against the data directory's ``SHA256SUMS``.

    The file is hashed once per process (the result is cached by path, size
    and modification time). Files not listed in ``SHA256SUMS``, or a data
    directory without that file, are accepted unverified (logged at INFO).

    Args:
        data_dir: The data directory root.
        relative: The file's path relative to ``data_dir`` (``/`` separated).

    Returns:
        The absolute path of the verified file.

    Raises:
        DataError: If the file is missing or its checksum does not match.
    """
    path = data_dir / relative
    if not path.is_file():
        raise DataError(f"dataset file {str(path)!r} is missing from the data directory")
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    with _lock:
        if key in _verified:
            return path
        table = _read_sums(data_dir)
        expected = None if table is None else table.get(relative)
        if expected is None:
            logger.info("no SHA256SUMS entry for %s: using it unverified", path)
            _verified[key] = ""
            return path
        actual = _sha256(path)
        if actual != expected:
            raise DataError(
                f"checksum mismatch for {str(path)!r}: sha256 {actual} but {CHECKSUM_FILE} "
                f"says {expected}; the file is corrupt or a different version: "
                "replace it with a good copy"
            )
        _verified[key] = actual
    return path


def clear_checksum_cache() -> None:
    """Forget which files were verified and every parsed ``SHA256SUMS`` (for tests)."""
    with _lock:
        _verified.clear()
        _sums.clear()
