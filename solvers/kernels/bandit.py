"""The Tsallis-INF normaliser, compiled: it runs once per system of a sequence, and on small
systems the tuner must cost far less than the solve."""

from __future__ import annotations

import numba
import numpy as np

from learnsolve.solvers.kernels import KERNEL_OPTIONS


@numba.njit(**KERNEL_OPTIONS)
def tsallis_probabilities(losses, eta, tol):  # pragma: no cover - compiled
    """p_i = 4 / (eta (L_i - x))^2 with sum p = 1, by Newton from x = min L - 2/eta."""
    x = losses.min() - 2.0 / eta
    k = losses.shape[0]
    w = np.empty(k)
    for _ in range(100):
        f = -1.0
        df = 0.0
        for i in range(k):
            w[i] = 4.0 / (eta * (losses[i] - x)) ** 2
            f += w[i]
            df += eta * w[i] ** 1.5
        if abs(f) < tol:
            break
        step = f / df
        x -= step
        if abs(step) <= 1e-15 * abs(x):  # rounding floor: large cumulative losses stop here
            break
    total = 0.0
    for i in range(k):
        w[i] = 4.0 / (eta * (losses[i] - x)) ** 2
        total += w[i]
    return w / total


@numba.njit(**KERNEL_OPTIONS)
def sample(p, u):  # pragma: no cover - compiled
    """Inverse-CDF draw of an index from probabilities p with a uniform u in [0, 1)."""
    target = u * p.sum()
    acc = 0.0
    for i in range(p.shape[0]):
        acc += p[i]
        if target < acc:
            return i
    return p.shape[0] - 1


@numba.njit(**KERNEL_OPTIONS)
def chebyshev(z, degree):  # pragma: no cover - compiled
    """T_0(z) .. T_degree(z)."""
    phi = np.empty(degree + 1)
    phi[0] = 1.0
    if degree >= 1:
        phi[1] = z
    for k in range(2, degree + 1):
        phi[k] = 2.0 * z * phi[k - 1] - phi[k - 2]
    return phi


@numba.njit(**KERNEL_OPTIONS)
def igw_probabilities(yhat, gamma):  # pragma: no cover - compiled
    """Inverse gap weighting: p_a = 1 / (K + gamma (yhat_a - min yhat)), the best takes the rest."""
    k = yhat.shape[0]
    best = np.argmin(yhat)
    p = np.empty(k)
    rest = 0.0
    for a in range(k):
        if a != best:
            p[a] = 1.0 / (k + gamma * (yhat[a] - yhat[best]))
            rest += p[a]
    p[best] = 1.0 - rest
    return p


@numba.njit(**KERNEL_OPTIONS)
def ridge_update(gram_inv, moment, coef, arm, phi, y):  # pragma: no cover - compiled
    """Add (phi, y) to arm's ridge regression: Sherman-Morrison on its inverse Gram matrix."""
    g = gram_inv[arm]
    gphi = g @ phi
    denom = 1.0 + phi @ gphi
    d = phi.shape[0]
    for i in range(d):
        for j in range(d):
            g[i, j] -= gphi[i] * gphi[j] / denom
    for i in range(d):
        moment[arm, i] += y * phi[i]
    coef[arm] = g @ moment[arm]
