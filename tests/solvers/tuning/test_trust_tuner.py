"""Issue 12, tuner: a shared tuner state that learns (its generator advances and is saved), full
validation of state files, tuner keys that do not apply, comparators that stop on a signal and
say what they are doing, and a sequence history that survives SIGKILL.

Sequences are shifted Laplacians on 10 x 10 grids; each test takes a few seconds."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from clihelpers import error_line

from learnsolve.pde.sequences import shifted_laplacian_sequence
from learnsolve.solvers.tuning import bandits
from learnsolve.solvers.tuning.sequence import baselines, make_solve, run_sequence
from learnsolve.solvers.tuning.state import PersistentTuner

GRID = np.linspace(1.0, 1.95, 20)
SOLVE = make_solve("sor", 1e-8, 10_000)


def _tuner(kind: str, seq: Any, seed: int) -> bandits.Tuner:
    lo, hi = seq.context_range
    if kind == "tsallis-inf":
        return bandits.TsallisInf(GRID, seed=seed)
    if kind == "tsallis-inf-cb":
        return bandits.TsallisInfCB(GRID, lo, hi, seed=seed)
    return bandits.ChebCB(GRID, lo, hi, seed=seed)


@pytest.fixture(scope="module")
def seqs() -> dict[int, Any]:
    return {seed: shifted_laplacian_sequence(s=10, instances=400, seed=seed) for seed in (0, 1, 2)}


# ------------------------------------------------------------------ 1. a shared state learns


@pytest.mark.parametrize("kind", ["tsallis-inf", "chebcb"])
def test_a_state_file_changes_no_choice(kind, seqs, tmp_path):
    # The state round-trips exactly (generator included), so a run through a fresh state file
    # draws the very omegas a run without one draws. Before the fix the saved generator never
    # advanced: tsallis-inf then drew one number forever (the last-100 mean of 366.7 against
    # 224.3 iterations on seed 0).
    seq = seqs[0]
    plain = run_sequence(seq.instances, SOLVE, _tuner(kind, seq, 0))
    shared = PersistentTuner(tmp_path / "state.json", _tuner(kind, seq, 0))
    stored = run_sequence(seq.instances, SOLVE, shared)
    assert stored.omega == plain.omega
    assert stored.iterations == plain.iterations
    state = json.loads((tmp_path / "state.json").read_text())
    assert state["t"] == 400
    assert state == json.loads(json.dumps(bandits.from_state(state).state()))
    # two successive runs of 200 on one fresh file (the second one reads the first's state;
    # its own seed is not used) make the choices of the single run too
    two = tmp_path / "two.json"
    first = run_sequence(seq.instances[:200], SOLVE, PersistentTuner(two, _tuner(kind, seq, 0)))
    second = run_sequence(seq.instances[200:], SOLVE, PersistentTuner(two, _tuner(kind, seq, 9)))
    assert first.omega + second.omega == plain.omega


def test_the_saved_generator_advances_with_every_choice(tmp_path):
    seq = shifted_laplacian_sequence(s=10, instances=5, seed=0)
    tuner = PersistentTuner(tmp_path / "state.json", _tuner("tsallis-inf", seq, 0))
    seen = []
    for inst in seq.instances:
        tuner.choose(inst.context)
        seen.append(json.dumps(json.loads((tmp_path / "state.json").read_text())["rng"]))
    assert len(set(seen)) == 5


def _alone(seq: Any, seed: int) -> float:
    """Mean iterations over the last 100 systems of one tsallis-inf run without a state file."""
    run = run_sequence(seq.instances, SOLVE, _tuner("tsallis-inf", seq, seed))
    return float(np.mean(run.iterations[-100:]))


def test_two_runs_sharing_a_fresh_file_learn_as_well_as_one(seqs, tmp_path):
    # Two runs on one fresh file, interleaved system by system (the worst case of concurrency:
    # every choice of one follows an update of the other), each solving half of the 400 systems.
    # Their last 100 systems (50 each) must cost about what one run's last 100 cost. Before the
    # fix: 2.8 times as much on average (seeds 0/1/2).
    alone, shared = [], []
    for seed, seq in seqs.items():
        alone.append(_alone(seq, seed))
        path = tmp_path / f"state{seed}.json"
        a = PersistentTuner(path, _tuner("tsallis-inf", seq, seed))
        b = PersistentTuner(path, _tuner("tsallis-inf", seq, seed + 100))
        runs: dict[str, list[int]] = {"a": [], "b": []}
        for t in range(200):
            for name, tuner, inst in (("a", a, seq.instances[t]), ("b", b, seq.instances[200 + t])):
                arm, p = tuner.choose(inst.context)
                its = SOLVE(inst, float(GRID[arm])).iterations
                tuner.update(arm, inst.context, its, p)
                runs[name].append(its)
        shared.append(float(np.mean(runs["a"][-50:] + runs["b"][-50:])))
        assert json.loads(path.read_text())["t"] == 400
    assert np.mean(shared) < 1.3 * np.mean(alone), (shared, alone)


WORKER = """
import json, sys
from pathlib import Path
import numpy as np
from learnsolve.solvers.tuning.state import PersistentTuner
from learnsolve.pde.sequences import shifted_laplacian_sequence
from learnsolve.solvers.tuning.bandits import TsallisInf
from learnsolve.solvers.tuning.sequence import make_solve, run_sequence
seed, lo, hi, path = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
seq = shifted_laplacian_sequence(s=10, instances=400, seed=seed)
tuner = PersistentTuner(Path(path), TsallisInf(np.linspace(1.0, 1.95, 20), seed=seed))
run = run_sequence(seq.instances[lo:hi], make_solve("sor", 1e-8, 10000), tuner)
print(json.dumps(run.iterations))
"""


@pytest.mark.slow
def test_two_processes_sharing_a_fresh_file_learn_as_well_as_one(seqs, tmp_path):
    # The same with two real processes at once, each solving half of the sequence.
    alone, shared = [], []
    for seed, seq in seqs.items():
        alone.append(_alone(seq, seed))
        path = str(tmp_path / f"state{seed}.json")
        procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(seed), str(lo), str(lo + 200), path],
                                  stdout=subprocess.PIPE, text=True) for lo in (0, 200)]
        halves = [json.loads(p.communicate(timeout=170)[0]) for p in procs]
        shared.append(float(np.mean(halves[0][-50:] + halves[1][-50:])))
        assert json.loads(Path(path).read_text())["t"] == 400
    assert np.mean(shared) < 1.3 * np.mean(alone), (shared, alone)


def test_a_signal_waits_for_the_state_update(tmp_path, monkeypatch):
    # SIGTERM sent while the state is being written: the write completes (no temporary file, a
    # valid state counting the update), then the signal's KeyboardInterrupt arrives.
    from learnsolve.solvers import files as rundir
    from learnsolve.solvers.tuning import state as tunerstate

    seq = shifted_laplacian_sequence(s=10, instances=3, seed=0)
    tuner = PersistentTuner(tmp_path / "state.json", _tuner("tsallis-inf", seq, 0))
    arm, p = tuner.choose(seq.instances[0].context)
    real = rundir.write_atomic

    def write_then_signal(path: Path, data: str, durable: bool = True) -> None:
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        tmp.write_text(data[: len(data) // 2])
        os.kill(os.getpid(), signal.SIGTERM)  # would interrupt here, half-written
        real(path, data, durable)

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(tunerstate, "write_atomic", write_then_signal)
    old = signal.signal(signal.SIGTERM, interrupt)
    try:
        with pytest.raises(KeyboardInterrupt):
            tuner.update(arm, seq.instances[0].context, 50, p)
    finally:
        signal.signal(signal.SIGTERM, old)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["state.json", "state.json.lock"]
    assert json.loads((tmp_path / "state.json").read_text())["t"] == 1


# ------------------------------------------------------------------ 2. state validation


def _job(omega: dict[str, Any], instances: int = 20, baselines: list[str] | None = None) -> dict[str, Any]:
    return {"problem": {"type": "shifted-laplacian-sequence", "s": 10, "instances": instances},
            "solver": {"type": "sor", "omega": omega}, "baselines": baselines or []}


def _valid_state(kind: str) -> dict[str, Any]:
    seq = shifted_laplacian_sequence(s=10, instances=30, seed=0)
    tuner = _tuner(kind, seq, 0)
    run_sequence(seq.instances, SOLVE, tuner)
    return tuner.state()


def _edit(state: dict[str, Any], key: str, value: Any) -> dict[str, Any]:
    out = dict(state)
    if value is KeyError:
        del out[key]
    else:
        out[key] = value
    return out


BAD_STATES = [
    ("nan-loss", "tsallis-inf", lambda s: _edit(s, "losses", [float("nan")] + s["losses"][1:]), "losses"),
    ("short-losses", "tsallis-inf", lambda s: _edit(s, "losses", s["losses"][:-1]), "losses"),
    ("negative-loss", "tsallis-inf", lambda s: _edit(s, "losses", [-1.0] + s["losses"][1:]), "losses"),
    ("t-negative", "tsallis-inf", lambda s: _edit(s, "t", -5), "t"),
    ("t-string", "tsallis-inf", lambda s: _edit(s, "t", "3"), "t"),
    ("t-float", "tsallis-inf", lambda s: _edit(s, "t", 2.5), "t"),
    ("t-missing", "tsallis-inf", lambda s: _edit(s, "t", KeyError), "t"),
    ("norm-nan", "tsallis-inf", lambda s: _edit(s, "norm", [float("nan"), 3]), "norm"),
    ("norm-short", "tsallis-inf", lambda s: _edit(s, "norm", [1.0]), "norm"),
    ("rng-garbage", "tsallis-inf", lambda s: _edit(s, "rng", {"bit_generator": "nope"}), "rng"),
    ("rng-string", "tsallis-inf", lambda s: _edit(s, "rng", "x"), "rng"),
    ("kind-number", "tsallis-inf", lambda s: _edit(s, "kind", 3), "kind"),
    ("not-a-mapping", "tsallis-inf", lambda s: [1, 2], "mapping"),
    ("cb-rounds-negative", "tsallis-inf-cb", lambda s: _edit(s, "rounds", [-1] + s["rounds"][1:]), "rounds"),
    ("cb-losses-shape", "tsallis-inf-cb", lambda s: _edit(s, "losses", s["losses"][:3]), "losses"),
    ("cb-range-reversed", "tsallis-inf-cb", lambda s: _edit(s, "range", [1.0, 0.0]), "range"),
    ("cheb-gram-shape", "chebcb", lambda s: _edit(s, "gram_inv", s["gram_inv"][:2]), "gram_inv"),
    ("cheb-moment-inf", "chebcb",
     lambda s: _edit(s, "moment", [[float("inf")] * 7] + s["moment"][1:]), "moment"),
    ("cheb-gamma-zero", "chebcb", lambda s: _edit(s, "gamma", 0.0), "gamma"),
]


@pytest.mark.parametrize("name,kind,edit,key", BAD_STATES, ids=[b[0] for b in BAD_STATES])
def test_a_bad_state_is_bad_input_before_any_run_directory(name, kind, edit, key, run_cli, write_job,
                                                          tmp_path):
    state = tmp_path / "jobs" / "st.json"
    state.parent.mkdir(exist_ok=True)
    state.write_text(json.dumps(edit(_valid_state(kind))))  # NaN and Infinity as Python writes them
    job = write_job(_job({"tuner": kind, "state": "st.json"}), name="bad")
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    line = error_line(result)
    assert "st.json" in line and key in line, line
    assert not (tmp_path / "out").exists()


def test_a_state_made_with_other_settings_is_bad_input(run_cli, write_job, tmp_path):
    state = tmp_path / "jobs" / "st.json"
    state.parent.mkdir(exist_ok=True)
    state.write_text(json.dumps(_valid_state("tsallis-inf-cb")))  # bins = 10
    job = write_job(_job({"tuner": "tsallis-inf-cb", "bins": 4, "state": "st.json"}), name="bins")
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    assert "bins" in error_line(result)
    assert not (tmp_path / "out").exists()


def test_a_valid_state_is_continued(run_cli, runs, write_job, tmp_path):
    state = tmp_path / "jobs" / "st.json"
    state.parent.mkdir(exist_ok=True)
    state.write_text(json.dumps(_valid_state("chebcb")))
    job = write_job(_job({"tuner": "chebcb", "state": "st.json"}), name="ok")
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    rec = runs.result(runs.find(tmp_path / "out"))
    assert rec["metrics"]["tuner_rounds_before"] == 30
    assert json.loads(state.read_text())["t"] == 50


# ------------------------------------------------------------------ 3. keys of other tuners

FOREIGN = [("tsallis-inf", "bins", 4), ("tsallis-inf", "degree", 3), ("tsallis-inf-cb", "gamma", 8.0),
           ("tsallis-inf-cb", "ridge", 2.0), ("chebcb", "bins", 4)]


@pytest.mark.parametrize("tuner,key,value", FOREIGN, ids=[f"{t}-{k}" for t, k, _ in FOREIGN])
def test_a_key_of_another_tuner_is_rejected(tuner, key, value, run_cli, write_job, tmp_path):
    job = write_job(_job({"tuner": tuner, key: value}), name="foreign")
    result = run_cli("run", job, "--out", tmp_path / "out")
    assert result.exit_code == 2, (result.exit_code, result.stderr)
    line = error_line(result)
    assert "solver.omega" in line and key in line and tuner in line, line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("tuner,own", [("tsallis-inf", set()), ("tsallis-inf-cb", {"bins"}),
                                       ("chebcb", {"degree", "gamma", "ridge"})])
def test_defaults_apply_and_job_yaml_reruns(tuner, own, run_cli, runs, write_job, tmp_path):
    job = write_job(_job({"tuner": tuner}), name="defaults")
    result = run_cli("run", job, "--out", tmp_path / "first", "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(tmp_path / "first")
    omega = runs.job(run_dir)["solver"]["omega"]
    assert own <= set(omega) and not ({"bins", "degree", "gamma", "ridge"} - own) & set(omega), omega
    again = run_cli("run", run_dir / "job.yaml", "--out", tmp_path / "again", "-q")
    assert again.exit_code == 0, again.stderr
    first, second = (runs.history(d) for d in (run_dir, runs.find(tmp_path / "again")))
    assert [r["omega"] for r in first] == [r["omega"] for r in second]


# ------------------------------------------------------------------ 4-6. signals, progress, SIGKILL


def test_interrupted_comparators_keep_what_they_did():
    seq = shifted_laplacian_sequence(s=10, instances=40, seed=0)
    names = ["best-fixed", "instance-optimal", "gauss-seidel", "cg"]
    reports: list[tuple[str, int, int]] = []

    def report(phase: str, done: int, total: int) -> None:
        reports.append((phase, done, total))
        if (phase, done) == ("gauss-seidel", 7):
            raise KeyboardInterrupt  # as a signal's handler would, here

    base = baselines(seq.instances, "sor", GRID, names, 1e-8, 10_000, report=report)
    full = baselines(seq.instances, "sor", GRID, ["gauss-seidel"], 1e-8, 10_000)["gauss-seidel"]
    assert base["best-fixed"]["complete"] and base["instance-optimal"]["complete"]
    gs = base["gauss-seidel"]
    assert not gs["complete"] and gs["instances"] == 7
    assert list(gs["iterations"]) == list(full["iterations"][:7])
    assert base["cg"]["instances"] == 0 and not base["cg"]["complete"] and base["cg"]["total_iterations"] == 0
    assert ("omega grid", 0, 40) in reports and ("omega grid", 40, 40) in reports
    assert ("gauss-seidel", 7, 40) in reports and ("gauss-seidel", 8, 40) not in reports
    assert not any(r[0] == "cg" for r in reports)


def _wait_for(folder: Path, pattern: str, proc: subprocess.Popen, needle: str | None, timeout: float) -> Path:
    """The first file matching the glob (and containing ``needle``), while ``proc`` stays alive."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"learnsolve ended early ({proc.returncode}): {proc.stderr.read()}")
        for f in folder.glob(pattern):
            if needle is None or needle in f.read_text():
                return f
        time.sleep(0.05)
    pytest.fail(f"no {pattern} with {needle!r} after {timeout} s")


