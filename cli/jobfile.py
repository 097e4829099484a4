"""Job files: read YAML, apply ``--set`` overrides, validate against the registries.

Every problem is reported as :class:`BadInput` with one line: ``FILE: dotted.key: reason``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .errors import BadInput
from .registry import BASELINES, PROBLEMS, SOLVERS, Entry, Params, cross_check


class OutputSection(Params):
    dir: str = Field("runs", description="parent of the run directory")
    save_solution: bool = Field(False, description="write x to arrays.npz")


class JobSection(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = Field(0, ge=0)
    problem: dict[str, Any]
    solver: dict[str, Any]
    baselines: list[Literal[BASELINES]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="comparators for a sequence: " + ", ".join(BASELINES))
    output: OutputSection = Field(default_factory=OutputSection)
    sweep: dict[str, Any] | None = Field(None, description="dotted keys -> lists (learnsolve sweep)")
    cluster: dict[str, Any] | None = Field(None, description="batch resources (learnsolve sweep)")


@dataclass
class Job:
    name: str
    seed: int
    problem: Params
    solver: Params
    output: OutputSection
    source: Path | None
    baselines: list[str]
    sweep: dict[str, Any] | None = None

    def resolved(self) -> dict[str, Any]:
        """The job with every default filled in, as plain data (rerunning it reproduces the run)."""
        return {
            "name": self.name,
            "seed": self.seed,
            "problem": self.problem.model_dump(mode="json", by_alias=True),
            "solver": self.solver.model_dump(mode="json", by_alias=True),
            "baselines": list(self.baselines),
            "output": self.output.model_dump(mode="json"),
        }


_FLOAT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _scalar(text: str) -> Any:
    """A YAML scalar, with 1e-10 read as a float (YAML 1.1 would keep it a string)."""
    if _FLOAT.match(text.strip()):
        return float(text) if any(c in text for c in ".eE") else int(text)
    return yaml.safe_load(text) if text.strip() else ""


def set_dotted(data: dict[str, Any], key: str, value: Any, what: str = "--set") -> None:
    """data[a][b][c] = value for key "a.b.c", creating mappings on the way."""
    node = data
    parts = key.strip().split(".")
    for part in parts[:-1]:
        child = node.setdefault(part, {})
        if not isinstance(child, dict):
            raise BadInput(f"{what} {key}: {part} is not a mapping")
        node = child
    node[parts[-1]] = value


def apply_overrides(data: dict[str, Any], overrides: list[str]) -> None:
    for item in overrides:
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise BadInput(f"--set {item!r}: expected KEY=VALUE, e.g. solver.rtol=1e-10")
        try:
            parsed = _scalar(value)
        except yaml.YAMLError:
            raise BadInput(f"--set {key}: cannot parse value {value!r}") from None
        set_dotted(data, key, parsed)


def read_yaml(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text()
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BadInput(f"{path}: cannot read: {exc}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"{where}: invalid YAML: {what}") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: a job file must be a YAML mapping (name, problem, solver, ...)")
    return data


_UNION_TAG = re.compile(r"^([A-Z][a-z]\w*|(constrained-)?(float|int|str|bool)|.*\[.*)$")


def _first_error(exc: ValidationError, where: str, prefix: str = "") -> BadInput:
    """One line for the most specific error; pydantic's union-branch tags are not job keys."""
    errors = exc.errors()
    err = max(errors, key=lambda e: (isinstance(e.get("input"), dict | list) is False, len(e["loc"])))
    loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "" and not _UNION_TAG.match(str(p)))
    if err["type"] == "extra_forbidden":
        msg = "unknown key"
    elif err["type"] == "missing":
        msg = "required key is missing"
    else:
        msg = err["msg"].removeprefix("Value error, ")
        if not isinstance(err.get("input"), dict | list):
            msg += f" (got {err['input']!r})"
    more = len(errors) - 1
    tail = f" (and {more} more error{'s' if more > 1 else ''})" if more else ""
    return BadInput(f"{where}: {loc or prefix}: {msg}{tail}")


def _entry(section: dict[str, Any], registry: dict[str, Entry], what: str, where: str) -> Entry:
    kind = section.get("type")
    if kind is None:
        raise BadInput(f"{where}: {what}.type: required key is missing; choose from {', '.join(registry)}")
    if kind not in registry:
        raise BadInput(f"{where}: {what}.type: unknown {what} {kind!r}; choose from {', '.join(registry)}")
    missing = registry[kind].missing_extra()
    if missing:
        raise BadInput(f"{where}: {what}.type: {missing}")
    return registry[kind]


def validate(data: dict[str, Any], source: Path | None) -> Job:
    where = str(source) if source else "<job>"
    try:
        top = JobSection.model_validate(data)
    except ValidationError as exc:
        raise _first_error(exc, where) from None
    context = {"base_dir": source.parent if source else Path.cwd()}
    sections = {}
    for what, registry in (("problem", PROBLEMS), ("solver", SOLVERS)):
        section = getattr(top, what)
        entry = _entry(section, registry, what, where)
        try:
            sections[what] = entry.params.model_validate(section, context=context)
        except ValidationError as exc:
            raise _first_error(exc, where, what) from None
    clash = cross_check(sections["problem"], sections["solver"], list(top.baselines))
    if clash:
        raise BadInput(f"{where}: {clash[0]}: {clash[1]}")
    name = top.name or (source.stem if source else "job")
    return Job(name, top.seed, sections["problem"], sections["solver"], top.output, source,
               list(top.baselines), top.sweep)


def load_job(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Job:
    path = Path(path)
    data = read_yaml(path)
    apply_overrides(data, list(overrides))
    return validate(data, path)
