"""relax() and make_tuner(): the tuned pass and its comparators as a library call."""

from __future__ import annotations

import numpy as np
import pytest

from learnsolve.pde.sequences import shifted_laplacian_sequence
from learnsolve.solvers import InputError, PersistentTuner, make_tuner, relax
from learnsolve.solvers.linear.sor import young_omega
from learnsolve.solvers.tuning.bandits import ChebCB, TsallisInf, TsallisInfCB
from learnsolve.solvers.tuning.sequence import make_solve, run_sequence

GRID = np.linspace(1.0, 1.95, 20)


@pytest.fixture(scope="module")
def seq():
    return shifted_laplacian_sequence(s=8, instances=60, seed=3)


def test_make_tuner_names_and_settings():
    assert isinstance(make_tuner("tsallis-inf", GRID), TsallisInf)
    cb = make_tuner("tsallis-inf-cb", GRID, (0.0, 1.0), bins=4)
    assert isinstance(cb, TsallisInfCB) and cb.bins == 4
    ch = make_tuner("chebcb", GRID, (-0.1, 0.4), seed=2, degree=3, gamma=8.0)
    assert isinstance(ch, ChebCB) and (ch.degree, ch.gamma, ch.lo) == (3, 8.0, -0.1)
    with pytest.raises(InputError, match="unknown tuner"):
        make_tuner("ucb", GRID)
    with pytest.raises(InputError, match="does not apply"):
        make_tuner("tsallis-inf", GRID, bins=3)


def test_relax_matches_the_pass_and_reports_comparators(seq):
    res = relax(seq, "sor", "chebcb", seed=1, comparators=["best-fixed", "instance-optimal", "gauss-seidel"])
    plain = run_sequence(seq.instances, make_solve("sor", 1e-8, 10_000),
                         ChebCB(GRID, *seq.context_range, seed=1))
    assert res.converged and res.iterations == res.total_iterations == plain.total_iterations
    assert list(res.history["omega"]) == plain.omega
    assert res.metrics["omega_policy"] == "chebcb" and res.unknowns == 64 and res.instances == 60
    bf = res.baselines["best-fixed"]
    assert res.ratio_to_best_fixed == pytest.approx(res.total_iterations / bf["total_iterations"])
    assert bf["omega"] in GRID and bf["complete"] and bf["instances"] == 60
    # the best fixed omega is near Young's optimum for the median Jacobi radius (closed form for
    # SOR on these consistently ordered matrices; two grid steps, SOR is cheaper over than under)
    median_rho = np.median([inst.jacobi_radius for inst in seq.instances])
    assert abs(bf["omega"] - young_omega(median_rho)) <= 0.1 + 1e-12
    io = res.baselines["instance-optimal"]["total_iterations"]
    assert io < bf["total_iterations"] < res.baselines["gauss-seidel"]["total_iterations"]
    assert set(res.history) >= {"t", "context", "seconds", "iterations_best_fixed",
                                "iterations_instance_optimal", "iterations_gauss_seidel"}
    assert set(res.timings) == {"setup_s", "solve_s"} and res.baselines_s >= 0


def test_relax_fixed_omega_on_a_list_with_callbacks(seq):
    steps, saved = [], []
    res = relax(seq.instances[:10], "ssor-pcg", 1.3, callback=lambda t, w, it: steps.append((t, w)),
                checkpoint=lambda cols, final: saved.append((len(cols["iterations"]), final)))
    assert res.converged and res.metrics["omega_policy"] == "fixed" and res.mean_omega == pytest.approx(1.3)
    assert steps[-1] == (10, 1.3) and saved[-1] == (10, True) and len(saved) == 11
    assert res.baselines == {} and "ratio_to_best_fixed" not in res.metrics


def test_relax_rejects_bad_input(seq):
    with pytest.raises(InputError, match="comparator"):
        relax(seq, comparators=["oracle"])
    with pytest.raises(InputError, match="method"):
        relax(seq, "jacobi")
    with pytest.raises(InputError, match="state"):
        relax(seq, omega=1.2, state="x.json")


def test_relax_state_file_continues(seq, tmp_path):
    path = tmp_path / "state.json"
    first = relax(seq.instances[:20], "sor", "tsallis-inf", state=path)
    second = relax(seq.instances[20:40], "sor", "tsallis-inf", state=path)
    assert first.tuner_rounds_before == 0 and second.tuner_rounds_before == 20
    assert PersistentTuner(path, make_tuner("tsallis-inf", GRID)).tuner.t == 40
    # the learning survives the split: the same omegas as one run over the 40 systems
    whole = relax(seq.instances[:40], "sor", "tsallis-inf", state=tmp_path / "whole.json")
    assert [*first.history["omega"], *second.history["omega"]] == list(whole.history["omega"])
    assert len(set(whole.history["omega"])) > 3  # and it explores
