"""Equality-constrained nonlinear programs: min f(x) subject to c(x) = 0.

The common form every optimisation problem of learnsolve takes, and what the sketch-Newton solver
and its comparators consume. The Lagrangian is L(x, l) = f(x) + l'c(x).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp
import scipy.sparse.linalg as spla

Matrix = Any  # a dense ndarray or a scipy.sparse matrix


@dataclass
class NLP:
    """``f(x) -> float``, ``grad(x) -> (n,)``, ``c(x) -> (m,)``, ``jac(x) -> (m, n)`` (G),
    ``hess_lag(x, l) -> (n, n)``: the Hessian of the Lagrangian, nabla^2 f + sum_i l_i nabla^2 c_i.
    Matrices may be dense or scipy.sparse. ``info`` carries where the problem came from and, where
    known, its optimal value (``f_star``)."""

    name: str
    x0: np.ndarray
    f: Callable[[np.ndarray], float]
    grad: Callable[[np.ndarray], np.ndarray]
    c: Callable[[np.ndarray], np.ndarray]
    jac: Callable[[np.ndarray], Matrix]
    hess_lag: Callable[[np.ndarray, np.ndarray], Matrix]
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return int(self.x0.size)

    @property
    def m(self) -> int:
        return int(np.asarray(self.c(self.x0)).size)


class Counted:
    """An NLP's functions, counting evaluations by kind (f, grad, c, jac, hess): attribute access
    returns counted versions of ``f``, ``grad``, ``c``, ``jac`` and ``hess_lag``; ``wrap`` counts any
    other callable under a kind (a comparator's own Hessian pieces)."""

    def __init__(self, nlp: NLP) -> None:
        self.nlp = nlp
        self.counts = {"f": 0, "grad": 0, "c": 0, "jac": 0, "hess": 0}

    def wrap(self, key: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            self.counts[key] += 1
            return fn(*args)

        return counted

    def __getattr__(self, name: str) -> Any:
        fn = getattr(self.nlp, name)
        key = {"hess_lag": "hess"}.get(name, name)
        return self.wrap(key, fn) if key in self.counts else fn


def dense(a: Matrix) -> np.ndarray:
    """A dense 2-D float array of a dense or scipy.sparse matrix."""
    return a.toarray() if hasattr(a, "toarray") else np.atleast_2d(np.asarray(a, dtype=np.float64))


def least_squares_multipliers(g: np.ndarray, G: Matrix) -> np.ndarray:
    """l = argmin ||g + G'l||, the usual multiplier estimate at a point with gradient g. A sparse G
    goes through the augmented system [I G'; G 0] [r; l] = [-g; 0] (no squared condition number),
    with lsqr as the fallback when that system is singular; a dense one through lstsq."""
    m, n = G.shape
    if sp.issparse(G):
        K = sp.bmat([[sp.identity(n), G.T], [G, None]], format="csc")
        sol = spla.spsolve(K, np.concatenate([-g, np.zeros(m)]))
        if np.all(np.isfinite(sol)):
            return np.asarray(sol[n:], dtype=np.float64)
        return spla.lsqr(G.T, -g, atol=1e-14, btol=1e-14)[0]
    return np.linalg.lstsq(G.T, -g, rcond=None)[0]


def derivative_errors(nlp: NLP, x: np.ndarray, lam: np.ndarray, h: float = 1e-6) -> dict[str, float]:
    """Relative errors of grad, jac and hess_lag against central finite differences of f, c and
    grad + jac' lam at (x, lam): what the tests assert for every problem."""
    n = x.size
    E = np.eye(n)
    fd_grad = np.array([(nlp.f(x + h * e) - nlp.f(x - h * e)) / (2 * h) for e in E])
    fd_jac = np.array([(nlp.c(x + h * e) - nlp.c(x - h * e)) / (2 * h) for e in E]).T

    def grad_lag(z: np.ndarray) -> np.ndarray:
        return nlp.grad(z) + dense(nlp.jac(z)).T @ lam

    fd_hess = np.array([(grad_lag(x + h * e) - grad_lag(x - h * e)) / (2 * h) for e in E]).T

    def rel(a: np.ndarray, b: np.ndarray) -> float:
        return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1.0))

    return {"grad": rel(nlp.grad(x), fd_grad), "jac": rel(dense(nlp.jac(x)), fd_jac.reshape(-1, n)),
            "hess_lag": rel(dense(nlp.hess_lag(x, lam)), fd_hess)}
