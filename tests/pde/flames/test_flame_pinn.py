"""The flame PINN: hand-carried derivatives against autograd, the hard constraint on random
weights, a short training that moves s_L toward the reference, checkpoints and resume, and an
interrupted training that keeps its best state. The full targets are slow tests
(tests/test_flame_acceptance.py)."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from learnsolve.pde.flames.model import SimplifiedFlame  # noqa: E402
from learnsolve.pde.flames.pinn import (  # noqa: E402
    FlamePinn,
    PinnConfig,
    speed_estimate,
    synthesize,
    train_pinn,
)
from learnsolve.pde.flames.reference import reference_flame  # noqa: E402

FLAME = SimplifiedFlame()
S_REF = 0.2927822690797


@pytest.fixture(autouse=True)
def one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_forward_mode_derivatives_match_autograd():
    model = FlamePinn(FLAME, PinnConfig(dtype="float64", seed=3))
    x = torch.linspace(-6, 12, 57, dtype=torch.float64)[:, None].requires_grad_()
    T, Tx, Txx, _ = model.temperature(x)
    (gx,) = torch.autograd.grad(T.sum(), x, create_graph=True)
    (gxx,) = torch.autograd.grad(gx.sum(), x)
    # temperature() differentiates in x (m); x here is the scaled input xh = (x - x_f)/delta0
    d = model.delta0
    np.testing.assert_allclose(Tx.detach().numpy(), gx[:, 0].detach().numpy() / d, rtol=1e-10, atol=1e-6)
    np.testing.assert_allclose(Txx.detach().numpy(), gxx[:, 0].numpy() / d**2, rtol=1e-9, atol=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_hard_constraint_keeps_T_in_bounds_for_wild_weights(dtype):
    model = FlamePinn(FLAME, PinnConfig(dtype=dtype, seed=0))
    gen = torch.Generator().manual_seed(1)
    with torch.no_grad():
        flat = model.net.flat  # weights far larger than any initialisation would give
        flat.copy_(30 * torch.randn(flat.shape, generator=gen, dtype=flat.dtype))
    T, Tx, Txx, g = model.temperature(model.xh)
    assert all(torch.isfinite(v).all() for v in (T, Tx, Txx, g))
    assert T.min() >= FLAME.T_in and T.max() <= FLAME.T_max * (1 + 1e-6)
    terms = model.losses()
    assert all(torch.isfinite(v) for v in terms.values())


def test_speed_estimate_is_a_fair_start():
    s = speed_estimate(FLAME)
    assert 0.5 * S_REF < s < 2 * S_REF


def test_synthetic_observations_have_the_asked_noise():
    ref = reference_flame(FLAME)
    clean = synthesize(ref, 400, 0.0, 0, FLAME.length)
    noisy = synthesize(ref, 400, 0.01, 0, FLAME.length)
    assert clean.x.size == 400 and 0 < clean.x.min() and clean.x.max() < FLAME.length
    np.testing.assert_allclose(clean.u, np.interp(clean.x, ref.x, ref.u))
    rel = noisy.T / clean.T - 1
    assert abs(rel.std() - 0.01) < 0.002 and abs(rel.mean()) < 0.002


def test_short_training_moves_s_L_toward_the_reference():
    cfg = PinnConfig(steps=600, warmup_steps=200, lbfgs_steps=0, log_every=100)
    res = train_pinn(FLAME, cfg)
    s0 = speed_estimate(FLAME)
    assert res.status == "max_iterations" and res.steps == 600  # Adam alone: loss above loss_tol
    assert abs(res.s_L - S_REF) < 0.5 * abs(s0 - S_REF)
    assert res.history["step"] == list(range(100, 601, 100))
    assert res.history["loss"][-1] < res.history["loss"][0]
    assert np.isfinite(res.x.T).all()


def test_checkpoint_and_resume_continue_the_same_training(tmp_path):
    ck = tmp_path / "checkpoint.pt"
    cfg = dict(steps=300, warmup_steps=50, lbfgs_steps=0, log_every=50)
    straight = train_pinn(FLAME, PinnConfig(**cfg))

    def kill(k, v):
        if k == 150:
            raise KeyboardInterrupt

    first = train_pinn(FLAME, PinnConfig(**cfg, checkpoint=ck, checkpoint_every=50), callback=kill)
    assert first.status == "interrupted" and first.steps == 150 and ck.is_file()
    second = train_pinn(FLAME, PinnConfig(**cfg, resume=ck))
    assert second.resumed_from_step == 150 and second.steps == 300
    # network, Adam state, schedule and best-so-far all come back: the same run as one piece
    assert second.history == straight.history
    assert second.s_L == straight.s_L and second.loss == straight.loss


def test_interrupt_keeps_the_best_state():
    calls = []

    def stop(k, v):
        calls.append(v)
        if k >= 200:
            raise KeyboardInterrupt

    res = train_pinn(FLAME, PinnConfig(steps=10_000, warmup_steps=50, lbfgs_steps=0, log_every=100),
                     callback=stop)
    assert res.status == "interrupted" and res.steps == 200
    assert res.loss <= min(v[0] for v in calls) * (1 + 1e-6)


def test_inverse_short_training_uses_the_data():
    ref = reference_flame(FLAME)
    obs = synthesize(ref, 10, 0.0, 0, FLAME.length)
    cfg = PinnConfig(steps=300, warmup_steps=100, lbfgs_steps=0, log_every=100,
                     unknowns={"lambda": 0.02, "E_a": 1.1e5})
    res = train_pinn(FLAME, cfg, obs)
    assert set(res.parameters) == {"lambda", "E_a"}
    assert "loss_data" in res.history and res.history["loss_data"][-1] < res.history["loss_data"][0]


def test_lbfgs_after_adam_lowers_the_loss_and_is_recorded():
    adam = train_pinn(FLAME, PinnConfig(steps=400, warmup_steps=100, lbfgs_steps=0, log_every=100))
    both = train_pinn(FLAME, PinnConfig(steps=400, warmup_steps=100, lbfgs_steps=200, log_every=100))
    assert 0 < both.lbfgs_iterations <= 200
    assert both.loss < 0.5 * adam.loss
    assert both.history["step"][:4] == [100, 200, 300, 400]
    assert both.history["step"][-1] == 400 + both.lbfgs_iterations
    assert abs(both.s_L - S_REF) < abs(adam.s_L - S_REF)
