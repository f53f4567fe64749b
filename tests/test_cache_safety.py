"""The cache folder is trusted only when it is safe (issue 10, mechanism 2).

Another user who can write the cache folder must not get code run by the next compile; a
damaged or odd cache path gives a CacheError (or a correct fallback), never a raw OSError or a
hang. Most tests use ``jit=False`` or one tiny scalar expression, so they compile little. The
tests that need another owner chown to ``nobody`` (root can, as in CI) and skip otherwise.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import json
import os
import pickle
import signal
import stat
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numba
import numpy as np
import pytest

import symbp
from symbp import function
from symbp import jit as jit_module
from symbp.errors import CacheError, SymbpError

ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
posix_only = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="the folder rule is POSIX")
pytestmark = posix_only


def nobody() -> int:
    """A uid that is not ours, for chown (root only)."""
    if not ROOT:
        pytest.skip("chown to another user needs root (CI runs as root)")
    import pwd

    try:
        return pwd.getpwnam("nobody").pw_uid
    except KeyError:
        pytest.skip("no user 'nobody' on this machine")


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """A fresh private cache folder (0700) and empty in-memory caches."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("SYMBP_CACHE_DIR", str(folder))
    monkeypatch.setattr(jit_module, "_loaded", {})
    monkeypatch.setattr(jit_module, "_compiled", {})
    return folder


class Blocked(BaseException):
    """Not an OSError (or any Exception): no ``except`` in the code under test swallows it."""


@pytest.fixture
def no_hang():
    """Fail (instead of hanging the suite) if the test blocks for 20 s, e.g. on a FIFO: a timer
    thread sends SIGALRM to the main thread (a signal to the process may reach another thread
    and leave the blocked call alone), whose handler raises.
    """
    def expire(signum, frame):
        raise Blocked("blocked: a regression opened a FIFO for reading")

    previous = signal.signal(signal.SIGALRM, expire)
    timer = threading.Timer(20, signal.pthread_kill,
                            (threading.main_thread().ident, signal.SIGALRM))
    timer.start()
    yield
    timer.cancel()
    signal.signal(signal.SIGALRM, previous)


MARKER_CODE = "import pathlib; pathlib.Path({marker!r}).write_text('ran')\n"


def plant_record(folder: Path, expr: str, module_name: str, code: str) -> None:
    """A record for ``expr`` (as compile looks it up) pointing at a module with ``code``."""
    key = function._request_key(expr, None, None, {})
    (folder / "sources").mkdir(mode=0o700, exist_ok=True)
    digest = hashlib.sha256(code.encode()).hexdigest()
    target = Path(module_name) if os.path.isabs(module_name) else folder / module_name
    target.write_text(code)
    record = {"signature": [["x", [], False]], "wrt": ["x"], "key": key, "module": module_name,
              "digest": digest}
    (folder / "sources" / f"{key}.json").write_text(json.dumps(record))


# -- the folder rule -------------------------------------------------------------------------


def test_new_folder_and_missing_parents_are_private(cache):
    nested = cache / "a" / "b"
    os.environ["SYMBP_CACHE_DIR"] = str(nested)
    f = symbp.compile("x + 1", jit=False)
    assert Path(f.path).parent == nested and f(1.0) == 2.0
    for folder in (cache, cache / "a", nested, nested / "sources"):
        assert stat.S_IMODE(os.stat(folder).st_mode) == 0o700, folder


@pytest.mark.parametrize("mode", [0o777, 0o1777, 0o770, 0o720, 0o702])
def test_folder_writable_by_others_is_refused(cache, mode, tmp_path):
    cache.mkdir()
    marker = tmp_path / "ran"
    plant_record(cache, "x + 2", "symbp_" + "0" * 32 + ".py",
                 MARKER_CODE.format(marker=str(marker)))
    os.chmod(cache, mode)
    with pytest.raises(CacheError, match="writable by") as info:
        symbp.compile("x + 2", jit=False)
    assert str(cache) in str(info.value) and f"chmod 700 {cache}" in str(info.value)
    assert not marker.exists()


