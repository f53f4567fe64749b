"""Replacing a file atomically: a temporary file beside it, then ``os.replace``.

Shared by :func:`symbp.export.write` (standalone modules) and :func:`symbp.nn.persist.save`
(model files): an interrupted write never leaves a half-written file, a replaced file keeps its
permissions and a new one gets those ``open()`` would give it.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


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


def replace(target: Path, write: Callable, *, binary: bool,
            hold: Callable[[int], None] | None = None) -> None:
    """Write ``target`` through ``write(handle)`` into a temporary ``.NAME.XXXXXXXX.tmp`` in its
    folder, flushed to disk, then rename it over ``target``. ``hold(fd)`` is called on the
    temporary's descriptor first (a save's lock, kept until the rename). On any failure the
    temporary is removed and the error raised; ``target`` is as it was."""
    fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
    try:
        if hold is not None:
            hold(fd)
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
