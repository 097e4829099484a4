"""Online tuners that pick SOR's omega for each system of a sequence from iteration counts alone
(Khodak, Chow, Balcan, Talwalkar, *Learning to Relax*, ICLR 2024).

* :class:`TsallisInf` - the 1/2-Tsallis-INF bandit over a grid of omegas (non-contextual);
* :class:`TsallisInfCB` - one Tsallis-INF per bin of a scalar context;
* :class:`ChebCB` - contextual: per-arm ridge regression of the normalised cost on Chebyshev
  features of the scaled context, with inverse-gap-weighted sampling (SquareCB).

Every tuner offers ``choose(context) -> (arm, probability)``, ``update(arm, context, iterations,
probability)`` and ``state()``/``from_state()`` (plain JSON-able data, so a run can be resumed or
continued by another process). Costs are normalised by their running mean, so the step sizes need
no knowledge of the scale of the iteration counts.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.kernels import bandit as kernel
from learnsolve.solvers.tuning import SETTINGS


def tsallis_probabilities(losses: np.ndarray, eta: float, tol: float = 1e-13) -> np.ndarray:
    """The 1/2-Tsallis-INF distribution p_i = 4 / (eta (L_i - x))^2 with x chosen so sum p = 1.

    Newton's method on f(x) = sum p_i(x) - 1, started at x = min L - 2/eta (below the smallest
    loss, where the best arm alone has p = 1, so f >= 0): f is convex and increasing there, so the
    iterates decrease monotonically to the root and never cross a pole. (Starting from the
    previous round's x, as is common, can overshoot past min L once losses have grown large.)
    """
    return kernel.tsallis_probabilities(np.asarray(losses, dtype=np.float64), float(eta), tol)


class _Normaliser:
    """Running mean of the observed costs (iterations - 1), the scale of every loss."""

    def __init__(self, total: float = 0.0, count: int = 0):
        self.total, self.count = total, count

    def __call__(self, cost: float) -> float:
        self.total += cost
        self.count += 1
        return cost / max(self.total / self.count, 1e-12)


class Tuner:
    kind = ""

    def __init__(self, grid: np.ndarray, seed: int = 0):
        self.grid = np.asarray(grid, dtype=np.float64)
        self.rng = np.random.default_rng(seed)
        self.t = 0
        self.norm = _Normaliser()

    @property
    def k(self) -> int:
        return self.grid.size

    def _sample(self, p: np.ndarray) -> tuple[int, float]:
        arm = kernel.sample(p, self.rng.random())
        return arm, float(p[arm])

    def state(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "grid": self.grid.tolist(),
            "t": self.t,
            "norm": [self.norm.total, self.norm.count],
            "rng": self.rng.bit_generator.state,
            **self._state(),
        }

    def _load(self, s: dict[str, Any]) -> None:
        self.t = _count(s, "t")
        norm = s["norm"]
        if not (isinstance(norm, list) and len(norm) == 2):
            raise ValueError("norm: expected [total, count]")
        total, count = _number(norm[0], "norm[0]"), _whole(norm[1], "norm[1]")
        if total < 0:
            raise ValueError(f"norm[0]: a total of costs must be >= 0, got {total}")
        self.norm = _Normaliser(total, count)
        rng = s["rng"]
        try:
            self.rng.bit_generator.state = rng
        except (TypeError, ValueError, KeyError) as exc:
            raise ValueError(f"rng: not a {type(self.rng.bit_generator).__name__} generator state "
                             f"({exc})") from None

    def _state(self) -> dict[str, Any]:
        raise NotImplementedError

    def choose(self, context: float) -> tuple[int, float]:
        raise NotImplementedError

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None:
        raise NotImplementedError


class TsallisInf(Tuner):
    """1/2-Tsallis-INF with step size eta_t = 2/sqrt(t) and importance-weighted loss estimates;
    the loss of a round is (iterations - 1) over its running mean."""

    kind = "tsallis-inf"

    def __init__(self, grid: np.ndarray, seed: int = 0):
        super().__init__(grid, seed)
        self.losses = np.zeros(self.k)

    def probabilities(self) -> np.ndarray:
        return tsallis_probabilities(self.losses, 2.0 / math.sqrt(self.t + 1))

    def choose(self, context: float = 0.0) -> tuple[int, float]:
        return self._sample(self.probabilities())

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None:
        self.t += 1
        self.losses[arm] += self.norm(max(iterations - 1, 0)) / probability

    def _state(self) -> dict[str, Any]:
        return {"losses": self.losses.tolist()}

    def _load(self, s: dict[str, Any]) -> None:
        super()._load(s)
        self.losses = _array(s, "losses", (self.k,), nonnegative=True)


def _bin(context: float, lo: float, hi: float, bins: int) -> int:
    z = (context - lo) / (hi - lo) if hi > lo else 0.0
    return min(max(int(z * bins), 0), bins - 1)


class TsallisInfCB(Tuner):
    """One Tsallis-INF per equal-width bin of the context range [lo, hi]; each bin counts its own
    rounds, all share the cost normaliser."""

    kind = "tsallis-inf-cb"

    def __init__(self, grid: np.ndarray, lo: float, hi: float, bins: int = 10, seed: int = 0):
        super().__init__(grid, seed)
        self.lo, self.hi, self.bins = float(lo), float(hi), int(bins)
        self.losses = np.zeros((self.bins, self.k))
        self.rounds = np.zeros(self.bins, dtype=np.int64)

    def choose(self, context: float) -> tuple[int, float]:
        j = _bin(context, self.lo, self.hi, self.bins)
        p = tsallis_probabilities(self.losses[j], 2.0 / math.sqrt(self.rounds[j] + 1))
        return self._sample(p)

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None:
        self.t += 1
        j = _bin(context, self.lo, self.hi, self.bins)
        self.rounds[j] += 1
        self.losses[j, arm] += self.norm(max(iterations - 1, 0)) / probability

    def _state(self) -> dict[str, Any]:
        return {"range": [self.lo, self.hi], "bins": self.bins, "losses": self.losses.tolist(),
                "rounds": self.rounds.tolist()}

    def _load(self, s: dict[str, Any]) -> None:
        super()._load(s)
        self.losses = _array(s, "losses", (self.bins, self.k), nonnegative=True)
        rounds = _array(s, "rounds", (self.bins,), nonnegative=True)
        if np.any(rounds != np.round(rounds)):
            raise ValueError("rounds: expected whole numbers")
        self.rounds = rounds.astype(np.int64)


def chebyshev_features(z: float, degree: int) -> np.ndarray:
    """T_0(z) .. T_degree(z) for z in [-1, 1]."""
    return kernel.chebyshev(float(z), int(degree))


class ChebCB(Tuner):
    """Contextual bandit: per arm, ridge regression of the normalised cost (iterations over their
    running mean) on Chebyshev features of the context scaled to [-1, 1]; arms are drawn by inverse
    gap weighting, p_a = 1 / (K + gamma_t (yhat_a - yhat_best)), the best arm taking the rest,
    with gamma_t = gamma * sqrt(K t). The defaults (degree 6, gamma 32) were chosen on the
    shifted-Laplacian sequences of the paper (a small gamma explores too long)."""

    kind = "chebcb"

    def __init__(self, grid: np.ndarray, lo: float, hi: float, degree: int = 6, ridge: float = 1.0,
                 gamma: float = 32.0, seed: int = 0):
        super().__init__(grid, seed)
        self.lo, self.hi = float(lo), float(hi)
        self.degree, self.ridge, self.gamma = int(degree), float(ridge), float(gamma)
        d = self.degree + 1
        self.gram_inv = np.repeat((np.eye(d) / self.ridge)[None], self.k, axis=0)
        self.moment = np.zeros((self.k, d))
        self.coef = np.zeros((self.k, d))  # gram_inv[a] @ moment[a], kept up to date

    def _features(self, context: float) -> np.ndarray:
        z = 2.0 * (context - self.lo) / (self.hi - self.lo) - 1.0 if self.hi > self.lo else 0.0
        return chebyshev_features(min(max(z, -1.0), 1.0), self.degree)

    def predict(self, context: float) -> np.ndarray:
        """Predicted normalised cost of every arm at this context."""
        return self.coef @ self._features(context)

    def choose(self, context: float) -> tuple[int, float]:
        p = kernel.igw_probabilities(self.predict(context), self.gamma * math.sqrt(self.k * max(self.t, 1)))
        return self._sample(p)

    def update(self, arm: int, context: float, iterations: int, probability: float) -> None:
        self.t += 1
        y = self.norm(float(iterations))
        kernel.ridge_update(self.gram_inv, self.moment, self.coef, arm, self._features(context), y)

    def _state(self) -> dict[str, Any]:
        # coef is saved too (though it follows from the others) so that a tuner read back from
        # its state predicts bit for bit what the one in memory would: same draws, same arms
        return {"range": [self.lo, self.hi], "degree": self.degree, "ridge": self.ridge,
                "gamma": self.gamma, "gram_inv": self.gram_inv.tolist(), "moment": self.moment.tolist(),
                "coef": self.coef.tolist()}

    def _load(self, s: dict[str, Any]) -> None:
        super()._load(s)
        d = self.degree + 1
        self.gram_inv = _array(s, "gram_inv", (self.k, d, d))
        self.moment = _array(s, "moment", (self.k, d))
        if "coef" in s:
            self.coef = _array(s, "coef", (self.k, d))
        else:
            self.coef = np.einsum("kij,kj->ki", self.gram_inv, self.moment)


KINDS = tuple(SETTINGS)


def make_tuner(name: str, grid: Any, context_range: tuple[float, float] = (0.0, 1.0), seed: int = 0,
               **settings: Any) -> Tuner:
    """A fresh tuner by name (``tsallis-inf``, ``tsallis-inf-cb``, ``chebcb``) over the omegas of
    ``grid``; the contextual ones scale the context from ``context_range`` (a sequence's
    ``context_range``). ``settings``: ``bins`` (tsallis-inf-cb), ``degree``, ``gamma``, ``ridge``
    (chebcb); the others' defaults apply when left out.

    Raises InputError for an unknown name or a setting the tuner does not take."""
    if name not in SETTINGS:
        raise InputError(f"unknown tuner {name!r} (one of {', '.join(KINDS)})", "tuner")
    foreign = [k for k in settings if k not in SETTINGS[name]]
    if foreign:
        raise InputError(f"{', '.join(foreign)}: does not apply to tuner {name}", foreign[0])
    if name == "tsallis-inf":
        return TsallisInf(grid, seed=seed)
    lo, hi = context_range
    if name == "tsallis-inf-cb":
        return TsallisInfCB(grid, lo, hi, seed=seed, **settings)
    return ChebCB(grid, lo, hi, seed=seed, **settings)


def _number(value: Any, key: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{key}: expected a finite number, got {value!r}")
    return float(value)


def _count(s: dict[str, Any], key: str, lo: int = 0, hi: int | None = None) -> int:
    return _whole(s[key], key, lo, hi)


def _whole(value: Any, key: str, lo: int = 0, hi: int | None = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < lo or (hi is not None and value > hi):
        bound = f"from {lo} to {hi}" if hi is not None else f">= {lo}"
        raise ValueError(f"{key}: expected a whole number {bound}, got {value!r}")
    return value


def _array(s: dict[str, Any], key: str, shape: tuple[int, ...], nonnegative: bool = False) -> np.ndarray:
    """``s[key]`` as a float array of exactly ``shape``, every entry finite (and >= 0)."""
    try:
        a = np.array(s[key], dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"{key}: expected numbers of shape {shape}") from None
    if a.shape != shape:
        raise ValueError(f"{key}: expected shape {shape} (from the grid and the tuner's settings), "
                         f"got {a.shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"{key}: holds NaN or infinite values")
    if nonnegative and np.any(a < 0):
        raise ValueError(f"{key}: holds negative values")
    return a


def _grid(s: dict[str, Any]) -> np.ndarray:
    grid = s["grid"]
    if not isinstance(grid, list) or len(grid) < 2:
        raise ValueError("grid: expected a list of at least two omegas")
    g = np.array([_number(w, "grid") for w in grid])
    if np.any(g <= 0) or np.any(g >= 2) or np.any(np.diff(g) <= 0):
        raise ValueError("grid: expected increasing omegas in (0, 2)")
    return g


def _range(s: dict[str, Any]) -> tuple[float, float]:
    r = s["range"]
    if not (isinstance(r, list) and len(r) == 2):
        raise ValueError("range: expected [lo, hi]")
    lo, hi = _number(r[0], "range[0]"), _number(r[1], "range[1]")
    if lo > hi:
        raise ValueError(f"range: lo = {lo} is above hi = {hi}")
    return lo, hi


def _positive(s: dict[str, Any], key: str) -> float:
    value = _number(s[key], key)
    if value <= 0:
        raise ValueError(f"{key}: must be > 0, got {value}")
    return value


def from_state(s: dict[str, Any]) -> Tuner:
    """Rebuild a tuner from :meth:`Tuner.state`.

    Raises
    ------
    ValueError
        When ``s`` is not a complete, consistent state: the message names the bad key (a missing
        key, a wrong type, NaN or negative losses, arrays whose shape does not fit the grid, a
        negative round count, a generator state numpy does not accept, ...).
    """
    if not isinstance(s, dict):
        raise ValueError(f"expected a mapping, got {type(s).__name__}")
    try:
        kind = s["kind"]
        if kind not in KINDS:
            raise ValueError(f"kind: unknown tuner kind {kind!r} (one of {', '.join(KINDS)})")
        grid = _grid(s)
        if kind == "tsallis-inf":
            tuner: Tuner = TsallisInf(grid)
        elif kind == "tsallis-inf-cb":
            tuner = TsallisInfCB(grid, *_range(s), bins=_count(s, "bins", 1))
        else:
            tuner = ChebCB(grid, *_range(s), degree=_count(s, "degree", 0, 40), ridge=_positive(s, "ridge"),
                           gamma=_positive(s, "gamma"))
        tuner._load(s)
    except KeyError as exc:
        raise ValueError(f"{exc.args[0]}: required key is missing") from None
    return tuner
