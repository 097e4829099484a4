"""Issue 12, learned methods, the DCDM side: checkpoints are read safely (a crafted pickle runs
nothing, PINN and DCDM alike), bad models are exit 2 before any run directory, DCDM trainings end
``converged`` only when their stated criterion holds, a resume after a real SIGTERM is exact, and a
SIGTERM while the training data is made ends 143 with one line. The PINN tests are in
tests/pde/flames/test_trust_pinn.py."""

from __future__ import annotations

import os
import signal
import subprocess

import numpy as np
import pytest
import yaml
from clihelpers import bundled, error_line, one_thread_env, sets, wait_until

torch = pytest.importorskip("torch")

TINY_TRAIN = {"name": "tiny", "seed": 3,
              "data": {"dim": 2, "n": 12, "obstacles": {"type": "spheres", "count": 2, "radius": 0.15},
                       "layouts": 2, "ritz": 12, "rhs_per_layout": 16},
              "model": {"channels": 8, "levels": 1, "blocks": 1},
              "training": {"steps": 300, "batch": 8, "lr": 3e-3, "checkpoint_every": 50, "log_every": 20,
                           "device": "cpu"}}


class Evil:
    """Unpickling this object opens (creates) the marker file: what a crafted checkpoint could do."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def test_crafted_checkpoints_run_no_code_and_exit_2(run_cli, write_job, tmp_path):
    marker = tmp_path / "pwned"
    crafted = tmp_path / "crafted"
    crafted.mkdir()
    torch.save({"format": "learnsolve-pinn/2", "state": Evil(marker)}, crafted / "checkpoint.pt")
    out = tmp_path / "out"
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", out, "-q", "--resume", crafted)
    assert result.exit_code == 2
    assert "not a checkpoint of this network" in error_line(result)
    train = write_job({**TINY_TRAIN, "output": {"dir": str(out)}})
    result = run_cli("train", "dcdm", train, "-q", "--resume", crafted / "checkpoint.pt")
    assert result.exit_code == 2
    assert "not a checkpoint of this job's network" in error_line(result)
    assert not marker.exists() and not out.exists()


def test_bad_dcdm_models_are_exit_2_before_any_run_directory(run_cli, tmp_path):
    junk = tmp_path / "junk.pt"
    junk.write_bytes(b"\x80\x02not a model at all")
    foreign = tmp_path / "foreign.pt"
    torch.save({"weights": torch.zeros(3)}, foreign)
    out = tmp_path / "out"
    for model, words in [(junk, "not a readable model file"), (foreign, "not a learnsolve DCDM model file"),
                         ("builtin:dcdm3d", "a 3D model cannot solve a 2D problem")]:
        result = run_cli("run", bundled("dcdm-poisson2d"), "--out", out, "-q", *sets(f"solver.model={model}"))
        assert result.exit_code == 2
        line = error_line(result)
        assert "solver.model" in line and words in line
    assert not out.exists()


def test_an_untrained_dcdm_training_ends_3(run_cli, runs, write_job, tmp_path):
    out = tmp_path / "out"
    job = write_job({**TINY_TRAIN, "training": {**TINY_TRAIN["training"], "steps": 3},
                     "output": {"dir": str(out), "model": "m.pt"}})
    result = run_cli("train", "dcdm", job, "-q")
    assert result.exit_code == 3, result.stderr
    rec = runs.result(runs.find(out))
    m = rec["metrics"]
    assert rec["status"] == "max_iterations" and rec["reason"] == "target_loss"
    assert m["final_loss"] > m["target_loss"] == 0.05
    assert not (tmp_path / "jobs" / "m.pt").exists()  # an unfinished model is not published
    lax = write_job({**TINY_TRAIN, "training": {**TINY_TRAIN["training"], "steps": 3, "target_loss": 10.0},
                     "output": {"dir": str(tmp_path / "lax")}}, name="lax")
    result = run_cli("train", "dcdm", lax, "-q")
    assert result.exit_code == 0 and runs.result(runs.find(tmp_path / "lax"))["status"] == "converged"


def test_sigterm_while_the_training_data_is_made_is_143_and_one_line(cli_argv, write_job, tmp_path):
    out = tmp_path / "out"
    many = write_job({**TINY_TRAIN, "data": {**TINY_TRAIN["data"], "layouts": 100_000},
                      "output": {"dir": str(out)}})
    err = tmp_path / "stderr.txt"
    with open(err, "w") as fh:
        proc = subprocess.Popen([*cli_argv, "train", "dcdm", str(many)], stdout=subprocess.PIPE,
                                stderr=fh, env=one_thread_env())
        # the estimate comes after the first timed layouts: data generation is under way, logged
        wait_until(lambda: "training data: about" in err.read_text(), proc)
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=30) == 143
    lines = err.read_text().splitlines()
    assert "interrupted while making the training data" in lines[-1] and "Traceback" not in err.read_text()
    assert not out.exists()


def test_training_killed_by_sigterm_resumes_to_the_same_loss(cli_argv, run_cli, runs, write_job, tmp_path):
    straight_job = write_job({**TINY_TRAIN, "output": {"dir": str(tmp_path / "straight")}}, name="straight")
    assert run_cli("train", "dcdm", straight_job, "-q").exit_code in (0, 3)
    straight = runs.result(runs.find(tmp_path / "straight"))
    killed_out = tmp_path / "killed"
    job = write_job({**TINY_TRAIN, "output": {"dir": str(killed_out)}}, name="killed")
    proc = subprocess.Popen([*cli_argv, "train", "dcdm", str(job), "-q"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, env=one_thread_env())
    wait_until(lambda: any(killed_out.glob("*/checkpoint.pt")), proc)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 143, proc.communicate()
    (run_dir,) = killed_out.iterdir()
    rec = runs.result(run_dir)
    assert rec["status"] == "interrupted" and 50 <= rec["iterations"] < 300
    ck = torch.load(run_dir / "checkpoint.pt", weights_only=True)
    assert ck["step"] == rec["iterations"]
    result = run_cli("train", "dcdm", job, "-q", "--resume", run_dir)
    assert result.exit_code == (0 if straight["status"] == "converged" else 3), result.stderr
    resumed = [d for d in killed_out.iterdir() if d != run_dir]
    again = runs.result(resumed[0])
    assert again["metrics"]["resumed_from_step"] == rec["iterations"] and again["iterations"] == 300
    assert again["metrics"]["final_loss"] == pytest.approx(straight["metrics"]["final_loss"], rel=1e-6)
    a = np.genfromtxt(runs.find(tmp_path / "straight") / "history.csv", delimiter=",", names=True)
    b = np.genfromtxt(resumed[0] / "history.csv", delimiter=",", names=True)
    np.testing.assert_allclose(b["loss"], a["loss"], rtol=1e-6)
    assert yaml.safe_load((run_dir / "job.yaml").read_text())["training"]["target_loss"] == 0.05


def test_a_model_with_the_right_tag_and_wrong_contents_is_exit_2(run_cli, tmp_path):
    from learnsolve.solvers.learned.network import FORMAT, _state_hash

    state = {"w": torch.zeros(2)}
    odd = tmp_path / "odd.pt"
    torch.save({"format": FORMAT, "meta": {"architecture": {"dim": 2, "channels": 4}}, "state_dict": state,
                "sha256": _state_hash(state)}, odd)
    out = tmp_path / "out"
    result = run_cli("run", bundled("dcdm-poisson2d"), "--out", out, "-q", *sets(f"solver.model={odd}"))
    assert result.exit_code == 2 and "not a learnsolve DCDM model file" in error_line(result)
    assert not out.exists()


def test_training_progress_logs_an_estimate_then_periodic_lines(monkeypatch):
    import logging

    from learnsolve.cli import train

    class Keep(logging.Handler):
        def __init__(self):
            super().__init__()
            self.lines = []

        def emit(self, record):
            self.lines.append(record.getMessage())

    clock = iter([0.0, 1.0, 6.0, 8.0, 12.0, 20.0])
    monkeypatch.setattr("time.monotonic", lambda: next(clock))
    pace = train._Pace("training", "step", 20000, every=5.0)  # reads the clock once (t = 0)
    logger, keep = logging.getLogger("learnsolve"), Keep()
    monkeypatch.setattr(logger, "level", logging.INFO)
    logger.addHandler(keep)
    try:
        for step in (1, 11, 13, 21, 31):  # at t = 1 (warm-up), 6, 8, 12, 20
            pace(step)
    finally:
        logger.removeHandler(keep)
    lines = keep.lines
    # 10 steps in 5 s after the first: 0.5 s a step, 19,989 left = 2.8 h
    assert lines[0] == "training: about 2.8 h for the remaining 19989 steps at this rate (0.5 s per step)"
    # then a line at most every 5 s: none at t = 8, one at t = 12 and t = 20
    assert [line.split("  ")[0] for line in lines[1:]] == ["training: step 21/20000",
                                                           "training: step 31/20000"]


def test_training_verdict_is_the_library_s():
    from learnsolve.solvers.learned.training import verdict as train_verdict

    def verdict(loss: float, **kw: object) -> str:
        return train_verdict(10, loss, 1.0, 0.05, **kw)[0]

    assert verdict(0.049) == "converged"
    assert verdict(0.05) == verdict(1.0) == "max_iterations"
    assert verdict(float("nan")) == "diverged"
    assert verdict(0.01, interrupted=True) == "interrupted"

