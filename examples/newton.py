"""Trust-region Newton on Rosenbrock's function with symbp's gradient and Hessian-vector product.

``symbp.compile(..., order=2)`` compiles the function, its gradient and ``f.hvp``, the
Hessian-vector product (the gradient of the directional derivative, itself staged code that
symbp differentiates). ``scipy.optimize.minimize(method="trust-ncg")`` takes them as ``jac``
and ``hessp``: a Newton-CG step needs only products H v, never the Hessian itself. The same
run with the exact Hessian (``f.hessian``) and ``method="trust-exact"`` is shown too.

Run it with ``python examples/newton.py``.
"""

import numpy as np
from scipy.optimize import minimize

import symbp

ROSENBROCK = "(1 - x)**2 + 100*(y - x**2)**2"


def main() -> None:
    f = symbp.compile(ROSENBROCK, order=2)

    def fun(p):
        return f(*p)

    def jac(p):
        return np.array(list(f.grad(*p).values()))

    def hessp(p, v):
        return np.array(list(f.hvp(dict(zip(f.wrt, v)), *p).values()))

    start = np.array([-1.2, 1.0])
    result = minimize(fun, start, method="trust-ncg", jac=jac, hessp=hessp, tol=1e-12)
    print(f"trust-ncg: minimum at {result.x.round(10).tolist()} after {result.nit} iterations, "
          f"{result.nhev} Hessian-vector products")
    assert result.success and np.allclose(result.x, [1.0, 1.0], atol=1e-8)

    exact = minimize(fun, start, method="trust-exact", jac=jac, hess=lambda p: f.hessian(*p),
                     tol=1e-12)
    print(f"trust-exact: minimum at {exact.x.round(10).tolist()} after {exact.nit} iterations")
    assert exact.success and np.allclose(exact.x, [1.0, 1.0], atol=1e-8)

    print("Hessian at the minimum:")
    print(f.hessian(1.0, 1.0))  # [[802, -400], [-400, 200]]
    assert np.array_equal(f.hessian(1.0, 1.0), [[802.0, -400.0], [-400.0, 200.0]])


if __name__ == "__main__":
    main()
