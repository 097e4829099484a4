"""Time one training step of a jit-compiled JAX PINN for the simplified 1D flame.

Standalone (needs only jax, optax, numpy) so it can run in its own virtualenv and be compared
with the torch PINN of learnsolve. The physics re-states ``learnsolve.pde.flames.model.SimplifiedFlame``
with its default constants:

    u     = 2 R_g T / (c + sqrt(c^2 - 4 R_g T)),  c = s_L + R_g T_in / s_L
    Y_F   = max(Y_F,in + c_p (T_in - T) / q_F, 0)
    omega = A exp(-E_a / (R T)) (rho Y_F)^nu,      rho = rho_in s_L / u
    r     = rho_in s_L c_p T' - lambda T'' - q_F omega

Network: theta = sigmoid(MLP((x - x_f) / delta0)), T = T_in + (T_max - T_in) theta, and
s_L = s0 exp(kappa) with kappa trainable. One step = value_and_grad of the loss with respect to
(MLP parameters, kappa) plus an Adam update, inside one ``jax.jit``.

One-core timing (the flags must be set before jax is imported, i.e. in the environment):

    XLA_FLAGS="--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1" \\
        taskset -c 0 /path/to/python-with-jax pde/flames/jax_step.py

Derivative check (float64, against central finite differences): ``--check``.
"""

from __future__ import annotations

import argparse
import math
import os
import statistics
import time

# ---------------------------------------------------------------- constants (SimplifiedFlame defaults)
R_GAS = 8.314462618  # J/(mol K)
PHI = 0.42
T_IN = 298.0
P = 101325.0
LAM = 0.026
CP = 1000.0
Q_F = 5e7
A_PRE = 1.4e8
E_A = 1.214172e5
NU = 1.6
W_MOL = 28.97e-3
LENGTH = 1.5e-3
T_GRAD_IN = 1e5

R_G = R_GAS / W_MOL
Y_F_IN = PHI / (PHI + 4.0)
T_MAX = T_IN + Q_F * Y_F_IN / CP
RHO_IN = P / (R_G * T_IN)

S0 = 0.3
X_F = 0.66e-3
DELTA0 = LAM / (RHO_IN * CP * S0)
RES_SCALE = RHO_IN * S0 * CP * (T_MAX - T_IN) / DELTA0


def rate(jnp, T, s_L):
    c = s_L + R_G * T_IN / s_L
    u = 2.0 * R_G * T / (c + jnp.sqrt(c * c - 4.0 * R_G * T))
    rho = RHO_IN * s_L / u
    y_f = jnp.maximum(Y_F_IN + CP * (T_IN - T) / Q_F, 0.0)
    return A_PRE * jnp.exp(-E_A / (R_GAS * T)) * (rho * y_f) ** NU


# ---------------------------------------------------------------- network
def init_params(key, width, depth, dtype):
    """Glorot-uniform weights, zero biases; layers 1 -> width (x depth) -> 1."""
    import jax  # optional, only in the timing Python

    sizes = [1] + [width] * depth + [1]
    params = []
    for n_in, n_out in zip(sizes[:-1], sizes[1:], strict=True):
        key, sub = jax.random.split(key)
        lim = math.sqrt(6.0 / (n_in + n_out))
        w = jax.random.uniform(sub, (n_in, n_out), dtype, -lim, lim)
        params.append((w, jax.numpy.zeros((n_out,), dtype)))
    return params


def mlp(jnp, params, xh):
    """Batched MLP on a vector of scalar inputs: (n,) -> (n,)."""
    h = xh[:, None]
    for w, b in params[:-1]:
        h = jnp.tanh(h @ w + b)
    w, b = params[-1]
    return (h @ w + b)[:, 0]


def temperature(jnp, jax, params, xh):
    return T_IN + (T_MAX - T_IN) * jax.nn.sigmoid(mlp(jnp, params, xh))


