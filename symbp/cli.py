"""Command-line interface: ``symbp grad``, ``symbp draw``, ``symbp train`` and ``symbp bench``.

Examples
--------
::

    symbp grad "(x + y) * z" --at x=-2 y=5 z=-4
    symbp grad -f model.sbp --at x=3 y=-4 --wrt x
    symbp grad "sum((W @ x)**2)" --shape W=2,2 x=2 --at W=0.1,0.5,-0.3,0.8 x=0.2,0.4
    symbp grad "x * sigmoid(y)" --export grad_f.py
    symbp draw "(x + y) * z" --at x=-2 y=5 z=-4 -o circuit.svg
  symbp check backprop.py --at x=3 y=-4              a hand-written backward pass, line by line
    symbp train --dataset digits --hidden 64 --epochs 30
    symbp bench --quick

A model file (``-f model.sbp``) holds staged lines: one ``name = expression`` per line, the
last line is the output; blank lines and ``#`` comments are ignored.
"""

from __future__ import annotations

import argparse
import math
import sys
from collections.abc import Sequence

from .errors import SymbpError

PROG = "symbp"


class CliError(Exception):
    """Bad command-line input, reported as ``symbp: error: <message>`` with exit status 2."""


def _pairs(option: str, items: Sequence[str]) -> dict[str, list[str]]:
    """``NAME=A,B,...`` items of ``option`` as a dict of name -> the comma-separated parts."""
    out: dict[str, list[str]] = {}
    from .names import problem, short

    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise CliError(f"{option} expects NAME=VALUE items, got {short(item)}")
        message = problem(name)  # the identifier check every name passes
        if message is not None:
            raise CliError(f"{option} expects NAME=VALUE items: {message}")
        if name in out:
            raise CliError(f"{option} gives {name!r} twice")
        out[name] = [part.strip() for part in text.split(",")]
    return out


def _parse_at(pairs: Sequence[str]) -> dict[str, float | list[float]]:
    """Parse ``NAME=VALUE`` pairs from ``--at``: a number, or comma-separated numbers for an
    array (row-major, reshaped to the input's ``--shape`` later).

    Parameters
    ----------
    pairs : sequence of str
        Items such as ``"x=-2"``, ``"y=1.5e3"`` or ``"W=0.1,0.5,-0.3,0.8"``.

    Returns
    -------
    dict
        Name -> float (one number) or list of floats, in the order given.

    Raises
    ------
    CliError
        If an item is not ``NAME=VALUE``, a name is repeated or a value is not a number.
    """
    values: dict[str, float | list[float]] = {}
    for name, parts in _pairs("--at", pairs).items():
        try:
            numbers = [float(p) for p in parts]
        except ValueError:
            raise CliError(f"--at {name}: {','.join(parts)!r} is not a number "
                           "(or comma-separated numbers)") from None
        values[name] = numbers[0] if len(numbers) == 1 else numbers
    return values


def _parse_shapes(option: str, pairs: Sequence[str] | None) -> dict[str, tuple]:
    """``--shape W=2,2 X=B,3``: dimensions are positive ints or names bound by the values."""
    from .names import problem

    shapes: dict[str, tuple] = {}
    for name, parts in _pairs(option, pairs or ()).items():
        dims: list[int | str] = []
        for part in parts:
            if part.isascii() and part.isdigit() and int(part) > 0:
                dims.append(int(part))
            elif part.isidentifier():
                message = problem(part)
                if message is not None:
                    raise CliError(f"{option} {name}: dimension {message}")
                dims.append(part)
            else:
                raise CliError(f"{option} {name}: {part!r} is not a positive integer or a "
                               f"dimension name (e.g. {option} W=2,2 X=B,3)")
        shapes[name] = tuple(dims)
    return shapes


