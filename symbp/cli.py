"""Command-line interface: ``symbp grad`` and ``symbp bench``.

Examples
--------
::

    symbp grad "(x + y) * z" --at x=-2 y=5 z=-4
    symbp grad -f staged.txt --at x=3 y=-4 --wrt x
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
