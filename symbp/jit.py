"""Generated source -> a real module file in a per-user cache folder -> ``numba.njit``.

The file is named by the SHA-256 of its source. It is written atomically and only if absent
(rewriting would change its mtime, which older Numba versions key their cache on), and the
bytes read back are checked against the name and then compiled and run here (``compile`` +
``exec``), never imported through ``importlib``: no ``__pycache__`` bytecode is written or
read for a generated module, so no planted ``.pyc`` can stand in for a checked file. A real
file lets tracebacks, ``inspect`` and pdb show the generated lines, and lets Numba's on-disk
cache work across processes (code made by ``exec`` of a string cannot be cached: numba issue
3501).

The cache folder is trusted only when it is safe, like ssh's and git's own folders (see
:func:`cache_dir`): owned by the current user and writable by no one else. Numba's cache of
symbp's functions lives inside it, in a subfolder keyed by everything that decides the
compiled code (:data:`ENV_KEY`), whatever ``NUMBA_CACHE_DIR`` says; a damaged entry is
deleted and the function compiled again.
"""

from __future__ import annotations

import contextlib
import errno
import glob
import hashlib
import importlib.machinery
import importlib.metadata
import inspect
import json
import os
import platform
import re
import stat
import sys
import tempfile
import types
import warnings
from pathlib import Path

import llvmlite
import numba
import numpy as np
from numba.core.caching import (
    CompileResultCacheImpl,
    FunctionCache,
    IndexDataCacheFile,
    _CacheLocator,
    _SourceFileBackedLocatorMixin,
)

from . import __version__, runtime
from .errors import CacheError, CompileError
from .names import KERNEL_NAME

_loaded: dict[str, types.ModuleType] = {}
_compiled: dict[tuple[str, tuple], object] = {}

_MODULE_NAME = re.compile(r"symbp_[0-9a-f]{32}\.py\Z")
_RECORD_KEY = re.compile(r"[0-9a-f]{32}\Z")
_DIGEST = re.compile(r"[0-9a-f]{64}\Z")
_MAX_RECORD = 1 << 20  # bytes of a sources/ record
_MAX_MODULE = 1 << 28  # bytes of a generated module
_POSIX = hasattr(os, "geteuid")


def _environment() -> tuple:
    """Everything besides the module's source that decides Numba's compiled code. The runtime
    is fingerprinted from its file, as emit's ``RUNTIME_HASH`` is, without importing the
    printer (SymPy): the cached path never emits."""
    try:
        scipy = importlib.metadata.version("scipy") if runtime.BLAS else None
    except importlib.metadata.PackageNotFoundError:
        scipy = "unknown"
    runtime_hash = hashlib.sha256(Path(runtime.__file__).read_bytes()).hexdigest()[:12]
    return (__version__, runtime_hash, numba.__version__, np.__version__, llvmlite.__version__,
            sys.version, sys.implementation.cache_tag, platform.machine(), runtime.BLAS, scipy)


ENV_KEY = hashlib.sha256(repr(_environment()).encode()).hexdigest()[:16]
"""Hash of symbp's version and runtime, the versions of Python, Numba, NumPy and llvmlite, the
machine, and whether SciPy's BLAS is there (and its version). It names the subfolder of Numba's
cache and enters every source-cache key, so two environments sharing one cache folder (one
with SciPy, one without) never load each other's compiled code. Numba's own index adds the
CPU name and features."""


# -- the folder rule ------------------------------------------------------------------------


def _user(uid: int) -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except (ImportError, KeyError):
        return f"uid {uid}"


def _fix(path: Path) -> str:
    return (f"set SYMBP_CACHE_DIR to a folder of your own (symbp creates a missing one with "
            f"mode 0700), or fix {path}")


def _unusable(path: Path, exc: OSError, what: str = "") -> CacheError:
    """The error for an OSError met while finding or making the cache folder ``path``."""
    if isinstance(exc, NotADirectoryError):
        return CacheError(f"cache folder {path} is below a file, not a folder: {_fix(path)}")
    return CacheError(f"{what or f'cache folder {path} cannot be used'} ({exc.strerror}): "
                      f"{_fix(path)}")


