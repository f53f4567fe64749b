"""Generated source -> a real module file in a per-user cache folder -> ``numba.njit``.

The file is named by the SHA-256 of its source. It is written atomically and only if absent
(rewriting would change its mtime, which invalidates Numba's on-disk cache), and its content is
checked against the name before it is imported, since importing a file runs it. A real file lets
tracebacks, ``inspect`` and pdb show the generated lines, and lets Numba's ``cache=True`` work
across processes (code made by ``exec`` cannot be cached: numba issue 3501).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import types
from pathlib import Path

import numba

from .errors import CompileError
from .naming import KERNEL_NAME

_loaded: dict[str, types.ModuleType] = {}
_compiled: dict[tuple[str, tuple], object] = {}


def cache_dir() -> Path:
    """The folder of generated modules: ``$SYMBP_CACHE_DIR``, else ``$XDG_CACHE_HOME/symbp`` or
    ``~/.cache/symbp`` (0700)."""
    configured = os.environ.get("SYMBP_CACHE_DIR")
    if configured:
        path = Path(configured)
    else:
        base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
        path = Path(base) / "symbp"
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def _digest(source: str) -> str:
    return hashlib.sha256(source.encode()).hexdigest()


def module_path(source: str) -> Path:
    """Where the module for ``source`` lives."""
    return cache_dir() / f"symbp_{_digest(source)[:32]}.py"


def _write_if_absent(path: Path, source: str) -> None:
    data = source.encode()
    if path.exists():
        if hashlib.sha256(path.read_bytes()).hexdigest() == _digest(source):
            return
        path.unlink()  # corrupt or tampered: replace it (and any stale Numba cache)
        for stale in (path.parent / "__pycache__").glob(f"{path.stem}*"):
            stale.unlink(missing_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".py")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        try:
            os.link(tmp, path)  # atomic, and never replaces a file another process just wrote
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)


def load(source: str) -> types.ModuleType:
    """Import the module for ``source`` (written to the cache folder first if needed)."""
    key = _digest(source)
    if key in _loaded:
        return _loaded[key]
    path = module_path(source)
    _write_if_absent(path, source)
    if hashlib.sha256(path.read_bytes()).hexdigest() != key:
        raise CompileError(f"generated module {path} changed while loading; try again")
    name = path.stem
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        del sys.modules[name]
        raise CompileError(f"generated module {path} failed to import: {exc}") from exc
    _loaded[key] = module
    return module


def njit(source: str, signature: tuple | None, name: str = KERNEL_NAME,
         parallel: bool = False) -> object:
    """Function ``name`` of ``source`` compiled by Numba for ``signature`` (argument types).

    Compiled eagerly when a signature is given (else at the first call, per argument types),
    cached on disk (``cache=True``) and in memory. ``error_model="numpy"``
    gives IEEE results (1/0 = inf) instead of raising, as array code does. A corrupt on-disk
    cache entry is deleted and the kernel compiled again.
    """
    key = (_digest(source), signature, name, parallel)
    if key in _compiled:
        return _compiled[key]
    func = getattr(load(source), name)
    try:
        kernel = numba.njit(signature, cache=True, error_model="numpy", parallel=parallel)(func)
    except Exception:  # noqa: BLE001  a damaged cache file: drop this module's entries and compile afresh
        for stale in (module_path(source).parent / "__pycache__").glob(
                f"{module_path(source).stem}*.nb*"):
            stale.unlink(missing_ok=True)
        try:
            kernel = numba.njit(signature, cache=True, error_model="numpy", parallel=parallel)(func)
        except Exception as exc:
            raise CompileError(f"Numba could not compile the generated source: {exc}") from exc
    _compiled[key] = kernel
    return kernel


def recall(key: str) -> dict | None:
    """The record stored by :func:`remember` under ``key``, or None (also if damaged)."""
    path = cache_dir() / "sources" / f"{key}.json"
    try:
        record = json.loads(path.read_text())
        source = (cache_dir() / record["module"]).read_text()
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not isinstance(record, dict) or _digest(source) != record.get("digest"):
        return None
    record["source"] = source
    return record


def remember(key: str, source: str, **fields) -> None:
    """Store which module ``key`` compiled to, so a later compile skips parsing and SymPy."""
    folder = cache_dir() / "sources"
    folder.mkdir(mode=0o700, exist_ok=True)
    record = dict(fields, module=module_path(source).name, digest=_digest(source))
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=".json")
    with os.fdopen(fd, "w") as handle:
        json.dump(record, handle)
    os.replace(tmp, folder / f"{key}.json")
