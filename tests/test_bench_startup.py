"""`symbp bench --startup` and `--blas-threads`: the pure parts (no long measurements, no
timing assertions): parsing the children's figures, the tables, recording in the docs."""

from __future__ import annotations

import sys

import pytest

from symbp import bench, bench_startup
from symbp.bench_startup import BEGIN, END, MARK, SECTION, Row, Run

SCRIPTS = ("SKLEARN_SCRIPT", "CLI_COUNTED_SCRIPT", "CLI_SCRIPT", "FIT_SCRIPT", "JAX_SCRIPT",
           "IMPORT_SCRIPT", "COMPILE_SCRIPT", "CV_SCRIPT")


@pytest.mark.parametrize("name", SCRIPTS)
def test_child_scripts_are_python(name):
    script = getattr(bench_startup, name)
    compile(script, name, "exec")
    assert name == "CLI_SCRIPT" or MARK in script  # every other one prints its figures


def test_parse_child_takes_the_last_marked_line():
    out = f"progress\n{MARK}{{\"a\": 1}}\nmore output\n{MARK}{{\"a\": 2, \"b\": [1]}}\n"
    assert bench_startup.parse_child(out) == {"a": 2, "b": [1]}
    with pytest.raises(ValueError, match="no figures"):
        bench_startup.parse_child("symbp: error: something\n")


def test_bench_shares_the_child_helpers():
    assert bench.run_child is bench_startup.run_child
    assert bench.child_environment is bench_startup.child_environment


def test_child_environment_extra_sets_and_removes(monkeypatch, tmp_path):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "4")
    env = bench_startup.child_environment(str(tmp_path), {"OPENBLAS_NUM_THREADS": None,
                                                          "SYMBP_BLAS_THREADS": "keep"})
    assert "OPENBLAS_NUM_THREADS" not in env and env["SYMBP_BLAS_THREADS"] == "keep"
    assert env["SYMBP_CACHE_DIR"] == str(tmp_path)


def test_a_child_is_timed_and_parsed(tmp_path):
    """The one child run here: `import symbp` in a new process (a second or so)."""
    tmp_path.chmod(0o700)
    run = bench_startup.timed(bench_startup.IMPORT_SCRIPT, [], str(tmp_path))
    assert run.code == 0 and run.seconds > run.figures["import"] > 0
    assert set(run.figures["loaded"]) == set(bench_startup._HEAVY)
    with pytest.raises(RuntimeError, match="exited 3"):
        bench_startup.timed("import sys; sys.exit(3)", [], str(tmp_path))


def test_the_listener_counts_nested_compilations_once_in_time():
    """The children's numba:compile listener, run here on two trivial functions."""
    import numba
    from numba.core import event

    space: dict = {}
    exec(bench_startup._LISTENER, space)
    compiles = space["compiles"]

    @numba.njit
    def inner(x):
        return x + 1

    @numba.njit
    def outer(x):
        return inner(x) * 2

    with event.install_listener("numba:compile", compiles):
        assert outer(20) == 42
    figures = compiles.figures()
    assert figures["compiles"] == 2  # outer, and inner while outer is typed
    assert figures["compiled"] == {
        "test_the_listener_counts_nested_compilations_once_in_time.<locals>.outer": 1,
        "test_the_listener_counts_nested_compilations_once_in_time.<locals>.inner": 1}
    assert figures["compile_seconds"] > 0 and not compiles.open


def _rows():
    return [Row("sklearn", "scikit-learn", 2.0, "reference"),
            Row("cold", "cold", 5.0, "<= 2x", compiles="54 (30.0 s)"),
            Row("warm", "warm", 1.5, "<= 1x", compiles="0 (0.0 s)"),
            Row("width", "width", 1.8, "<= 1x, no compiling", compiles="3 (1.0 s)"),
            Row("depth", "depth", 4.0, "<= 3 s compiling", met=True, note="2.5 s over"),
            Row("jax", "JAX", None, note="not installed"),
            Row("help", "help", 0.4, "< 0.5 s", met=True)]


def test_ratios_are_to_scikit_learn():
    ratio = bench_startup.ratios(_rows())
    assert ratio["sklearn"] == 1.0 and ratio["cold"] == 2.5 and ratio["help"] == 0.2
    assert ratio["jax"] is None


