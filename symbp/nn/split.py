"""Seeded train/test splits, stratified for classes (no scikit-learn needed)."""

from __future__ import annotations

import numpy as np


def train_test_split(X: np.ndarray, y: np.ndarray, *, test_size: float,
                     rng: np.random.RandomState, stratify: np.ndarray | None = None) -> tuple:
    """``X_train, X_test, y_train, y_test``: a shuffled split with ``test_size`` (a fraction)
    of the rows in the test part. ``stratify`` (labels, or 0/1 target rows) keeps each class's
    share the same in both parts."""
    n = X.shape[0]
    if stratify is None:
        order = rng.permutation(n)
        cut = max(1, min(n - 1, round(test_size * n)))
        test, train = order[:cut], order[cut:]
    else:
        labels = stratify if stratify.ndim == 1 else stratify.argmax(axis=1) \
            if stratify.shape[1] > 1 else stratify[:, 0]
        test, train = [], []
        for label in np.unique(labels):
            members = rng.permutation(np.flatnonzero(labels == label))
            cut = min(len(members) - 1, round(test_size * len(members)))
            test.append(members[:cut])
            train.append(members[cut:])
        test, train = rng.permutation(np.concatenate(test)), rng.permutation(np.concatenate(train))
        if len(test) == 0:
            raise ValueError("the test part would be empty: too few samples per class")
    return X[train], X[test], y[train], y[test]
