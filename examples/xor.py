"""A 2-layer sigmoid network learns XOR with ``symbp.nn`` (worked example 7).

XOR is the problem a single perceptron cannot solve: no line separates {(0,1), (1,0)} from
{(0,0), (1,1)}. One hidden layer of sigmoid units is enough (Rumelhart, Hinton and Williams,
1986). The network is a symbp expression (printed below as staged lines); symbp generates its
backward pass and Numba compiles the whole training loop.

Run it with ``python examples/xor.py``. The first run compiles the network for several seconds;
later runs load it from the cache. It prints the network, the predictions and the accuracy (1.0).
"""

from symbp import datasets
from symbp.nn import MLPClassifier


def main():
    data = datasets.xor()
    X, y = data.X, data.y
    # 2-4-1 sigmoid net trained by full-batch gradient descent with momentum, as in 1986.
    clf = MLPClassifier(hidden_layer_sizes=(4,), activation="logistic", solver="sgd",
                        learning_rate_init=0.5, momentum=0.9, batch_size=4, max_iter=3000,
                        tol=1e-6, random_state=0, dtype="float32")
    clf.fit(X, y)

    print("The network as staged symbp lines (clf.expression):\n")
    print(clf.expression)
    print()
    print(f"trained {clf.n_iter_} epochs, final loss {clf.loss_curve_[-1]:.4f}\n")

    proba = clf.predict_proba(X)[:, 1]
    predictions = clf.predict(X)
    print("x0  x1  | target  P(y=1)  prediction")
    for (x0, x1), target, p, pred in zip(X, y, proba, predictions):
        print(f"{x0:.0f}   {x1:.0f}   |   {target}     {p:.3f}       {pred}")
    accuracy = clf.score(X, y)
    print(f"\naccuracy = {accuracy}")
    assert accuracy == 1.0, predictions


if __name__ == "__main__":
    main()
