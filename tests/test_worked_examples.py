"""The worked examples of ../shared/reference/worked-examples.md, to 1e-9 relative."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import check_gradient, compiled

import symbp
from symbp.bench import EXPR, STAGED

REL = 1e-9
GOLDEN = Path(__file__).parent / "golden"

CS231N_STAGED = STAGED  # the notes' 8 staged lines (worked examples, section 3)
CS231N = EXPR


def approx(expected):
    return pytest.approx(expected, rel=REL)


def test_1_smallest_circuit(jit):
    f = compiled("(x + y) * z", jit)
    value, grads = f.value_and_grad(x=-2, y=5, z=-4)
    assert value == approx(-12)
    assert grads == {"x": approx(-4), "y": approx(-4), "z": approx(3)}


def test_1_gate_roles(jit):
    """add distributes, mul switches, max routes."""
    assert compiled("x + y", jit).grad(3.0, -7.0) == {"x": 1.0, "y": 1.0}
    assert compiled("x * y", jit).grad(3.0, -7.0) == {"x": -7.0, "y": 3.0}
    assert compiled("max(x, y)", jit).grad(3.0, -7.0) == {"x": 1.0, "y": 0.0}


NEURON_AT = dict(w0=2.0, w1=-3.0, w2=-3.0, x0=-1.0, x1=-2.0)
NEURON_VALUE = 0.731058578630
NEURON_GRAD = {"w0": -0.196611933241, "w1": -0.393223866483, "w2": 0.196611933241,
               "x0": 0.393223866483, "x1": -0.589835799724}
NEURON_FORMS = {
    "primitive": "1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))",
    "fused": "sigmoid(w0*x0 + w1*x1 + w2)",
    "custom": "logistic(w0*x0 + w1*x1 + w2)",
}


@pytest.mark.parametrize("form", NEURON_FORMS)
def test_2_sigmoid_neuron(form, jit):
    symbp.gate("logistic", "1 / (1 + exp(-a))")
    f = compiled(NEURON_FORMS[form], jit)
    value, grads = f.value_and_grad(**NEURON_AT)
    assert value == pytest.approx(NEURON_VALUE, rel=1e-11)
    assert grads == {k: pytest.approx(v, rel=1e-11) for k, v in NEURON_GRAD.items()}


def test_2_decompositions_identical():
    results = [compiled(form, True).value_and_grad(**NEURON_AT) for form in NEURON_FORMS.values()]
    for value, grads in results[1:]:
        assert value == pytest.approx(results[0][0], rel=1e-15)
        assert grads == {k: pytest.approx(v, rel=1e-15) for k, v in results[0][1].items()}


def test_2_fused_gate_reuses_its_output():
    primitive = compiled(NEURON_FORMS["primitive"], False).source
    fused = compiled(NEURON_FORMS["fused"], False).source
    # primitive: local gradients -1/x**2 (as -out**2), 1, e**x (as out), -1
    assert "(-f**2) * df" not in primitive and "-f**2" in primitive
    assert "dexp" in primitive and "dneg" in primitive
    # fused: one gate, sigmoid'(x) from its cached output s (s*(1 - s) off the tails)
    code = "\n".join(line.split("#")[0] for line in fused.splitlines())
    assert "sigmoid_grad(sum2, f)" in code and "exp" not in code


def test_3_cs231n_expression(jit):
    f = compiled(CS231N, jit)
    assert f.inputs == ("x", "y")
    assert f(3.0, -4.0) == approx(1.54564488411)
    assert f.grad(x=3.0, y=-4.0) == {"x": approx(2.05956979557), "y": approx(1.59223275148)}


def test_3_cs231n_staged(jit):
    f = compiled(CS231N_STAGED, jit, inputs=("x", "y"))
    value, grads = f.value_and_grad(3.0, -4.0)
    assert value == approx(1.54564488411)
    assert grads == {"x": approx(2.05956979557), "y": approx(1.59223275148)}


def test_3_cs231n_staged_source_is_the_notes():
    """Golden test: the staged lines give the notes' backward pass."""
    f = compiled(CS231N_STAGED, False, inputs=("x", "y"))
    expected = (GOLDEN / "cs231n_staged.py").read_text()
    # line 1 is the generator's stamp (version, runtime hash); everything after is compared
    assert f.source.split("\n", 1)[1] == expected.split("\n", 1)[1]
    backward = f.source.split("# backward pass")[1]
    for line in ("dnum = invden", "dinvden = num", "dden = (-invden**2) * dinvden",
                 "dsigx = dden", "dxpysqr = dden", "dxpy = (2*xpy) * dxpysqr", "dx = dxpy",
                 "dy = dxpy", "dx += (sigx*(1 - sigx)) * dsigx", "dx += dnum", "dsigy = dnum",
                 "dy += (sigy*(1 - sigy)) * dsigy"):
        assert line in backward


def test_3_staged_inputs_default_to_first_appearance():
    assert compiled(CS231N_STAGED, False).inputs == ("y", "x")


def test_3_generated_source_is_deterministic():
    a = symbp.compile(CS231N, jit=False).source
    b = symbp.compile(CS231N, jit=False).source
    assert a == b


def test_4_apples(jit):
    f = compiled("apple_price * apple_count * tax", jit)
    value, grads = f.value_and_grad(apple_price=100, apple_count=2, tax=1.1)
    assert value == approx(220)
    assert grads == {"apple_price": approx(2.2), "apple_count": approx(110), "tax": approx(200)}


def test_4_apples_and_mandarins(jit):
    f = compiled("(apple_price * apple_count + mandarin_price * mandarin_count) * tax", jit)
    value, grads = f.value_and_grad(apple_price=100, apple_count=2, mandarin_price=150,
                                    mandarin_count=3, tax=1.1)
    assert value == approx(715)
    assert grads == {"apple_price": approx(2.2), "apple_count": approx(110),
                     "mandarin_price": approx(3.3), "mandarin_count": approx(165),
                     "tax": approx(650)}


def test_4_square_through_u(jit):
    f = compiled("u = x + y\nf = u**2", jit)
    for x, y in [(1.0, 2.0), (-3.5, 0.25)]:
        assert f.grad(x, y) == {"x": approx(2 * (x + y)), "y": approx(2 * (x + y))}


def test_6_one_weight_update(jit):
    """E = 1/2 (t1 - sigmoid(w11 o1 + w21 o2))**2, one SGD step with learning rate 0.1."""
    s = 0.942675824101
    f = compiled("0.5 * (t1 - sigmoid(w11*o1 + w21*o2))**2", jit, wrt=("w11", "w21"))
    at = dict(w11=2.0, w21=4.0, o1=0.4, o2=0.5, t1=1.5 + s)
    grads = f.grad(**at)
    assert grads["w11"] == pytest.approx(-0.0324228688538, rel=1e-9)
    assert at["w11"] - 0.1 * grads["w11"] == pytest.approx(2.00324228689, rel=1e-9)


@pytest.mark.parametrize("expr", [CS231N, NEURON_FORMS["primitive"], "u = x + y\nf = u**2"])
def test_examples_against_numerical_gradients(expr):
    f = compiled(expr, False)
    check_gradient(f, [0.3 + 0.1 * k for k in range(len(f.inputs))])
