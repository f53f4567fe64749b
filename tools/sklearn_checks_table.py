"""Run every scikit-learn estimator check alone on its MLPs and symbp's; print the differences.

Usage: ``python tools/sklearn_checks_table.py [MLPClassifier|MLPRegressor]`` (``CHECK=name``
runs only the checks whose name contains it).
"""
import os
import sys
import warnings

import sklearn.neural_network as sk
from sklearn.utils.estimator_checks import estimator_checks_generator

import symbp.nn as sy

FILTER = os.environ.get("CHECK", "")


def run(est):
    results = {}
    for e, check in estimator_checks_generator(est, legacy=True, mark=None):
        name = getattr(check, "func", check).__name__
        if FILTER and FILTER not in name:
            continue
        kw = getattr(check, "keywords", {})
        key = name + ("" if not kw else str(sorted(kw.items())))
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                check(e)
            results[key] = "pass"
        except Exception as exc:  # noqa: BLE001
            if type(exc).__name__ == "SkipTest":
                results[key] = "skip: " + str(exc)[:80]
            else:
                results[key] = f"FAIL {type(exc).__name__}: {str(exc)[:300]}"
    return results


only = sys.argv[1:] or ["MLPClassifier", "MLPRegressor"]
for kind in only:
    theirs = run(getattr(sk, kind)(max_iter=100))
    ours = run(getattr(sy, kind)(max_iter=100))
    def tally(r):
        return {k: sum(v.startswith(k) for v in r.values()) for k in ("pass", "FAIL", "skip")}
    print(f"== {kind}: sklearn {tally(theirs)}  symbp {tally(ours)}")
    for key in sorted(set(theirs) | set(ours)):
        a, b = theirs.get(key, "not generated"), ours.get(key, "not generated")
        if a != b:
            print(f"  {key}\n     sklearn: {a[:60]}\n     symbp:   {b}")
