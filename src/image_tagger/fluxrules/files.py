"""The files ``update`` may read and write under its PATH: Flux's walk, made safe, and all-or-nothing writes.

Walk: image-automation-controller's ``filepath.Walk`` (lexical order, hidden directories included,
symlinked directories never entered), iterative and at most ``MAX_DIR_DEPTH`` directories deep.
Read: only regular files (a FIFO, socket or device is never opened) of at most ``MAX_FILE_BYTES``; a
symlinked file is read only when its target is inside PATH (Flux would follow it anywhere).
Write (``update`` and ``rollback``): every target is checked first (inside the root, a regular file,
unchanged since planning, writable; a new one absent), then a temporary file beside each is written,
its mode copied and fsynced, and only when all of them are written are they renamed over the
originals (and files to delete deleted); any failure removes the temporary files (and restores files
already changed), so either every file changes or none does, and no temporary file is left behind.
"""

import contextlib
import errno
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from image_tagger.fluxrules.regular import file_kind, read_regular
from image_tagger.model.errors import FileError, InputError

MAX_FILE_BYTES = 1024 * 1024  # 1 MiB: a bigger manifest is not hand-written, and parsing it takes seconds per MiB
MAX_NAMED_FILE_BYTES = 16 * 1024 * 1024  # a file named on the command line: tag lists, policies, overlays, secrets
MAX_DIR_DEPTH = 255  # directories below PATH; deeper ones are not entered


@dataclass(frozen=True)
class Candidate:
    """A file the walk found whose name Flux considers: its PATH-relative and real (resolved) path."""

    rel: str
    real: Path


def _go_ext(name: str) -> str:
    """Go ``filepath.Ext``: from the last '.', so '.yaml' itself counts (Python's suffix says '')."""
    dot = name.rfind(".")
    return name[dot:] if dot >= 0 else ""


def is_manifest_name(name: str) -> bool:
    return name == "Kustomization" or _go_ext(name) in (".yaml", ".yml")


def _entries(directory: str) -> list[os.DirEntry]:
    with os.scandir(directory) as entries:
        return sorted(entries, key=lambda e: os.fsencode(e.name))


def walk(root: Path, notes: list[str]) -> Iterator[Candidate]:
    """Manifest-named regular files under the resolved ``root`` in ``filepath.Walk`` order; skips go to ``notes``."""
    stack = [(iter(_entries(str(root))), 0)]
    while stack:
        entries, depth = stack[-1]
        entry = next(entries, None)
        if entry is None:
            stack.pop()
            continue
        rel = Path(entry.path).relative_to(root).as_posix()
        if entry.is_dir(follow_symlinks=False):
            if depth >= MAX_DIR_DEPTH:
                notes.append(f"skipped {rel}/: more than {MAX_DIR_DEPTH} directories deep")
            else:
                stack.append((iter(_entries(entry.path)), depth + 1))
            continue
        if entry.is_symlink():
            candidate = _symlink(root, rel, entry, notes)
        elif is_manifest_name(entry.name):
            mode = entry.stat(follow_symlinks=False).st_mode
            candidate = Candidate(rel, Path(entry.path)) if stat.S_ISREG(mode) else None
            if candidate is None:
                notes.append(f"skipped {rel}: {file_kind(mode)}, not a regular file")
        else:
            candidate = None
        if candidate is not None:
            yield candidate


def _symlink(root: Path, rel: str, entry: os.DirEntry, notes: list[str]) -> Candidate | None:
    """Flux reads through a symlinked file; we do only when its target is a regular file inside PATH."""
    try:
        real = Path(entry.path).resolve(strict=True)
        mode = real.stat().st_mode
    except (OSError, RuntimeError):
        return None  # dangling or a loop: Flux skips unreadable symlinks
    if stat.S_ISDIR(mode):
        notes.append(f"not entering {rel}/: a symlinked directory (Flux's walk does not follow it)")
        return None
    if not is_manifest_name(entry.name):
        return None
    if not real.is_relative_to(root):
        notes.append(f"skipped {rel}: a symlink to {real}, outside PATH (never read or written)")
        return None
    if not stat.S_ISREG(mode):
        notes.append(f"skipped {rel}: a symlink to {file_kind(mode)}, not a regular file")
        return None
    return Candidate(rel, real)


def read_named_file(path: Path, source: str, limit: int = MAX_NAMED_FILE_BYTES) -> str:
    """The UTF-8 text of a file named on the command line (`source` names it: `--tags FILE`); a FIFO, socket or
    device is refused before it is opened, so the command cannot hang on one. InputError: exit 2."""
    accepted = f"accepted: a regular UTF-8 text file of at most {limit} bytes"
    try:
        mode = path.stat().st_mode  # no other kind of file is even opened: opening a device can act
        if stat.S_ISREG(mode):
            data, why = read_regular(path, limit, follow_symlinks=True)
        else:
            data, why = None, f"{file_kind(mode)}, not a regular file"
    except OSError as err:
        raise InputError(f"{source}: cannot be read ({_why(err)}); {accepted}") from None
    if data is None:
        raise InputError(f"{source}: {why}; {accepted}")
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise InputError(f"{source}: not UTF-8 text; {accepted}") from None


# --- writing ---


@dataclass
class _Target:
    """One file of a change: ``before``/``after`` None mean it is absent before (created) or after (deleted)."""

    rel: str
    real: Path
    before: bytes | None
    after: bytes | None
    info: os.stat_result | None  # the original's mode and owner; None for a file being created
    temp: str | None = None