def test_table_judges_ratio_targets_and_keeps_the_others():
    lines = bench_startup.table(_rows()).splitlines()
    assert lines[0].startswith("| measurement | seconds | vs scikit-learn | target | met |")
    cells = {line.split(" | ")[0].lstrip("| "): line.split(" | ") for line in lines[2:]}
    assert cells["scikit-learn"][1:5] == ["2.00", "1.00x", "reference", ""]
    assert cells["cold"][1:5] == ["5.00", "2.50x", "<= 2x", "**no**"]
    assert cells["warm"][1:5] == ["1.50", "0.75x", "<= 1x", "yes"]
    assert cells["width"][4] == "**no**"  # fast enough, but it compiled
    assert cells["depth"][4] == "yes" and cells["depth"][6] == "2.5 s over |"
    assert cells["JAX"][1:5] == ["—", "—", "—", ""]
    assert cells["help"][4] == "yes"


@pytest.mark.parametrize("target, limit", [("<= 2x", 2.0), ("<= 1x, no compiling", 1.0),
                                           ("<= 3 s compiling", None), ("< 0.5 s", None),
                                           ("reference", None), ("", None)])
def test_ratio_limit(target, limit):
    assert bench_startup._ratio_limit(target) == limit


def test_write_section_appends_then_replaces_only_between_the_markers():
    page = "# Benchmarks\n\n## Other\n\ntext\n"
    first = bench_startup.write_section(page, "table one")
    assert first.startswith(page.rstrip("\n")) and SECTION in first
    assert f"{BEGIN}\ntable one\n{END}\n" in first
    edited = first.replace(BEGIN, "Hand-written notes before.\n\n" + BEGIN) + "\n## Next\n"
    second = bench_startup.write_section(edited, "table two\n")
    assert "table one" not in second and f"{BEGIN}\ntable two\n{END}" in second
    assert "Hand-written notes before." in second and second.endswith("\n## Next\n")
    assert second.count(SECTION) == 1


def test_the_docs_page_holds_the_markers_once():
    text = bench_startup.DOCS.read_text(encoding="utf-8")
    assert text.count(BEGIN) == 1 and text.count(END) == 1
    assert text.index(BEGIN) < text.index(END)


@pytest.mark.parametrize("argv, message", [
    (["--startup", "--only", "bogus"], "--only takes"),
    (["--startup", "--only", "help", "--write"], "--write records a whole run"),
])
def test_bench_startup_refuses_bad_options_before_measuring(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2 and message in capsys.readouterr().err


def test_cv_table():
    def run(seconds):
        return Run(seconds, 0, {"accuracy": 0.9, "blas_threads": [1]})

    best = {}
    for k, env in enumerate(bench_startup.ENVIRONMENTS):
        for mode in bench_startup.MODES:
            best[("symbp", env, mode)] = run(1.0 + k)
            if not env.startswith("SYMBP"):
                best[("sklearn", env, mode)] = run(2.0)
    lines = bench_startup.cv_table(best).splitlines()
    assert len(lines) == 2 + 3 + 2
    assert lines[2].startswith("| symbp `MLPClassifier` | as set (symbp limits them")
    assert lines[2].endswith("| 1.00 s (0.50x) | 1.00 s (0.50x) | 1.00 s (0.50x) |")
    assert "`SYMBP_BLAS_THREADS=keep`" in lines[4] and "3.00 s (1.50x)" in lines[4]
    assert lines[5].startswith("| scikit-learn `MLPClassifier` | as set |")


def test_header_names_the_command_and_the_versions():
    line = bench_startup.header(12.3, 0.25)
    assert "`symbp bench --startup` (12 s)" in line and "numba " in line
    assert "other processes kept 25% of the CPUs busy" in line
    assert sys.version.split()[0] in line


def test_jax_row_without_jax_or_when_it_fails():
    assert bench_startup._jax_row({"missing": True}).note == "not installed"
    row = bench_startup._jax_row({"failed": "ImportError: jaxlib"})
    assert row.seconds is None and row.note == "failed: ImportError: jaxlib"
    row = bench_startup._jax_row({"compile": 0.6, "first": 0.61, "later": 0.01,
                                  "version": "0.10"})
    assert row.seconds == 0.6 and "first call 0.61 s" in row.note
