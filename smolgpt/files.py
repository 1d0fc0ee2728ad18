"""Files that must never be seen half-written.

`write_atomic` writes to a temporary file in the target's folder, flushes it to disk and renames
it over the target: a rename within one folder is atomic, so a reader (or a crash) sees either the
old file or the new one, never a mixture. Checkpoints, token files and manifests all go through it.
A write the system stops (disk full, the file-size limit, no permission) raises `CannotWrite`,
whose one line names the file and what to change, and leaves no temporary file behind.

The writing rule every command follows: it never replaces a file it did not write itself.
Before writing, a command calls `refuse_strangers` with the paths it will write and a test of
which existing files are its own (an earlier run's checkpoint, an earlier export, a figure
marked as smolgpt's); any other file in the way is refused with `WouldReplace`, one line naming
the file, what it looks like (`describe_file`), and the flag that replaces it anyway.

`RunLock` makes a run folder have one writer: two `smolgpt train` on the same `--out` (or two MPI
ranks, or a chapter and a command) would interleave one log and keep one of two checkpoints.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shlex
import socket
import sys
import tempfile
import time
from pathlib import Path
from typing import BinaryIO, Callable


def write_atomic(path, write: Callable[[BinaryIO], None], mode: int = 0o644) -> int:
    """Call write(f) on a temporary file, fsync it, rename it to `path`; returns the size.

    mode: the permission bits of the finished file (tempfile creates 0600; files the project
    writes are readable like any other file the user makes, so 0644 less the umask).
    """
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    except OSError as e:
        raise CannotWrite(path, e) from e
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, mode & ~umask)
        os.replace(tmp, path)
    except BaseException as e:
        if os.path.exists(tmp):
            os.unlink(tmp)
        if isinstance(e, OSError) and not isinstance(e, CannotWrite):
            raise CannotWrite(path, e) from e
        raise
    return path.stat().st_size


# What to do when the system refuses a write, by its error number (errno).
_WHY_NOT_WRITTEN = {
    errno.EFBIG: "the file-size limit of this process (ulimit -f) is smaller than the file: "
                 "raise it, e.g. ulimit -f unlimited",
    errno.ENOSPC: "the disk is full: free some space, or write to another disk",
    errno.EDQUOT: "the disk quota is used up: free some space, or write to another disk",
    errno.EACCES: "no permission to write there: choose a folder you can write to",
    errno.EPERM: "no permission to write there: choose a folder you can write to",
    errno.EROFS: "that file system is read-only: choose a folder you can write to",
}


class CannotWrite(OSError):
    """The system stopped a file from being written; the one-line message names the file, the
    reason and what to change. (An OSError still, for code that catches those.)"""

    def __init__(self, path, reason: OSError | None = None, message: str | None = None):
        super().__init__(getattr(reason, "errno", None), getattr(reason, "strerror", None),
                         str(path))
        self.path = Path(path)
        self.message = message or self._say(reason)

    def _say(self, e: OSError | None) -> str:
        what = (e.strerror or str(e)) if e is not None else "unknown reason"
        hint = _WHY_NOT_WRITTEN.get(getattr(e, "errno", None),
                                    "check that its folder exists, that you can write to it, and "
                                    "that the disk has space")
        return f"could not write {self.path} ({what}); {hint}"

    def __str__(self) -> str:
        return self.message


def sha256_of(path) -> str:
    """The sha256 of a file's bytes, read in 1 MB pieces: a file's identity whatever its name."""
    import hashlib
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


class WouldReplace(Exception):
    """A command would replace a file it did not write; the message names it and the way out."""


def refuse_strangers(paths, ours: Callable[[Path], bool] | None = None, force: bool = False,
                     force_hint: str = "pass --force to replace it") -> None:
    """Raise WouldReplace for the first existing path in `paths` that `ours(path)` does not
    recognise as written by smolgpt (ours None: any existing file is refused; with force, files
    are allowed; a folder never is).

    A folder or other non-file at a path where a file would go is refused in every case: a
    rename cannot replace it, and it is certainly not smolgpt's output.
    """
    for path in map(Path, paths):
        blocker = next((p for p in path.parents if os.path.lexists(p)), None)
        if blocker is not None and not blocker.is_dir():
            raise WouldReplace(f"{blocker} is a file, not a folder, so {path} cannot be written "
                               f"under it: choose another path")
        if not os.path.lexists(path):
            continue
        if path.is_dir() or not (path.is_file() or path.is_symlink()):
            raise WouldReplace(f"{path} is a folder (or not a plain file) where smolgpt would "
                               f"write a file: move it away, or write somewhere else")
        if force or (ours is not None and _safely(ours, path)):
            continue
        whose = "" if ours is None else " and smolgpt did not write it"
        raise WouldReplace(f"{path} already exists{whose} ({describe_file(path)}): move it away, "
                           f"write somewhere else, or {force_hint}")


def _safely(test: Callable[[Path], bool], path: Path) -> bool:
    """test(path), where any error while reading the file means "not ours"."""
    try:
        return bool(test(path))
    except Exception:
        return False


def describe_file(path) -> str:
    """What a file looks like from its first bytes, for error messages: "a zip archive (a NumPy
    .npz, e.g. a checkpoint)", "JSON lines (a run's log.jsonl?)", "a safetensors file", ..."""
    path = Path(path)
    if path.is_dir():
        return "a folder"
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            head = f.read(4096)
    except OSError as e:
        return f"unreadable: {e.strerror or e}"
    if size == 0:
        return "an empty file"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return f"a zip archive of {size:,} bytes (a NumPy .npz, e.g. a checkpoint)"
    if head.startswith(b"\x93NUMPY"):
        return "a single NumPy array (.npy), not an .npz archive"
    if head.startswith(b"\x1f\x8b"):
        return f"a gzip file of {size:,} bytes"
    if head.startswith(b"\x89PNG"):
        return "a PNG image"
    if head.startswith(b"%PDF"):
        return "a PDF document"
    if len(head) >= 9 and head[8:9] == b"{" and int.from_bytes(head[:8], "little") < size:
        return f"a safetensors file of {size:,} bytes (model weights)"
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as e:
        if e.start < len(head) - 4:        # not merely a character cut at the 4 KB boundary
            return f"binary data of {size:,} bytes"
        text = head[:e.start].decode("utf-8")
    first = text.lstrip().split("\n", 1)[0]
    if first.startswith("{"):
        try:
            record = json.loads(first)
        except ValueError:                 # one object over several lines, or not JSON
            try:
                json.loads(text) if size <= len(head) else None
            except ValueError:
                return f"text of {size:,} bytes starting with {{"
            return f"JSON of {size:,} bytes"
        if isinstance(record, dict) and "event" in record:
            return f"JSON lines of {size:,} bytes (a run's log.jsonl)"
        return f"JSON of {size:,} bytes"
    return f"text of {size:,} bytes"


class FolderInUse(Exception):
    """Another live process holds a run folder's lock; the message names it."""


class RunLock:
    """An exclusive lock on a run folder for the life of a run: `<folder>/.lock`.

        with RunLock("runs/x"):          # raises FolderInUse if another run holds it
            ...                          # write the log and checkpoints

    The lock is `flock(2)` on the file, which the kernel drops when the holder's process ends,
    however it ends (kill -9 included); so a lock left by a killed run is never "held" and is
    taken over safely, with one note naming the run that did not finish. While held, the file
    says who holds it (pid, host, start time, command line), for the refusal's message. A clean
    release deletes it, so a finished run's folder holds only the run's own files; an acquirer
    that locked a file its holder deleted meanwhile sees that the path now names another file
    (or none) and tries again, so two processes never both hold the folder. A run folder the
    lock made is removed again on release if it is still empty (a run refused at its start
    leaves no empty --out behind); folders above it are left alone.
    """

    def __init__(self, folder, note: bool = True):
        self.path = Path(folder) / ".lock"
        self.note = note
        self.fd: int | None = None
        self.made = False                       # acquire() created the run folder

    def acquire(self) -> "RunLock":
        folder, self.made, vanished = self.path.parent, False, 0
        while True:
            try:
                folder.parent.mkdir(parents=True, exist_ok=True)
                try:
                    folder.mkdir()
                    self.made = True
                except FileExistsError:
                    pass
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError as e:      # its last holder removed the folder meanwhile
                vanished += 1
                if vanished < 5:
                    continue
                raise CannotWrite(self.path, e) from e
            except OSError as e:
                raise CannotWrite(self.path, e) from e
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                holder = _describe_holder(_read_holder(fd))
                os.close(fd)
                raise FolderInUse(f"{self.path.parent} is in use by another run ({holder}): "
                                  f"wait for it to finish, or choose another --out") from None
            if _same_file(fd, self.path):      # not deleted by its last holder meanwhile
                break
            os.close(fd)
        left = _read_holder(fd)                 # non-empty: its holder died without releasing
        if left is not None and "pid" not in left:       # not a lock smolgpt wrote
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise WouldReplace(f"{self.path} already exists and smolgpt did not write it "
                               f"({describe_file(self.path)}); smolgpt keeps a run's lock "
                               f"there: move that file away, or choose another folder")
        if left is not None and self.note:
            print(f"note: taking over the lock of a run in {self.path.parent} that did not "
                  f"finish ({_describe_holder(left)}; that process is gone)")
        me = {"pid": os.getpid(), "host": socket.gethostname(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S"), "command": shlex.join(sys.argv)}
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, json.dumps(me).encode() + b"\n", 0)
        except OSError as e:                    # a full disk: say which file
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)
            raise CannotWrite(self.path, e) from e
        self.fd = fd
        return self

    def release(self) -> None:
        if self.fd is not None:
            os.unlink(self.path)                # released cleanly: nothing to take over
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None
        if self.made:                           # only if nothing was written there
            with contextlib.suppress(OSError):
                self.path.parent.rmdir()
            self.made = False

    def __enter__(self) -> "RunLock":
        return self.acquire()

    def __exit__(self, *exc) -> None:
        self.release()


def _same_file(fd: int, path: Path) -> bool:
    try:
        a, b = os.fstat(fd), os.stat(path)
    except FileNotFoundError:
        return False
    return (a.st_dev, a.st_ino) == (b.st_dev, b.st_ino)


def _read_holder(fd: int) -> dict | None:
    """What a lock file says about its holder, or None if it is empty."""
    raw = os.pread(fd, 4096, 0)
    if not raw.strip():
        return None
    try:
        holder = json.loads(raw)
    except ValueError:
        return {"command": raw.decode(errors="replace").strip()[:200]}
    return holder if isinstance(holder, dict) else {"command": str(holder)[:200]}


def _describe_holder(h: dict | None) -> str:
    if h is None:
        return "a process that has not yet said who it is"
    return (f"pid {h.get('pid', '?')} on {h.get('host', '?')}, started {h.get('started', '?')}: "
            f"{h.get('command', '?')}")
