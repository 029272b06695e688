"""Owned outputs: the one place that decides what a command may write, replace or delete.

The rules every command and API that writes files follows:

1. A command writes only to paths it creates: a new file, or a new (or empty)
   folder, which then carries the zoo's marker file ``.zoo-output.json`` naming
   the command and its inputs and listing each file it wrote with its sha256.
2. It never deletes or replaces a file it did not write. An existing file is
   replaced only with ``overwrite=True``, and only when the zoo wrote it and it
   is unchanged since (the sha256 recorded when it was written, in a ledger in the
   zoo's cache for single files, in the marker for folders). A folder that holds
   anything else is refused.
3. Every file is written to a temporary sibling and renamed into place, so a
   crash leaves either the old file or the new one, never half of one.
4. One command at a time per output: a lock (in the zoo's cache, never beside
   the user's files) is held while writing; a second command fails at once.

Pure Python: nothing here imports TensorFlow or Keras.
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from zoo.errors import InputError
from zoo.fileio import TMP_TAG as _TMP_TAG
from zoo.fileio import (
    atomic_path,
    cache_root,
    read_json_table,
    sha256_file,
    update_json_table,
    write_json,
)

__all__ = [
    "MARKER",
    "OutputError",
    "OutputLockedError",
    "OwnedFolder",
    "check_file_target",
    "check_folder_target",
    "output_file",
    "output_folder",
    "replace_folder",
]

#: Name of the marker file inside every folder the zoo creates as an output.
MARKER = ".zoo-output.json"


class OutputError(InputError):
    """An output path the zoo refuses: writing there would replace or delete files it did not write."""


class OutputLockedError(OutputError):
    """Another zoo command is writing the same output right now."""


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def _absolute(path: str | os.PathLike[str]) -> Path:
    text = os.fspath(path)
    if not text.strip():
        raise OutputError("the output path is empty: give a file or folder name")
    return Path(os.path.abspath(os.path.expanduser(text)))


def _io_error(path: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or str(exc)
    return OutputError(f"cannot write {path}: {reason}; choose a writable path with free space")


@contextlib.contextmanager
def _temporary_sibling(
    target: Path, *, before_rename: Any, digests: list[str] | None = None
) -> Iterator[Path]:
    """Yield a new temporary file beside ``target``; after the block, rename it onto ``target``.

    ``before_rename()`` may refuse by raising; ``digests`` receives the sha256 of what was
    renamed. The temporary file never outlives the block.
    """

    def check(tmp: Path) -> None:
        before_rename()
        if digests is not None:
            digests.append(sha256_file(tmp))

    try:
        with atomic_path(target, before_rename=check) as tmp:
            yield tmp
    except FileNotFoundError as exc:
        raise OutputError(f"nothing was written for {target}") from exc
    except OSError as exc:
        raise _io_error(target, exc) from exc


# --------------------------------------------------------------------------------------
# Locks
# --------------------------------------------------------------------------------------


@contextlib.contextmanager
def _lock(target: Path) -> Iterator[None]:
    """Hold the zoo's lock on ``target`` (a file in the zoo cache, keyed by the path)."""
    from filelock import FileLock, Timeout

    folder = cache_root() / "locks"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # an unwritable cache: lock in the system's temporary folder instead
        folder = Path(tempfile.gettempdir()) / f"zoo-locks-{os.getuid() if hasattr(os, 'getuid') else 0}"
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise OutputError(
                f"cannot create a lock folder for {target} ({exc.strerror or exc}); set ZOO_CACHE_DIR "
                "to a writable folder"
            ) from exc
    key = hashlib.sha1(str(target).encode("utf-8", "surrogateescape")).hexdigest()
    lock = FileLock(str(folder / f"{key}.lock"), timeout=0)
    try:
        lock.acquire()
    except Timeout as exc:
        raise OutputLockedError(
            f"{target} is being written by another zoo command; wait for it to finish or "
            "choose another output path"
        ) from exc
    try:
        yield
    finally:
        lock.release()


# --------------------------------------------------------------------------------------
# Single files: a ledger of what the zoo wrote
# --------------------------------------------------------------------------------------


def _ledger_path() -> Path:
    return cache_root() / "outputs.json"


def _record_file(path: Path, command: str) -> None:
    """Remember that the zoo wrote ``path`` with its current bytes (best effort)."""
    record = {"sha256": sha256_file(path), "command": command, "written": _now()}
    try:
        update_json_table(_ledger_path(), lambda table: table.__setitem__(str(path), record))
    except OSError:
        pass  # without a ledger the file is simply never replaced, which is safe


