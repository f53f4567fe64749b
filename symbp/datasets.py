"""Built-in datasets of ``symbp train``: digits, moons, xor, and a user's CSV file.

Each loader returns a :class:`Dataset`. Only ``digits`` needs scikit-learn installed (the data
ships inside it; its file is read here, without importing scikit-learn or SciPy); ``moons`` is
generated here with the same recipe as scikit-learn's ``make_moons``. NumPy is imported by the
loaders, not at import: ``symbp --help`` lists :data:`NAMES` without it.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from .errors import SymbpError

if TYPE_CHECKING:
    import numpy as np

NAMES = ("digits", "moons", "xor")


@dataclass
class Dataset:
    """Features ``X``, targets ``y``, whether it is a classification task, and a description."""

    X: np.ndarray
    y: np.ndarray
    classification: bool
    description: str
    split: bool = True  # False: too small to hold out a test part (xor)
    lines: np.ndarray | None = None  # a CSV's line number of each row
    columns: tuple[str, ...] | None = None  # a CSV's feature column names


def load(name: str, *, seed: int = 0) -> Dataset:
    """A built-in dataset by name (``digits``, ``moons`` or ``xor``)."""
    if name == "digits":
        return digits()
    if name == "moons":
        return moons(seed=seed)
    if name == "xor":
        return xor()
    raise SymbpError(f"unknown dataset {name!r}; built-in: {', '.join(NAMES)}")


DIGITS_FILE = ("datasets", "data", "digits.csv.gz")
"""Where scikit-learn keeps the digits, inside its package (``load_digits`` reads it)."""


def digits() -> Dataset:
    """scikit-learn's 8x8 handwritten digits (1797 samples, 10 classes), pixels scaled from
    0..16 to 0..1.

    The arrays are those of ``sklearn.datasets.load_digits(return_X_y=True)`` (float64
    pixels, int64 labels), read from the data file that ships inside scikit-learn: importing
    ``sklearn.datasets`` would import SciPy too, a second or more of a warm ``symbp train``.
    """
    import gzip
    import importlib.util

    import numpy as np

    spec = importlib.util.find_spec("sklearn")  # finds the package without importing it
    folders = list(spec.submodule_search_locations or ()) if spec is not None else []
    path = next((p for p in (Path(f, *DIGITS_FILE) for f in folders) if p.is_file()), None)
    if path is None:
        where = f" (no {'/'.join(DIGITS_FILE)} in {', '.join(folders)})" if folders else ""
        raise SymbpError(f"the digits dataset ships with scikit-learn{where}: pip install "
                         "'symbp[train]' (or scikit-learn)")
    try:
        with gzip.open(path, "rt", encoding="utf-8") as handle:
            data = np.loadtxt(handle, delimiter=",")
    except (OSError, EOFError, ValueError) as exc:
        raise SymbpError(f"cannot read the digits from {path}: {exc}") from None
    if data.ndim != 2 or data.shape[1] != 65:
        raise SymbpError(f"{path}: expected rows of 64 pixels and a label, got an array of "
                         f"shape {data.shape}")
    X, y = data[:, :-1], data[:, -1].astype(int, copy=False)  # as load_digits does
    return Dataset(X / 16.0, y, True, "digits: 8x8 handwritten digits, 1797 samples, pixels / 16")


def moons(n_samples: int = 1000, noise: float = 0.2, seed: int = 0) -> Dataset:
    """Two interleaving half circles with Gaussian noise (scikit-learn's ``make_moons``
    recipe): class 0 the upper moon, class 1 the lower."""
    import numpy as np

    rng = np.random.RandomState(seed)
    n_upper = n_samples // 2
    n_lower = n_samples - n_upper
    upper = np.linspace(0, math.pi, n_upper)
    lower = np.linspace(0, math.pi, n_lower)
    X = np.vstack([np.column_stack([np.cos(upper), np.sin(upper)]),
                   np.column_stack([1 - np.cos(lower), 1 - np.sin(lower) - 0.5])])
    y = np.concatenate([np.zeros(n_upper, np.int64), np.ones(n_lower, np.int64)])
    X += rng.normal(scale=noise, size=X.shape)
    order = rng.permutation(n_samples)
    return Dataset(X[order], y[order], True,
                   f"moons: two half circles, {n_samples} samples, noise {noise}")


def xor() -> Dataset:
    """The four points of exclusive or (Rumelhart, Hinton and Williams, 1986)."""
    import numpy as np

    X = np.array([[0.0, 0.0], [0.0, 1.0], [1.0, 0.0], [1.0, 1.0]])
    return Dataset(X, np.array([0, 1, 1, 0]), True, "xor: the four points of exclusive or",
                   split=False)


def from_csv(path, target: str, task: str = "auto") -> Dataset:
    """A CSV file with a header row: column ``target`` is predicted from all the others,
    which must be numbers. ``task``: ``classification``, ``regression`` or ``auto`` (numbers
    with at most 20 distinct whole values are classes; other numbers are regression targets;
    text is classes)."""
    import numpy as np

    path = Path(path)
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle)
            numbered = [(reader.line_num, row) for row in reader]  # the file's own line numbers
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise SymbpError(f"cannot read {path}: {exc}") from None
    numbered = [(n, r) for n, r in numbered if any(cell.strip() for cell in r)]
    if len(numbered) < 3:
        raise SymbpError(f"{path}: needs a header row and at least two data rows")
    header = [h.strip() for h in numbered[0][1]]
    if target not in header:
        raise SymbpError(f"{path}: no column {target!r}; columns: {', '.join(header)}")
    column = header.index(target)
    features, labels, lines = [], [], []
    for line, row in numbered[1:]:
        if len(row) != len(header):
            raise SymbpError(f"{path}, line {line}: {len(row)} fields, the header has "
                             f"{len(header)}")
        values = []
        for name, cell in zip(header, row):
            if name == target:
                continue
            try:
                value = float(cell)
            except ValueError:
                raise SymbpError(f"{path}, line {line}, column {name!r}: {cell!r} is not a "
                                 "number (features must be numeric)") from None
            if not math.isfinite(value):
                raise SymbpError(f"{path}, line {line}, column {name!r}: {cell.strip()!r} is "
                                 "not a finite number (features must be finite: fill in or "
                                 "drop the missing values)")
            values.append(value)
        features.append(values)
        labels.append(row[column].strip())
        lines.append(line)
    if len(header) < 2:
        raise SymbpError(f"{path}: no feature columns besides {target!r}")
    try:
        numeric = np.array([float(v) for v in labels])
    except ValueError:
        numeric = None
    if numeric is not None and not np.isfinite(numeric).all():
        at = int(np.flatnonzero(~np.isfinite(numeric))[0])
        raise SymbpError(f"{path}, line {lines[at]}, column {target!r}: {labels[at]!r} is not "
                         "a finite number (fill in or drop the rows without a target)")
    if task == "auto":
        task = "classification" if numeric is None or (
            np.all(np.mod(numeric, 1) == 0) and len(np.unique(numeric)) <= 20) \
            else "regression"
    if task == "regression" and numeric is None:
        raise SymbpError(f"{path}: column {target!r} holds text; it cannot be a regression "
                         "target")
    if task not in ("classification", "regression"):
        raise SymbpError(f"task must be auto, classification or regression, got {task!r}")
    y = numeric if numeric is not None else np.array(labels)
    if task == "classification" and numeric is not None and np.all(np.mod(numeric, 1) == 0):
        y = numeric.astype(np.int64)
    return Dataset(np.array(features), y, task == "classification",
                   f"{path.name}: {len(labels)} rows, target {target!r}",
                   lines=np.array(lines), columns=tuple(h for h in header if h != target))
