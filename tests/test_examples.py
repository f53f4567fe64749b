"""Every script in examples/ runs and prints the worked examples' figures.

Scripts are discovered, so a new example is tested by adding its file. Each runs in-process as
``__main__`` (its own asserts run too) and the figures it prints are parsed and compared with
those of the worked examples (docs: /work/shared/reference/worked-examples.md).
"""

from __future__ import annotations

import ast
import re
import runpy
from pathlib import Path

import numpy as np
import pytest

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
SCRIPTS = sorted(EXAMPLES.glob("*.py"))
REQUIRED = ("cs231n_staged", "sigmoid_neuron", "vectorized_norm", "custom_gate", "xor",
            "digits", "custom_loss")
# Packages an example may need beyond symbp's own dependencies: skipped, not failed, without.
OPTIONAL = {"sklearn"}
RTOL = 1e-9


def printed(out: str, label: str):
    """The value printed on the line ``label = value`` (a number or a list of numbers)."""
    match = re.search(rf"^{re.escape(label)}\s*=\s*(.+)$", out, re.MULTILINE)
    assert match, f"no line {label!r} = ... in the output:\n{out}"
    return ast.literal_eval(match.group(1).strip())


def close(got, expected) -> None:
    np.testing.assert_allclose(np.asarray(got, dtype=float), expected, rtol=RTOL, atol=0)


def check_cs231n_staged(out: str) -> None:
    # Worked example 3.
    close(printed(out, "f(3, -4)"), 1.54564488411)
    close(printed(out, "df/dx"), 2.05956979557)
    close(printed(out, "df/dy"), 1.59223275148)
    assert "# backward pass" in out


def check_sigmoid_neuron(out: str) -> None:
    # Worked example 2: the fused and the split circuit print the same figures.
    for label in ("fused", "split"):
        close(printed(out, f"{label} f"), 0.731058578630)
        close(printed(out, f"{label} dw"), [-0.196611933241, -0.393223866483, 0.196611933241])
        close(printed(out, f"{label} dx"), [0.393223866483, -0.589835799724])


def check_vectorized_norm(out: str) -> None:
    # Worked example 5.
    close(printed(out, "f"), 0.116)
    close(printed(out, "dW"), [[0.088, 0.176], [0.104, 0.208]])
    close(printed(out, "dx"), [-0.112, 0.636])


def check_xor(out: str) -> None:
    assert printed(out, "accuracy") == 1.0


def check_digits(out: str) -> None:
    assert printed(out, "test accuracy") >= 0.95


def check_custom_loss(out: str) -> None:
    losses = [float(v) for v in re.findall(r"^step\s+\d+\s+huber loss\s+(\S+)$", out, re.M)]
    assert len(losses) >= 2 and losses[-1] < losses[0], out


CHECKS = {name[len("check_"):]: check for name, check in globals().items()
          if name.startswith("check_")}


def test_required_examples_exist():
    missing = set(REQUIRED) - {path.stem for path in SCRIPTS}
    assert not missing, f"missing examples: {sorted(missing)}"


def test_every_example_is_checked_or_self_checking():
    # A script without figures to parse must at least say how to run it and guard main().
    for path in SCRIPTS:
        text = path.read_text()
        assert ast.get_docstring(ast.parse(text)), f"{path.name}: no module docstring"
        assert f"python examples/{path.name}" in text, f"{path.name}: docstring says no command"
        assert 'if __name__ == "__main__":' in text, f"{path.name}: no __main__ guard"


@pytest.mark.parametrize("path", SCRIPTS, ids=[path.stem for path in SCRIPTS])
def test_example(path: Path, capsys):
    try:
        runpy.run_path(str(path), run_name="__main__")
    except ModuleNotFoundError as exc:
        if exc.name not in OPTIONAL:
            raise
        pytest.skip(f"{path.name} needs {exc.name}")
    out = capsys.readouterr().out
    assert out.strip(), f"{path.name} printed nothing"
    check = CHECKS.get(path.stem)
    if check is not None:
        check(out)
