"""Figures of a run's history (the columns of :attr:`Result.history` or a history.csv): each
function returns a matplotlib Figure; :func:`save_png` writes one atomically."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from learnsolve.solvers.files import write_atomic

Columns = Mapping[str, Sequence[float]]


def pyplot() -> Any:
    """matplotlib's pyplot on the Agg backend (no display needed)."""
    import matplotlib  # slow to import: only when a figure is drawn

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # after choosing the backend

    return plt


def save_png(fig: Any, path: Path) -> Path:
    """``fig`` as a PNG at ``path``, written atomically; the figure is closed."""
    buf = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buf, format="png", dpi=110)
    pyplot().close(fig)
    write_atomic(Path(path), buf.getvalue())
    return Path(path)


def convergence(cols: Columns, title: str) -> Any:
    """Relative residual against iteration (columns ``relative_residual``, ``iteration``)."""
    fig, ax = pyplot().subplots(figsize=(6, 4))
    x = cols.get("iteration") or list(range(len(cols["relative_residual"])))
    ax.semilogy(x, cols["relative_residual"], lw=1.2)
    ax.set(xlabel="iteration", ylabel="||r|| / ||b||", title=title)
    ax.grid(True, which="both", alpha=0.3)
    return fig


def sequence(cols: Columns, title: str, label: str) -> Any:
    """A pass over a sequence: cumulative iterations of the method (``label``) and of each
    comparator (``iterations_<name>`` columns) against t, the omegas chosen against the context,
    and the regret to the best fixed omega."""
    t = np.asarray(cols["t"])
    mine = np.cumsum(cols["iterations"])
    fig, (a1, a2, a3) = pyplot().subplots(1, 3, figsize=(15, 4))
    a1.plot(t, mine, lw=1.5, label=label)
    for name in cols:
        if name.startswith("iterations_"):
            a1.plot(t, np.cumsum(cols[name]), lw=1, label=name.removeprefix("iterations_").replace("_", "-"))
    a1.set(xlabel="instance t", ylabel="cumulative iterations", yscale="log", title=title)
    a1.legend(fontsize=8)
    a2.scatter(cols["context"], cols["omega"], s=3, alpha=0.4, label="chosen")
    a2.set(xlabel="context", ylabel="omega", title="omegas chosen")
    a2.legend(fontsize=8)
    if "iterations_best_fixed" in cols:
        a3.plot(t, mine - np.cumsum(cols["iterations_best_fixed"]), lw=1.2)
        a3.axhline(0, color="k", lw=0.5)
    a3.set(xlabel="instance t", ylabel="iterations - best fixed (cumulative)", title="regret")
    return fig


def kkt(cols: Columns, title: str, tol: float | None = None, f_star: float | None = None) -> Any:
    """An optimisation run: the KKT residual and ||c|| per Newton iteration (with the tolerance),
    and the objective (with a reference optimum)."""
    from matplotlib.ticker import MaxNLocator  # matplotlib: only when a figure is drawn

    it = cols.get("iteration") or list(range(len(cols["kkt_residual"])))
    fig, (ax, ax_f) = pyplot().subplots(1, 2, figsize=(11, 4))
    ax.semilogy(it, cols["kkt_residual"], lw=1.2, marker=".", label="KKT residual")
    # ||c|| is exactly 0 at a feasible start: draw it where a log axis can
    pts = [(k, c) for k, c in zip(it, cols.get("c_norm") or [], strict=False) if c > 0]
    if pts:
        ax.semilogy(*zip(*pts, strict=True), lw=1, ls="--", marker=".", label="||c||")
    if tol:
        ax.axhline(tol, color="k", lw=0.6, ls=":", label=f"tol {tol:g}")
    for a in (ax, ax_f):
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="Newton iteration", ylabel="residual", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if cols.get("f"):
        ax_f.plot(it, cols["f"], lw=1.2, marker=".")
        if f_star is not None:
            ax_f.axhline(f_star, color="k", lw=0.6, ls=":", label="f* (reference)")
            ax_f.legend(fontsize=8)
        ax_f.set(xlabel="Newton iteration", ylabel="objective f", title="objective")
        ax_f.grid(alpha=0.3)
    return fig


def loss(cols: Columns, title: str, reference: Mapping[str, float] | None = None) -> Any:
    """A training (a PINN's, a network's): the loss and its terms (``loss_*``) against the step;
    and the learned values (the other columns, each relative to its ``reference`` value)."""
    reference = reference or {}
    learned = [k for k in cols if k not in ("step", "lr", "seconds") and not k.startswith("loss")]
    fig, axes = pyplot().subplots(1, 1 + bool(learned), figsize=(11 if learned else 6, 4), squeeze=False)
    ax, step = axes[0][0], cols["step"]
    terms = [n for n in cols if n.startswith("loss_")]
    for name in cols:
        if name.startswith("loss"):
            positive = [(s, v) for s, v in zip(step, cols[name], strict=True) if v > 0]
            if positive:
                ax.semilogy(*zip(*positive, strict=True), lw=1.5 if name == "loss" else 0.8,
                            label=name.removeprefix("loss_") if name != "loss"
                            else "loss (total)" if terms else "loss")
    ax.set(xlabel="step", ylabel="loss", title=title)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    if learned:
        ax_p = axes[0][1]
        for name in learned:
            key = "lambda" if name == "lam" else name
            ref = reference.get(key)
            if ref:  # several parameters on one axis: each relative to its reference
                ax_p.plot(step, [v / ref for v in cols[name]], lw=1.2, label=f"{key} / reference")
            else:
                ax_p.plot(step, cols[name], lw=1.2, label=key)
        if any(reference.get("lambda" if n == "lam" else n) for n in learned):
            ax_p.axhline(1.0, color="k", lw=0.6, ls=":")
        ax_p.set(xlabel="step", title="learned values")
        ax_p.grid(alpha=0.3)
        ax_p.legend(fontsize=8)
    return fig


def profile(cols: Columns, title: str, label: str = "") -> Any:
    """A flame's T and u against x (columns ``x``, ``T``, ``u``, with ``*_reference`` where given)."""
    fig, (ax_t, ax_u) = pyplot().subplots(1, 2, figsize=(10, 4))
    x = 1e3 * np.asarray(cols["x"])
    for ax, key, unit in ((ax_t, "T", "K"), (ax_u, "u", "m/s")):
        ax.plot(x, cols[key], label=label)
        if cols.get(f"{key}_reference"):
            ax.plot(x, cols[f"{key}_reference"], "--", label="reference")
        ax.set(xlabel="x (mm)", ylabel=f"{key} ({unit})")
        ax.grid(alpha=0.3)
        ax.legend()
    fig.suptitle(title)
    return fig