def _check_folder(path: Path) -> Path:
    """The real path of the existing folder ``path`` after the folder rule (symlinks resolved):
    a folder, owned by the current user, writable by no one else, and no parent writable by
    everyone without the sticky bit (who could otherwise replace it)."""
    real = Path(os.path.realpath(path))
    try:
        st = os.stat(real)
    except FileNotFoundError:
        raise CacheError(f"cache folder {path} is a symlink to {real}, which does not exist; "
                         f"remove the link or {_fix(path)}") from None
    except OSError as exc:
        raise _unusable(path, exc) from None
    if not stat.S_ISDIR(st.st_mode):
        raise CacheError(f"cache folder {path} is not a folder (a file is there): {_fix(path)}")
    if not _POSIX:
        return real
    shown = real if real == path else f"{path} (really {real})"
    me = os.geteuid()
    if st.st_uid != me:
        raise CacheError(
            f"cache folder {shown} is owned by {_user(st.st_uid)}, not by you ({_user(me)}): "
            "whoever owns it can make symbp run their code. Set SYMBP_CACHE_DIR to a folder "
            "of your own (symbp creates a missing one with mode 0700)")
    if st.st_mode & 0o022:
        who = "group and others" if st.st_mode & 0o022 == 0o022 else (
            "its group" if st.st_mode & 0o020 else "others")
        raise CacheError(
            f"cache folder {shown} is writable by {who} (mode {stat.S_IMODE(st.st_mode):04o}): "
            f"anyone who can write it can make symbp run their code. Run `chmod 700 {real}` "
            "or set SYMBP_CACHE_DIR to a private folder")
    for parent in real.parents:
        try:
            mode = os.stat(parent).st_mode
        except OSError:
            continue
        if mode & stat.S_IWOTH and not mode & stat.S_ISVTX:
            raise CacheError(
                f"{parent}, a parent of cache folder {real}, is writable by everyone without "
                f"the sticky bit (mode {stat.S_IMODE(mode):04o}): anyone can replace the cache "
                f"folder. Run `chmod o-w {parent}` (or `chmod +t`) or set SYMBP_CACHE_DIR to "
                "a folder elsewhere")
    return real


def _folder(path: Path) -> Path:
    """``path`` created if missing (mode 0700, missing parents too), then checked by the
    folder rule; its real path."""
    missing = []
    probe = path
    while True:
        try:
            os.lstat(probe)
            break
        except FileNotFoundError:
            missing.append(probe)
            if probe.parent == probe:
                break
            probe = probe.parent
        except OSError as exc:
            raise _unusable(path, exc) from None
    for folder in reversed(missing):
        try:
            os.mkdir(folder, 0o700)
        except FileExistsError:
            pass  # another process made it: checked below
        except OSError as exc:
            raise _unusable(path, exc, f"cannot create cache folder {folder}") from None
    return _check_folder(path)


def cache_dir() -> Path:
    """The folder of generated modules: ``$SYMBP_CACHE_DIR``, else ``$XDG_CACHE_HOME/symbp`` or
    ``~/.cache/symbp``, created with mode 0700 if missing.

    Returns
    -------
    Path
        Its real path (symlinks resolved).

    Raises
    ------
    CacheError
        If it is not a folder, cannot be created, is not owned by the current user, is
        writable by its group or others, or has a parent writable by everyone without the
        sticky bit (``/tmp`` is fine). The message names the folder and the fix.
    """
    configured = os.environ.get("SYMBP_CACHE_DIR")
    if configured:
        path = Path(configured).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "symbp"
    return _folder(Path(os.path.abspath(path)))


def numba_cache_dir() -> Path:
    """The folder of Numba's cache of symbp's functions: ``numba-<ENV_KEY>`` in
    :func:`cache_dir`, under the same rule (``NUMBA_CACHE_DIR`` is not used for them)."""
    return _folder(cache_dir() / f"numba-{ENV_KEY}")


# -- files in the folder ---------------------------------------------------------------------


class _Unusable(Exception):
    """Something other than a regular file of ours is at a path symbp reads."""


