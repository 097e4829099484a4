"""The Deep Conjugate Direction Method: the iteration against CG and an exact inverse, the
A-orthogonality of its directions, the shipped 2D model at its training size, model files,
and training end to end (a tiny model, checkpoint and resume) through the CLI."""

import json

import numpy as np
import pytest
import scipy.sparse.linalg as spla
from clihelpers import bundled, error_line, sets

torch = pytest.importorskip("torch")

from learnsolve.pde.poisson import poisson  # noqa: E402
from learnsolve.solvers.errors import InputError  # noqa: E402
from learnsolve.solvers.learned.dcdm import dcdm  # noqa: E402
from learnsolve.solvers.learned.network import direction_map, load_model  # noqa: E402
from learnsolve.solvers.linear.cg import cg  # noqa: E402
from learnsolve.solvers.linear.precond import make_preconditioner  # noqa: E402

SPHERES = {"kind": "spheres", "count": 6, "radius": 0.08}


def obstacle_problem(n=32, seed=11, dim=2, **kw):
    return poisson(dim, n, "csr", "random", seed, obstacles={**SPHERES, "seed": seed, **kw})


def builtin(dim):
    from importlib import resources

    return str(resources.files("learnsolve.data").joinpath(f"dcdm{dim}d.pt"))


def test_identity_map_is_cg():
    p = obstacle_problem()
    ref = cg(p.A, p.b, rtol=1e-8)
    res = dcdm(p.A, p.b, lambda r: r, rtol=1e-8)
    assert res.status == "converged" and res.iterations == ref.iterations
    np.testing.assert_allclose(res.x, ref.x, rtol=0, atol=1e-6 * np.abs(ref.x).max())


def test_exact_inverse_converges_in_one_iteration():
    p = obstacle_problem()
    lu = spla.splu(p.A.to_csr().tocsc())
    res = dcdm(p.A, p.b, lu.solve, rtol=1e-10)
    assert res.status == "converged" and res.iterations == 1


def test_network_directions_are_a_orthogonal_and_scale_free():
    net, _ = load_model(builtin(2), 2)
    p = obstacle_problem(n=48)
    A = p.A.to_csr()
    q: list = []
    res = dcdm(p.A, p.b, direction_map(net, p.mask), rtol=1e-8, k=2, record=q)
    assert res.status == "converged"
    for i in range(1, len(q)):
        for j in range(max(0, i - 2), i):
            cos = q[i] @ (A @ q[j]) / np.sqrt((q[i] @ (A @ q[i])) * (q[j] @ (A @ q[j])))
            assert abs(cos) < 1e-8
    scaled = dcdm(p.A, 1e3 * p.b, direction_map(net, p.mask), rtol=1e-8, k=2)
    assert scaled.iterations == res.iterations


def test_shipped_2d_model_beats_cg_and_ic0_at_its_training_size():
    """An obstacle layout not in the training set (those use seeds 0..63), 64 x 64."""
    net, meta = load_model(builtin(2), 2)
    assert meta["train_grid"] == [64, 64] and meta["architecture"]["channels"] == 16
    p = obstacle_problem(n=64, seed=1001)
    it_cg = cg(p.A, p.b, rtol=1e-6).iterations
    it_ic0 = cg(p.A, p.b, rtol=1e-6, M=make_preconditioner("ic0", p.A)).iterations
    res = dcdm(p.A, p.b, direction_map(net, p.mask), rtol=1e-6)
    assert res.status == "converged"
    assert res.iterations <= 0.3 * it_cg and res.iterations < it_ic0


