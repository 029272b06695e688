"""Files, the one way: hashing, atomic writes, the zoo's cache folder and its JSON tables.

Every file the package writes goes through :func:`atomic_path` (a temporary
sibling, flushed to disk, renamed into place), and every sha256 comes from
:func:`sha256_file` or :func:`sha256_bytes`. Pure Python: nothing here imports
TensorFlow or Keras.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "TMP_TAG",
    "atomic_path",
    "cache_root",
    "git_blob_sha1",
    "read_json_table",
    "sha256_bytes",
    "sha256_file",
    "update_json_table",
    "write_json",
]

#: Prefix of every temporary file the zoo writes beside a target.
TMP_TAG = ".zoo-tmp-"
_CHUNK = 1 << 20


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Return the hex sha256 of a file, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_bytes(*parts: bytes | str) -> str:
    """Return the hex sha256 of the concatenated parts (strings are UTF-8 encoded)."""
    digest = hashlib.sha256()
    for part in parts:
        digest.update(part.encode("utf-8", "surrogateescape") if isinstance(part, str) else part)
    return digest.hexdigest()


def git_blob_sha1(path: str | os.PathLike[str]) -> str:
    """Return the git blob id (sha1 of ``"blob <size>\\0"`` + content) of a file."""
    size = os.path.getsize(path)
    digest = hashlib.sha1(f"blob {size}\0".encode())
    with open(path, "rb") as fh:
        while chunk := fh.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def cache_root() -> Path:
    """The zoo's own cache folder: ``ZOO_CACHE_DIR``, else ``$XDG_CACHE_HOME/zoo`` or ``~/.cache/zoo``."""
    root = os.environ.get("ZOO_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "zoo"
    )
    return Path(root)


def _fsync(path: Path) -> None:
    with open(path, "rb+") as fh:
        fh.flush()
        os.fsync(fh.fileno())


@contextlib.contextmanager
def atomic_path(
    target: str | os.PathLike[str],
    *,
    before_rename: Callable[[Path], None] | None = None,
    mode: int | None = None,
) -> Iterator[Path]:
    """Yield a new temporary path beside ``target``; after the block, rename it onto ``target``.

    The caller writes the temporary file (by any means: ``open``, ``np.savez``,
    ``model.save_weights``); it is flushed to disk and renamed into place, so a
    crash leaves the old file or the new one, never half of one. The temporary
    file never outlives the block.

    Args:
        target: The final path.
        before_rename: Called with the temporary path just before the rename; may refuse by raising.
        mode: File permissions; default the user's umask applied to 0o666 (not mkstemp's 0o600).

    Raises:
        OSError: When the file cannot be written or renamed.
        FileNotFoundError: When the block wrote nothing.
    """
    target = Path(target)
    fd, name = tempfile.mkstemp(dir=target.parent, prefix=TMP_TAG, suffix=f".{target.name}")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        if not tmp.exists():
            raise FileNotFoundError(f"nothing was written for {target}")
        _fsync(tmp)
        if before_rename is not None:
            before_rename(tmp)
        if mode is None:
            umask = os.umask(0)
            os.umask(umask)
            mode = 0o666 & ~umask
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    finally:
        if tmp.exists():
            tmp.unlink()


def write_json(path: str | os.PathLike[str], data: Any, *, indent: int | None = 2) -> None:
    """Write ``data`` as UTF-8 JSON to ``path`` atomically (sorted keys, trailing newline)."""
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=indent, sort_keys=True) + "\n", encoding="utf-8")


def read_json_table(path: Path) -> dict[str, Any]:
    """A JSON object kept by the zoo in its cache (``{}`` when missing or unreadable)."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def update_json_table(path: Path, update: Callable[[dict[str, Any]], None]) -> None:
    """Apply ``update(table)`` to a JSON object in the zoo's cache, under a lock, atomically.

    Raises:
        OSError: When the table cannot be written.
    """
    from filelock import FileLock

    path.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(path) + ".lock", timeout=30):
        table = read_json_table(path)
        update(table)
        write_json(path, table, indent=1)