def _read(path: Path, limit: int) -> bytes | None:
    """The bytes of the regular file at ``path`` (None if nothing is there), without following
    a symlink or blocking on a FIFO; :class:`_Unusable` if something else is there."""
    flags = (os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
             | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0))
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        return None
    except OSError as exc:  # ELOOP: a symlink; ENXIO: a socket; EISDIR...
        raise _Unusable(exc.strerror) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise _Unusable("not a regular file")
        if _POSIX and st.st_uid != os.geteuid():
            raise _Unusable("not your file")
        if st.st_size > limit:
            raise _Unusable("too large")
        chunks, size = [], 0
        while size <= limit:
            chunk = os.read(fd, 1 << 20)
            if not chunk:
                return b"".join(chunks)
            chunks.append(chunk)
            size += len(chunk)
        raise _Unusable("too large")
    except OSError as exc:
        raise _Unusable(exc.strerror) from None
    finally:
        os.close(fd)


def _remove(path: Path) -> None:
    """Remove what is at ``path`` (a damaged, foreign or misplaced file; never a folder)."""
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            raise CacheError(f"{path} is a folder where symbp keeps a file: remove it (or "
                             "delete the whole cache folder, which is always safe)")
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise CacheError(f"cannot remove the damaged file {path} ({exc.strerror}): delete it, "
                         "or delete the whole cache folder (always safe)") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def _write(path: Path, data: bytes, replace: bool) -> None:
    """Write ``data`` to ``path`` atomically (a private temporary file in the same folder,
    then a link or rename); never leaves the temporary file behind."""
    tmp = None
    try:
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=path.suffix)
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        if replace:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)  # atomic, and never replaces a file another process wrote
            except FileExistsError:
                pass
            except OSError:  # no hard links on this file system
                os.replace(tmp, path)
    except OSError as exc:
        hint = {errno.ENOSPC: "free some space", errno.EDQUOT: "free some space",
                errno.EROFS: "the file system is read-only"}.get(exc.errno, "check its permissions")
        raise CacheError(f"cannot write {path} ({exc.strerror}): {hint}, or set "
                         "SYMBP_CACHE_DIR to a writable folder of your own") from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                os.unlink(tmp)


# -- modules ---------------------------------------------------------------------------------


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def _module_name(digest: str) -> str:
    return f"symbp_{digest[:32]}.py"


def module_path(source: str) -> Path:
    """Where the module for ``source`` lives."""
    return cache_dir() / _module_name(_digest(source))


def _write_if_absent(path: Path, data: bytes) -> None:
    try:
        if _read(path, _MAX_MODULE) == data:
            return
    except _Unusable:
        pass
    if path.exists() or path.is_symlink():  # corrupt, tampered or not a file: replace it
        _remove(path)
        with contextlib.suppress(CacheError):
            for stale in glob.glob(glob.escape(str(numba_cache_dir() / path.stem)) + ".*"):
                _remove(Path(stale))
    _write(path, data, replace=False)


def _run_module(path: Path, data: bytes) -> types.ModuleType:
    """Compile the checked bytes ``data`` of ``path`` and run them as a new module (no
    ``__pycache__`` involved); ``__file__`` points at ``path`` for tracebacks and inspect."""
    name = path.stem
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__spec__ = importlib.machinery.ModuleSpec(name, None, origin=str(path))
    sys.modules[name] = module
    try:
        exec(compile(data, str(path), "exec", dont_inherit=True), module.__dict__)
    except Exception as exc:
        del sys.modules[name]
        raise CompileError(f"generated module {path} failed to import: {exc}") from exc
    return module


def load(source: str) -> types.ModuleType:
    """Run the module for ``source`` (written to the cache folder first if needed)."""
    key = _digest(source)
    if key in _loaded:
        return _loaded[key]
    path = module_path(source)
    data = source.encode()
    _write_if_absent(path, data)
    try:
        written = _read(path, _MAX_MODULE)
    except _Unusable:
        written = None
    if written != data:
        raise CompileError(f"generated module {path} changed while loading; try again")
    module = _run_module(path, data)
    _loaded[key] = module
    return module


# -- Numba's cache, inside symbp's folder ------------------------------------------------------


class _Locator(_SourceFileBackedLocatorMixin, _CacheLocator):
    """Numba's cache of a function of symbp: in :func:`numba_cache_dir`, under the folder rule."""

    def __init__(self, py_func, py_file) -> None:
        self._py_file = py_file
        self._lineno = py_func.__code__.co_firstlineno

    def get_cache_path(self) -> str:
        return str(numba_cache_dir())

    def ensure_cache_path(self) -> None:
        numba_cache_dir()


