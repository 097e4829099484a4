"""``learnsolve list`` and ``learnsolve example``: what can go in a job file.

``learnsolve list`` is a compact overview (types with a one-line summary, the bundled examples);
``learnsolve list NAME`` shows every key of one type, nested models as their own dotted rows, with
its default written as in YAML, its allowed values and its full description. Nothing is truncated:
long text wraps to the terminal (100 columns in a pipe).
"""

from __future__ import annotations

import difflib
import re
import shutil
import textwrap
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

import yaml
from pydantic import BaseModel

from .entry import Entry
from .errors import BadInput
from .jobfile import JobSection
from .paths import bundled_examples
from .registry import PROBLEMS, SOLVERS
from .train import TrainJob

#: Sections of a file that are not a registered type, listed by ``learnsolve list NAME``.
OTHER = {
    "job": "the keys around problem: and solver: (name, seed, baselines, output, sweep, cluster)",
    "train-dcdm": "a training file for learnsolve train dcdm (data, model, training, output)",
}

#: The contract the linear solvers share (learnsolve.solvers.linear's docstring).
TOLERANCE = ("Linear solvers ({}) stop when ||b - Ax|| <= max(rtol ||b||, atol); defaults rtol 1e-8, "
             "atol 0; a solver's own rule is a named key (sor's relative_to).")


def width() -> int:
    """Columns to wrap at: the terminal's (COLUMNS honoured), 100 in a pipe, kept readable."""
    return max(60, min(shutil.get_terminal_size((100, 24)).columns, 110))


@dataclass
class Row:
    key: str
    default: str
    kind: str
    description: str


# ---------------------------------------------------------------- values and types as YAML


def yaml_value(value: Any) -> str:
    """A default as a user would write it in the job file (``1.0e-08``, ``null``, ``[a, b]``)."""
    if isinstance(value, BaseModel):
        value = value.model_dump(mode="json", by_alias=True)
    if isinstance(value, float) and abs(value) >= 1e6:  # 5.0e+07, not 50000000.0
        mantissa, exponent = f"{value:e}".split("e")
        mantissa = mantissa.rstrip("0")
        return f"{mantissa}0e{exponent}" if mantissa.endswith(".") else f"{mantissa}e{exponent}"
    text = yaml.safe_dump(value, default_flow_style=True, width=10_000, sort_keys=False).strip()
    return text.removesuffix("...").strip()


def _bounds(metadata: list[Any]) -> str:
    """'in (0, 2)', '>= 1', ... from pydantic's annotated_types constraints."""
    lo = hi = None
    for m in metadata:
        for attr, side in (("gt", "("), ("ge", "["), ("lt", ")"), ("le", "]")):
            v = getattr(m, attr, None)
            if v is not None:
                if side in "([":
                    lo = (side, v)
                else:
                    hi = (side, v)
    if lo and hi:
        return f"in {lo[0]}{_num(lo[1])}, {_num(hi[1])}{hi[0]}"
    if lo:
        return f"{'>' if lo[0] == '(' else '>='} {_num(lo[1])}"
    if hi:
        return f"{'<' if hi[0] == ')' else '<='} {_num(hi[1])}"
    return ""


def _num(v: float) -> str:
    return str(v) if isinstance(v, int) else f"{v:g}"


_PATH_CHECKS = {"_existing_file": "an existing file (relative to the job file, or builtin:NAME)",
                "_state_path": "a file path (relative to the job file)"}


