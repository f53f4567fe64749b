"""One exception hierarchy for everything symbp refuses, rooted in :class:`SymbpError`."""

from __future__ import annotations


class SymbpError(Exception):
    """Base class of every error symbp raises on purpose."""


class ParseError(SymbpError):
    """An expression that cannot be read: bad syntax, refused construct, unknown name, bad arity.

    The message ends with the offending line and a caret under the position.
    """

    def __init__(self, message: str, source: str | None = None, line: int = 1,
                 col: int = 0, end_col: int | None = None) -> None:
        self.reason = message
        self.line, self.col = line, col
        text = message
        if source is not None:
            lines = source.splitlines() or [""]
            shown = lines[line - 1] if 0 < line <= len(lines) else ""
            if len(shown) > 120:  # keep the caret block readable for long inputs
                start = max(0, col - 60)
                shown, col = shown[start:start + 120], col - start
                end_col = None if end_col is None else end_col - start
            width = 1 if end_col is None or end_col <= col else min(end_col - col, len(shown) - col)
            where = f"line {line}, " if len(lines) > 1 else ""
            text = (f"{message} ({where}column {col + 1})\n    {shown}\n"
                    f"    {' ' * col}{'^' * max(width, 1)}")
        super().__init__(text)


class IdentifierError(SymbpError):
    """A name that cannot be used: not a string, not an identifier, reserved, a keyword, too
    long, or changed by Unicode NFKC normalization (which Python applies to generated code)."""


class ShapeError(SymbpError, ValueError):
    """A shape that cannot be used (a ValueError too, for callers of :mod:`symbp.shapes`)."""


class GateError(SymbpError):
    """A gate definition that cannot be used (bad name, formula or parameters)."""


class CompileError(SymbpError):
    """The generated source could not be compiled."""


class CallError(SymbpError):
    """A compiled function was called with missing, unknown or non-numeric inputs."""


class CacheError(SymbpError):
    """The cache folder (or a file in it) cannot be used safely: foreign owner, writable by
    others, not a folder, or not writable. The message names the path and the fix."""


class ExportError(SymbpError):
    """A standalone module that cannot be written: a path that is a folder, not a ``.py``
    file, in a folder that does not exist, or not writable (the message names it)."""


class DataError(SymbpError, ValueError):
    """Data an estimator cannot use: wrong shape, non-numeric, empty, NaN or infinite, too few
    classes (a ValueError too, as scikit-learn raises for the same data)."""


class DataTypeError(DataError, TypeError):
    """Data of a type that cannot be converted to numbers (a TypeError too, as NumPy and
    scikit-learn raise)."""


class ParameterError(SymbpError, ValueError, TypeError):
    """An estimator parameter that cannot be used (a ValueError and a TypeError too, like
    scikit-learn's ``InvalidParameterError``)."""


class TrainingError(SymbpError, ValueError):
    """Training stopped because the loss or a gradient became NaN or infinite (a ValueError
    too, as scikit-learn raises for a diverged fit)."""


class NotFittedError(SymbpError, ValueError, AttributeError):
    """A method that needs a fitted model was called before ``fit`` (ValueError and
    AttributeError, like scikit-learn's; :mod:`symbp.nn` raises a subclass that is
    scikit-learn's ``NotFittedError`` too when scikit-learn is installed)."""