class _Impl(CompileResultCacheImpl):
    def __init__(self, py_func) -> None:  # noqa: D107  (not Numba's: no locator search)
        self._lineno = py_func.__code__.co_firstlineno
        source = inspect.getfile(py_func)
        self._locator = _Locator(py_func, source)
        module = os.path.splitext(os.path.basename(source))[0]
        self._filename_base = self.get_filename_base(
            f"{module}.{py_func.__qualname__}", getattr(sys, "abiflags", ""))


def _private(path: str) -> bool:
    """Whether ``path`` is absent or a regular file of ours (anything else is removed). Its
    mode is not checked: the folder rule keeps others out of the folder."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return True
    if stat.S_ISREG(st.st_mode) and not (_POSIX and st.st_uid != os.geteuid()):
        return True
    _remove(Path(path))  # a FIFO, a symlink, another user's file: never opened
    return False


class _IndexFile(IndexDataCacheFile):
    """Numba's index and data files, opened only when they are regular files of ours."""

    def _load_index(self):
        if not _private(self._index_path):
            return {}
        return super()._load_index()

    def _load_data(self, name):
        if not _private(self._data_path(name)):
            raise OSError(errno.ENOENT, "removed an unusable cache file")
        return super()._load_data(name)


class _Cache(FunctionCache):
    """Numba's ``FunctionCache`` for symbp's functions: the folder is looked up (and checked)
    at every load and save; a damaged entry is deleted and the function compiled again; a
    failed save (full disk, read-only folder) warns and keeps the compiled function."""

    _impl_class = _Impl

    def __init__(self, py_func) -> None:  # noqa: D107  (no disk access until first use)
        self._name = repr(py_func)
        self._py_func = py_func
        self._impl = _Impl(py_func)
        self._cache_path = None
        self._cache_file = None
        self.state = None  # "loading" during a load, then "loaded" or "missed" (compile_call)
        self.enable()

    def _file(self) -> _IndexFile:
        folder = str(numba_cache_dir())
        if folder != self._cache_path:
            self._cache_path = folder
            self._cache_file = _IndexFile(cache_path=folder,
                                          filename_base=self._impl.filename_base,
                                          source_stamp=self._impl.locator.get_source_stamp())
        return self._cache_file

    @property
    def cache_path(self) -> str:
        return self._cache_path or str(numba_cache_dir())

    def flush(self) -> None:
        self._file().flush()

    def _drop(self) -> None:
        """Delete this function's index and data files."""
        base = os.path.join(self._cache_path, self._impl.filename_base)
        for path in glob.glob(glob.escape(base) + ".*"):
            _remove(Path(path))

    def load_overload(self, sig, target_context):
        if not self._enabled:
            return None
        self.state = "loading"
        self._file()
        try:
            loaded = super().load_overload(sig, target_context)
        except CacheError:
            self.state = None
            raise
        except Exception:  # noqa: BLE001  truncated or garbled .nbi/.nbc: compile afresh
            self._drop()
            loaded = None
        self.state = "missed" if loaded is None else "loaded"
        return loaded

    def save_overload(self, sig, data) -> None:
        self._file()
        try:
            super().save_overload(sig, data)
        except OSError as exc:
            warnings.warn(f"symbp: Numba's cache could not be written in {self._cache_path} "
                          f"({exc.strerror or exc}); the function is compiled but the next "
                          "process compiles it again", RuntimeWarning, stacklevel=2)


def _cached(dispatcher):
    """``dispatcher`` with its on-disk cache in symbp's folder."""
    dispatcher._cache = _Cache(dispatcher.py_func)
    return dispatcher


# The runtime's compiled matrix product, shared by every kernel, is cached there too.
_cached(runtime._matmul_blas)


def njit(source: str, signature: tuple | None, name: str = KERNEL_NAME,
         parallel: bool = False) -> object:
    """Function ``name`` of ``source`` compiled by Numba for ``signature`` (argument types).

    Compiled eagerly when a signature is given (else at the first call, per argument types),
    cached on disk (in :func:`numba_cache_dir`) and in memory. ``error_model="numpy"``
    gives IEEE results (1/0 = inf) instead of raising, as array code does. A corrupt on-disk
    cache entry is deleted and the function compiled again, also at a later first call.
    """
    key = (_digest(source), signature, name, parallel)
    if key in _compiled:
        return _compiled[key]
    func = getattr(load(source), name)
    numba_cache_dir()  # refuse an unsafe folder here, not inside Numba
    kernel = _cached(numba.njit(error_model="numpy", parallel=parallel)(func))
    if signature is not None:
        try:
            kernel.compile(signature)
        except CacheError:
            raise
        except Exception as exc:
            raise CompileError(f"Numba could not compile the generated source: {exc}") from exc
        kernel.disable_compile()
    _compiled[key] = kernel
    return kernel