def _point(f, values: dict) -> dict:
    """The ``--at`` values checked against ``f``'s inputs, arrays reshaped to their shapes."""
    import numpy as np

    from .shapes import show

    unknown = [name for name in values if name not in f.inputs]
    if unknown:
        raise CliError(f"--at names unknown input(s) {', '.join(unknown)}; "
                       f"inputs are {', '.join(f.inputs)}")
    missing = [name for name in f.inputs if name not in values]
    if missing:
        raise CliError(f"missing value(s) for {', '.join(missing)}: add e.g. --at "
                       + " ".join(f"{name}=0" for name in missing))
    point = {}
    for name in f.inputs:
        shape, value = f.shapes[name], values[name]
        shape = tuple(getattr(shape, "shape", shape))
        if not shape:
            if isinstance(value, list):
                raise CliError(f"--at {name}: {name} is a scalar but got {len(value)} values "
                               f"(declare its shape with --shape {name}=...)")
            point[name] = value
            continue
        flat = np.atleast_1d(np.asarray(value, dtype=np.float64))
        if hasattr(f.shapes[name], "shape"):  # integer labels
            if not np.all(flat == np.round(flat)):
                raise CliError(f"--at {name}: labels must be whole numbers")
            flat = flat.astype(np.int64)
        known = [d for d in shape if isinstance(d, int)]
        named = [d for d in shape if not isinstance(d, int)]
        size = int(np.prod(known)) if known else 1
        if len(named) > 1:
            raise CliError(f"--at {name}: a flat list of values binds one named dimension, "
                           f"and {show(shape)} has {len(named)}: give sizes in --shape")
        if flat.size % size or (not named and flat.size != size):
            raise CliError(f"--at {name}: {flat.size} value(s) do not fill shape "
                           f"{show(shape)}")
        concrete = tuple(d if isinstance(d, int) else flat.size // size for d in shape)
        point[name] = flat.reshape(concrete)
    return point


def _read_expression(args: argparse.Namespace) -> str:
    """Return the expression text from the positional argument or from ``-f FILE``."""
    if args.file is not None and args.expr is not None:
        raise CliError("give the expression either as an argument or with -f FILE, not both")
    if args.file is None:
        if args.expr is None:
            raise CliError("no expression: give one as an argument or with -f FILE")
        return args.expr
    from .names import MAX_LENGTH

    try:  # at most one character past the limit: /dev/zero or a huge file is not read whole
        if args.file == "-":
            text = sys.stdin.read(MAX_LENGTH + 1)
        else:
            with open(args.file, encoding="utf-8-sig") as fh:  # a BOM, as Python reads it
                text = fh.read(MAX_LENGTH + 1)
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise CliError(f"cannot read {args.file}: {exc}") from None
    if len(text) > MAX_LENGTH:
        where = "standard input" if args.file == "-" else args.file
        raise CliError(f"{where} is too long: more than {MAX_LENGTH} characters (the limit of "
                       "an expression)")
    return text


def _compile(args: argparse.Namespace, jit: bool):
    """Compile the expression of ``grad`` / ``draw`` and read the point of ``--at``."""
    import symbp

    text = _read_expression(args)
    values = _parse_at(args.at) if args.at is not None else None
    shapes = _parse_shapes("--shape", args.shape)
    labels = _parse_shapes("--labels", args.labels)
    both = sorted(set(shapes) & set(labels))
    if both:
        raise CliError(f"{', '.join(both)}: give either --shape or --labels, not both")
    shapes.update({name: symbp.ints(shape) for name, shape in labels.items()})
    try:
        f = symbp.compile(text, wrt=args.wrt, shapes=shapes, jit=jit)
    except symbp.ParseError as exc:
        if getattr(exc, "unknown_shapes", None):
            raise CliError(f"--shape/--labels name unknown input(s) "
                           f"{', '.join(exc.unknown_shapes)}; inputs are "
                           f"{', '.join(exc.inputs)}") from None
        if args.file is None:
            raise
        raise CliError(f"{args.file}: {exc}") from None
    return f, (_point(f, values) if values is not None else None)


def _cmd_check(args: argparse.Namespace) -> int:
    """``symbp check FILE --at ...``: 0 when the backward pass is right, 1 when it is not."""
    import numpy as np  # loaded by the checker anyway

    from .handwritten import check

    args.expr = None
    text = _read_expression(args)
    values = _parse_at(args.at) if args.at else {}
    shapes = _parse_shapes("--shape", args.shape)
    labels = _parse_shapes("--labels", args.labels)
    both = sorted(set(shapes) & set(labels))
    if both:
        raise CliError(f"{', '.join(both)}: give either --shape or --labels, not both")
    shapes.update(labels)
    for name, value in values.items():
        shape = shapes.get(name)
        if shape is None:
            if isinstance(value, list):
                raise CliError(f"--at {name}: {name} is a scalar but got {len(value)} values "
                               f"(declare its shape with --shape {name}=...)")
            continue
        if not all(isinstance(d, int) for d in shape):
            raise CliError(f"--shape {name}: check needs numbers, not dimension names")
        flat = value if isinstance(value, list) else [value]
        if len(flat) != math.prod(shape):
            raise CliError(f"--at {name}: {len(flat)} values do not fill shape {shape}")
        values[name] = np.asarray(flat, dtype=np.float64).reshape(shape)
        if name in labels:
            if not np.all(values[name] == np.round(values[name])):
                raise CliError(f"--at {name}: labels must be whole numbers")
            values[name] = values[name].astype(np.int64)
    from .shapes import ints

    shapes.update({name: ints(shape) for name, shape in labels.items()})
    report = check(text, at=values, shapes=shapes or None)
    print(report)
    return 0 if report.ok else 1


def _cmd_grad(args: argparse.Namespace) -> int:
    """Compile the expression, print its source, then its value and gradients."""
    f, point = _compile(args, jit=not args.no_jit)
    import numpy as np  # loaded by the compiler anyway: after the argument checks

    if args.export is not None:
        written = f.export(args.export)
        print(f"{PROG}: wrote {written} (a standalone module: NumPy and Numba only)",
              file=sys.stderr)

    source = f.source if args.module else f.kernel_source
    if point is None:
        print(source.rstrip("\n"))
        return 0
    try:
        value, grads = f.value_and_grad(*(point[n] for n in f.inputs))  # any input names
    except (ArithmeticError, ValueError, TypeError) as exc:  # the pure-Python path's math errors
        raise CliError(f"evaluation failed at the given point: {exc}") from None
    print(source.rstrip("\n"))
    at = ", ".join(f"{name}={_text(point[name])}" for name in f.inputs)
    print(f"\n# at {at}")
    rows = [("value", value)] + [(f"d{name}", grads[name]) for name in f.wrt]
    width = max(len(label) for label, _ in rows)
    for label, number in rows:
        if np.ndim(number):
            shown = np.array2string(np.asarray(number), separator=", ", precision=12)
            print(f"{label:<{width}} = " + shown.replace("\n", "\n" + " " * (width + 3)))
        else:
            print(f"{label:<{width}} = {float(number)!r}")
    return 0


def _text(value) -> str:
    if isinstance(value, float):
        return repr(value)
    return "[" + ", ".join(repr(v.item()) for v in value.reshape(-1)) + "]"  # labels stay ints


DRAW_FORMATS = ("svg", "png", "pdf")
DOT_SUFFIXES = ("dot", "gv")


def _cmd_draw(args: argparse.Namespace) -> int:
    """Draw the circuit: DOT text to stdout, or a file whose suffix picks the format."""
    from pathlib import Path

    from .draw import INSTALL_COMMANDS, render_needs_graphviz

    path = Path(args.output) if args.output is not None else None
    suffix = path.suffix.lower().lstrip(".") if path is not None else None
    if path is not None and suffix not in DRAW_FORMATS + DOT_SUFFIXES:
        raise CliError(f"-o {args.output}: the suffix picks the format, one of "
                       f".{', .'.join(DRAW_FORMATS + DOT_SUFFIXES)}")
    if not 1 <= args.digits <= 17:
        raise CliError(f"--digits must be from 1 to 17, got {args.digits}")
    f, point = _compile(args, jit=False)  # drawing runs the generated code as Python
    diagram = f.draw(point or {}, values=args.values, digits=args.digits)
    if path is None:
        print(diagram.source.rstrip("\n"))
        return 0
    if suffix in DOT_SUFFIXES:
        data = diagram.source.encode()
    elif render_needs_graphviz():
        raise CliError(f"-o {args.output} needs the Graphviz program `dot` to render: "
                       f"{INSTALL_COMMANDS}; -o circuit.dot writes the DOT text without it")
    else:
        data = diagram.pipe(format=suffix)
    try:
        path.write_bytes(data)
    except OSError as exc:
        raise CliError(f"cannot write {args.output}: {exc}") from None
    print(f"wrote {args.output}")
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    """Train an MLP on a built-in dataset or a CSV file; report accuracy (or R^2)."""
    if not 0.0 < args.test_size < 1.0:  # also refuses nan
        raise CliError(f"--test-size is the held-out fraction, between 0 and 1 (exclusive); "
                       f"got {args.test_size}")
    if (args.dataset is None) == (args.csv is None):
        raise CliError("give either --dataset NAME or --csv PATH --target COLUMN")
    if args.csv is not None and args.target is None:
        raise CliError("--csv needs --target COLUMN (the column to predict)")
    if args.csv is None and args.target is not None:
        raise CliError("--target goes with --csv")
    # After the argument checks: a mistyped option fails at once, not after the imports.
    import warnings

    import numpy as np

    from . import datasets
    from .nn.split import train_test_split

    data = (datasets.load(args.dataset, seed=args.seed) if args.dataset
            else datasets.from_csv(args.csv, args.target, args.task))
    X, y = data.X, data.y
    if data.lines is not None and not args.scale:  # a CSV: name the cell float32 cannot hold
        limit = np.finfo(args.dtype).max
        big = np.argwhere(np.abs(X) > limit)
        if len(big):
            row, col = big[0]
            raise CliError(f"{args.csv}, line {data.lines[row]}, column "
                           f"{data.columns[col]!r}: {X[row, col]:g} is beyond the range of "
                           f"{args.dtype} (features are not scaled): use --scale or "
                           "--dtype float64")
    if data.split:
        rng = np.random.RandomState(args.seed)
        X, X_test, y, y_test = train_test_split(
            X, y, test_size=args.test_size, rng=rng,
            stratify=np.unique(y, return_inverse=True)[1] if data.classification else None)
    else:
        X_test, y_test = X, y
    ConvergenceWarning, MLPClassifier, MLPRegressor = _estimators(
        standalone=getattr(args, "standalone", False))
    model_type = MLPClassifier if data.classification else MLPRegressor
    model = model_type(hidden_layer_sizes=tuple(args.hidden), activation=args.activation,
                       solver=args.solver, loss=args.loss, alpha=args.alpha,
                       batch_size=args.batch_size, learning_rate_init=args.lr,
                       max_iter=args.epochs, random_state=args.seed, dtype=args.dtype,
                       verbose=not args.quiet, tol=0.0, n_iter_no_change=args.epochs,
                       standardize=args.scale)
    what = f"{len(np.unique(y))} classes" if data.classification else "regression"
    print(f"{data.description}\n{len(X)} training / {len(X_test)} test samples, "
          f"{X.shape[1]} features, {what}")
    if args.scale:
        print("features standardized with the training part's mean and standard deviation "
              "(kept in the model)")
    with warnings.catch_warnings():  # exactly --epochs is the request, not a convergence problem
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(X, y)
    sizes = "-".join(str(s) for s in (X.shape[1], *args.hidden, model.coefs_[-1].shape[1]))
    compiling = model.compile_seconds_
    how = (f"{compiling:.2f} s compiling before them, cached after this" if compiling
           else "the compiled network loaded from the cache")
    print(f"network {sizes} {args.activation}, {model._fitted_loss}, {args.solver}, "
          f"{args.dtype}: {model.n_iter_} epochs in {model._epoch_seconds:.2f} s; {how} "
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


def _estimators(standalone: bool) -> tuple:
    """``(ConvergenceWarning, MLPClassifier, MLPRegressor)`` of :mod:`symbp.nn`.

    ``standalone``: the process is this command alone (``main()`` called as the program, not
    with an explicit ``argv`` from other code), so nothing in it uses scikit-learn's estimator
    API. Then, unless scikit-learn or symbp.nn is loaded already, symbp.nn is imported with
    scikit-learn hidden and its estimators take symbp's stand-in base classes, as they do
    where scikit-learn is not installed (same parameters, fit and score): importing
    ``sklearn.base`` loads SciPy's stats, 1-2 s and most of a warm ``symbp train``.
    """
    hide = (standalone and "sklearn" not in sys.modules
            and f"{__package__}.nn.estimators" not in sys.modules)
    if hide:
        sys.modules["sklearn"] = None  # the import system's "not installed" (ImportError)
    try:
        from .nn import ConvergenceWarning, MLPClassifier, MLPRegressor
    finally:
        if hide:
            del sys.modules["sklearn"]  # importable again for anything later
    return ConvergenceWarning, MLPClassifier, MLPRegressor


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


OVERVIEW = """\
examples:
  symbp grad "(x + y) * z" --at x=-2 y=5 z=-4       the backward pass as code, and its numbers
  symbp grad -f model.sbp --at x=3 y=-4              staged lines from a file
  symbp grad "sum((W @ x)**2)" --shape W=2,2 x=2 --at W=0.1,0.5,-0.3,0.8 x=0.2,0.4
  symbp draw "(x + y) * z" --at x=-2 y=5 z=-4 -o circuit.svg
  symbp check backprop.py --at x=3 y=-4              a hand-written backward pass, line by line
  symbp train --dataset digits --hidden 64 --epochs 30
  symbp bench --quick

'symbp COMMAND --help' shows a command's options. A model file (-f) holds staged lines:
one 'name = expression' per line, the last line is the output; blank lines and # comments
are ignored."""


_SHORT_OPTIONS = ("-f", "-o", "-h")


def _expression_not_option(arg: str) -> str:
    """``-x*y`` is an expression, not an option: a leading space tells argparse so (the parser
    strips common indentation)."""
    if arg.startswith("-") and not arg.startswith("--") and len(arg) > 1 \
            and arg[:2] not in _SHORT_OPTIONS and not _is_number(arg):
        return " " + arg
    return arg


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _expression_options(parser: argparse.ArgumentParser) -> None:
    """The options ``grad`` and ``draw`` share: the expression, its shapes and the point."""
    parser.add_argument("expr", nargs="?", metavar="EXPR",
                        help="the expression (or staged lines separated by newlines)")
    parser.add_argument("-f", "--file", metavar="FILE",
                        help="read the expression (or staged lines) from FILE ('-' for stdin)")
    parser.add_argument("--shape", nargs="+", metavar="NAME=DIMS",
                        help="declare an array input, e.g. --shape W=2,2 x=2 (a dimension "
                        "may be a name, bound by the values: X=B,3)")
    parser.add_argument("--labels", nargs="+", metavar="NAME=DIMS",
                        help="declare an input of integer class labels (never differentiated), "
                        "e.g. --labels y=B for softmax_cross_entropy(Z, y)")
    parser.add_argument("--at", nargs="+", metavar="NAME=VALUE",
                        help="the point to evaluate at, one value per input; an array's "
                        "elements comma-separated in row-major order (W=0.1,0.5,-0.3,0.8)")
    parser.add_argument("--wrt", nargs="+", metavar="NAME",
                        help="inputs to differentiate with respect to (default: all)")
    parser.add_argument("--no-jit", action="store_true",
                        help="run the generated source as plain Python instead of Numba")


def _build_parser() -> argparse.ArgumentParser:
    """Build the argument parser for ``symbp`` and its subcommands."""
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="symbp: compile an expression into a CS231n-style forward and backward "
        "pass (derived by SymPy, compiled by Numba), see it as code or as a circuit, and "
        "train MLPs whose whole training loop is compiled.",
        epilog=OVERVIEW, formatter_class=argparse.RawDescriptionHelpFormatter,
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
    _expression_options(grad)
    grad.add_argument("--module", action="store_true",
                      help="print the whole generated module, not only the function")
    grad.add_argument("--export", metavar="PATH",
                      help="also write a standalone module (NumPy and Numba only, no symbp) "
                      "computing the value and gradients to PATH (a .py file)")
    grad.set_defaults(handler=_cmd_grad)

    draw = sub.add_parser(
        "draw",
        help="draw the circuit: the value and the gradient on every wire (Graphviz)",
        description="Draw EXPR as a circuit of gates, as the CS231n notes do: at the --at "
        "point every wire shows its forward value (green, above) and the gradient flowing "
        "back (red, below); array wires show shapes (--values: the elements of small arrays). "
        "-o picks the format by suffix: .svg, .png and .pdf need the Graphviz program (dot); "
        ".dot (or no -o: stdout) is the DOT text and needs nothing.",
        epilog="example: symbp draw \"(x + y) * z\" --at x=-2 y=5 z=-4 -o circuit.svg",
    )
    _expression_options(draw)
    draw.add_argument("-o", "--output", metavar="FILE",
                      help="write the diagram to FILE (.svg, .png, .pdf or .dot)")
    draw.add_argument("--values", action="store_true",
                      help="write the elements of small arrays (at most 16) on the wires")
    draw.add_argument("--digits", type=int, default=4,
                      help="significant digits of the numbers shown (default: 4)")
    draw.set_defaults(handler=_cmd_draw)

    from .datasets import NAMES
    from .nn.network import ACTIVATIONS, LOSSES

    train = sub.add_parser(
        "train",
        help="train an MLP on a built-in dataset or a CSV file",
        description="Train a multi-layer perceptron whose forward and backward pass symbp "
        "generates, with the whole training loop compiled by Numba; report the test accuracy "
        "(R^2 for regression) on a held-out stratified split. Features are used as they are, "
        "not scaled: give --scale for a CSV whose columns have large or very different "
        "ranges.",
        epilog="example: symbp train --dataset digits --hidden 64 --epochs 30",
    )
    data = train.add_argument_group("data")
    data.add_argument("--dataset", choices=NAMES, help="a built-in dataset")
    data.add_argument("--csv", metavar="PATH", help="a CSV file with a header row")
    data.add_argument("--target", metavar="COLUMN", help="the CSV column to predict")
    data.add_argument("--task", choices=("auto", "classification", "regression"),
                      default="auto", help="for --csv (default: auto, from the target column)")
    data.add_argument("--scale", action="store_true",
                      help="standardize each feature with the training part's mean and "
                      "standard deviation (constant columns only centered); the model file "
                      "keeps them, so the loaded model's predict takes raw features "
                      "(default: features are not scaled)")
    data.add_argument("--test-size", type=float, default=0.2, metavar="FRACTION",
                      help="held-out share of the samples (default: 0.2)")
    net = train.add_argument_group("network and training")
    net.add_argument("--hidden", type=int, nargs="+", default=[64], metavar="N",
                     help="hidden layer sizes (default: 64)")
    net.add_argument("--activation", default="relu", metavar="NAME|FORMULA",
                     help=f"{', '.join(ACTIVATIONS)}, a one-input gate such as softplus, or a "
                     "formula in one variable such as 'x * sigmoid(1.702 * x)' (default: relu)")
    net.add_argument("--solver", choices=("adam", "sgd"), default="adam")
    net.add_argument("--loss", default="auto", metavar="NAME|FORMULA",
                     help=f"auto, {', '.join(LOSSES)} (poisson: regression), or a formula over "
                     "out, t (or labels y) and w such as 'mean(abs(out - t))' (default: auto)")
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

    check = sub.add_parser(
        "check",
        help="check a hand-written backward pass line by line (exit 1 when a line is wrong)",
        description="Read FILE: staged forward lines, then a hand-written backward pass "
        "(dname = ..., dname += ..., as in the CS231n notes). Run both at the --at point "
        "against symbp's own backward pass and report the first wrong line, the lines wrong "
        "only because of it and gradients never computed or never accumulated (a missing += "
        "at a fork). Exit status: 0 right, 1 a line wrong, 2 bad input.",
        epilog="example: symbp check staged.py --at x=3 y=-4",
    )
    check.add_argument("file", metavar="FILE", help="the forward and backward lines ('-': stdin)")
    check.add_argument("--at", nargs="+", metavar="NAME=VALUE",
                       help="the point, one number per input; an array's elements "
                       "comma-separated in row-major order (W=0.1,0.5,-0.3,0.8); without it, "
                       "the FILE's first lines assigning numbers (x = 3, as in the notes)")
    check.add_argument("--shape", nargs="+", metavar="NAME=DIMS",
                       help="declare an array input, e.g. --shape W=2,2 x=2,1")
    check.add_argument("--labels", nargs="+", metavar="NAME=DIMS",
                       help="declare an input of integer class labels, e.g. --labels y=4 "
                       "for softmax_cross_entropy(s, y)")
    check.set_defaults(handler=_cmd_check)

    # `symbp bench ...` is dispatched before parsing (see `main`); this entry lists it in --help.
    sub.add_parser("bench", add_help=False,
                   help="time the compiled CS231n gradient against hand-written code, or "
                   "(--train) MLP training against peers: the figures of docs/benchmarks.md")
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
        The exit status: 0 on success, 1 when ``check`` finds a wrong line, 2 on bad input
        (the error is printed to stderr as ``symbp: error: <message>``, without a
        traceback).
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if args_list and args_list[0] in ("grad", "draw"):
        args_list = [args_list[0], *map(_expression_not_option, args_list[1:])]
    if args_list and args_list[0] == "bench":
        from . import bench

        try:
            return bench.main(args_list[1:])
        except SystemExit as exc:  # --help (0) or an argparse usage error (2, already printed)
            return exc.code if isinstance(exc.code, int) else 0

    parser = _build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help (0) or an argparse usage error (2, already printed)
        return exc.code if isinstance(exc.code, int) else 0
    if args.command is None:
        parser.print_help()
        return 0
    args.standalone = argv is None  # the whole process is this command (see _estimators)
    try:
        return args.handler(args)
    except (SymbpError, CliError) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