def _wrote_file(path: Path) -> bool:
    """Whether the zoo wrote ``path`` and its bytes are unchanged since."""
    record = read_json_table(_ledger_path()).get(str(path))
    if not isinstance(record, dict) or not path.is_file() or path.is_symlink():
        return False
    try:
        return sha256_file(path) == record.get("sha256")
    except OSError:
        return False


def _check_file_target(path: Path, overwrite: bool, option: str) -> None:
    if path.is_dir():
        raise OutputError(
            f"{path} is a folder; give a file name for the output, for example {path / 'out'}"
            f"{'' if path.suffix else '.<ext>'}"
        )
    if not (path.exists() or path.is_symlink()):
        return
    if not overwrite:
        raise OutputError(
            f"{path} already exists; choose another path, or pass {option} to replace a file that zoo wrote"
        )
    if path.is_symlink() or not _wrote_file(path):
        raise OutputError(
            f"{path} was not written by zoo (or was changed since): {option} only replaces zoo's own "
            "outputs; choose another path"
        )


@contextlib.contextmanager
def output_file(
    path: str | os.PathLike[str],
    *,
    overwrite: bool = False,
    command: str = "zoo",
    option: str = "--overwrite",
) -> Iterator[Path]:
    """Write one output file safely: yield a temporary sibling path, then rename it into place.

    The temporary name ends with the target's own name, so writers that insist on a
    suffix (``.keras``, ``.npz``) accept it. The parent folder must exist.

    Args:
        path: The file to write.
        overwrite: Replace an existing file, but only one the zoo wrote and nobody changed.
        command: The command writing it (recorded in the ledger).
        option: How the caller spells ``overwrite`` in messages.

    Yields:
        The temporary path to write to.

    Raises:
        OutputError: If the target exists and may not be replaced, is a folder, or
            cannot be written.
        OutputLockedError: If another zoo command is writing the same path.
    """
    target = check_file_target(path, overwrite, option)
    with _lock(target):
        existed = target.exists()

        def still_new() -> None:
            if not existed and target.exists():
                raise OutputError(f"{target} appeared while zoo was writing it; nothing was replaced")

        with _temporary_sibling(target, before_rename=still_new) as tmp:
            yield tmp
        _record_file(target, command)


# --------------------------------------------------------------------------------------
# Folders: a marker listing what the zoo wrote in them
# --------------------------------------------------------------------------------------


def _read_marker(folder: Path) -> dict[str, Any] | None:
    path = folder / MARKER
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("zoo_output") != 1 or not isinstance(data.get("files"), dict):
        return None
    return data


def _tree_is_owned(folder: Path, marker: dict[str, Any]) -> bool:
    """Whether every file under ``folder`` is the marker, a file it lists (unchanged) or in a zoo folder."""
    files = marker["files"]
    own_dirs = tuple(f"{d}/" for d in marker.get("dirs", []))
    for root, dirs, names in os.walk(folder, followlinks=False):
        for d in dirs:
            if (Path(root) / d).is_symlink():
                return False
        for name in names:
            path = Path(root) / name
            rel = path.relative_to(folder).as_posix()
            if rel == MARKER or rel.startswith(own_dirs):
                continue
            if path.is_symlink() or rel not in files:
                return False
            try:
                if sha256_file(path) != files[rel]:
                    return False
            except OSError:
                return False
    return True