def type_text(annotation: Any, metadata: list[Any] | None = None) -> str:
    """The values a key takes, in YAML terms: ``float in (0, 2)``, ``stencil | csr``, ..."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(yaml_value(v) for v in args)
    if origin is Annotated:
        inner_meta = list(args[1:])
        for m in inner_meta:
            for info in getattr(m, "metadata", [m]):
                name = getattr(getattr(info, "func", None), "__name__", "")
                if name in _PATH_CHECKS:
                    return _PATH_CHECKS[name]
        flat = [x for m in inner_meta for x in getattr(m, "metadata", [m])]
        return type_text(args[0], flat + list(metadata or []))
    if origin in (Union, UnionType):
        parts = [type_text(a) for a in args if a is not type(None)]
        text = ", or ".join(parts)
        return text + (", or null" if type(None) in args else "")
    if origin is list:
        return f"a list of {type_text(args[0])}" if args else "a list"
    if origin is dict:
        return f"a mapping of {type_text(args[0])} to {type_text(args[1])}" if args else "a mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "a mapping (its keys below)"
    if annotation is bool:
        return "true | false"
    if annotation is Any:
        return "any value"
    words = {int: "integer", float: "number", str: "text"}
    name = words.get(annotation) or getattr(annotation, "__name__", str(annotation))
    bounds = _bounds(metadata or [])
    return f"{name} {bounds}" if bounds else name


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """Parameter models a key may hold (``omega: 1.0`` or a tuner mapping)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    if get_origin(annotation) in (Union, UnionType):
        return [m for a in get_args(annotation) for m in _models_in(a)]
    if get_origin(annotation) is Annotated:  # a tagged union: Annotated[A | B, Discriminator]
        return _models_in(get_args(annotation)[0])
    return []


def rows(model: type[BaseModel], prefix: str = "", skip: tuple[str, ...] = ("type",)) -> Iterator[Row]:
    """Every key of ``model``: nested models become dotted rows of their own."""
    for key, field in model.model_fields.items():
        name = field.alias or key
        if name in skip and not prefix:
            continue
        dotted = prefix + name
        default = (None if field.is_required() else field.get_default(call_default_factory=True))
        nested = _models_in(field.annotation)
        only_model = nested and isinstance(field.annotation, type)
        if not only_model:
            shown = "(required)" if field.is_required() else yaml_value(default)
            yield Row(dotted, shown, type_text(field.annotation, field.metadata), field.description or "")
        for sub in nested:
            yield from rows(sub, dotted + ".", skip=())


# ---------------------------------------------------------------- printing


def _wrap(text: str, indent: int, cols: int) -> str:
    return textwrap.fill(text, cols, initial_indent=" " * indent, subsequent_indent=" " * indent,
                         break_long_words=False, break_on_hyphens=False)


def _two_columns(items: list[tuple[str, str]], indent: int, cols: int) -> list[str]:
    """NAME  text, the text wrapped under itself (or under NAME + 4 when NAME is long)."""
    left = min(max((len(n) for n, _ in items), default=0) + 2, 32)
    out = []
    for name, text in items:
        if len(name) + 2 > left:
            out.append(" " * indent + name)
            out.append(_wrap(text, indent + left, cols))
            continue
        body = textwrap.wrap(text, cols - indent - left, break_long_words=False,
                             break_on_hyphens=False) or [""]
        out.append(" " * indent + name.ljust(left) + body[0])
        out += [" " * (indent + left) + line for line in body[1:]]
    return out


def format_rows(items: list[Row], cols: int) -> list[str]:
    """``key: default`` (as YAML) and its values aligned; the description wrapped below."""
    out = []
    left = min(max((len(f"{r.key}: {r.default}") for r in items), default=0) + 4, 40)
    for r in items:
        head = f"  {r.key}: {r.default}"
        if len(head) + 1 > left:
            out.append(head)
            out.append(_wrap(r.kind, left, cols))
        else:
            kind = textwrap.wrap(r.kind, cols - left, break_long_words=False) or [""]
            out.append(head.ljust(left) + kind[0])
            out += [" " * left + line for line in kind[1:]]
        if r.description:
            out.append(_wrap(r.description, 6, cols))
    return out


def example_summary(path: Path) -> str:
    """The first sentence of an example's leading comment (its name when it has none)."""
    lines = []
    for line in path.read_text().splitlines():
        if not line.startswith("#"):
            break
        text = line[1:]
        if not text.strip() or text.startswith("   "):  # a blank comment or an indented command
            break
        lines.append(text.strip())
    joined = " ".join(lines)
    end = re.search(r"\.(\s|$)", joined)
    summary = (joined[: end.start() + 1] if end else joined).rstrip(":").strip()
    return summary or path.stem