def compile_call(dispatcher, args: tuple, what: str, report=None) -> float:
    """Compile ``dispatcher`` for the types of ``args`` now, or load it from Numba's on-disk
    cache, and return the seconds spent compiling (0.0 when nothing was compiled).

    With ``report`` (a callable taking a line of text, e.g. ``print``), a compile that is
    still running after half a second is announced ("compiling WHAT ... (cached after
    this)"), then its time is reported: a long compile is never silent, and a quick cache
    load says nothing (a slow one says "loading WHAT from the cache")."""
    import threading
    import time

    signature = tuple(numba.typeof(a) for a in args)
    if signature in dispatcher.overloads:
        return 0.0
    misses = sum(dispatcher.stats.cache_misses.values())
    announced = threading.Event()

    def announce() -> None:
        announced.set()
        if getattr(getattr(dispatcher, "_cache", None), "state", None) == "loading":
            report(f"loading {what} from the cache...")
        else:
            report(f"compiling {what} (once per machine; cached after this)...")

    timer = threading.Timer(0.5, announce) if report else None
    started = time.perf_counter()
    if timer:
        timer.daemon = True
        timer.start()
    try:
        dispatcher.compile(signature)
    except CacheError:
        raise
    except Exception as exc:
        raise CompileError(f"Numba could not compile the generated source: {exc}") from exc
    finally:
        if timer:
            timer.cancel()
    seconds = time.perf_counter() - started
    compiled = sum(dispatcher.stats.cache_misses.values()) > misses
    if report and announced.is_set():
        report(f"compiled {what} in {seconds:.1f} s" if compiled
               else f"loaded {what} from the cache in {seconds:.1f} s")
    return seconds if compiled else 0.0


# -- the source cache ------------------------------------------------------------------------


def recall(key: str) -> dict | None:
    """The record stored by :func:`remember` under ``key`` with its ``source``, or None (also
    if damaged). The ``sources`` folder is under the folder rule, the record must name ``key``
    itself (a record renamed or swapped with another is ignored), its ``module`` must be the
    bare name derived from its ``digest``, and the module file's content must have that
    digest: a record never leads outside the folder or to another file."""
    if not isinstance(key, str) or not _RECORD_KEY.match(key):
        return None
    folder = cache_dir()
    sources = folder / "sources"
    if not os.path.lexists(sources):
        return None
    _check_folder(sources)  # writable by others, records could be swapped: refused
    try:
        record = json.loads(_read(sources / f"{key}.json", _MAX_RECORD) or b"null")
    except (_Unusable, ValueError, UnicodeDecodeError):
        return None
    if not isinstance(record, dict) or record.get("key") != key:  # a record moved or renamed
        return None
    digest, name = record.get("digest"), record.get("module")
    if not (isinstance(digest, str) and _DIGEST.match(digest) and isinstance(name, str)
            and _MODULE_NAME.match(name) and name == _module_name(digest)):
        return None
    try:
        data = _read(folder / name, _MAX_MODULE)
    except _Unusable:
        return None
    if data is None or hashlib.sha256(data).hexdigest() != digest:
        return None
    try:
        record["source"] = data.decode()
    except UnicodeDecodeError:
        return None
    return record


def remember(key: str, source: str, **fields) -> None:
    """Store which module ``key`` compiled to, so a later compile skips parsing and SymPy
    (skipped with a warning if the folder cannot be written)."""
    digest = _digest(source)
    record = dict(fields, key=key, module=_module_name(digest), digest=digest)
    try:
        folder = _folder(cache_dir() / "sources")
        _write(folder / f"{key}.json", json.dumps(record).encode(), replace=True)
    except CacheError as exc:
        warnings.warn(f"symbp: the source cache was not updated: {exc}", RuntimeWarning,
                      stacklevel=2)