class OwnedFolder:
    """A folder the zoo created (or adopted empty) for a command's outputs.

    Files are written through :meth:`write`; each is recorded with its sha256 in
    the folder's marker, and only those files are ever replaced or removed.

    Attributes:
        path: The folder.
        marker: The marker's data: ``command``, ``inputs``, ``files``, ``created``.
        resumed: Whether the folder existed with the same inputs (a run may resume).
    """

    def __init__(self, path: Path, marker: dict[str, Any], resumed: bool) -> None:
        self.path = path
        self.marker = marker
        self.resumed = resumed

    def _save_marker(self) -> None:
        try:
            write_json(self.path / MARKER, self.marker)
        except OSError as exc:
            raise _io_error(self.path / MARKER, exc) from exc

    def owns(self, relative: str) -> bool:
        """Whether ``relative`` is a file this folder's marker lists, unchanged since it was written."""
        path = self.path / relative
        expected = self.marker["files"].get(Path(relative).as_posix())
        if expected is None or not path.is_file() or path.is_symlink():
            return False
        try:
            return sha256_file(path) == expected
        except OSError:
            return False

    @contextlib.contextmanager
    def write(self, relative: str) -> Iterator[Path]:
        """Yield a temporary path for the file ``relative``; rename it into place and record it.

        Raises:
            OutputError: If ``relative`` exists and is not a file the zoo wrote here.
        """
        rel = Path(relative).as_posix()
        target = self.path / rel
        if (target.exists() or target.is_symlink()) and not self.owns(rel):
            raise OutputError(
                f"{target} was not written by zoo (or was changed since); move it away or choose "
                "another output folder"
            )
        try:
            target.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error(target, exc) from exc
        digests: list[str] = []
        with _temporary_sibling(target, before_rename=lambda: None, digests=digests) as tmp:
            yield tmp
        self.marker["files"][rel] = digests[0]
        self._save_marker()

    def own_dir(self, relative: str) -> Path:
        """Create (or reopen) a sub-folder whose whole content is the zoo's (checkpoints, caches).

        Raises:
            OutputError: If the sub-folder exists but the zoo did not create it.
        """
        rel = Path(relative).as_posix()
        path = self.path / rel
        dirs = self.marker.setdefault("dirs", [])
        if rel not in dirs:
            if path.exists() or path.is_symlink():
                raise OutputError(f"{path} was not made by zoo; move it away or choose another output folder")
            dirs.append(rel)
            self._save_marker()
        try:
            path.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _io_error(path, exc) from exc
        return path

    def scratch_dir(self, relative: str) -> Path:
        """Create a sub-folder of the zoo's, emptied first: scratch space for this process only."""
        path = self.own_dir(relative)
        shutil.rmtree(path)
        path.mkdir()
        return path

    def drop_dir(self, relative: str) -> None:
        """Remove one of the zoo's own sub-folders (see :meth:`own_dir`) and forget it."""
        rel = Path(relative).as_posix()
        dirs = self.marker.get("dirs", [])
        if rel in dirs:
            path = self.path / rel
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            dirs.remove(rel)
            self._save_marker()

    def record(self, relative: str) -> None:
        """Record a file the zoo itself just wrote here by other means (for example a checkpoint)."""
        path = self.path / relative
        if path.is_file():
            self.marker["files"][Path(relative).as_posix()] = sha256_file(path)
            self._save_marker()

    def clear(self) -> None:
        """Remove the zoo's sub-folders and every file the marker lists (unchanged ones only)."""
        for rel in self.marker.get("dirs", []):
            path = self.path / rel
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
        self.marker["dirs"] = []
        for rel in sorted(self.marker["files"]):
            if self.owns(rel):
                (self.path / rel).unlink()
                parent = (self.path / rel).parent
                while parent != self.path and not any(parent.iterdir()):  # folders made for it
                    parent.rmdir()
                    parent = parent.parent
            self.marker["files"].pop(rel)
        self._save_marker()


def _describe_change(old: dict[str, Any], new: dict[str, Any]) -> str:
    keys = sorted(set(old) | set(new))
    changes = [f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in keys if old.get(k) != new.get(k)]
    return "; ".join(changes[:4]) + ("; ..." if len(changes) > 4 else "")


@contextlib.contextmanager
def output_folder(
    path: str | os.PathLike[str],
    *,
    command: str,
    inputs: dict[str, Any],
    overwrite: bool = False,
    option: str = "--overwrite",
) -> Iterator[OwnedFolder]:
    """Open an output folder the zoo owns, holding its lock for the whole ``with`` block.

    * a new path, or an existing empty folder: it becomes the zoo's, with a marker;
    * a folder with the zoo's marker and the same ``command`` and ``inputs``:
      reopened with ``resumed=True`` (the caller may resume from what it holds);
    * with the zoo's marker but other inputs: refused, or with ``overwrite`` the zoo's
      own files in it are removed first (anything else in it stays);
    * anything else (a file, a folder of the user's files): refused.

    Args:
        path: The folder.
        command: What writes it (``"finetune"``).
        inputs: JSON data naming the inputs and settings; resuming needs equal inputs.
        overwrite: Start again over the zoo's own earlier outputs in the folder.
        option: How the caller spells ``overwrite`` in messages.

    Yields:
        The :class:`OwnedFolder`.

    Raises:
        OutputError: When the folder may not be used.
        OutputLockedError: When another zoo command holds it.
    """
    folder = _absolute(path)
    inputs = json.loads(json.dumps(inputs, sort_keys=True, default=str))
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"{folder} is a file, not a folder; choose a new folder name for the output")
    with _lock(folder):
        marker = _read_marker(folder) if folder.is_dir() else None
        resumed, fresh, existed = False, marker is None, folder.is_dir()
        if marker is None:
            if folder.is_dir() and any(folder.iterdir()):
                raise OutputError(
                    f"{folder} already holds files zoo did not write; zoo only writes into a new or "
                    "empty folder: choose another output folder"
                )
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise _io_error(folder, exc) from exc
            marker = {"zoo_output": 1, "command": command, "inputs": inputs, "files": {}, "created": _now()}
        elif marker.get("command") == command and marker.get("inputs") == inputs:
            resumed = True
        elif not overwrite:
            raise OutputError(
                f"{folder} holds the output of another zoo {marker.get('command')} run "
                f"({_describe_change(marker.get('inputs') or {}, inputs) or 'other command'}); pass "
                f"{option} to replace it, or choose another output folder"
            )
        owned = OwnedFolder(folder, marker, resumed)
        if marker.get("inputs") != inputs or marker.get("command") != command:
            owned.clear()
            marker.update(command=command, inputs=inputs, created=_now())
        owned._save_marker()
        try:
            yield owned
        except BaseException:
            if fresh:  # a run that failed before writing anything leaves nothing in the way
                _forget_if_unused(folder, created=not existed)
            raise


