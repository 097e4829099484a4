"""Constrained logistic regression (Hong, Na, Mahoney, Kolar, ICML 2023) and a LIBSVM reader.

    min_w  (1/N) sum_i log(1 + exp(-y_i x_i'w))   subject to   A w = b,   ||w||^2 = 1,

with ``A`` a seeded standard Gaussian ``m_linear x n`` matrix. ``b = A w_feas`` for a seeded random
unit vector ``w_feas``, so the feasible set (the unit sphere cut by an affine subspace through a
point of it) is not empty. The data come from a LIBSVM/svmlight text file (:func:`read_libsvm`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy.special import expit

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.optim.nlp import NLP


def _parse_line(text: str) -> tuple[float, list[int], list[float]]:
    """Label, 1-based indices, values of one data line; ValueError with a reason when malformed."""
    tokens = text.split()
    try:
        label = float(tokens[0])
    except ValueError:
        raise ValueError(f"label {tokens[0]!r} is not a number") from None
    if not np.isfinite(label):
        raise ValueError(f"label {tokens[0]!r} is not finite")
    idx: list[int] = []
    val: list[float] = []
    for tok in tokens[1:]:
        key, sep, value = tok.partition(":")
        if not sep:
            raise ValueError(f"expected index:value, got {tok!r}")
        if key == "qid":  # svmlight query ids: meaningless here
            continue
        try:
            i, v = int(key), float(value)
        except ValueError:
            raise ValueError(f"expected index:value, got {tok!r}") from None
        if i < 1:
            raise ValueError(f"feature index {i} is not >= 1")
        if idx and i <= idx[-1]:
            raise ValueError(f"feature indices not increasing ({idx[-1]} then {i})")
        if not np.isfinite(v):
            raise ValueError(f"value of feature {i} is not finite")
        idx.append(i)
        val.append(v)
    return label, idx, val


def read_libsvm(path: str | Path, n_features: int | None = None) -> tuple[sp.csr_matrix, np.ndarray]:
    """Read a LIBSVM/svmlight file: lines ``label idx:val idx:val ...`` with 1-based increasing
    indices; text after ``#`` and blank lines are ignored.

    Returns ``(X, y)``: ``X`` a float64 CSR matrix with ``n_features`` columns (default: the largest
    index seen), ``y`` the labels mapped to -1/+1, the smaller of the two label values to -1
    (so {0, 1}, {1, 2}, {2, 4} and {-1, +1} all work). A file with more than two label values, or
    a malformed line, raises :class:`InputError` naming ``path:line``.
    """
    path = Path(path)
    try:
        with open(path, encoding="utf-8") as fh:
            lines = fh.readlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"{path}: cannot read: {str(exc).splitlines()[0]}", "path") from None

    labels: list[float] = []
    indptr = [0]
    indices: list[int] = []
    data: list[float] = []
    seen: dict[float, int] = {}  # label value -> first line it appears on
    for lineno, raw in enumerate(lines, start=1):
        text = raw.split("#", 1)[0].strip()
        if not text:
            continue
        try:
            label, idx, val = _parse_line(text)
        except ValueError as exc:
            raise InputError(f"{path}:{lineno}: {exc}", "path") from None
        if label not in seen:
            if len(seen) == 2:
                have = ", ".join(f"{v:g}" for v in sorted(seen))
                raise InputError(f"{path}:{lineno}: a third class label {label:g} (already have {have}); "
                                 "only binary labels are supported", "path")
            seen[label] = lineno
        labels.append(label)
        indices.extend(idx)
        data.extend(val)
        indptr.append(len(indices))

    if not labels:
        raise InputError(f"{path}: no data lines", "path")
    values = sorted(seen)
    if len(values) == 1 and values[0] not in (-1.0, 1.0):
        raise InputError(f"{path}: a single class label {values[0]:g}; cannot map it to -1/+1", "path")
    lab = np.asarray(labels)
    y = np.where(lab == values[-1], 1.0, -1.0) if len(values) == 2 else lab.copy()

    cols = np.asarray(indices, dtype=np.int64) - 1
    width = int(cols.max()) + 1 if cols.size else 0
    if n_features is not None:
        if n_features < width:
            raise InputError(f"{path}: feature index {width} exceeds n_features = {n_features}", "path")
        width = int(n_features)
    X = sp.csr_matrix((np.asarray(data, dtype=np.float64), cols, np.asarray(indptr, dtype=np.int64)),
                      shape=(len(labels), width))
    return X, y


def _draws(n: int, m_linear: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((m_linear, n))
    w_feas = rng.standard_normal(n)
    w_feas /= np.linalg.norm(w_feas)
    x0 = rng.standard_normal(n)
    return A, A @ w_feas, w_feas, x0


def linear_constraints(n: int, m_linear: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(A, b, w_feas)`` of :func:`constrained_logistic`: from ``default_rng(seed)`` draw ``A``
    (``m_linear x n`` standard normal), then ``w_feas`` (standard normal, scaled to unit norm),
    and set ``b = A w_feas``; so ``w_feas`` satisfies both ``A w = b`` and ``||w|| = 1``."""
    return _draws(n, m_linear, seed)[:3]


