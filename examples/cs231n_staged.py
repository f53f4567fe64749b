"""The CS231n staged example, written as staged lines (worked example 3).

f(x, y) = (x + sigmoid(y)) / (sigmoid(x) + (x + y)**2) at x = 3, y = -4, one gate per line as
in the CS231n notes "Backpropagation, Intuitions". symbp derives each line's local derivative
with SymPy and emits the backward pass in the same staged style: forward values are cached and
reused, and a variable used twice (x, y) accumulates its gradient with ``+=``.

Run it with ``python examples/cs231n_staged.py``. It prints the generated function
(``f.kernel_source``) and the value and gradients, and checks the gradients against central
differences.
"""

import symbp

STAGED = """
sigy = 1.0 / (1 + math.exp(-y))
num = x + sigy
sigx = 1.0 / (1 + math.exp(-x))
xpy = x + y
xpysqr = xpy**2
den = sigx + xpysqr
invden = 1.0 / den
f = num * invden
"""


def main():
    # inputs= fixes the argument order (x, y); by default it is the order of first use (y, x).
    f = symbp.compile(STAGED, inputs=["x", "y"])
    print("The generated function (f.kernel_source; f.source is the whole module):\n")
    print(f.kernel_source)

    x, y = 3.0, -4.0
    value, grad = f.value_and_grad(x=x, y=y)
    print(f"f(3, -4) = {value!r}")
    print(f"df/dx    = {grad['x']!r}")
    print(f"df/dy    = {grad['y']!r}")

    # The numerical derivative is the definition every analytic gradient answers to.
    h = 1e-6
    numeric = {"x": (f(x + h, y) - f(x - h, y)) / (2 * h),
               "y": (f(x, y + h) - f(x, y - h)) / (2 * h)}
    for name in ("x", "y"):
        assert abs(grad[name] - numeric[name]) < 1e-7, (name, grad[name], numeric[name])
    print(f"central differences agree: df/dx ~ {numeric['x']:.9f}, df/dy ~ {numeric['y']:.9f}")


if __name__ == "__main__":
    main()
