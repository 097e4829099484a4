"""Poisson's equation -Laplace(u) = f on the unit square/cube, zero Dirichlet boundary.

Second-order finite differences on ``n`` interior points per side (h = 1/(n+1)). The system is
scaled by h^2 so the matrix is the unscaled integer stencil (diagonal 2*dim): A u = h^2 f.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from learnsolve.pde.obstacles import obstacle_laplacian, obstacle_mask
from learnsolve.pde.problem import LinearProblem, load_x0, make_rhs
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import CsrOperator, StencilLaplacian, laplacian_csr


def grid(dim: int, n: int) -> list[np.ndarray]:
    """Interior node coordinates, one array per axis, each of shape (n,)*dim (C order)."""
    x = np.arange(1, n + 1) / (n + 1)
    return np.meshgrid(*([x] * dim), indexing="ij")


def manufactured(dim: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """u = prod_i g(x_i) with g(x) = x (1 - x) e^x, and f = -Laplace(u).

    Not an eigenfunction of the discrete Laplacian (so CG has work to do) and not a polynomial of
    low degree (so the O(h^2) truncation error is visible). With g'' = -x (x + 3) e^x,
    f = sum_i x_i (x_i + 3) e^{x_i} prod_{j != i} g(x_j). Returns (u, f) flattened.
    """
    xs = grid(dim, n)
    g = [x * (1 - x) * np.exp(x) for x in xs]
    u = np.prod(g, axis=0)
    f = np.zeros_like(u)
    for i, x in enumerate(xs):
        others = np.prod([g[j] for j in range(dim) if j != i], axis=0)
        f += x * (x + 3) * np.exp(x) * others
    return u.ravel(), f.ravel()


def poisson(
    dim: int = 2,
    n: int = 64,
    operator: str = "stencil",
    rhs: str = "ones",
    seed: int = 0,
    rhs_file: str | Path | None = None,
    obstacles: dict | None = None,
    x0_file: str | Path | None = None,
) -> LinearProblem:
    """Build the Poisson system.

    ``rhs``: ``ones`` (f = 1), ``random`` (seeded Gaussian b), ``manufactured`` (f from the
    known solution above, which is returned as ``x_exact``), or ``file`` (b read from
    ``rhs_file``, used as is). ``x0_file``: a starting guess for the linear solvers (.npy, .mtx
    or text, one value per unknown), returned as ``x0``; None means zeros. ``obstacles``: keyword arguments of
    :func:`.obstacles.obstacle_mask` (``kind``, ``count``, ...); the unknowns are then the fluid
    cells, the operator is assembled, and the problem carries the fluid ``mask``.
    """
    if obstacles and obstacles.get("kind", "none") != "none":
        problem = _with_obstacles(dim, n, rhs, seed, rhs_file, obstacles)
        problem.x0 = load_x0(x0_file, problem.n)
        return problem
    h = 1.0 / (n + 1)
    N = n**dim
    x_exact = None
    if rhs == "manufactured":
        x_exact, f = manufactured(dim, n)
        b = h * h * f
    elif rhs == "ones":
        b = h * h * np.ones(N)
    else:
        b = make_rhs(rhs, N, seed, rhs_file)
    A = StencilLaplacian(dim, n) if operator == "stencil" else CsrOperator(laplacian_csr(dim, n))
    return LinearProblem(
        A=A,
        b=b,
        x_exact=x_exact,
        grid_shape=(n,) * dim,
        x0=load_x0(x0_file, N),
        info={"unknowns": N, "h": h, "operator": operator},
    )


def _with_obstacles(dim: int, n: int, rhs: str, seed: int, rhs_file: str | Path | None,
                    obstacles: dict) -> LinearProblem:
    if rhs == "manufactured":
        raise InputError("rhs: manufactured has no known solution with obstacles", "rhs")
    mask = obstacle_mask(dim, n, **{"seed": seed, **obstacles})
    a = obstacle_laplacian(mask)
    m = a.shape[0]
    h = 1.0 / (n + 1)
    b = h * h * np.ones(m) if rhs == "ones" else make_rhs(rhs, m, seed, rhs_file)
    return LinearProblem(A=CsrOperator(a), b=b, grid_shape=(n,) * dim, mask=mask,
                         info={"unknowns": m, "h": h, "operator": "csr", "obstacles": obstacles.get("kind"),
                               "fluid_fraction": float(mask.mean())})


def memory_estimate(dim: int, n: int, operator: str = "stencil", rhs: str = "ones",
                    obstacles: bool = False) -> int:
    """Bytes a Poisson problem and a CG solve of it need at their peak, estimated from the sizes
    alone (nothing is allocated), so an application can refuse a problem that cannot fit.

    Counted: while building, b plus the manufactured solution's temporaries (2 dim + 3 arrays)
    and the assembled matrix (2 dim + 1 entries a row: float64 values, int64 column indices
    narrowed to int32, hence 20 bytes an entry at the peak); while solving, b, the exact solution,
    the matrix (12 bytes an entry) and CG's six work vectors (x, r, p, A p, z, t). The larger of the two
    phases is returned. It errs low: preconditioners (AMG hierarchies, IC(0) factors), obstacle
    masks and the copies made to save the solution come on top.

    Parameters
    ----------
    dim, n : int
        Dimension (2 or 3) and interior points per side: n**dim unknowns.
    operator : str
        ``stencil`` (matrix-free) or ``csr`` (assembled).
    rhs : str
        The right-hand side kind; ``manufactured`` also stores the exact solution.
    obstacles : bool
        Whether the grid has obstacles (the operator is then assembled).

    Returns
    -------
    int
        Estimated peak bytes.
    """
    unknowns = n**dim
    row = 2 * dim + 1
    assembled = operator == "csr" or obstacles
    exact = 8 if rhs == "manufactured" else 0
    build = 8 + (8 * (2 * dim + 3) if rhs == "manufactured" else 0) + (20 * row + 16 if assembled else 0)
    solve = 8 + exact + (12 * row + 4 if assembled else 0) + 6 * 8
    return unknowns * max(build, solve)
