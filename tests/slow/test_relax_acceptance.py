"""The targets of *Learning to Relax* at paper scale (slow: ``pytest -m slow``, about 6 minutes).

High- and low-variance shifted-Laplacian sequences, T = 5000, averaged over 5 seeds: Tsallis-INF
within 1.2x the best fixed omega; ChebCB within 1.25x the instance-optimal policy and below the
best fixed omega. Heat sequence (50 x 50, SSOR-PCG, the bundled relax-heat settings): ChebCB
below the best fixed omega.
"""

import numpy as np
import pytest

from learnsolve.pde.sequences import heat_sequence, shifted_laplacian_sequence
from learnsolve.solvers.tuning.bandits import ChebCB, TsallisInf
from learnsolve.solvers.tuning.sequence import baselines, make_solve, run_sequence

GRID = np.linspace(1.0, 1.95, 20)
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("beta_a,beta_b", [(0.5, 1.5), (2.0, 6.0)], ids=["high-variance", "low-variance"])
def test_shifted_laplacian_targets(beta_a, beta_b):
    solve = make_solve("sor", 1e-8, 10_000)
    ratios = {"tsallis/best-fixed": [], "chebcb/instance-optimal": [], "chebcb/best-fixed": []}
    for seed in range(5):
        seq = shifted_laplacian_sequence(beta_a=beta_a, beta_b=beta_b, instances=5000, seed=seed)
        base = baselines(seq.instances, "sor", GRID, ["best-fixed", "instance-optimal"], 1e-8, 10_000)
        bf, io = base["best-fixed"]["total_iterations"], base["instance-optimal"]["total_iterations"]
        ts = run_sequence(seq.instances, solve, TsallisInf(GRID, seed=seed)).total_iterations
        cb = run_sequence(seq.instances, solve, ChebCB(GRID, *seq.context_range, seed=seed)).total_iterations
        ratios["tsallis/best-fixed"].append(ts / bf)
        ratios["chebcb/instance-optimal"].append(cb / io)
        ratios["chebcb/best-fixed"].append(cb / bf)
    mean = {k: float(np.mean(v)) for k, v in ratios.items()}
    print(beta_a, beta_b, mean)
    assert mean["tsallis/best-fixed"] <= 1.2
    assert mean["chebcb/instance-optimal"] <= 1.25
    assert mean["chebcb/best-fixed"] < 1.0


def test_heat_sequence_chebcb_beats_the_best_fixed_omega():
    seq = heat_sequence(n=50, steps=1000)
    solve = make_solve("ssor-pcg", 1e-8, 10_000)
    bf = baselines(seq.instances, "ssor-pcg", GRID, ["best-fixed"], 1e-8, 10_000)["best-fixed"]
    totals = [run_sequence(seq.instances, solve, ChebCB(GRID, *seq.context_range, degree=2, seed=s))
              .total_iterations for s in range(3)]
    print("heat", bf["total_iterations"], bf["omega"], totals)
    assert np.mean(totals) < bf["total_iterations"]