@pytest.mark.parametrize("where", ["folder", "symlink"])
def test_folder_of_another_owner_is_refused(cache, where, tmp_path):
    uid = nobody()
    foreign = tmp_path / "foreign"
    foreign.mkdir(mode=0o700)
    marker = tmp_path / "ran"
    plant_record(foreign, "x + 3", "symbp_" + "1" * 32 + ".py",
                 MARKER_CODE.format(marker=str(marker)))
    for path in [foreign, *foreign.rglob("*")]:
        os.chown(path, uid, -1)
    if where == "folder":
        os.environ["SYMBP_CACHE_DIR"] = str(foreign)
    else:
        cache.symlink_to(foreign)
    with pytest.raises(CacheError, match="owned by") as info:
        symbp.compile("x + 3", jit=False)
    assert str(foreign) in str(info.value) and "SYMBP_CACHE_DIR" in str(info.value)
    assert not marker.exists()


def test_symlink_to_a_folder_of_ours_is_fine(cache, tmp_path):
    real = tmp_path / "real"
    real.mkdir(mode=0o700)
    cache.symlink_to(real)
    f = symbp.compile("x + 4", jit=False)
    assert Path(f.path).parent == real and f(1.0) == 5.0


@pytest.mark.parametrize("mode", [0o777, 0o1777])
def test_parent_writable_by_everyone_needs_the_sticky_bit(cache, tmp_path, mode):
    parent = tmp_path / "shared"
    parent.mkdir()
    os.chmod(parent, mode)
    os.environ["SYMBP_CACHE_DIR"] = str(parent / "mine")
    if mode & stat.S_ISVTX:  # like /tmp: others cannot rename our folder
        assert symbp.compile("x + 5", jit=False)(1.0) == 6.0
    else:
        with pytest.raises(CacheError, match="sticky") as info:
            symbp.compile("x + 5", jit=False)
        assert str(parent) in str(info.value)


@pytest.mark.parametrize("sub", ["sources", "numba"])
def test_subfolders_follow_the_rule(cache, sub):
    cache.mkdir(mode=0o700)
    folder = cache / (f"numba-{jit_module.ENV_KEY}" if sub == "numba" else sub)
    folder.mkdir(mode=0o777)
    os.chmod(folder, 0o777)
    check = jit_module.numba_cache_dir if sub == "numba" else (
        lambda: jit_module.remember("0" * 32, "x = 1\n", wrt=[]))
    if sub == "numba":
        with pytest.raises(CacheError, match="writable by"):
            check()
    else:
        with pytest.warns(RuntimeWarning, match="writable by"):
            check()
        assert not (folder / f"{'0' * 32}.json").exists()


def test_records_swapped_in_a_shared_sources_folder_are_never_used(cache):
    """Another user who can write sources/ could rename one intact record of ours over another:
    each record names its own key, and a sources/ folder writable by others is refused."""
    assert symbp.compile("x * 2", jit=False)(x=1.0) == 2.0
    assert symbp.compile("x * 3", jit=False)(x=1.0) == 3.0
    jit_module._loaded.clear()
    sources = cache / "sources"
    first, second = sorted(sources.iterdir(), key=lambda p: p.stat().st_mtime_ns)
    swap = sources / "swap"
    first.rename(swap)
    second.rename(first)
    swap.rename(second)
    assert symbp.compile("x * 2", jit=False)(x=1.0) == 2.0  # swapped records: ignored
    assert symbp.compile("x * 3", jit=False)(x=1.0) == 3.0
    os.chmod(sources, 0o777)
    with pytest.raises(CacheError, match="writable by"):
        symbp.compile("x * 2", jit=False)


@pytest.mark.parametrize("what", ["file", "below a file", "dangling symlink"])
def test_cache_dir_that_is_not_a_folder(cache, tmp_path, what):
    afile = tmp_path / "afile"
    afile.write_text("not a folder")
    if what == "file":
        os.environ["SYMBP_CACHE_DIR"] = str(afile)
    elif what == "below a file":
        os.environ["SYMBP_CACHE_DIR"] = str(afile / "cache")
    else:
        cache.symlink_to(tmp_path / "gone")
    with pytest.raises(CacheError) as info:
        symbp.compile("x + 6", jit=False)
    assert str(cache if what == "dangling symlink" else afile) in str(info.value)


