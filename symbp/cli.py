"""Command-line interface: ``symbp grad``, ``symbp train`` and ``symbp bench``.

Examples
--------
::

    symbp grad "(x + y) * z" --at x=-2 y=5 z=-4
    symbp grad -f staged.txt --at x=3 y=-4 --wrt x
    symbp train --dataset digits --hidden 64 --epochs 30
    symbp bench --quick
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from .errors import SymbpError

PROG = "symbp"


class CliError(Exception):
    """Bad command-line input, reported as ``symbp: error: <message>`` with exit status 2."""


def _parse_at(pairs: Sequence[str]) -> dict[str, float]:
    """Parse ``NAME=VALUE`` pairs from ``--at`` into a dict of floats.

    Parameters
    ----------
    pairs : sequence of str
        Items such as ``"x=-2"`` or ``"y=1.5e3"``.

    Returns
    -------
    dict of str to float
        The values, in the order given.

    Raises
    ------
    CliError
        If an item is not ``NAME=VALUE``, a name is repeated or a value is not a number.
    """
    values: dict[str, float] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        name = name.strip()
        if not sep or not name.isidentifier():
            raise CliError(f"--at expects NAME=VALUE items, got {pair!r}")
        if name in values:
            raise CliError(f"--at gives {name!r} twice")
        try:
            values[name] = float(text)
        except ValueError:
            raise CliError(f"--at {name}: {text!r} is not a number") from None
    return values


def _read_expression(args: argparse.Namespace) -> str:
    """Return the expression text from the positional argument or from ``-f FILE``."""
    if args.file is not None and args.expr is not None:
        raise CliError("give the expression either as an argument or with -f FILE, not both")
    if args.file is None:
        if args.expr is None:
            raise CliError("no expression: give one as an argument or with -f FILE")
        return args.expr
    try:
        if args.file == "-":
            return sys.stdin.read()
        with open(args.file, encoding="utf-8") as fh:
            return fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from None


def _cmd_grad(args: argparse.Namespace) -> int:
    """Compile the expression, print its source, then its value and gradients."""
    import symbp

    text = _read_expression(args)
    values = _parse_at(args.at) if args.at is not None else None
    f = symbp.compile(text, wrt=args.wrt, jit=not args.no_jit)
    if values is None:
        print(f.source.rstrip("\n"))
        return 0
    unknown = [name for name in values if name not in f.inputs]
    if unknown:
        raise CliError(f"--at names unknown input(s) {', '.join(unknown)}; "
                       f"inputs are {', '.join(f.inputs)}")
    missing = [name for name in f.inputs if name not in values]
    if missing:
        raise CliError(f"missing value(s) for {', '.join(missing)}: add e.g. --at "
                       + " ".join(f"{name}=0" for name in missing))
    try:
        value, grads = f.value_and_grad(**values)
    except (ArithmeticError, ValueError) as exc:  # math domain errors of the pure-Python path
        raise CliError(f"evaluation failed at the given point: {exc}") from None
    print(f.source.rstrip("\n"))
    at = ", ".join(f"{name}={values[name]!r}" for name in f.inputs)
    print(f"\n# at {at}")
    rows = [("value", value)] + [(f"d{name}", grads[name]) for name in f.wrt]
    width = max(len(label) for label, _ in rows)
    for label, number in rows:
        print(f"{label:<{width}} = {float(number)!r}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    """Train an MLP on a built-in dataset or a CSV file; report accuracy (or R^2)."""
    import time
    import warnings

    import numpy as np

    from . import datasets
    from .nn import ConvergenceWarning, MLPClassifier, MLPRegressor
    from .split import train_test_split

    if (args.dataset is None) == (args.csv is None):
        raise CliError("give either --dataset NAME or --csv PATH --target COLUMN")
    if args.csv is not None and args.target is None:
        raise CliError("--csv needs --target COLUMN (the column to predict)")
    if args.csv is None and args.target is not None:
        raise CliError("--target goes with --csv")
    data = (datasets.load(args.dataset, seed=args.seed) if args.dataset
            else datasets.from_csv(args.csv, args.target, args.task))
    X, y = data.X, data.y
    if data.split:
        rng = np.random.RandomState(args.seed)
        X, X_test, y, y_test = train_test_split(
            X, y, test_size=args.test_size, rng=rng,
            stratify=np.unique(y, return_inverse=True)[1] if data.classification else None)
    else:
        X_test, y_test = X, y
    model_type = MLPClassifier if data.classification else MLPRegressor
    model = model_type(hidden_layer_sizes=tuple(args.hidden), activation=args.activation,
                       solver=args.solver, loss=args.loss, alpha=args.alpha,
                       batch_size=args.batch_size, learning_rate_init=args.lr,
                       max_iter=args.epochs, random_state=args.seed, dtype=args.dtype,
                       verbose=not args.quiet, tol=0.0, n_iter_no_change=args.epochs)
    what = f"{len(np.unique(y))} classes" if data.classification else "regression"
    print(f"{data.description}\n{len(X)} training / {len(X_test)} test samples, "
          f"{X.shape[1]} features, {what}")
    started = time.perf_counter()
    with warnings.catch_warnings():  # exactly --epochs is the request, not a convergence problem
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    seconds = time.perf_counter() - started
    sizes = "-".join(str(s) for s in (X.shape[1], *args.hidden, model.coefs_[-1].shape[1]))
    print(f"network {sizes} {args.activation}, {model._fitted_loss}, {args.solver}, "
          f"{args.dtype}: {model.n_iter_} epochs in {seconds:.2f} s including compiling "
          f"(module {_short(model)})")
    print(f"final training loss {model.loss_curve_[-1]:.4f}")
    metric = "accuracy" if data.classification else "R^2"
    print(f"test {metric}: {model.score(X_test, y_test):.4f}")
    if args.show_source:
        print(model.source)
    if args.save:
        model.save(args.save)
        print(f"saved the model to {args.save} (load it with "
              f"symbp.nn.{model_type.__name__}.load)")
    if args.plot:
        _plot(model, args.plot, metric)
        print(f"saved the curves to {args.plot}")
    return 0


def _short(model) -> str:
    from . import jit

    return str(jit.module_path(model.source).name)


def _plot(model, path: str, metric: str) -> None:
    """Loss and training accuracy per epoch, as a PNG (matplotlib, optional)."""
    import numpy as np

    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise CliError("--plot needs matplotlib: pip install 'symbp[plot]'") from None
    accuracy = getattr(model, "train_accuracy_curve_", None)
    fig, axes = plt.subplots(1, 2 if accuracy else 1, figsize=(10 if accuracy else 5, 3.5))
    axes = np.atleast_1d(axes)
    epochs = range(1, len(model.loss_curve_) + 1)
    axes[0].plot(epochs, model.loss_curve_)
    axes[0].set(xlabel="epoch", ylabel="training loss", title="loss")
    if accuracy:
        axes[1].plot(epochs, accuracy)
        axes[1].set(xlabel="epoch", ylabel="accuracy on the epoch's batches",
                    title="training accuracy")
    fig.tight_layout()
    try:
        fig.savefig(path, dpi=100)
    except OSError as exc:
        raise CliError(f"cannot write {path}: {exc}") from None
    finally:
        plt.close(fig)


def _build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for ``symbp`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="symbp: compile an expression into a CS231n-style forward and backward "
        "pass (derived by SymPy, compiled by Numba) and evaluate its gradient.",
        epilog='example: symbp grad "(x + y) * z" --at x=-2 y=5 z=-4',
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    grad = sub.add_parser(
        "grad",
        help="print the generated source, then the value and gradients at a point",
        description="Compile EXPR (one expression, or staged lines 'name = expr' read with "
        "-f FILE), print the generated forward and backward source, and, with --at, the "
        "value and the gradient with respect to each --wrt input.",
        epilog='example: symbp grad "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)" --at x=3 y=-4',
    )
    grad.add_argument("expr", nargs="?", metavar="EXPR", help="the expression to differentiate")
    grad.add_argument("-f", "--file", metavar="FILE",
                      help="read the expression (or staged lines) from FILE ('-' for stdin)")
    grad.add_argument("--at", nargs="+", metavar="NAME=VALUE",
                      help="the point to evaluate at, one value per input")
    grad.add_argument("--wrt", nargs="+", metavar="NAME",
                      help="inputs to differentiate with respect to (default: all)")
    grad.add_argument("--no-jit", action="store_true",
                      help="run the generated source as plain Python instead of Numba")
    grad.set_defaults(handler=_cmd_grad)

    from .datasets import NAMES
    from .nn import ACTIVATIONS

    train = sub.add_parser(
        "train",
        help="train an MLP on a built-in dataset or a CSV file",
        description="Train a multi-layer perceptron whose forward and backward pass symbp "
        "generates, with the whole training loop compiled by Numba; report the test accuracy "
        "(R^2 for regression) on a held-out stratified split.",
        epilog="example: symbp train --dataset digits --hidden 64 --epochs 30",
    )
    data = train.add_argument_group("data")
    data.add_argument("--dataset", choices=NAMES, help="a built-in dataset")
    data.add_argument("--csv", metavar="PATH", help="a CSV file with a header row")
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict")
    data.add_argument("--task", choices=("auto", "classification", "regression"),
                      default="auto", help="for --csv (default: auto, from the target column)")
    data.add_argument("--test-size", type=float, default=0.2, metavar="FRACTION",
                      help="held-out share of the samples (default: 0.2)")
    net = train.add_argument_group("network and training")
    net.add_argument("--hidden", type=int, nargs="+", default=[64], metavar="N",
                     help="hidden layer sizes (default: 64)")
    net.add_argument("--activation", choices=tuple(ACTIVATIONS), default="relu")
    net.add_argument("--solver", choices=("adam", "sgd"), default="adam")
    net.add_argument("--loss", default="auto",
                     choices=("auto", "softmax_cross_entropy", "sigmoid_cross_entropy",
                              "hinge", "squared_error"))
    net.add_argument("--epochs", type=int, default=30, help="default: 30")
    net.add_argument("--batch-size", type=int, default=32, help="default: 32")
    net.add_argument("--lr", type=float, default=0.002, help="learning rate (default: 0.002)")
    net.add_argument("--alpha", type=float, default=0.0001, help="L2 penalty (default: 1e-4)")
    net.add_argument("--dtype", choices=("float32", "float64"), default="float32")
    net.add_argument("--seed", type=int, default=0, help="seeds the split and the training")
    out = train.add_argument_group("output")
    out.add_argument("--save", metavar="PATH", help="save the trained model (.npz)")
    out.add_argument("--plot", metavar="PNG", help="save loss and accuracy curves (matplotlib)")
    out.add_argument("--show-source", action="store_true",
                     help="print the generated network and training loop")
    out.add_argument("--quiet", action="store_true", help="no progress bar")
    train.set_defaults(handler=_cmd_train)

    # `symbp bench ...` is dispatched before parsing (see `main`); this entry lists it in --help.
    sub.add_parser("bench", add_help=False,
                   help="time the compiled CS231n gradient against hand-written code "
                   "(symbp bench --help for options)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``symbp`` command line.

    Parameters
    ----------
    argv : sequence of str, optional
        The arguments without the program name; ``sys.argv[1:]`` by default.

    Returns
    -------
    int
        The exit status: 0 on success, 2 on bad input (the error is printed to stderr as
        ``symbp: error: <message>``, without a traceback).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] == "bench":
        from . import bench

        return bench.main(args_list[1:])

    parser = _build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2, already printed)
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return args.handler(args)
    except (SymbpError, CliError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
