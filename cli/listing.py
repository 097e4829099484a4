"""``learnsolve list``: what can go in a job file."""

from __future__ import annotations

from types import UnionType
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from rich.console import Console
from rich.table import Table

from .paths import bundled_examples
from .registry import PROBLEMS, SOLVERS, Entry


def _type_name(annotation: Any) -> str:
    """'stencil' | 'csr', int | None, ... as a user would write them in YAML."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin is Literal:
        return " | ".join(repr(v) for v in args)
    if origin is Annotated:
        return _type_name(args[0])
    if origin in (Union, UnionType):
        return " | ".join(_type_name(a) for a in args if a is not type(None)) + (
            " | None" if type(None) in args else "")
    return getattr(annotation, "__name__", str(annotation))


def _params(entry: Entry) -> str:
    lines = []
    for key, field in entry.params.model_fields.items():
        name = field.alias or key
        if name == "type":
            continue
        default = "required" if field.is_required() else f"= {field.get_default(call_default_factory=True)!r}"
        desc = f"  {field.description}" if field.description else ""
        lines.append(f"{name}: {_type_name(field.annotation)} {default}{desc}")
    return "\n".join(lines)


def _registry_table(title: str, registry: dict[str, Entry]) -> Table:
    table = Table(title=title, show_lines=True)
    table.add_column("type", style="bold")
    table.add_column("what")
    table.add_column("parameters")
    for entry in registry.values():
        table.add_row(entry.name, entry.summary, _params(entry))
    return table


def _summary(path: Any) -> str:
    for line in path.read_text().splitlines():
        if line.startswith("#"):
            return line.lstrip("# ").strip()
    return ""


def print_registry() -> None:
    console = Console()
    console.print(_registry_table("problems (problem.type)", PROBLEMS))
    console.print(_registry_table("solvers (solver.type)", SOLVERS))
    examples = Table(title="bundled examples (learnsolve example NAME)")
    examples.add_column("name", style="bold")
    examples.add_column("what")
    for name, path in bundled_examples().items():
        examples.add_row(name, _summary(path))
    console.print(examples)
