"""A 2-d sigmoid neuron compiled twice: fused sigmoid gate vs primitive gates (worked example 2).

f(w, x) = 1 / (1 + exp(-(w0*x0 + w1*x1 + w2))) at w = [2, -3, -3], x = [-1, -2].

- Fused: ``sigmoid(w0*x0 + w1*x1 + w2)`` is one sigmoid gate whose local derivative SymPy
  rewrites in terms of the gate's cached output s: ds/dz = s*(1 - s). The backward pass computes
  no exponential at all.
- Split: ``1/(1 + exp(-(...)))`` becomes the primitive gates neg, exp, +1 and 1/x, with local
  derivatives -1, e^x, 1 and -1/x^2 (emitted as -f**2, again from the cached output).

Both give the same numbers. Run it with ``python examples/sigmoid_neuron.py``.
"""

import numpy as np

import symbp

W = {"w0": 2.0, "w1": -3.0, "w2": -3.0}
X = {"x0": -1.0, "x1": -2.0}


def backward_pass(f: symbp.Function) -> str:
    """The backward-pass lines of the generated function."""
    return f.kernel_source.split("# backward pass\n", 1)[1].rstrip()


def report(label: str, f: symbp.Function) -> tuple[float, np.ndarray, np.ndarray]:
    value, grad = f.value_and_grad(**W, **X)
    dw = np.array([grad[k] for k in W])
    dx = np.array([grad[k] for k in X])
    print(f"{label}: backward pass")
    print(backward_pass(f))
    # Rounded to the 12 decimals of the worked example, so the lines stay readable.
    print(f"{label} f  = {value!r}")
    print(f"{label} dw = {np.round(dw, 12).tolist()}")
    print(f"{label} dx = {np.round(dx, 12).tolist()}")
    print()
    return value, dw, dx


def main():
    fused = symbp.compile("sigmoid(w0*x0 + w1*x1 + w2)")
    split = symbp.compile("1/(1 + exp(-(w0*x0 + w1*x1 + w2)))")
    fused_result = report("fused", fused)
    split_result = report("split", split)

    for a, b in zip(fused_result, split_result):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15)
    print("Both decompositions give the same value and gradients.")

    # The fused gate's local gradient is s*(1 - s) of its own output f: nothing is recomputed
    # (sigmoid_grad takes an exponential only in the tail, x > 7, where s*(1 - s) loses digits).
    fused_backward = backward_pass(fused)
    code = [line.split("#")[0].strip() for line in fused_backward.splitlines()]
    assert code[0] == "dsum2 = sigmoid_grad(sum2, f)", fused_backward
    assert "f*(1 - f)" in fused_backward, fused_backward  # the comment says what it computes
    assert not any("exp" in c for c in code), fused_backward
    print(f"The fused sigmoid gate reuses its cached output f ({code[0]}: f*(1 - f), with an "
          "exp only in the tail, x > 7, to stay exact there).")
    print("The split version chains four local gradients (-f**2, 1, exp, -1) to the same result.")


if __name__ == "__main__":
    main()