def make_fields(jax, jnp, mode):
    """Return fields(params, x) -> (T, T_x, T_xx), derivatives in x (chain rule via xh)."""

    def t_of_xh(params, xh):
        return temperature(jnp, jax, params, xh)

    def t_scalar(params, xh):
        return t_of_xh(params, xh[None])[0]

    if mode == "jvp":
        # forward-over-forward on the whole batch: the net is pointwise in x, so a tangent of ones
        # gives every point's derivative at once.
        def fields_h(params, xh):
            ones = jnp.ones_like(xh)

            def first(z):
                return jax.jvp(lambda s: t_of_xh(params, s), (z,), (ones,))

            (t, t1), (_, t2) = jax.jvp(first, (xh,), (ones,))
            return t, t1, t2

    elif mode == "vmap-jvp":

        def point(params, z):
            def first(s):
                return jax.jvp(lambda q: t_scalar(params, q), (s,), (jnp.ones_like(s),))

            (t, t1), (_, t2) = jax.jvp(first, (z,), (jnp.ones_like(z),))
            return t, t1, t2

        def fields_h(params, xh):
            return jax.vmap(lambda z: point(params, z))(xh)

    elif mode == "vmap-grad":

        def point(params, z):
            def f(s):
                return t_of_xh(params, s[None])[0]

            return f(z), jax.grad(f)(z), jax.grad(jax.grad(f))(z)

        def fields_h(params, xh):
            return jax.vmap(lambda z: point(params, z))(xh)

    elif mode == "jet":
        from jax.experimental import jet  # optional, only in the timing Python

        def fields_h(params, xh):
            ones = jnp.ones_like(xh)
            zeros = jnp.zeros_like(xh)
            t, (t1, t2) = jet.jet(lambda s: t_of_xh(params, s), (xh,), ((ones, zeros),))
            return t, t1, t2

    else:
        raise ValueError(f"unknown derivative mode {mode!r}")

    def fields(params, x):
        xh = (x - X_F) / DELTA0
        t, t1, t2 = fields_h(params, xh)
        return t, t1 / DELTA0, t2 / (DELTA0 * DELTA0)

    return fields


def make_loss(jax, jnp, fields):
    def loss_fn(theta, x):
        params, kappa = theta
        s_l = S0 * jnp.exp(kappa)
        t, tx, txx = fields(params, x)
        th = (t - T_IN) / (T_MAX - T_IN)
        # learnsolve's weighting of the residual: theta (1 - theta) + 0.05
        r = RHO_IN * s_l * CP * tx - LAM * txx - Q_F * rate(jnp, t, s_l)
        r = r / (RES_SCALE * (th * (1 - th) + 0.05))
        bc_t = (t[0] - T_IN) / (0.1 * (T_MAX - T_IN))
        bc_g = tx[0] / T_GRAD_IN - 1.0
        return jnp.mean(r * r) + bc_t * bc_t + bc_g * bc_g

    return loss_fn


# ---------------------------------------------------------------- derivative check
def check_derivatives(args):
    import jax  # optional, only in the timing Python

    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp  # optional, only in the timing Python

    dtype = jnp.float64
    params = init_params(jax.random.PRNGKey(args.seed), args.width, args.depth, dtype)
    # a sharper profile than the init: scale the last layer so T spans most of [T_in, T_max]
    w, b = params[-1]
    params[-1] = (w * 4.0, b)
    # fine grids, spacing h = 1.5e-3 / (n - 1) m (delta0 ~ 7e-5 m); the FD error is truncation
    # (~h^2) for the coarser and float64 round-off (~eps T / h^2 for T_xx) for the finer one.
    for n_fine in (15001, 150001):
        xf = jnp.linspace(0.0, LENGTH, n_fine, dtype=dtype)
        h = float(xf[1] - xf[0])
        tf = temperature(jnp, jax, params, (xf - X_F) / DELTA0)
        fd1 = (tf[2:] - tf[:-2]) / (2.0 * h)
        fd2 = (tf[2:] - 2.0 * tf[1:-1] + tf[:-2]) / (h * h)
        x = xf[1:-1]
        for mode in args.modes:
            _, tx, txx = jax.jit(make_fields(jax, jnp, mode))(params, x)
            e1 = float(jnp.max(jnp.abs(tx - fd1)) / jnp.max(jnp.abs(fd1)))
            e2 = float(jnp.max(jnp.abs(txx - fd2)) / jnp.max(jnp.abs(fd2)))
            tx_max, txx_max = float(jnp.max(jnp.abs(tx))), float(jnp.max(jnp.abs(txx)))
            print(
                f"check {mode:9s} float64 FD h={h:.1e} m: max|T_x-FD|/max|FD|={e1:.2e}  "
                f"max|T_xx-FD|/max|FD|={e2:.2e}  (T in [{float(tf.min()):.1f}, {float(tf.max()):.1f}] K, "
                f"max|T_x|={tx_max:.3e} K/m, max|T_xx|={txx_max:.3e} K/m^2)"
            )