def _forget_if_unused(folder: Path, *, created: bool) -> None:
    """Remove the marker of a folder the zoo claimed but wrote nothing into, and the folder if it made it."""
    with contextlib.suppress(OSError):
        if [p.name for p in folder.iterdir()] == [MARKER]:
            (folder / MARKER).unlink()
            if created:
                folder.rmdir()


def check_folder_target(
    path: str | os.PathLike[str], overwrite: bool = False, option: str = "--overwrite"
) -> Path:
    """Check, before any work, that :func:`replace_folder` may put a new output at ``path``.

    Returns:
        The absolute target path.

    Raises:
        OutputError: When ``path`` holds anything but the zoo's own unchanged output, or
            holds that output and ``overwrite`` is not set.
    """
    target = _absolute(path)
    if not (target.exists() or target.is_symlink()):
        return target
    if target.is_symlink() or not target.is_dir():
        raise OutputError(
            f"{target} already exists and is not a folder zoo wrote; choose a new path "
            "(zoo never replaces your files)"
        )
    existing = _read_marker(target)
    if existing is None:
        if any(target.iterdir()):
            raise OutputError(
                f"{target} already holds files zoo did not write; choose a new or empty folder "
                "(zoo never replaces or deletes your files)"
            )
        return target
    if not overwrite:
        raise OutputError(
            f"{target} already exists; choose another path, or pass {option} to replace zoo's "
            "earlier output there"
        )
    if not _tree_is_owned(target, existing):
        raise OutputError(
            f"{target} holds files zoo did not write (or changed since): {option} only replaces "
            "zoo's own outputs; choose another path"
        )
    return target


def check_file_target(
    path: str | os.PathLike[str], overwrite: bool = False, option: str = "--overwrite"
) -> Path:
    """Check, before any work, that :func:`output_file` may write ``path``; return it absolute."""
    target = _absolute(path)
    _check_file_target(target, overwrite, option)
    if not target.parent.is_dir():
        raise OutputError(f"cannot write {target}: folder {target.parent} does not exist; create it first")
    return target


def replace_folder(
    built: str | os.PathLike[str],
    path: str | os.PathLike[str],
    *,
    command: str,
    inputs: dict[str, Any],
    overwrite: bool = False,
    option: str = "--overwrite",
) -> Path:
    """Move a folder the caller built (a temporary sibling) to ``path`` as a zoo output.

    The folder gets a marker listing its files. An existing ``path`` is replaced only
    with ``overwrite`` and only when everything in it is the zoo's unchanged output;
    the old copy is removed only after the new one is in place.

    Raises:
        OutputError: When ``path`` may not be replaced.
        OutputLockedError: When another zoo command holds it.
    """
    built, target = Path(built), _absolute(path)
    files = {
        p.relative_to(built).as_posix(): sha256_file(p)
        for p in sorted(built.rglob("*"))
        if p.is_file() and p.name != MARKER
    }
    marker = {
        "zoo_output": 1,
        "command": command,
        "inputs": json.loads(json.dumps(inputs, default=str)),
        "files": files,
        "created": _now(),
    }
    write_json(built / MARKER, marker)
    with _lock(target):
        check_folder_target(target, overwrite, option)
        old = None
        if target.is_dir() and any(target.iterdir()):  # the zoo's own output, checked above
            old = target.with_name(f"{_TMP_TAG}old-{uuid.uuid4().hex}.{target.name}")
            os.replace(target, old)
        try:
            os.replace(built, target)  # an empty folder is replaced in place
        except OSError as exc:
            if old is not None:
                os.replace(old, target)
            raise _io_error(target, exc) from exc
        if old is not None:
            shutil.rmtree(old)
    return target
