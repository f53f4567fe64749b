"""A custom fused gate: mish(a) = a * tanh(softplus(a)), registered with ``symbp.gate``.

``symbp.gate(name, formula)`` adds a gate to the table: the formula is parsed safely, SymPy
derives its local derivative once, and the gate is then one node in any graph, like sigmoid.
Here mish (a smooth ReLU-like activation) is used in a neuron mish(w*x + b); the printed source
shows the fused gate's SymPy-derived derivative in the backward pass, and the script checks the
gradient against central differences at a few points.

Run it with ``python examples/custom_gate.py``.
"""

import numpy as np

import symbp


def main():
    symbp.gate("mish", "a * tanh(softplus(a))")
    f = symbp.compile("mish(w*x + b)", inputs=["w", "x", "b"])
    print("The generated function (f.kernel_source; f.source is the whole module):\n")
    print(f.kernel_source)

    backward = f.kernel_source.split("# backward pass\n", 1)[1]
    local = [line.strip() for line in backward.splitlines() if "mish:" in line]
    assert local, backward
    print("The local derivative of the fused mish gate, derived by SymPy:")
    print("   ", local[0])
    print()

    # Central differences at points on both sides of zero and at zero itself.
    h = 1e-6
    points = [(0.5, -1.2, 0.3), (2.0, 1.5, -0.5), (-1.0, 3.0, 1.0), (0.0, 0.7, 0.0)]
    print(f"{'w':>6} {'x':>6} {'b':>6} | {'f':>11}"
          + "".join(f"  {'df/d' + name:>11}" for name in f.inputs) + " | max error")
    for point in points:
        value, grad = f.value_and_grad(*point)
        analytic = np.array([grad[name] for name in f.inputs])
        numeric = np.empty(3)
        for k in range(3):
            up, down = list(point), list(point)
            up[k] += h
            down[k] -= h
            numeric[k] = (f(*up) - f(*down)) / (2 * h)
        error = np.max(np.abs(analytic - numeric))
        print(f"{point[0]:6.2f} {point[1]:6.2f} {point[2]:6.2f} | {value:11.8f}"
              + "".join(f"  {g:11.8f}" for g in analytic) + f" | {error:.1e}")
        np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-8)
    print("The gradient of the custom gate matches central differences.")


if __name__ == "__main__":
    main()
