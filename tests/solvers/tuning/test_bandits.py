"""The omega tuners: the Tsallis-INF distribution against an independent root finder, learning on
stochastic and contextual problems with a known best arm, JSON state round trips, and the
sequence runner with its comparators."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from scipy.optimize import brentq

from learnsolve.pde.sequences import shifted_laplacian_sequence
from learnsolve.solvers.linear.sor import young_omega
from learnsolve.solvers.tuning.bandits import (
    ChebCB,
    TsallisInf,
    TsallisInfCB,
    chebyshev_features,
    from_state,
    tsallis_probabilities,
)
from learnsolve.solvers.tuning.sequence import baselines, make_solve, run_sequence

GRID5 = np.linspace(1.0, 1.8, 5)
GRID20 = np.linspace(1.0, 1.95, 20)


# ------------------------------------------------------------------ the Tsallis-INF distribution


def brent_probabilities(losses: np.ndarray, eta: float) -> np.ndarray:
    """p_i = 4 / (eta (L_i - x))^2 with sum p = 1, x < min L, found by bracketing: at
    x = min L - 2/eta the best arm alone has p = 1 (sum >= 1); at x = min L - 2 sqrt(K)/eta every
    p_i <= 1/K (sum <= 1; 1 % lower, sum < 1); the sum is increasing in x in between."""
    m, k = losses.min(), losses.size

    def excess(x):
        return np.sum(4.0 / (eta * (losses - x)) ** 2) - 1.0

    x = brentq(excess, m - 2.02 * math.sqrt(k) / eta, m - 2.0 / eta, xtol=1e-13, rtol=1e-15,
               maxiter=500)
    return 4.0 / (eta * (losses - x)) ** 2


def test_tsallis_probabilities_over_a_long_adversarial_run():
    """20,000 rounds, eta_t = 2/sqrt(t), importance-weighted losses growing to ~1e6: the
    distribution is always a distribution and is the Tsallis-INF one (brentq) on sampled rounds."""
    rng = np.random.default_rng(1)
    k = 6
    losses = np.zeros(k)
    checked = 0
    for t in range(1, 20_001):
        eta = 2.0 / math.sqrt(t)
        p = tsallis_probabilities(losses, eta)
        assert p.shape == (k,)
        assert np.all(p >= 0.0) and np.all(np.isfinite(p)), (t, p)
        assert abs(p.sum() - 1.0) < 1e-12, t
        # the arm with the smallest cumulative loss is the most likely
        assert int(np.argmax(p)) == int(np.argmin(losses)) or np.isclose(p.max(), p[np.argmin(losses)])
        if t in (1, 2, 3, 10, 100) or t % 2500 == 0:
            q = brent_probabilities(losses, eta)
            np.testing.assert_allclose(p, q, rtol=0, atol=1e-9, err_msg=f"round {t}")
            checked += 1
        arm = min(int(np.searchsorted(np.cumsum(p), rng.random() * p.sum())), k - 1)
        # adversarial: the currently favoured arm loses, the others lose at random
        loss = 1.0 if arm == int(np.argmax(p)) else rng.random()
        losses[arm] += 100.0 * loss / p[arm]
    assert checked >= 10
    assert 5e5 < losses.min() and losses.max() < 5e6  # the scale the test is about was reached


@pytest.mark.parametrize("losses,eta", [
    (np.zeros(4), 1.0),
    (np.array([0.0, 1e6, 1e6, 1e6]), 0.01),
    (np.array([3.0, 3.0, 3.0 + 1e-9]), 5.0),
    (np.array([1e6, 1e6 + 10.0, 1e6 + 300.0, 2e6]), 2.0 / math.sqrt(20_000)),
])
def test_tsallis_probabilities_edge_cases(losses, eta):
    p = tsallis_probabilities(losses, eta)
    assert abs(p.sum() - 1.0) < 1e-12 and np.all(p >= 0)
    np.testing.assert_allclose(p, brent_probabilities(losses, eta), rtol=0, atol=1e-9)
    if np.all(losses == losses[0]):
        np.testing.assert_allclose(p, 1.0 / losses.size, rtol=1e-12)


# ------------------------------------------------------------------ learning


def test_tsallis_inf_finds_the_best_arm_of_a_stochastic_problem():
    means = np.array([0.2, 0.35, 0.5, 0.65, 0.8])
    tuner = TsallisInf(GRID5, seed=3)
    rng = np.random.default_rng(30)
    arms = []
    for _ in range(5000):
        arm, prob = tuner.choose(0.0)
        assert 0 < prob <= 1
        iterations = 1 + int(rng.random() < means[arm])  # cost iterations - 1 ~ Bernoulli(mean)
        tuner.update(arm, 0.0, iterations, prob)
        arms.append(arm)
    assert tuner.t == 5000
    last = np.array(arms[-1000:])
    assert np.mean(last == 0) > 0.7
    assert tuner.probabilities()[0] > 0.7


def _best(context: float) -> int:
    return 0 if context < 0.5 else 4


def _contextual_hits(tuner, seed: int, rounds: int = 3000) -> np.ndarray:
    rng = np.random.default_rng(seed)
    hits = []
    for _ in range(rounds):
        c = rng.random()
        arm, prob = tuner.choose(c)
        assert 0 < prob <= 1
        iterations = max(1, int(round(10 + 20 * abs(arm - _best(c)) + rng.normal(0.0, 2.0))))
        tuner.update(arm, c, iterations, prob)
        hits.append(arm == _best(c))
    return np.array(hits)


def test_chebcb_learns_a_context_dependent_best_arm():
    hits = _contextual_hits(ChebCB(GRID5, 0.0, 1.0, seed=4), seed=40)
    assert hits[-1000:].mean() > 0.7


def test_tsallis_inf_cb_with_two_bins_learns_it_too():
    hits = _contextual_hits(TsallisInfCB(GRID5, 0.0, 1.0, bins=2, seed=5), seed=50)
    assert hits[-1000:].mean() > 0.6


def test_chebyshev_features_are_the_chebyshev_polynomials():
    for z in (-1.0, -0.3, 0.0, 0.71, 1.0):
        phi = chebyshev_features(z, 6)
        np.testing.assert_allclose(phi, [math.cos(k * math.acos(z)) for k in range(7)], atol=1e-13)


# ------------------------------------------------------------------ state round trips


def _tuners():
    return {
        "tsallis-inf": TsallisInf(GRID5, seed=7),
        "tsallis-inf-cb": TsallisInfCB(GRID5, -0.15, 0.45, bins=3, seed=7),
        "chebcb": ChebCB(GRID5, -0.15, 0.45, degree=4, ridge=0.5, gamma=8.0, seed=7),
    }


@pytest.mark.parametrize("kind", ["tsallis-inf", "tsallis-inf-cb", "chebcb"])
def test_state_round_trip_through_json_continues_identically(kind):
    tuner = _tuners()[kind]
    rng = np.random.default_rng(70)

    def play(t, c):
        arm, prob = t.choose(c)
        iterations = int(20 + 15 * abs(arm - 2) + 40 * c + rng.integers(0, 3))
        t.update(arm, c, iterations, prob)
        return arm, prob, iterations

    for _ in range(100):
        play(tuner, rng.uniform(-0.15, 0.45))
    state = tuner.state()
    assert state["kind"] == kind and state["t"] == 100
    clone = from_state(json.loads(json.dumps(state)))
    assert type(clone) is type(tuner)
    assert clone.t == 100
    np.testing.assert_array_equal(clone.grid, tuner.grid)
    if kind == "chebcb":
        for c in np.linspace(-0.15, 0.45, 7):
            np.testing.assert_allclose(clone.predict(c), tuner.predict(c), rtol=1e-12, atol=1e-12)
    # the same next 20 choices (same rng) and probabilities, fed the same outcomes
    for _ in range(20):
        c = float(rng.uniform(-0.15, 0.45))
        a1, p1 = tuner.choose(c)
        a2, p2 = clone.choose(c)
        assert a1 == a2
        assert p1 == pytest.approx(p2, rel=1e-12)
        its = int(20 + 15 * abs(a1 - 2) + 40 * c)
        tuner.update(a1, c, its, p1)
        clone.update(a2, c, its, p2)
    assert json.dumps(clone.state()) == json.dumps(tuner.state())
    if kind == "chebcb":
        for c in np.linspace(-0.15, 0.45, 7):
            np.testing.assert_allclose(clone.predict(c), tuner.predict(c), rtol=1e-12, atol=1e-12)


def test_from_state_rejects_an_unknown_kind():
    state = TsallisInf(GRID5).state()
    state["kind"] = "nope"
    with pytest.raises(ValueError):
        from_state(state)


# ------------------------------------------------------------------ sequences and comparators


@pytest.fixture(scope="module")
def seq():
    return shifted_laplacian_sequence(instances=200, seed=0)


def test_run_sequence_fixed_and_tuned_totals(seq):
    solve = make_solve("sor", 1e-8, 10_000)
    fixed = run_sequence(seq.instances, solve, 1.5)
    per = [solve(inst, 1.5).iterations for inst in seq.instances]
    assert fixed.iterations == per
    assert fixed.total_iterations == sum(per)
    assert fixed.converged and fixed.omega == [1.5] * 200
    assert fixed.context == [inst.context for inst in seq.instances]

    seen = []
    tuned = run_sequence(seq.instances, solve, ChebCB(GRID20, *seq.context_range, seed=1),
                         callback=lambda t, w, it: seen.append((t, w, it)))
    assert tuned.converged and len(tuned.iterations) == 200
    assert tuned.total_iterations == sum(tuned.iterations)
    assert seen == list(zip(range(1, 201), tuned.omega, tuned.iterations, strict=True))
    assert set(tuned.omega) <= set(GRID20.tolist())
    # every recorded count is what that omega takes on that instance
    for inst, w, it in list(zip(seq.instances, tuned.omega, tuned.iterations, strict=True))[::20]:
        assert solve(inst, w).iterations == it


def test_baselines_are_ordered_and_reproducible(seq):
    rtol, maxiter = 1e-8, 10_000
    names = ["best-fixed", "instance-optimal", "gauss-seidel", "cg"]
    base = baselines(seq.instances, "sor", GRID20, names, rtol, maxiter)
    assert set(base) == set(names)
    for b in base.values():
        assert b["total_iterations"] == int(np.sum(b["iterations"]))
        assert len(b["iterations"]) == 200
    bf, io, gs = base["best-fixed"], base["instance-optimal"], base["gauss-seidel"]
    assert io["total_iterations"] <= bf["total_iterations"] <= gs["total_iterations"]
    assert len(bf["grid_totals"]) == 20
    assert bf["total_iterations"] == min(bf["grid_totals"])
    assert bf["omega"] == GRID20[int(np.argmin(bf["grid_totals"]))]
    assert gs["total_iterations"] == bf["grid_totals"][0]  # the grid starts at omega = 1

    solve = make_solve("sor", rtol, maxiter)
    assert run_sequence(seq.instances, solve, bf["omega"]).total_iterations == bf["total_iterations"]
    assert run_sequence(seq.instances, solve, 1.0).total_iterations == gs["total_iterations"]
    # instance-optimal: Young's omega from each instance's Jacobi radius
    young = [young_omega(i.jacobi_radius) for i in seq.instances]
    np.testing.assert_allclose(io["omegas"], young, rtol=1e-15)
    young_iterations = [solve(i, w).iterations for i, w in zip(seq.instances, young, strict=True)]
    assert young_iterations == list(io["iterations"])
    # plain CG stops on the same relative rule
    from learnsolve.solvers.linear.cg import cg

    inst = seq.instances[0]
    res = cg(inst.A, inst.b, rtol=rtol)
    assert abs(base["cg"]["iterations"][0] - res.iterations) <= 1