# -- records and modules ---------------------------------------------------------------------


@pytest.mark.parametrize("name", ["absolute", "dotdot", "separator", "not derived"])
def test_record_never_leads_to_another_file(cache, tmp_path, name):
    cache.mkdir(mode=0o700)
    marker = tmp_path / "ran"
    code = MARKER_CODE.format(marker=str(marker)) + "def value_and_grad(x):\n    return 0.0, 0.0\n"
    outside = tmp_path / "outside"
    outside.mkdir()
    module = {"absolute": str(outside / "evil.py"), "dotdot": "../outside/evil.py",
              "separator": "sub/evil.py", "not derived": "symbp_" + "2" * 32 + ".py"}[name]
    if name == "separator":
        (cache / "sub").mkdir()
    plant_record(cache, "x * 7", module, code)
    f = symbp.compile("x * 7", jit=False)
    assert not marker.exists()
    assert f.timings.keys() >= {"parse"} and f(2.0) == 14.0


def test_planted_pyc_is_never_used(cache, tmp_path):
    f = symbp.compile("x * 8", jit=False)
    marker = tmp_path / "ran"
    path = Path(f.path)
    code = compile(MARKER_CODE.format(marker=str(marker)), str(path), "exec")
    st = os.stat(path)
    pyc = Path(importlib.util.cache_from_source(str(path)))
    pyc.parent.mkdir(exist_ok=True)
    pyc.write_bytes(importlib._bootstrap_external._code_to_timestamp_pyc(
        code, int(st.st_mtime), st.st_size))
    jit_module._loaded.clear()
    g = symbp.compile("x * 8", jit=False)
    assert g(2.0) == 16.0 and not marker.exists()
    assert list(path.parent.rglob("*.pyc")) == [pyc]  # symbp writes no bytecode of its own


@pytest.mark.parametrize("what", ["fifo", "dangling symlink", "foreign file"])
def test_odd_thing_at_a_module_path_is_replaced(cache, tmp_path, what, no_hang):
    f = symbp.compile("x * 9", jit=False)
    path = Path(f.path)
    path.unlink()
    if what == "fifo":
        os.mkfifo(path, 0o600)
    elif what == "dangling symlink":
        path.symlink_to(tmp_path / "gone.py")
    else:
        path.write_text(f.source)
        os.chown(path, nobody(), -1)
    jit_module._loaded.clear()
    g = symbp.compile("x * 9", jit=False)
    assert g(2.0) == 18.0
    assert stat.S_ISREG(os.lstat(path).st_mode) and path.read_text() == g.source
    assert os.lstat(path).st_uid == os.geteuid()


def test_folder_at_a_module_path_is_an_error(cache):
    f = symbp.compile("x * 10", jit=False)
    path = Path(f.path)
    path.unlink()
    path.mkdir()
    jit_module._loaded.clear()
    with pytest.raises(CacheError, match="is a folder") as info:
        symbp.compile("x * 10", jit=False)
    assert str(path) in str(info.value)


def test_fifo_at_a_record_path_is_skipped(cache, no_hang):
    symbp.compile("x * 11", jit=False)
    record = next((cache / "sources").glob("*.json"))
    record.unlink()
    os.mkfifo(record, 0o600)
    jit_module._loaded.clear()
    g = symbp.compile("x * 11", jit=False)
    assert "parse" in g.timings and g(1.0) == 11.0
    assert stat.S_ISREG(os.lstat(record).st_mode)  # remember() wrote a new one


# -- full disk, read-only folder -------------------------------------------------------------


def leftovers(folder: Path) -> list:
    return [p for p in folder.rglob("*") if p.name.startswith(".tmp-") or ".tmp." in p.name]


