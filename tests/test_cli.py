"""The command line: exit status 0 on success, 2 on bad input with a message, no traceback."""

from __future__ import annotations

import pytest

from symbp.cli import main


def test_grad_prints_source_value_and_gradients(capsys):
    assert main(["grad", "(x + y) * z", "--at", "x=-2", "y=5", "z=-4", "--no-jit"]) == 0
    out = capsys.readouterr().out
    assert "def value_and_grad(x, y, z):" in out and "# backward pass" in out
    assert "value = -12.0" in out and "dx    = -4.0" in out and "dz    = 3.0" in out


def test_grad_reads_staged_lines_from_a_file(tmp_path, capsys):
    path = tmp_path / "model.sbp"
    path.write_text("q = x + y\nf = q * z\n")
    assert main(["grad", "-f", str(path), "--at", "x=-2", "y=5", "z=-4", "--no-jit"]) == 0
    assert "dq = z" in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["grad", "x + sigmod(y)", "--at", "x=1", "y=2"], "unknown function 'sigmod'"),
    (["grad", "x * y", "--at", "x=1"], "missing value"),
    (["grad", "x * y", "--at", "x=one", "y=2"], "not a number"),
    (["grad", "x * y", "--at", "x=1", "y=2", "w=3"], "unknown input"),
    (["grad", "-f", "/nonexistent/model.sbp"], "cannot read"),
])
def test_bad_input_exits_2_with_a_message(argv, message, capsys):
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("symbp: error:") and message in err and "Traceback" not in err


def test_parse_error_keeps_its_caret_block(capsys):
    assert main(["grad", "x + sigmod(y)"]) == 2
    assert "^^^^^^" in capsys.readouterr().err


def test_bare_symbp_prints_help(capsys):
    assert main([]) == 0
    assert "grad" in capsys.readouterr().out
