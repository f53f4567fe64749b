"""A vectorized example: f(W, x) = ||W x||^2 = sum((W @ x)**2) (worked example 5).

W = [[0.1, 0.5], [-0.3, 0.8]], x = [0.2, 0.4]: q = W x = [0.22, 0.26], f = 0.116, and the
backward pass is df/dq = 2q, df/dW = 2 q x^T, df/dx = 2 W^T q. Every gradient has the shape of
its variable, and no Jacobian is ever formed: the matrix product's adjoints are an outer product
and a product with W^T.

Run it with ``python examples/vectorized_norm.py``. It prints the generated module, the value and
the gradients, and checks them against the closed forms and central differences.
"""

import numpy as np

import symbp


def main():
    f = symbp.compile("sum((W @ x)**2)", shapes={"W": (2, 2), "x": (2,)})
    print("The generated function (f.kernel_source; f.source is the whole module):\n")
    print(f.kernel_source)

    W = np.array([[0.1, 0.5], [-0.3, 0.8]])
    x = np.array([0.2, 0.4])
    value, grad = f.value_and_grad(W=W, x=x)
    print(f"q = W @ x = {np.round(W @ x, 12).tolist()}")
    print(f"f  = {value!r}")
    # Rounded to 12 decimals: float64 noise (0.17600000000000002) would hide the figures.
    print(f"dW = {np.round(grad['W'], 12).tolist()}")
    print(f"dx = {np.round(grad['x'], 12).tolist()}")

    # The closed forms of the worked example.
    q = W @ x
    np.testing.assert_allclose(grad["W"], 2 * np.outer(q, x), rtol=1e-12)
    np.testing.assert_allclose(grad["x"], 2 * W.T @ q, rtol=1e-12)

    # Central differences, one entry at a time.
    h = 1e-6
    point = {"W": W, "x": x}
    for name, array in point.items():
        numeric = np.zeros_like(array)
        for idx in np.ndindex(array.shape):
            up, down = array.copy(), array.copy()
            up[idx] += h
            down[idx] -= h
            numeric[idx] = (f(**{**point, name: up}) - f(**{**point, name: down})) / (2 * h)
        # The gradient of a variable has that variable's shape.
        assert grad[name].shape == array.shape
        np.testing.assert_allclose(grad[name], numeric, rtol=1e-6, atol=1e-9)
    print("closed forms 2 q x^T and 2 W^T q and central differences agree")


if __name__ == "__main__":
    main()