def _why(error: OSError) -> str:
    return error.strerror or str(error)


def _check(root: Path, rel: str, before: bytes | None, after: bytes | None) -> _Target:
    path = root / rel
    if before is None:
        return _check_new(root, rel, after)
    try:
        real = path.resolve(strict=True)
        info = os.stat(real)
    except (OSError, RuntimeError) as error:
        raise FileError(f"{rel}: cannot be written ({_why(error) if isinstance(error, OSError) else error})") from None
    if not real.is_relative_to(root):
        raise FileError(f"{rel}: leads to {real}, outside {root}; refusing to write there")
    if not stat.S_ISREG(info.st_mode):
        raise FileError(f"{rel}: {file_kind(info.st_mode)}, not a regular file; refusing to write it")
    try:
        current, _ = read_regular(real, len(before))
    except OSError as error:
        raise FileError(f"{rel}: cannot be read back ({_why(error)})") from None
    if current != before:
        raise FileError(f"{rel}: changed since the change was planned; nothing was written")
    if not os.access(real, os.W_OK):
        raise FileError(f"{rel}: not writable (read-only or immutable file); nothing was written")
    _check_directory(rel, real.parent)
    return _Target(rel, real, before, after, info)


def _check_new(root: Path, rel: str, after: bytes | None) -> _Target:
    """A file to create: absent now, in a writable directory inside ``root``."""
    path = root / rel
    if os.path.lexists(path):
        raise FileError(f"{rel}: appeared since the change was planned; nothing was written")
    try:
        real = path.parent.resolve(strict=True) / path.name
    except (OSError, RuntimeError) as error:
        raise FileError(f"{rel}: cannot be created ({_why(error) if isinstance(error, OSError) else error})") from None
    if not real.is_relative_to(root):
        raise FileError(f"{rel}: leads to {real}, outside {root}; refusing to write there")
    _check_directory(rel, real.parent)
    return _Target(rel, real, None, after, None)


def _check_directory(rel: str, directory: Path) -> None:
    if not os.access(directory, os.W_OK | os.X_OK):
        raise FileError(f"{rel}: its directory is not writable; nothing was written")


def _write_temp(target: _Target, data: bytes) -> str:
    """A fully written, fsynced temporary copy beside the target with its mode (and owner when allowed).

    A new file gets the mode any new file gets (0666 less the umask), as an ordinary write would give it.
    """
    fd, temp = _create_temp(target.real)
    try:
        with open(fd, "wb") as file:
            file.write(data)
            file.flush()
            if target.info is not None:
                os.fchmod(fd, stat.S_IMODE(target.info.st_mode))
                if (target.info.st_uid, target.info.st_gid) != (os.geteuid(), os.getegid()):
                    # not ours to give away otherwise: the file then belongs to whoever runs the tool
                    with contextlib.suppress(PermissionError):
                        os.fchown(fd, target.info.st_uid, target.info.st_gid)
            os.fsync(fd)
    except BaseException:
        _remove(temp)
        raise
    return temp


def _create_temp(real: Path) -> tuple[int, str]:
    """``.<name>.<random>.image-tagger.tmp`` beside ``real``, created exclusively with mode 0666 (umask applies)."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
    for _ in range(100):
        temp = str(real.parent / f".{real.name}.{os.urandom(4).hex()}.image-tagger.tmp")
        try:
            return os.open(temp, flags, 0o666), temp
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temporary file name", str(real.parent))


def _remove(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _sync_directory(directory: Path) -> None:
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError as error:
        if error.errno not in (errno.EINVAL, errno.EBADF):
            raise
    finally:
        os.close(fd)


def write_all(root: Path, files: Sequence[tuple[str, bytes | None, bytes | None]]) -> None:
    """Change each ``(rel, before, after)`` under ``root`` atomically, all or none; FileError names the culprit.

    ``before`` None: the file must not exist yet (it is created); ``after`` None: it is deleted.
    """
    root = root.resolve()
    targets: dict[Path, _Target] = {}
    for rel, before, after in files:
        target = _check(root, rel, before, after)
        known = targets.get(target.real)
        if known is not None and known.after != after:
            raise FileError(f"{rel}: the same file as {known.rel} with other changes; nothing was written")
        targets.setdefault(target.real, target)
    pending = list(targets.values())
    committed: list[_Target] = []
    try:
        for target in pending:
            if target.after is None:
                continue
            try:
                target.temp = _write_temp(target, target.after)
            except OSError as error:
                raise FileError(f"{target.rel}: cannot be written ({_why(error)}); nothing was changed") from None
        for target in pending:
            try:
                if target.temp is None:
                    os.unlink(target.real)
                else:
                    os.replace(target.temp, target.real)
            except OSError as error:
                raise FileError(f"{target.rel}: cannot be replaced ({_why(error)}); nothing was changed") from None
            target.temp = None
            committed.append(target)
    except BaseException:
        for target in pending:
            if target.temp is not None:
                _remove(target.temp)
        _restore(committed)
        raise
    for directory in {target.real.parent for target in pending}:
        _sync_directory(directory)


def _restore(committed: list[_Target]) -> None:
    """Put back the originals of files already changed (best effort: the failure itself is reported)."""
    for target in reversed(committed):
        with contextlib.suppress(OSError):
            if target.before is None:
                os.unlink(target.real)
            else:
                os.replace(_write_temp(target, target.before), target.real)
