"""Poisson's equation on a grid with solid obstacles: the pressure-Poisson operator of an
incompressible-flow code.

The unit square/cube carries ``n`` cells per side; cells are fluid or solid (a boolean mask, True =
fluid). The unknowns are the fluid cells only (C order). Between two fluid cells the 5/7-point
stencil couples them; a face to a solid cell is homogeneous Neumann (no flux: no term); a face on
the box boundary is homogeneous Dirichlet (it adds 1 to the diagonal, as in :mod:`.poisson`). The
matrix is the integer stencil (A u = h^2 f), symmetric positive definite as long as every fluid
region touches the box: fluid pockets sealed off by solids would be pure-Neumann (singular), so
they are made solid.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from scipy import ndimage

from learnsolve.solvers.errors import InputError

KINDS = ("none", "spheres", "random-boxes", "mask-file")


def obstacle_mask(dim: int, n: int, kind: str = "none", *, count: int = 4, radius: float = 0.1,
                  fraction: float = 0.2, seed: int = 0, path: str | Path | None = None) -> np.ndarray:
    """The fluid mask (True = fluid), shape (n,)*dim.

    ``spheres``: ``count`` balls of radius ``radius`` (in box lengths) at seeded uniform centres.
    ``random-boxes``: ``count`` axis-aligned boxes, edges seeded uniform in [0.05, ``fraction``] box
    lengths. ``mask-file``: a ``.npy`` boolean (or 0/1) array of shape (n,)*dim, True = fluid. Sealed
    fluid pockets are made solid; at least one fluid cell must remain."""
    shape = (n,) * dim
    rng = np.random.default_rng(seed)
    centres = (np.arange(n) + 0.5) / n
    xs = np.meshgrid(*([centres] * dim), indexing="ij")
    fluid = np.ones(shape, dtype=bool)
    if kind == "spheres":
        for c in rng.uniform(0.0, 1.0, size=(count, dim)):
            fluid &= sum((x - ci) ** 2 for x, ci in zip(xs, c, strict=True)) > radius**2
    elif kind == "random-boxes":
        for _ in range(count):
            lo = rng.uniform(0.0, 1.0, size=dim)
            edge = rng.uniform(0.05, max(fraction, 0.05), size=dim)
            inside = np.ones(shape, dtype=bool)
            for x, a, e in zip(xs, lo, edge, strict=True):
                inside &= (x >= a) & (x < a + e)
            fluid &= ~inside
    elif kind == "mask-file":
        fluid = _read_mask(path, shape)
    elif kind != "none":
        raise InputError(f"unknown type {kind!r} (choose from {', '.join(KINDS)})",
                         "obstacles")
    fluid = _drop_sealed(fluid)
    if not fluid.any():
        raise InputError("no fluid cell touches the box boundary", "obstacles")
    return fluid


def _read_mask(path: str | Path | None, shape: tuple[int, ...]) -> np.ndarray:
    if path is None:
        raise InputError("mask-file needs a path", "obstacles")
    try:
        m = np.load(Path(path), allow_pickle=False)
    except (OSError, ValueError, EOFError) as exc:  # EOFError: an empty file
        why = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise InputError(f"{path}: cannot read mask: {why}", "obstacles") from None
    if m.shape != shape:
        raise InputError(f"{path}: mask has shape {m.shape}, the grid is {shape}", "obstacles")
    if not (m.dtype == bool or np.isin(m, (0, 1)).all()):
        raise InputError(f"{path}: mask must be boolean or 0/1 (1 = fluid)", "obstacles")
    return m.astype(bool)


def _drop_sealed(fluid: np.ndarray) -> np.ndarray:
    """Fluid cells whose connected region (face neighbours) touches no box face become solid."""
    labels, count = ndimage.label(fluid)
    if count == 0:
        return fluid
    edge = np.zeros_like(fluid)
    for axis in range(fluid.ndim):
        for end in (0, -1):
            idx = [slice(None)] * fluid.ndim
            idx[axis] = end
            edge[tuple(idx)] = True
    keep = np.unique(labels[edge & fluid])
    return np.isin(labels, keep[keep > 0])


def obstacle_laplacian(fluid: np.ndarray) -> sp.csr_matrix:
    """The matrix on the fluid cells (module docstring), CSR, C order of the fluid cells."""
    dim, shape = fluid.ndim, fluid.shape
    N = fluid.size
    number = np.full(N, -1, dtype=np.int64)
    flat = fluid.ravel()
    number[flat] = np.arange(int(flat.sum()))
    idx = np.arange(N).reshape(shape)
    diag = np.zeros(shape)
    rows, cols = [], []
    for axis in range(dim):
        for step in (1, -1):
            nb = np.roll(idx, -step, axis=axis)
            inside = np.ones(shape, dtype=bool)
            edge = [slice(None)] * dim
            edge[axis] = -1 if step == 1 else 0
            inside[tuple(edge)] = False
            # Dirichlet on the box: a missing neighbour still adds to the diagonal
            diag += np.where(inside, fluid.ravel()[nb.ravel()].reshape(shape), 1.0)
            pair = fluid & inside & fluid.ravel()[nb.ravel()].reshape(shape)
            rows.append(number[idx[pair]])
            cols.append(number[nb[pair]])
    m = int(flat.sum())
    r = np.concatenate([np.arange(m), *rows])
    c = np.concatenate([np.arange(m), *cols])
    v = np.concatenate([diag.ravel()[flat], -np.ones(sum(x.size for x in rows))])
    a = sp.csr_matrix((v, (r, c)), shape=(m, m))
    a.sort_indices()
    return a


def scatter(fluid: np.ndarray, v: np.ndarray, fill: float = 0.0) -> np.ndarray:
    """A vector on the fluid cells as a full grid array (solid cells = ``fill``)."""
    out = np.full(fluid.shape, fill, dtype=np.asarray(v).dtype)
    out[fluid] = v
    return out
