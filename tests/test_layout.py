"""The layering of the package, checked on the source: solvers/ imports neither pde/ nor cli/,
pde/ never cli/; no import cycles; function-local imports only with a stated reason; ``--help``
loads none of the heavy packages."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
TOP = {"cli": "learnsolve.cli", "solvers": "learnsolve.solvers", "pde": "learnsolve.pde",
       "configs": "learnsolve.configs", "data": "learnsolve.data"}


def modules() -> dict[str, Path]:
    out = {}
    for folder, package in TOP.items():
        for path in (ROOT / folder).rglob("*.py"):
            parts = path.relative_to(ROOT / folder).with_suffix("").parts
            name = ".".join((package, *parts))
            out[name.removesuffix(".__init__")] = path
    return out


MODULES = modules()


def test_the_layout_is_read():
    # every check below would pass on an empty tree: make sure the package was found
    assert len(MODULES) > 80
    assert {"learnsolve.solvers.linear.cg", "learnsolve.pde.poisson", "learnsolve.cli.main"} <= set(MODULES)


def _target(module: str, path: Path, node: ast.ImportFrom | ast.Import) -> list[str]:
    """The learnsolve modules an import statement names (submodules where it imports them)."""
    if isinstance(node, ast.Import):
        return [a.name for a in node.names if a.name.startswith("learnsolve")]
    if node.level:
        package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
        base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
        base = f"{base}.{node.module}" if node.module else base
    else:
        base = node.module or ""
    if not base.startswith("learnsolve"):
        return []
    subs = [f"{base}.{a.name}" for a in node.names if f"{base}.{a.name}" in MODULES]
    return subs or [base]


def imports(top_level_only: bool) -> dict[str, set[str]]:
    """module -> the learnsolve modules it imports (at module level, or anywhere)."""
    graph: dict[str, set[str]] = {}
    for module, path in MODULES.items():
        tree = ast.parse(path.read_text())
        nodes = tree.body if top_level_only else list(ast.walk(tree))
        found: set[str] = set()
        for node in nodes:
            if isinstance(node, ast.Import | ast.ImportFrom):
                found.update(t for t in _target(module, path, node) if t != module)
        graph[module] = found
    return graph


def test_solvers_import_neither_pde_nor_cli_and_pde_not_cli():
    bad = [(m, t) for m, targets in imports(top_level_only=False).items() for t in targets
           if (m.startswith("learnsolve.solvers") and t.startswith(("learnsolve.pde", "learnsolve.cli")))
           or (m.startswith("learnsolve.pde") and t.startswith("learnsolve.cli"))]
    assert bad == []


def test_no_import_cycles():
    graph = {m: {t for t in ts if t in MODULES} for m, ts in imports(top_level_only=False).items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(m: str, stack: list[str]) -> None:
        state[m] = 1
        for t in sorted(graph[m]):
            if state.get(t) == 1:
                cycles.append(stack[stack.index(t):] + [t])
            elif t not in state:
                visit(t, [*stack, t])
        state[m] = 2

    for m in sorted(graph):
        if m not in state:
            visit(m, [m])
    assert cycles == []


def test_every_function_local_import_says_why():
    # deferred imports keep --help fast or put off an optional package; each says so
    bare = []
    for path in MODULES.values():
        lines = path.read_text().splitlines()
        for fn in ast.walk(ast.parse(path.read_text())):
            if not isinstance(fn, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            stmts = [n for n in ast.walk(fn) if isinstance(n, ast.Import | ast.ImportFrom)]
            for n in stmts:
                if not _reason_given(lines, n.lineno - 1):
                    bare.append(f"{path.relative_to(ROOT)}:{n.lineno}")
    assert bare == []


def _reason_given(lines: list[str], k: int) -> bool:
    """A comment on the first line of the block of imports holding line ``k`` (blank lines
    between import groups included), or on the line above that block."""

    def is_import(i: int) -> bool:
        return i >= 0 and lines[i].strip().startswith(("import ", "from "))

    while is_import(k - 1) or (lines[k - 1].strip() == "" and is_import(k - 2)):
        k -= 1
    return "#" in lines[k] or (k > 0 and lines[k - 1].strip().startswith("#"))


def test_help_loads_no_heavy_package():
    code = ("import sys\nfrom learnsolve.cli.main import cli\n"
            "heavy = ('numpy', 'numba', 'scipy', 'pyamg', 'torch', 'pydantic', 'matplotlib',\n"
            "         'yaml', 'rich')\n"
            "print(sorted(m for m in sys.modules if m.split('.')[0] in heavy))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_library_runs_without_the_app():
    # what a Python user imports for every family loads no module of learnsolve.cli
    code = ("import sys\nimport learnsolve.solvers as s\n"
            "for name in s.__all__: getattr(s, name)\n"
            "import learnsolve.pde.poisson, learnsolve.pde.sequences, learnsolve.pde.flames.reference\n"
            "print(sorted(m for m in sys.modules if m.startswith('learnsolve.cli')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_readme_has_a_library_script_per_method_family():
    # each runs in its family's test (tests/*/*/test_readme_*.py), from the README's own text
    import re

    from clihelpers import readme_script

    marked = re.findall(r"<!-- script: (\w+) -->", (ROOT / "README.md").read_text())
    assert sorted(marked) == ["flames", "learned", "linear", "optim", "tuning"]
    for name in marked:
        assert "learnsolve.cli" not in readme_script(name)
    runners = {p.stem.removeprefix("test_readme_") for p in (ROOT / "tests").rglob("test_readme_*.py")}
    assert runners == set(marked)
