"""Issue 12, learned methods, the PINN side (moved here from tests/solvers/learned/test_trust_learned.py):
a PINN checkpoint of another network and bad observation files are exit 2 before any run
directory, PINN runs end ``converged`` only when their stated criterion holds, resumes in the
L-BFGS stage are exact, and progress names the PINN stage with its own count."""

from __future__ import annotations

import os
import signal
import subprocess

import pytest
from clihelpers import bundled, error_line, one_thread_env, sets, wait_until

torch = pytest.importorskip("torch")

from learnsolve.pde.flames.model import SimplifiedFlame  # noqa: E402
from learnsolve.pde.flames.pinn import PinnConfig, train_pinn  # noqa: E402

TINY_PINN = ["solver.width=8", "solver.depth=2", "solver.points=101", "solver.warmup_steps=20",
             "solver.reference=false"]


def test_pinn_checkpoint_of_another_network_is_exit_2(run_cli, tmp_path):
    out = tmp_path / "out"
    first = run_cli("run", bundled("flame-pinn-forward"), "--out", out, "-q",
                    *sets(*TINY_PINN, "solver.steps=10", "solver.lbfgs_steps=0", "solver.checkpoint_every=5"))
    assert first.exit_code == 3, first.stderr  # 10 steps do not converge
    (run_dir,) = out.iterdir()
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", tmp_path / "o2", "-q",
                     "--resume", run_dir, *sets(*TINY_PINN, "solver.width=9"))
    assert result.exit_code == 2
    line = error_line(result)
    assert "solver.resume" in line and "width 9" in line
    assert not (tmp_path / "o2").exists()


@pytest.mark.parametrize("text, words", [
    ("x,u\n0.001,1.0\n", "columns x and T"),
    ("x,T\n", "no observation rows"),
    ("", "the file is empty"),
    (" \x00\x81\xff", "columns x and T"),
    ("x,T\n0.001,abc\n", "non-numeric"),
    ("x,T\n0.001,500\n0.002,900\n", "must lie in [0, 0.0015]"),
    ("x,T,u\n0.001,500,-1\n", "must be positive"),
    ("x,T\n0.001,500,7\n", "cannot read"),
])
def test_bad_observation_files_are_exit_2_before_any_run_directory(text, words, run_cli, write_job, tmp_path):
    obs = tmp_path / "jobs" / "obs.csv"
    obs.parent.mkdir()
    obs.write_text(text)
    job = {"name": "inv", "problem": {"type": "premixed-flame"},
           "solver": {"type": "pinn", "mode": "inverse", "unknowns": {"lambda": 0.02},
                      "observations": {"file": "obs.csv"}, "steps": 5}}
    out = tmp_path / "out"
    result = run_cli("run", write_job(job), "--out", out, "-q")
    assert result.exit_code == 2
    line = error_line(result)
    assert "solver.observations.file" in line and words in line
    assert not out.exists()


def test_one_good_observation_row_is_read(tmp_path):
    from learnsolve.pde.flames.pinn import read_observations

    path = tmp_path / "one.csv"
    path.write_text("x,T\n0.001,500\n")
    obs = read_observations(path, 1.5e-3)
    assert obs.x.tolist() == [0.001] and obs.T.tolist() == [500.0] and obs.u is None


def test_pinn_with_nothing_to_train_is_exit_2(run_cli, tmp_path):
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", tmp_path / "o", "-q",
                     *sets("solver.steps=0", "solver.lbfgs_steps=0"))
    assert result.exit_code == 2
    assert "nothing would be trained" in error_line(result)
    assert not (tmp_path / "o").exists()


def test_a_short_pinn_run_is_not_converged(run_cli, runs, tmp_path):
    """60 Adam steps leave s_L far off and the physics loss high: max_iterations, exit 3, and
    result.json says which criterion failed, with the achieved value."""
    out = tmp_path / "out"
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", out, "-q",
                     *sets("solver.steps=60", "solver.lbfgs_steps=0", "solver.log_every=10"))
    assert result.exit_code == 3
    rec = runs.result(runs.find(out))
    m = rec["metrics"]
    assert rec["status"] == "max_iterations" and rec["reason"] == "loss_tol"
    assert m["criterion"]["physics_loss"] > m["criterion"]["loss_tol"] == 1e-4
    assert m["s_L_relative_error"] > 0.01
    assert "not below loss_tol" in rec["message"]


def test_pinn_verdict_needs_both_the_loss_and_a_settled_s_L():
    from learnsolve.pde.flames.pinn import verdict

    cfg = PinnConfig(loss_tol=1e-4, sl_rtol=1e-3, sl_window=200)
    hist = {"step": [100, 200, 300, 400], "s_L": [0.30, 0.2931, 0.2930, 0.29300]}
    assert verdict(cfg, 5e-5, hist, 0.2930, 400)[:2] == ("converged", "loss_tol")
    assert verdict(cfg, 2e-4, hist, 0.2930, 400)[:2] == ("max_iterations", "loss_tol")
    moving = {"step": hist["step"], "s_L": [0.30, 0.295, 0.294, 0.2930]}
    status, reason, _, crit = verdict(cfg, 5e-5, moving, 0.2930, 400)
    assert (status, reason) == ("max_iterations", "sl_rtol") and crit["s_L_drift"] == pytest.approx(2 / 293)
    assert verdict(cfg, 5e-5, {"step": [100], "s_L": [0.293]}, 0.293, 100)[1] == "sl_window"


