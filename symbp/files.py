"""Replacing a file atomically: a temporary file beside it, then ``os.replace``.

Shared by :func:`symbp.export.write` (standalone modules) and :func:`symbp.nn.persist.save`
(model files): an interrupted write never leaves a half-written file, a replaced file keeps its
permissions and a new one gets those ``open()`` would give it.
"""

from __future__ import annotations

import os
import re
import stat
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

STALE_SECONDS = 60.0
"""A temporary file of :func:`replace` older than this whose writer holds no lock on it is
stale: a killed writer's, removed by the next write of the same target."""


def new_file_mode() -> int:
    """The permissions open() would give a new file: ``0o666`` less the umask (read without
    setting it, from /proc where there is one; ``0o644`` elsewhere). mkstemp's own ``0o600``
    and a fixed ``0o644`` both ignore it (a umask of 077 got a world-readable module)."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError, IndexError):
        return 0o644
    return 0o666 & ~umask


def replace(target: Path, write: Callable, *, binary: bool) -> None:
    """Write ``target`` through ``write(handle)`` into a temporary ``.NAME.XXXXXXXX.tmp`` in its
    folder, flushed to disk, then rename it over ``target``. The temporary is locked
    (``flock``) until the rename, which tells a later write that its writer is alive; the
    temporaries killed writers left are removed first (:func:`remove_stale_temporaries`). On
    any failure the temporary is removed and the error raised; ``target`` is as it was."""
    remove_stale_temporaries(target)
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        _lock(fd)
        with os.fdopen(fd, "wb" if binary else "w", **({} if binary else {"encoding": "utf-8"})
                       ) as handle:
            write(handle)
            handle.flush()
            os.fsync(handle.fileno())
            try:  # a file replaced keeps its permissions; a new one follows the umask
                mode = os.stat(target).st_mode & 0o777
            except OSError:
                mode = new_file_mode()
            os.chmod(tmp, mode)  # (mkstemp's are 0o600 whatever the umask)
            os.replace(tmp, target)  # before the close: a hold is kept to the end
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _lock(fd: int) -> None:
    """An exclusive advisory lock on ``fd`` (POSIX ``flock``; released when the file is closed
    or its process dies); nothing where the platform or filesystem has none."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        pass


def _unlocked(fd: int) -> bool:
    """True when nobody holds a lock on ``fd``'s file (the lock is taken, and kept until the
    caller closes ``fd``); False when a writer holds it or locks cannot be told."""
    try:
        import fcntl

        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except (ImportError, OSError):
        return False
    return True


def remove_stale_temporaries(path: Path) -> None:
    """Delete the temporary files that killed writes of ``path`` (saves, exports) left behind.

    Only files of the exact name :func:`replace` creates (``.NAME.`` + mkstemp's 8
    characters + ``.tmp``) are touched, only regular files (not symlinks) owned by the current
    user, older than :data:`STALE_SECONDS`, and only when no lock is held on them: a live write
    holds an ``flock`` on its temporary file from its creation to its rename, and the kernel
    drops that lock when the writer dies. (The age keeps the moment between ``mkstemp`` and the
    lock safe; the lock keeps a slow writer's file safe however old it is.) Any error leaves
    the file alone: cleaning up never makes a write fail.
    """
    pattern = re.compile(re.escape(f".{path.name}.") + r"[a-z0-9_]{8}\.tmp")
    uid = getattr(os, "getuid", lambda: None)()
    now = time.time()
    try:
        entries = list(os.scandir(path.parent))
    except OSError:
        return
    for entry in entries:
        if not pattern.fullmatch(entry.name):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or (uid is not None and info.st_uid != uid) \
                    or now - info.st_mtime < STALE_SECONDS:
                continue
            fd = os.open(entry.path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0)
                         | getattr(os, "O_NONBLOCK", 0))
            try:
                opened = os.fstat(fd)
                if (opened.st_dev, opened.st_ino) == (info.st_dev, info.st_ino) \
                        and _unlocked(fd):
                    os.unlink(entry.path)
            finally:
                os.close(fd)
        except OSError:
            continue
