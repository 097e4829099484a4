"""Poisson with obstacles: the operator against the plain Laplacian, its Neumann rows, symmetry and
definiteness, the masks, and bad input through the CLI."""

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from clihelpers import error_line

from learnsolve.pde.obstacles import obstacle_laplacian, obstacle_mask, scatter
from learnsolve.pde.poisson import poisson
from learnsolve.solvers.errors import InputError
from learnsolve.solvers.linear.operators import laplacian_csr


@pytest.mark.parametrize("dim,n", [(2, 7), (3, 5)])
def test_no_obstacles_is_the_plain_laplacian(dim, n):
    A = obstacle_laplacian(obstacle_mask(dim, n, "none"))
    assert abs(A - laplacian_csr(dim, n)).max() == 0


def test_neumann_faces_and_dirichlet_box():
    """One solid cell in the middle of a 5 x 5 grid: its four neighbours lose a coupling and a
    diagonal unit (no flux through the solid face); cells on the box keep theirs (Dirichlet)."""
    fluid = np.ones((5, 5), dtype=bool)
    fluid[2, 2] = False
    A = obstacle_laplacian(fluid).toarray()
    number = -np.ones(25, dtype=int)
    number[fluid.ravel()] = np.arange(24)
    d = scatter(fluid, np.diag(A))
    assert d[1, 2] == d[2, 1] == d[3, 2] == d[2, 3] == 3.0  # next to the solid
    assert d[0, 0] == 4.0 and d[1, 1] == 4.0  # a box corner (two Dirichlet faces) and an inner cell
    assert np.allclose(A, A.T)
    row = A[number[1 * 5 + 2]]
    assert row.sum() == 0.0  # interior cell next to the solid: a pure-Neumann row
    assert np.linalg.eigvalsh(A)[0] > 0


def test_sealed_pockets_become_solid_and_the_operator_is_spd():
    fluid = np.ones((9, 9), dtype=bool)
    fluid[2:7, 2:7] = False
    fluid[4, 4] = True  # a fluid cell walled in: pure Neumann, singular
    mask = obstacle_mask(2, 9, "none") & fluid
    from learnsolve.pde.obstacles import _drop_sealed

    kept = _drop_sealed(mask)
    assert not kept[4, 4] and kept.sum() == mask.sum() - 1
    A = obstacle_laplacian(kept)
    assert spla.eigsh(A.tocsc(), k=1, sigma=0, which="LM")[0][0] > 0


@pytest.mark.parametrize("kind,kw", [("spheres", {"count": 5, "radius": 0.1}),
                                     ("random-boxes", {"count": 5, "fraction": 0.3})])
def test_layouts_are_seeded_and_solid_where_asked(kind, kw):
    a = obstacle_mask(2, 48, kind, seed=3, **kw)
    assert np.array_equal(a, obstacle_mask(2, 48, kind, seed=3, **kw))
    assert not np.array_equal(a, obstacle_mask(2, 48, kind, seed=4, **kw))
    assert 0.5 < a.mean() < 1.0


def test_poisson_with_obstacles_solves_and_matches_a_direct_solve():
    p = poisson(3, 12, "csr", "random", 1, obstacles={"kind": "spheres", "count": 3, "radius": 0.15})
    A = p.A.to_csr()
    assert p.mask is not None and A.shape[0] == p.mask.sum() == p.b.size < 12**3
    x = spla.spsolve(A.tocsc(), p.b)
    assert np.linalg.norm(A @ x - p.b) < 1e-10 * np.linalg.norm(p.b)


def test_mask_file_checks(tmp_path):
    good = np.ones((6, 6), dtype=bool)
    good[2:4, 2:4] = False
    np.save(tmp_path / "m.npy", good)
    assert np.array_equal(obstacle_mask(2, 6, "mask-file", path=tmp_path / "m.npy"), good)
    np.save(tmp_path / "bad.npy", np.ones((5, 6)))
    with pytest.raises(InputError, match="shape"):
        obstacle_mask(2, 6, "mask-file", path=tmp_path / "bad.npy")
    np.save(tmp_path / "two.npy", 2 * np.ones((6, 6)))
    with pytest.raises(InputError, match="boolean"):
        obstacle_mask(2, 6, "mask-file", path=tmp_path / "two.npy")


@pytest.mark.parametrize("problem,expected", [
    ({"operator": "stencil", "obstacles": {"type": "spheres"}}, "operator: csr"),
    ({"operator": "csr", "rhs": "manufactured", "obstacles": {"type": "spheres"}}, "manufactured"),
    ({"operator": "csr", "obstacles": {"type": "mask-file"}}, "path must be given"),
    ({"operator": "csr", "obstacles": {"type": "spheres", "radius": 2}}, "problem.obstacles.radius"),
])
def test_bad_obstacle_jobs(run_cli, tmp_path, write_job, problem, expected):
    job = {"name": "o", "problem": {"type": "poisson", "n": 16, **problem}, "solver": {"type": "cg"}}
    result = run_cli("run", write_job(job), "--out", tmp_path / "out", "-q")
    assert result.exit_code == 2
    assert expected in error_line(result)