def constrained_logistic(
    X,
    y,
    m_linear: int = 5,
    seed: int = 0,
    name: str = "constrained_logistic",
) -> NLP:
    """The NLP above for data ``X`` (N x n, dense or sparse) and labels ``y`` in {-1, +1}.

    Constraints ``c(w) = (A w - b, w'w - 1)``: ``m_linear + 1`` of them, the sphere last. ``A, b``
    come from :func:`linear_constraints` with the same ``seed``; ``x0`` is the next draw of that
    generator, a standard normal vector (infeasible in general). Hessian of the Lagrangian:
    ``X' D X / N + 2 l_last I`` with ``D = diag(s (1 - s))``, s the sigmoid of the margins; dense,
    meant for n up to a few hundred.
    """
    try:
        Xs = sp.csr_matrix(X, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(f"X: not a 2-D numeric matrix ({str(exc).splitlines()[0]})", "X") from None
    N, n = Xs.shape
    if N == 0 or n == 0:
        raise InputError(f"X: empty data matrix ({N} x {n})", "X")
    if not np.all(np.isfinite(Xs.data)):
        raise InputError("X: contains NaN or infinite values", "X")
    y = np.asarray(y, dtype=np.float64).ravel()
    if y.size != N:
        raise InputError(f"y: {y.size} labels for {N} rows of X", "y")
    if not np.all(np.abs(y) == 1.0):
        raise InputError("y: labels must be -1 or +1", "y")
    if isinstance(m_linear, bool) or int(m_linear) != m_linear or m_linear < 0:
        raise InputError(f"m_linear: must be a non-negative integer, got {m_linear!r}", "m_linear")
    m_linear = int(m_linear)
    if m_linear + 1 > n:
        raise InputError(f"m_linear: {m_linear} linear constraints plus the sphere exceed the "
                         f"{n} unknowns", "m_linear")

    A, b, _, x0 = _draws(n, m_linear, seed)

    Z = sp.csr_matrix(sp.diags(y) @ Xs)  # rows y_i x_i': margins are Z w
    ZT = Z.T.tocsr()

    def f(w: np.ndarray) -> float:
        return float(np.mean(np.logaddexp(0.0, -(Z @ w))))

    def grad(w: np.ndarray) -> np.ndarray:
        return -(ZT @ expit(-(Z @ w))) / N

    def c(w: np.ndarray) -> np.ndarray:
        return np.concatenate([A @ w - b, [w @ w - 1.0]])

    def jac(w: np.ndarray) -> np.ndarray:
        return np.vstack([A, 2.0 * w[None, :]])

    def hess_lag(w: np.ndarray, lam: np.ndarray) -> np.ndarray:
        z = Z @ w
        d = expit(z) * expit(-z)
        H = (ZT @ sp.csr_matrix(sp.diags(d / N) @ Z)).toarray()
        H[np.diag_indices(n)] += 2.0 * float(np.asarray(lam)[-1])
        return H

    info = {"problem": "constrained_logistic", "samples": N, "n": n, "m": m_linear + 1,
            "m_linear": m_linear, "seed": seed}
    return NLP(name=name, x0=x0, f=f, grad=grad, c=c, jac=jac, hess_lag=hess_lag, info=info)