def overview(cols: int) -> str:
    out = ["Problems (problem.type)"]
    out += _two_columns([(e.name, e.summary) for e in PROBLEMS.values()], 2, cols)
    out += ["", "Solvers (solver.type)"]
    out += _two_columns([(e.name, e.summary) for e in SOLVERS.values()], 2, cols)
    linear = [name for name, e in SOLVERS.items() if {"linear", "grid"} & set(e.forms)]
    out.append(_wrap(TOLERANCE.format(", ".join(linear)), 2, cols))
    out += ["", "Other keys"]
    out += _two_columns(list(OTHER.items()), 2, cols)
    out += ["", "Bundled examples (learnsolve example NAME > job.yaml)"]
    out += _two_columns([(n, example_summary(p)) for n, p in bundled_examples().items()], 2, cols)
    out += ["", _wrap("Every key of one type, with defaults and allowed values: learnsolve list NAME "
                      "(e.g. learnsolve list cg, learnsolve list poisson).", 0, cols)]
    return "\n".join(out)


def _entry_text(section: str, entry: Entry, cols: int) -> str:
    out = [f"{section}.type: {entry.name}", _wrap(entry.summary, 2, cols)]
    if entry.requires is not None:
        module, extra = entry.requires
        out.append(_wrap(f"needs {module}: pip install 'learnsolve[{extra}]'", 2, cols))
    uses = [n for n, p in bundled_examples().items() if re.search(
        rf"^{section}:\s*\n(?:[ \t]+.*\n|\s*\n)*?[ \t]+type:\s*{re.escape(entry.name)}\s*(#.*)?$",
        p.read_text(), re.M)]
    if uses:
        out.append(textwrap.fill("examples: " + ", ".join(uses), cols, initial_indent="  ",
                                 subsequent_indent=" " * 12, break_on_hyphens=False))
    keys = list(rows(entry.params))
    out += ["", f"  {section} keys (key: default, then the values it takes):"]
    out += format_rows(keys, cols) if keys else ["  (none)"]
    return "\n".join(out)


def _other_text(name: str, cols: int) -> str:
    if name == "job":
        keys = list(rows(JobSection, skip=("problem", "solver")))
        head = "job file: the keys around problem: and solver: (see learnsolve list TYPE for those)"
    else:
        keys = list(rows(TrainJob, skip=()))
        head = "training file (learnsolve train dcdm TRAIN.yaml; learnsolve example train-dcdm2d)"
    return "\n".join([_wrap(head, 0, cols), "", *format_rows(keys, cols)])


def describe(name: str | None, cols: int | None = None) -> str:
    """The text of ``learnsolve list [NAME]``; BadInput for a name that is none of them."""
    cols = cols or width()
    if name is None:
        return overview(cols)
    parts = []
    if name in PROBLEMS:
        parts.append(_entry_text("problem", PROBLEMS[name], cols))
    if name in SOLVERS:
        parts.append(_entry_text("solver", SOLVERS[name], cols))
    if name in OTHER:
        parts.append(_other_text(name, cols))
    if parts:
        return "\n\n".join(parts)
    examples = bundled_examples()
    if name in examples:
        raise BadInput(f"list {name}: {name} is a bundled example, not a type; print it with "
                       f"learnsolve example {name}")
    known = [*PROBLEMS, *SOLVERS, *OTHER]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f"did you mean {close[0]}? " if close else ""
    raise BadInput(f"list {name}: no problem or solver type of that name; {hint}choose from "
                   f"{', '.join(known)}")


def examples_text(cols: int | None = None) -> str:
    """``learnsolve example`` without a name: the bundled examples, one line each."""
    cols = cols or width()
    out = ["Bundled examples (learnsolve example NAME > job.yaml):"]
    out += _two_columns([(n, example_summary(p)) for n, p in bundled_examples().items()], 2, cols)
    return "\n".join(out)
