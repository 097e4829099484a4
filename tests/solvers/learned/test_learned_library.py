"""The DCDM family as a library: model lookup, a model's directions for a grid, the comparison
harness's rows, and training data and training without the app."""

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from learnsolve.pde.obstacles import obstacle_laplacian, obstacle_mask  # noqa: E402
from learnsolve.pde.poisson import poisson  # noqa: E402
from learnsolve.solvers.errors import InputError  # noqa: E402
from learnsolve.solvers.learned.bench import TOLS, compare_dcdm  # noqa: E402
from learnsolve.solvers.learned.models import BUILTIN_MODELS, model_file  # noqa: E402
from learnsolve.solvers.learned.network import DCDMNet, direction_for  # noqa: E402
from learnsolve.solvers.learned.training import TrainConfig, train_dcdm, training_data  # noqa: E402


def test_model_file_finds_the_shipped_models_and_names_the_parameter(tmp_path):
    for name in BUILTIN_MODELS:
        assert model_file(f"builtin:{name}").is_file()
    (tmp_path / "m.pt").write_bytes(b"x")
    assert model_file("m.pt", tmp_path) == tmp_path / "m.pt"
    with pytest.raises(InputError, match=r"no model file at .*\(bundled: builtin:dcdm2d") as err:
        model_file("nothing.pt", tmp_path)
    assert err.value.param == "model"


def test_direction_for_a_grid_shape_and_a_mask():
    direction, meta, seconds = direction_for((16, 16), "builtin:dcdm2d", device="cpu")
    assert meta["device"] == "cpu" and meta["architecture"]["dim"] == 2 and seconds > 0
    assert direction(np.ones(256) / 16).shape == (256,)
    mask = obstacle_mask(2, 16, "spheres", count=2, radius=0.1, seed=1)
    direction, _, _ = direction_for(mask, "builtin:dcdm2d", device="cpu")
    assert direction(np.ones(int(mask.sum()))).shape == (int(mask.sum()),)
    with pytest.raises(InputError, match="3D model cannot solve a 2D problem"):
        direction_for((8, 8), "builtin:dcdm3d", device="cpu")


def test_compare_dcdm_returns_one_row_per_method():
    problem = poisson(dim=2, n=24, operator="csr", rhs="random", seed=3,
                      obstacles={"kind": "spheres", "count": 3, "radius": 0.08})
    direction, meta, setup = direction_for(problem.mask, "builtin:dcdm2d", device="cpu")
    rows = compare_dcdm(problem.A, problem.b, direction, k=2, setup_s=setup, device=meta["device"])
    assert [r["method"] for r in rows] == ["dcdm (k=2, cpu)", "cg", "ic0-pcg", "amg-pcg"]
    assert all(r["status"] == "converged" for r in rows)
    for r in rows:
        hits = [r[f"iters_{t:.0e}"] for t in TOLS]
        assert hits == sorted(hits)
    assert rows[0]["iters_1e-08"] < rows[1]["iters_1e-08"] and rows[0]["network_ms_per_call"] > 0


def test_training_data_and_training_are_seeded_and_return_a_result():
    def operators():
        for i in range(2):
            mask = obstacle_mask(2, 16, "spheres", count=2, radius=0.1, seed=i)
            yield mask, obstacle_laplacian(mask)

    notes = []
    a = training_data(operators(), ritz=20, rhs_per_layout=4, seed=0, note=notes.append)
    b = training_data(operators(), ritz=20, rhs_per_layout=4, seed=0)
    assert notes == [1, 2] and len(a) == 2 and a[0].rhs.shape[0] == 4
    assert all(torch.equal(x.rhs, y.rhs) for x, y in zip(a, b, strict=True))
    torch.manual_seed(0)
    res = train_dcdm(DCDMNet(2, 4, 1, 1), a, TrainConfig(steps=5, batch=4, log_every=5, target_loss=1e-9))
    assert res.status == "max_iterations" and res.reason == "target_loss" and res.iterations == 5
    assert res.steps == 5 and np.isfinite(res.loss) and res.resumed_from is None
    assert isinstance(res.x, DCDMNet) and res.history["step"] == [5]
    # that it learns (the loss falls by 10% in 200 steps) is test_dcdm.py's end-to-end training test