def test_full_disk_is_a_clear_error_and_leaves_no_temporary_file(cache, monkeypatch):
    symbp.compile("x * 12", jit=False)  # the folder exists
    def full(fd, data):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(jit_module, "_write_all", full)
    with pytest.raises(CacheError, match="No space left on device") as info:
        symbp.compile("x * 13", jit=False)
    assert "free some space" in str(info.value) and str(cache) in str(info.value)
    assert leftovers(cache) == []


def test_read_only_folder(cache, monkeypatch):
    f = symbp.compile("x * 14", jit=False)
    jit_module._loaded.clear()
    if ROOT:  # root writes anywhere: make the writes fail as a read-only mount does
        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, os.strerror(errno.EROFS))

        monkeypatch.setattr(tempfile, "mkstemp", read_only)
    else:
        os.chmod(cache, 0o500)
    try:
        assert symbp.compile("x * 14", jit=False)(2.0) == 28.0  # what is there still loads
        with pytest.raises(CacheError, match="cannot write") as info:
            symbp.compile("x * 15", jit=False)
        assert str(cache) in str(info.value)
    finally:
        os.chmod(cache, 0o700)
    assert leftovers(cache) == [] and f(1.0) == 14.0


# -- Numba's cache ---------------------------------------------------------------------------


SCALAR = "x * y + 17"  # the one scalar expression this file compiles with Numba


def numba_files(source: str) -> list[Path]:
    stem = jit_module.module_path(source).stem
    return sorted(jit_module.numba_cache_dir().glob(f"{stem}.*.nb*"))


def test_planted_index_pickle_never_runs(cache, tmp_path):
    uid = nobody()
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "ran"))

    f = symbp.compile(SCALAR)
    index = next(p for p in numba_files(f.source) if p.suffix == ".nbi")
    index.write_bytes(pickle.dumps(Payload()))
    os.chown(index, uid, -1)  # planted by someone else (only root can, in a private folder)
    jit_module._loaded.clear()
    jit_module._compiled.clear()
    g = symbp.compile(SCALAR)
    assert g(2.0, 3.0) == 23.0 and not marker.exists()
    assert os.stat(index).st_uid == os.geteuid()  # removed, then written afresh


def test_planted_index_in_a_shared_folder_is_never_read(cache, tmp_path):
    marker = tmp_path / "ran"

    class Payload:
        def __reduce__(self):
            return (Path.write_text, (marker, "ran"))

    f = symbp.compile("x * 18", jit=False)
    folder = jit_module.numba_cache_dir()
    base = f"{Path(f.path).stem}.value_and_grad-{f.kernel.__code__.co_firstlineno}"
    (folder / f"{base}.py{sys.version_info[0]}{sys.version_info[1]}.nbi").write_bytes(
        pickle.dumps(Payload()))
    os.chmod(cache, 0o777)
    jit_module._loaded.clear()
    try:
        with pytest.raises(CacheError):
            symbp.compile("x * 18")
    finally:
        os.chmod(cache, 0o700)
    assert not marker.exists()


def test_fifo_at_the_numba_index_path(cache, no_hang):
    f = symbp.compile(SCALAR)
    index = next(p for p in numba_files(f.source) if p.suffix == ".nbi")
    index.unlink()
    os.mkfifo(index, 0o600)
    jit_module._loaded.clear()
    jit_module._compiled.clear()
    assert symbp.compile(SCALAR)(1.0, 2.0) == 19.0
    assert stat.S_ISREG(os.lstat(index).st_mode)


def test_full_disk_while_saving_numba_cache_warns_and_works(cache, monkeypatch):
    def full(self, filepath):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(jit_module._IndexFile, "_open_for_write", full)
    with pytest.warns(RuntimeWarning, match="No space left"):
        f = symbp.compile(SCALAR)
    assert f(1.0, 1.0) == 18.0 and numba_files(f.source) == [] and leftovers(cache) == []


def test_numba_cache_ignores_numba_cache_dir(cache, tmp_path, monkeypatch):
    elsewhere = tmp_path / "numba-elsewhere"
    monkeypatch.setattr(numba.config, "CACHE_DIR", str(elsewhere))
    f = symbp.compile(SCALAR)
    assert f.kernel.stats.cache_path == str(jit_module.numba_cache_dir())
    assert numba_files(f.source) and not elsewhere.exists()


