"""Job files: read YAML, apply ``--set`` overrides, validate against the registries.

Every problem is reported as :class:`BadInput` with one line: ``FILE: dotted.key: reason``.
"""

from __future__ import annotations

import difflib
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from learnsolve.solvers.tuning import COMPARATORS

from . import paths
from .entry import Entry
from .errors import BadInput
from .params import Params
from .registry import PROBLEMS, SOLVERS, cross_check


class OutputSection(Params):
    dir: str = Field("runs", description="parent of the run directory, relative to the job file")
    save_solution: bool = Field(False, description="write x to arrays.npz")


class JobSection(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)
    name: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    seed: int = Field(0, ge=0)
    problem: dict[str, Any]
    solver: dict[str, Any]
    baselines: list[Literal[COMPARATORS]] = Field(  # type: ignore[valid-type]
        default_factory=list, description="comparators for a sequence: " + ", ".join(COMPARATORS))
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


FLOAT_TEXT = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def parse_scalar(text: str) -> Any:
    """A YAML scalar, with 1e-10 read as a float (YAML 1.1 would keep it a string)."""
    if FLOAT_TEXT.match(text.strip()):
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
            parsed = parse_scalar(value)
        except yaml.YAMLError:
            raise BadInput(f"--set {key}: cannot parse value {value!r}") from None
        set_dotted(data, key, parsed)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that rejects a key given twice in one mapping (YAML keeps the last silently)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[Any, int] = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                line = seen.get(key)
            except TypeError:  # an unhashable key: the base class reports it
                break
            if line is not None:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r} (first given on line {line})", key_node.start_mark)
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep)