def test_model_file_errors(tmp_path):
    with pytest.raises(InputError, match="3D problem"):
        load_model(builtin(2), 3)
    blob = bytearray(open(builtin(2), "rb").read())
    (tmp_path / "cut.pt").write_bytes(bytes(blob[: len(blob) // 2]))
    with pytest.raises(InputError, match="not a readable model"):
        load_model(tmp_path / "cut.pt")
    saved = torch.load(builtin(2), weights_only=True)
    key = next(iter(saved["state_dict"]))
    saved["state_dict"][key] = saved["state_dict"][key] + 1e-3
    torch.save(saved, tmp_path / "edited.pt")
    with pytest.raises(InputError, match="corrupt"):
        load_model(tmp_path / "edited.pt")


TINY = {"name": "tiny", "seed": 3,
        "data": {"dim": 2, "n": 12, "obstacles": {"type": "spheres", "count": 2, "radius": 0.15},
                 "layouts": 2, "ritz": 12, "rhs_per_layout": 16},
        "model": {"channels": 8, "levels": 1, "blocks": 1},
        "training": {"steps": 200, "batch": 8, "lr": 3e-3, "checkpoint_every": 100, "log_every": 20,
                     "device": "cpu", "target_loss": 0.95}}  # lax: 200 steps only begin to learn


def test_training_end_to_end_and_resume(run_cli, tmp_path, write_job):
    job = write_job({**TINY, "output": {"dir": str(tmp_path / "runs"), "model": "tiny.pt"}})
    result = run_cli("train", "dcdm", job, "-q")
    assert result.exit_code == 0, result.stderr
    (run_dir,) = (tmp_path / "runs").iterdir()
    assert {"model.pt", "checkpoint.pt", "history.csv", "result.json", "job.yaml", "log.txt"} <= {
        p.name for p in run_dir.iterdir()}
    rec = json.loads((run_dir / "result.json").read_text())
    assert rec["status"] == "converged" and rec["iterations"] == 200
    hist = np.genfromtxt(run_dir / "history.csv", delimiter=",", names=True)
    assert hist["loss"][-1] < 0.9 * hist["loss"][0]  # it learns (from about 1: the loss of a random map)
    net, meta = load_model(tmp_path / "jobs" / "tiny.pt", 2)
    assert meta["steps"] == 200 and meta["train_grid"] == [12, 12]
    # the model drives a solve on a grid twice the size. 200 steps teach it too little to converge
    # fast; what must hold is that each step lowers the A-norm of the error
    p = obstacle_problem(n=24, seed=5, count=2, radius=0.15)
    A = p.A.to_csr()
    x_star = spla.spsolve(A.tocsc(), p.b)
    e = []
    for m in (1, 10, 30):
        x = dcdm(p.A, p.b, direction_map(net, p.mask), rtol=1e-12, maxiter=m, keep_best=False).x
        e.append(float(np.sqrt((x_star - x) @ (A @ (x_star - x)))))
    assert e[0] > e[1] > e[2] and e[0] < np.sqrt(x_star @ (A @ x_star))
    # an existing output.model is never overwritten
    again = run_cli("train", "dcdm", job, "-q")
    assert again.exit_code == 2 and "exists" in error_line(again)



def test_a_killed_training_resumes_exactly(run_cli, tmp_path, write_job):
    """Training killed at step 100 (the checkpoint the interrupt leaves), then resumed by the CLI
    to step 200: the same loss history as one straight run."""
    from learnsolve.cli.train import _layouts, load_train_job
    from learnsolve.solvers.learned.network import DCDMNet
    from learnsolve.solvers.learned.training import TrainConfig, train_dcdm

    job = write_job({**TINY, "output": {"dir": str(tmp_path / "runs")}})
    assert run_cli("train", "dcdm", job, "-q").exit_code == 0
    (straight,) = (tmp_path / "runs").iterdir()
    spec = load_train_job(job, ())
    torch.manual_seed(spec.seed)
    net = DCDMNet(2, 8, 1, 1)

    def kill(step, loss):
        if step == 100:
            raise KeyboardInterrupt

    t = spec.training
    cfg = TrainConfig(steps=t.steps, batch=t.batch, lr=t.lr, lr_final=t.lr_final, checkpoint_every=0,
                      log_every=t.log_every, seed=spec.seed, checkpoint=tmp_path / "killed.pt")
    killed = train_dcdm(net, _layouts(spec, "cpu"), cfg, kill)
    assert killed.interrupted and killed.iterations == 100
    job2 = write_job({**TINY, "output": {"dir": str(tmp_path / "resumed")}}, name="again")
    result = run_cli("train", "dcdm", job2, "--resume", tmp_path / "killed.pt", "-q")
    assert result.exit_code == 0, result.stderr
    (resumed,) = (tmp_path / "resumed").iterdir()
    a = np.genfromtxt(straight / "history.csv", delimiter=",", names=True)
    b = np.genfromtxt(resumed / "history.csv", delimiter=",", names=True)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-5)
    assert json.loads((resumed / "result.json").read_text())["metrics"]["resumed_from_step"] == 100


def test_dcdm_job_and_bench(run_cli, runs, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bundled("dcdm-poisson2d"), "--out", out, "-q", *sets("problem.n=64"))
    assert result.exit_code == 0, result.stderr
    rec = runs.result(runs.find(out))
    assert rec["status"] == "converged" and rec["iterations"] <= 20 and rec["relative_residual"] <= 1e-6
    assert rec["metrics"]["model"]["architecture"]["dim"] == 2
    csv_out = tmp_path / "bench.csv"
    result = run_cli("bench", bundled("dcdm-poisson2d"), "--out", csv_out, *sets("problem.n=32"))
    assert result.exit_code == 0, result.stderr
    rows = csv_out.read_text().splitlines()
    assert rows[0].startswith("method,iters_1e-04,iters_1e-06,iters_1e-08") and len(rows) == 5


@pytest.mark.parametrize("sets_, expected", [
    (["solver.model=builtin:dcdm3d"], "3D model cannot solve a 2D problem"),
    (["solver.model=nothing.pt"], "no model file"),
])
def test_dcdm_bad_input(run_cli, tmp_path, sets_, expected):
    result = run_cli("run", bundled("dcdm-poisson2d"), "--out", tmp_path / "o", "-q", *sets(*sets_))
    assert result.exit_code == 2
    assert expected in error_line(result)


def test_dcdm_needs_a_poisson_problem(run_cli, tmp_path, write_job):
    job = {"name": "m", "problem": {"type": "matrix-market", "path": "builtin:bar600.mtx"},
           "solver": {"type": "dcdm"}}
    result = run_cli("run", write_job(job), "--out", tmp_path / "o", "-q")
    assert result.exit_code == 2 and "dcdm needs a poisson problem" in error_line(result)


def test_training_bad_input_is_one_line_and_no_run_directory(run_cli, tmp_path, write_job):
    out = tmp_path / "runs"
    solid = write_job({**TINY, "data": {**TINY["data"], "obstacles": {"type": "spheres", "count": 40,
                                                                       "radius": 0.9}},
                       "output": {"dir": str(out)}}, name="solid")
    result = run_cli("train", "dcdm", solid, "-q")
    assert result.exit_code == 2 and "data.obstacles: no fluid cell" in error_line(result)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    job = write_job({**TINY, "output": {"dir": str(out)}})
    result = run_cli("train", "dcdm", job, "--resume", tmp_path / "junk.pt", "-q")
    assert result.exit_code == 2 and "not a checkpoint of this job's network" in error_line(result)
    bad_key = write_job({**TINY, "training": {**TINY["training"], "stepz": 3}}, name="typo")
    result = run_cli("train", "dcdm", bad_key, "-q")
    assert result.exit_code == 2 and "training.stepz: unknown key" in error_line(result)
    assert not out.exists()