ARRAY = ("sum(X * 3)", {"X": ("B",)})


@pytest.mark.parametrize("damage", [".nbi", ".nbc"])
def test_damaged_numba_cache_of_an_array_function_recompiles(cache, damage):
    """A garbled index or a truncated data file: compiled again at the first call (array
    functions compile lazily), not UnpicklingError in this process and every later one."""
    expr, shapes = ARRAY
    X = np.arange(4.0)
    f = symbp.compile(expr, shapes=shapes)
    assert f(X=X) == 18.0  # compiled at the first call, saved to Numba's cache
    files = numba_files(f.source)
    assert {p.suffix for p in files} == {".nbi", ".nbc"}
    for p in files:
        if p.suffix == damage:
            data = p.read_bytes()
            p.write_bytes(b"\x80\x04garbage" * 5 if damage == ".nbi" else data[:len(data) // 3])
    jit_module._loaded.clear()
    jit_module._compiled.clear()
    g = symbp.compile(expr, shapes=shapes)
    assert g(X=X) == 18.0
    assert g.kernel.stats.cache_misses and not g.kernel.stats.cache_hits
    jit_module._compiled.clear()
    h = symbp.compile(expr, shapes=shapes)
    assert h(X=X) == 18.0 and h.kernel.stats.cache_hits  # the rewritten entry is good


def test_damaged_index_of_an_mlp_epoch_recompiles(cache):
    """The epoch uses the same cache as every kernel: a damaged index is dropped at load
    (checked without compiling the epoch, which takes tens of seconds)."""
    from symbp.nn import compiled

    epoch = compiled.network(1, "logistic", "sigmoid_cross_entropy", False).run()
    assert isinstance(epoch._cache, jit_module._Cache)
    epoch._cache.flush()  # an empty index at the real path
    index = Path(epoch._cache._cache_file._index_path)
    assert index.parent == jit_module.numba_cache_dir()
    index.write_bytes(index.read_bytes()[:7])
    sig = (numba.float64[:, :],)
    assert epoch._cache.load_overload(sig, epoch.targetctx) is None and not index.exists()


def test_environment_key_covers_what_decides_the_compiled_code(monkeypatch):
    env = jit_module._environment()
    for part in (numba.__version__, np.__version__, sys.version, symbp.__version__):
        assert part in env
    assert jit_module.ENV_KEY in str(jit_module.numba_cache_dir())
    monkeypatch.setattr(jit_module.runtime, "BLAS", not jit_module.runtime.BLAS)
    assert jit_module._environment() != env


def test_environment_without_scipy_shares_a_folder_safely(tmp_path):
    """One cache folder, two environments (with and without SciPy): the second never reuses the
    first's source or compiled code (with the real SciPy gone that code aborted the process)."""
    env = {**os.environ, "SYMBP_CACHE_DIR": str(tmp_path / "cache")}
    script = """
import sys
if sys.argv[1] == "hide":
    import importlib.util
    find_spec = importlib.util.find_spec
    importlib.util.find_spec = lambda n, *r: None if n == "scipy" else find_spec(n, *r)
import symbp
from symbp import jit
f = symbp.compile("x * 19", jit=False)
print(jit.runtime.BLAS, "no BLAS" in f.source, jit.numba_cache_dir().name, sorted(f.timings))
"""
    runs = [subprocess.run([sys.executable, "-c", script, how], env=env, capture_output=True,
                           text=True, timeout=120) for how in ("show", "hide")]
    assert all(r.returncode == 0 for r in runs), [r.stderr for r in runs]
    (blas1, plain1, folder1, _), (blas2, plain2, folder2, _) = \
        [r.stdout.split(maxsplit=3) for r in runs]
    if blas1 == "False":
        pytest.skip("SciPy is not installed: both runs are without BLAS")
    assert (blas1, plain1, blas2, plain2) == ("True", "False", "False", "True")
    assert folder1 != folder2


def test_every_cache_failure_is_a_symbp_error():
    assert issubclass(CacheError, SymbpError)