@pytest.mark.slow
@pytest.mark.parametrize("name", ["flame-pinn-forward", "flame-pinn-inverse"])
def test_bundled_pinn_jobs_converge(name, run_cli, runs, tmp_path):
    out = tmp_path / "out"
    result = run_cli("run", bundled(name), "--out", out, "-q")
    assert result.exit_code == 0, result.stderr
    rec = runs.result(runs.find(out))
    crit = rec["metrics"]["criterion"]
    assert rec["status"] == "converged"
    assert crit["physics_loss"] < crit["loss_tol"] and crit["s_L_drift"] < crit["sl_rtol"]
    assert rec["metrics"]["s_L_relative_error"] < 0.005


def test_pinn_resumed_in_lbfgs_completes_it_as_one_run(tmp_path):
    flame = SimplifiedFlame()
    cfg = dict(width=8, depth=2, points=101, steps=40, warmup_steps=20, lbfgs_steps=80, log_every=10)
    straight = train_pinn(flame, PinnConfig(**cfg))
    ck = tmp_path / "checkpoint.pt"

    def kill(k, v):
        if k >= 40 + 30:  # in the L-BFGS stage
            raise KeyboardInterrupt

    killed = train_pinn(flame, PinnConfig(**cfg, checkpoint=ck, checkpoint_every=20), callback=kill)
    assert killed.status == "interrupted" and 0 < killed.lbfgs_iterations < straight.lbfgs_iterations
    resumed = train_pinn(flame, PinnConfig(**cfg, checkpoint=ck, checkpoint_every=20, resume=ck))
    assert resumed.resumed_from_step == 40 + killed.lbfgs_iterations
    assert resumed.lbfgs_iterations == straight.lbfgs_iterations > 40
    assert resumed.history == straight.history
    assert resumed.s_L == straight.s_L and resumed.status == straight.status


def test_pinn_progress_names_the_stage_and_its_own_count():
    from learnsolve.cli.types.flames import PinnParams, describe_progress

    seen = []
    cfg = PinnConfig(width=8, depth=2, points=101, steps=20, warmup_steps=5, lbfgs_steps=20, log_every=10)
    train_pinn(SimplifiedFlame(), cfg, callback=lambda k, v: seen.append(v))
    line = describe_progress(None, PinnParams(steps=20, lbfgs_steps=20))
    lines = [line(0, v) for v in seen]
    assert lines[0].startswith("adam 10/20  loss") and lines[1].startswith("adam 20/20")
    assert lines[2].startswith("lbfgs ") and lines[2].split()[1].endswith("/20")
    assert all(int(s.split()[1].split("/")[0]) <= 20 for s in lines)


@pytest.mark.slow  # 10-20 s; test_pinn_resumed_in_lbfgs_completes_it_as_one_run checks the same in-process
def test_pinn_killed_in_lbfgs_by_sigterm_resumes_to_the_end(cli_argv, run_cli, runs, tmp_path):
    """A real SIGTERM in the L-BFGS stage: exit 143, result.json interrupted; --resume then
    completes the L-BFGS steps, ending where one straight run ends."""
    small = sets(*TINY_PINN, "solver.steps=20", "solver.lbfgs_steps=200", "solver.log_every=10",
                 "solver.checkpoint_every=10")
    assert run_cli("run", bundled("flame-pinn-forward"), "--out", tmp_path / "straight", "-q",
                   *small).exit_code in (0, 3)
    straight = runs.result(runs.find(tmp_path / "straight"))
    assert straight["metrics"]["lbfgs_iterations"] == 200
    killed_out = tmp_path / "killed"
    proc = subprocess.Popen([*cli_argv, "run", str(bundled("flame-pinn-forward")), "--out", str(killed_out),
                             "-q", *small], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=one_thread_env())

    def in_lbfgs():
        for ck in killed_out.glob("*/checkpoint.pt"):
            try:
                return torch.load(ck, weights_only=True)["lbfgs"] is not None
            except (OSError, RuntimeError, EOFError):
                return False
        return False

    wait_until(in_lbfgs, proc)
    os.kill(proc.pid, signal.SIGTERM)
    assert proc.wait(timeout=30) == 143, proc.communicate()
    run_dir = runs.find(killed_out)
    rec = runs.result(run_dir)
    assert rec["status"] == "interrupted" and rec["metrics"]["lbfgs_iterations"] < 200
    result = run_cli("run", bundled("flame-pinn-forward"), "--out", tmp_path / "resumed", "-q",
                     "--resume", run_dir, *small)
    again = runs.result(runs.find(tmp_path / "resumed"))
    assert result.exit_code == (0 if straight["status"] == "converged" else 3)
    m, s = again["metrics"], straight["metrics"]
    assert m["resumed_from_step"] >= 20 + 10 and m["lbfgs_iterations"] == 200
    assert m["s_L"] == s["s_L"] and m["loss"] == s["loss"]