def read_yaml(path: Path) -> dict[str, Any]:
    """A job (or sweep, or training) file as a mapping; every fault is one BadInput line."""
    if path.is_dir():
        raise BadInput(f"{path}: is a directory, not a job file")
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BadInput(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise BadInput(f"{path}: not a text file (byte {exc.start} is not UTF-8)") from None
    except OSError as exc:
        raise BadInput(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        data = yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader subclass)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        what = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise BadInput(f"{where}: invalid YAML: {what}") from None
    except RecursionError:
        raise BadInput(f"{path}: invalid YAML: nested too deeply") from None
    if not isinstance(data, dict):
        got = "empty" if data is None else f"a {type(data).__name__}"
        raise BadInput(f"{path}: a job file must be a YAML mapping (name, problem, solver, ...); "
                       f"this one is {got}")
    return data


_UNION_TAG = re.compile(r"^([A-Z][a-z]\w*|(constrained-)?(float|int|str|bool)|.*\[.*)$")


def _is_tag(part: Any) -> bool:
    return isinstance(part, str) and bool(_UNION_TAG.match(part))


def _fields_at(model: type[BaseModel] | None, loc: tuple[Any, ...]) -> list[str]:
    """The keys the model accepts at ``loc`` (for "did you mean"); [] where it cannot tell."""
    def models_in(annotation: Any) -> list[type[BaseModel]]:
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return [annotation]
        return [m for arg in get_args(annotation) for m in models_in(arg)]

    candidates = [model] if model is not None else []
    for part in loc:
        if _is_tag(part):  # a union branch: keep the model it names
            candidates = [m for m in candidates if m.__name__ == part] or candidates
            continue
        fields = [m.model_fields[part] for m in candidates if part in m.model_fields]
        candidates = [m for f in fields for m in models_in(f.annotation)]
    keys: list[str] = []
    for m in candidates:
        for name, field in m.model_fields.items():
            keys.append(field.alias or name)
    return keys


def _error_lines(exc: ValidationError, where: str, prefix: str = "",
                 model: type[BaseModel] | None = None) -> list[str]:
    """One line per error. A value that fits no branch of a union (omega: a number or a tuner)
    gives one error per branch: only the most specific of them is kept."""
    chosen: dict[tuple[Any, ...], dict[str, Any]] = {}
    order: list[tuple[Any, ...]] = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        cut = next((i for i, part in enumerate(loc) if _is_tag(part)), len(loc))
        group = loc[:cut] if cut < len(loc) else loc + (err["type"],)
        best = chosen.get(group)
        rank = (not isinstance(err.get("input"), dict | list), len(loc))
        if best is None:
            order.append(group)
        if best is None or rank > (not isinstance(best.get("input"), dict | list), len(best["loc"])):
            chosen[group] = err
    lines = []
    for group in order:
        err = chosen[group]
        loc = ".".join(str(p) for p in (prefix, *err["loc"]) if p != "" and not _is_tag(p))
        if err["type"] == "extra_forbidden":
            msg = "unknown key"
            close = difflib.get_close_matches(str(err["loc"][-1]), _fields_at(model, tuple(err["loc"][:-1])),
                                              n=1, cutoff=0.6)
            if close:
                msg += f"; did you mean {close[0]}?"
        elif err["type"] == "missing":
            msg = "required key is missing"
        else:
            msg = err["msg"].removeprefix("Value error, ")
            if not isinstance(err.get("input"), dict | list):
                msg += f" (got {_short(err['input'])})"
        lines.append(f"{where}: {loc or prefix}: {msg}")
    return lines


def _short(value: Any, limit: int = 60) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def schema_error(exc: ValidationError, where: str, prefix: str = "",
                 model: type[BaseModel] | None = None) -> BadInput:
    """Every schema error of ``exc``, one line each, as one BadInput."""
    return BadInput("\n".join(_error_lines(exc, where, prefix, model)))


def _entry(section: dict[str, Any], registry: dict[str, Entry], what: str, where: str) -> Entry:
    kind = section.get("type")
    if kind is None:
        raise BadInput(f"{where}: {what}.type: required key is missing; choose from {', '.join(registry)}")
    if not isinstance(kind, str) or kind not in registry:
        raise BadInput(f"{where}: {what}.type: unknown {what} {kind!r}; choose from {', '.join(registry)}")
    missing = registry[kind].missing_extra()
    if missing:
        raise BadInput(f"{where}: {what}.type: {missing}")
    return registry[kind]


def validate(data: dict[str, Any], source: Path | None) -> Job:
    """Check a job's data against the schema and the registries; every error is reported, one
    line each. Paths in the job, ``output.dir`` included, are relative to the job file's folder."""
    where = str(source) if source else "<job>"
    if "training" in data:
        raise BadInput(f"{where}: training: this is a training file; run it with "
                       f"learnsolve train dcdm {where}")
    lines: list[str] = []
    try:
        top: JobSection | None = JobSection.model_validate(data)
    except ValidationError as exc:
        lines += _error_lines(exc, where, model=JobSection)
        top = None
    base = source.parent if source else Path.cwd()
    context = {"base_dir": base}
    sections = {}
    for what, registry in (("problem", PROBLEMS), ("solver", SOLVERS)):
        section = data.get(what)
        if not isinstance(section, dict):
            continue  # reported by the top-level check
        try:
            entry = _entry(section, registry, what, where)
            sections[what] = entry.params.model_validate(section, context=context)
        except BadInput as exc:
            lines.append(str(exc))
        except ValidationError as exc:
            lines += _error_lines(exc, where, what, entry.params)
    if lines or top is None:
        raise BadInput("\n".join(lines))
    clash = cross_check(sections["problem"], sections["solver"], list(top.baselines))
    if clash:
        raise BadInput(f"{where}: {clash[0]}: {clash[1]}")
    name = top.name or (source.stem if source else "job")
    out_dir = os.path.abspath(paths.resolve(top.output.dir, out_base(source)))
    output = top.output.model_copy(update={"dir": out_dir})
    return Job(name, top.seed, sections["problem"], sections["solver"], output, source,
               list(top.baselines), top.sweep)


def out_base(source: Path | None) -> Path:
    """What a relative output.dir is relative to: the job file's folder, except for a bundled
    example run in place (its folder is inside the installed package), whose runs go to the cwd."""
    if source is None:
        return Path.cwd()
    folder = source.parent.resolve()
    return Path.cwd() if folder == paths.configs_dir().resolve() else source.parent


def load_job(path: str | Path, overrides: list[str] | tuple[str, ...] = ()) -> Job:
    path = Path(path)
    data = read_yaml(path)
    apply_overrides(data, list(overrides))
    return validate(data, path)
