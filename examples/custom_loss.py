"""A loss symbp.nn does not offer, written as a symbp expression: robust regression with Huber.

The Huber loss is quadratic for small residuals and linear for large ones, so a few wild
outliers pull the fit much less than under squared error. With a = |r| and m = min(a, delta):

    huber(r) = 0.5 * m**2 + delta * (a - m)

which is 0.5 r^2 for |r| <= delta and delta * (|r| - delta/2) beyond, written with the abs and
min gates only. The linear model, the residuals and the loss are staged lines over arrays;
``symbp.compile`` derives the backward pass, and a short gradient-descent loop in NumPy calls
``f.value_and_grad``. The data has 10% gross outliers: Huber recovers the true weights, least
squares does not.

Run it with ``python examples/custom_loss.py``. It prints the generated backward pass, the loss
going down, and the weights found by Huber and by least squares.
"""

import itertools

import numpy as np

import symbp

HUBER = """
r = X @ w + b - y
a = abs(r)
m = min(a, delta)
loss = mean(0.5 * m**2 + delta * (a - m))
"""


def make_data(rng, n=200):
    """y = X @ true_w + true_b + small noise, with every tenth target thrown 30 up or down."""
    true_w, true_b = np.array([2.0, -1.0, 0.5]), 0.3
    X = rng.normal(size=(n, 3))
    y = X @ true_w + true_b + 0.1 * rng.normal(size=n)
    y[::10] += 30.0 * rng.choice([-1.0, 1.0], size=len(y[::10]))
    return X, y, true_w, true_b


def check_gradient(f, inputs):
    """Central differences of the loss in w and b against symbp's gradient."""
    _, grad = f.value_and_grad(**inputs)
    h = 1e-6
    numeric_w = np.empty(3)
    for k in range(3):
        up, down = inputs["w"].copy(), inputs["w"].copy()
        up[k] += h
        down[k] -= h
        numeric_w[k] = (f(**{**inputs, "w": up}) - f(**{**inputs, "w": down})) / (2 * h)
    numeric_b = (f(**{**inputs, "b": inputs["b"] + h}) - f(**{**inputs, "b": inputs["b"] - h}))
    np.testing.assert_allclose(grad["w"], numeric_w, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(grad["b"], numeric_b / (2 * h), rtol=1e-6, atol=1e-9)


def main():
    rng = np.random.default_rng(0)
    X, y, true_w, true_b = make_data(rng)

    # N is a named dimension: one compiled function serves any number of samples.
    f = symbp.compile(HUBER, shapes={"X": ("N", 3), "w": (3,), "y": ("N",)}, wrt=["w", "b"])
    backward = f.kernel_source.split("# backward pass\n", 1)[1]
    print("The generated backward pass (from f.kernel_source):\n")
    print(backward.rstrip())
    print()

    inputs = {"X": X, "y": y, "w": np.zeros(3), "b": 0.0, "delta": 1.0}
    check_gradient(f, inputs)
    print("gradient matches central differences at the start point\n")

    learning_rate = 0.5
    losses = []
    for step in range(101):
        loss, grad = f.value_and_grad(**inputs)
        losses.append(loss)
        if step in (0, 1, 2, 5, 10, 20, 50, 100):
            print(f"step {step:3d}  huber loss {loss:.5f}")
        inputs["w"] = inputs["w"] - learning_rate * grad["w"]
        inputs["b"] = inputs["b"] - learning_rate * grad["b"]

    # The same compiled function on subsets (N is bound per call): the outliers' linear part
    # is the floor the loss settles on, while the inliers are fitted to about the noise.
    outlier = np.zeros(len(y), bool)
    outlier[::10] = True
    params = {"w": inputs["w"], "b": inputs["b"], "delta": inputs["delta"]}
    print(f"\nmean huber loss over the inliers {f(X=X[~outlier], y=y[~outlier], **params):.5f}, "
          f"over the outliers {f(X=X[outlier], y=y[outlier], **params):.5f}")

    # Least squares for comparison: the outliers drag its weights and intercept away.
    A = np.column_stack([X, np.ones(len(X))])
    lstsq = np.linalg.lstsq(A, y, rcond=None)[0]
    print(f"\ntrue           w = {true_w.round(3).tolist()}  b = {true_b:.3f}")
    print(f"huber (symbp)  w = {inputs['w'].round(3).tolist()}  b = {inputs['b']:.3f}")
    print(f"least squares  w = {lstsq[:3].round(3).tolist()}  b = {lstsq[3]:.3f}")

    # Gradient descent with a safe step never goes up; the tolerance absorbs rounding.
    assert all(later <= earlier + 1e-12 for earlier, later in itertools.pairwise(losses)), losses
    assert losses[-1] < 0.8 * losses[0], losses
    huber_error = np.abs(np.append(inputs["w"] - true_w, inputs["b"] - true_b)).max()
    lstsq_error = np.abs(lstsq - np.append(true_w, true_b)).max()
    assert huber_error < 0.1 and 5 * huber_error < lstsq_error, (huber_error, lstsq_error)


if __name__ == "__main__":
    main()