# ---------------------------------------------------------------- timing
def bench(args):
    import jax  # optional, only in the timing Python
    import jax.numpy as jnp  # optional, only in the timing Python
    import optax  # optional, only in the timing Python

    dtype = jnp.float32
    x = jnp.linspace(0.0, LENGTH, args.points, dtype=dtype)
    params = init_params(jax.random.PRNGKey(args.seed), args.width, args.depth, dtype)
    theta0 = (params, jnp.zeros((), dtype))
    opt = optax.adam(args.lr)
    opt0 = opt.init(theta0)

    loss_fn = make_loss(jax, jnp, make_fields(jax, jnp, args.mode))

    @jax.jit
    def step(theta, opt_state, x):
        loss, grads = jax.value_and_grad(loss_fn)(theta, x)
        updates, opt_state = opt.update(grads, opt_state, theta)
        return optax.apply_updates(theta, updates), opt_state, loss

    # warm-up: compile and run a few steps (functional state, so the init is untouched)
    th, st = theta0, opt0
    for _ in range(5):
        th, st, loss = step(th, st, x)
    jax.block_until_ready(loss)

    times, cpu_times, first_loss, last_loss, s_l = [], [], None, None, None
    for _ in range(args.repeats):
        th, st = theta0, opt0
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(args.steps):
            th, st, loss = step(th, st, x)
            if i == 0:
                first = loss
        jax.block_until_ready((th, st, loss))
        times.append((time.perf_counter() - t0) / args.steps * 1e3)
        cpu_times.append((time.process_time() - c0) / args.steps * 1e3)
        first_loss, last_loss = float(first), float(loss)
        s_l = float(S0 * jnp.exp(th[1]))
    final_loss = float(loss_fn(th, x))

    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print(
        f"jax {jax.__version__} float32 {args.depth}x{args.width} {args.points} points: "
        f"{min(times):.3f} ms/step (min of {args.repeats} runs of {args.steps} steps)"
    )
    print(
        f"  wall ms/step: median {statistics.median(times):.3f}, all {', '.join(f'{t:.3f}' for t in times)}; "
        f"process CPU ms/step: min {min(cpu_times):.3f}, median {statistics.median(cpu_times):.3f}"
    )
    print(
        f"  deriv={args.mode}, cpus={cpus}, XLA_FLAGS={os.environ.get('XLA_FLAGS', '')!r}, "
        f"load avg {os.getloadavg()[0]:.2f}"
    )
    print(
        f"  loss: step 1 {first_loss:.4e} -> step {args.steps} {last_loss:.4e} "
        f"(after the last update {final_loss:.4e}); s_L {S0:.3f} -> {s_l:.4f} m/s"
    )
    if not last_loss < first_loss:
        print("  WARNING: loss did not decrease over the timed steps")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--points", type=int, default=1001)
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--depth", type=int, default=3, help="number of hidden layers")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--mode",
        default="jvp",
        choices=["jvp", "vmap-jvp", "vmap-grad", "jet"],
        help="derivative formulation (jvp = batched forward-over-forward, fastest here)",
    )
    ap.add_argument("--check", action="store_true", help="float64 check of T_x, T_xx against FD, then exit")
    args = ap.parse_args()
    if args.check:
        args.modes = ["jvp", "vmap-jvp", "vmap-grad", "jet"]
        check_derivatives(args)
        return
    bench(args)


if __name__ == "__main__":
    main()