@pytest.mark.parametrize("sig, code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)],
                         ids=["SIGTERM", "SIGINT"])
def test_a_signal_during_the_comparators_stops_the_run(sig, code, cli_argv, write_job, tmp_path):
    # 800 systems: the tuned pass takes about a second, the comparators several; before the fix
    # the comparators ran to the end and the run exited 0 "converged".
    job = write_job(_job({"tuner": "chebcb"}, 800, ["best-fixed", "instance-optimal", "gauss-seidel", "cg"]),
                    name="sig")
    out = tmp_path / "out"
    proc = subprocess.Popen([*cli_argv, "run", str(job), "--out", str(out), "--threads", "1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    log = _wait_for(out, "*/log.txt", proc, "comparator omega grid: started", 120)
    time.sleep(0.3)
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=10)
    assert proc.returncode == code, err
    assert "Traceback" not in err
    assert "comparator omega grid: started" in err  # batch mode: stderr is not a terminal
    rec = json.loads((log.parent / "result.json").read_text())
    assert rec["status"] == "interrupted" and rec["exit_code"] == code
    assert rec["metrics"]["instances"] == 800
    grid = rec["baselines"]["best-fixed"]
    assert not grid["complete"] and 0 <= grid["instances"] < 800
    assert all(not b["complete"] and b["instances"] == 0 for name, b in rec["baselines"].items()
               if name != "best-fixed")
    assert "interrupted in the comparators" in rec["message"]
    rows = (log.parent / "history.csv").read_text().splitlines()
    assert len(rows) == 801 and rows[0].split(",")[-1] == "iterations_cg"


def test_comparators_log_their_phases(run_cli, runs, write_job, tmp_path):
    job = write_job(_job({"tuner": "tsallis-inf"}, 30, ["best-fixed", "gauss-seidel"]), name="phases")
    result = run_cli("run", job, "--out", tmp_path / "out", "-q")
    assert result.exit_code == 0, result.stderr
    run_dir = runs.find(tmp_path / "out")
    log = (run_dir / "log.txt").read_text()
    for phase in ("omega grid", "gauss-seidel"):
        assert f"comparator {phase}: started (30 instances)" in log
        assert f"comparator {phase}: done" in log
    rec = runs.result(run_dir)
    gs = rec["baselines"]["gauss-seidel"]
    assert gs["complete"] and gs["instances"] == 30


def test_sigkill_leaves_the_history_of_the_systems_done(cli_argv, write_job, tmp_path):
    # 40,000 systems of 20 x 20: the pass takes about 10 s on one thread, and the first
    # checkpoint comes 2 s into it; the run is killed as soon as a checkpoint is there
    job = write_job({**_job({"tuner": "chebcb"}), "problem": {
        "type": "shifted-laplacian-sequence", "s": 20, "c_lo": -0.04, "instances": 40_000}}, name="kill")
    out = tmp_path / "out"
    proc = subprocess.Popen([*cli_argv, "run", str(job), "--out", str(out), "--threads", "1", "-q"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    history = _wait_for(out, "*/history.csv", proc, "\n11,", 120)  # a checkpoint past system 10
    proc.kill()
    proc.communicate(timeout=10)
    assert proc.returncode == -signal.SIGKILL
    assert not (history.parent / "result.json").exists()
    lines = history.read_text().splitlines()
    assert lines[0] == "t,context,omega,iterations,seconds"
    rows = [line.split(",") for line in lines[1:]]
    assert len(rows) > 10
    assert [int(r[0]) for r in rows] == list(range(1, len(rows) + 1))
    assert all(int(r[3]) > 0 and 1.0 <= float(r[2]) <= 1.95 for r in rows)
