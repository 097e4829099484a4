"""Issue 12, feedback: the terminal's live line and log lines, bench progress in batch mode,
a readable ``learnsolve list``, ``learnsolve example`` without a name, per-kind reports, and
example comments a pip user can follow."""

from __future__ import annotations

import fcntl
import json
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from pathlib import Path

import pytest
from clihelpers import PNG_MAGIC, bundled, error_line, sets

from learnsolve.cli.paths import bundled_examples

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def _env(**extra: str) -> dict[str, str]:
    return {**os.environ, "NUMBA_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", **extra}


def run_in_pty(argv: list[str], env: dict[str, str], timeout: float = 120) -> tuple[str, str, int]:
    """Run ``argv`` with stderr on a pseudo-terminal (120 columns); (terminal bytes as text,
    stdout, exit code)."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=slave,
                            env=env, close_fds=True)
    os.close(slave)
    chunks, deadline = [], time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    data = os.read(master, 65536)
                except OSError:  # the child closed the terminal
                    break
                if not data:
                    break
                chunks.append(data)
            elif proc.poll() is not None:
                break
        out = proc.communicate(timeout=max(1.0, deadline - time.monotonic()))[0]
    finally:
        if proc.poll() is None:
            proc.kill()
        os.close(master)
    return b"".join(chunks).decode(errors="replace"), out.decode(), proc.returncode


# ------------------------------------------------------------------ 1. live line and log lines


LOG_START = re.compile(r"(INFO|WARNING|ERROR) ")
#: what may stand on a terminal row before a rich log line's level: its time column or blanks
ROW_PREFIX = re.compile(r"^(\[[^\]]*\])?\s*$")


def test_log_lines_never_start_inside_the_live_status_line(cli_argv, tmp_path):
    """On a terminal, each log line starts on a fresh row: after a newline or after the live line
    was erased (\\r ESC[2K); and the live line is drawn again after the log lines."""
    argv = [*cli_argv, "run", str(bundled("sor-poisson2d")), "--out", str(tmp_path),
            *sets("problem.n=64", "solver.omega=1.0", "solver.rtol=1e-14", "solver.maxiter=300")]
    # a log line at every iteration, so periodic lines fall while the live line is up whatever
    # the machine's speed (the live line is redrawn every 0.1 s)
    screen, out, code = run_in_pty(argv, _env(TERM="xterm-256color", LEARNSOLVE_LOG_EVERY="0"))
    assert code == 3, screen[-2000:]  # maxiter reached: the job ran to its end
    assert Path(out.strip()).is_dir()
    periodic = 0
    for m in LOG_START.finditer(screen):
        before = screen[: m.start()]
        row = re.split(r"\n|\x1b\[2K", before)[-1]  # since the last newline or erase-line
        row = ANSI.sub("", row).replace("\r", "")
        assert ROW_PREFIX.match(row), f"a log line starts after {row!r} on the same row"
        periodic += "||r||" in ANSI.sub("", screen[m.end(): m.end() + 200]).split("\n")[0]
    assert periodic >= 2, "no periodic log lines were written while the live line was up"
    # the live line (bold 'iteration ...' with seconds) came back after a periodic log line
    first_log = screen.find("||b|| =", LOG_START.search(screen, screen.find("1 threads")).end())
    assert re.search(r"\x1b\[1miteration ", screen[first_log:]), "the live line was not redrawn"


# ------------------------------------------------------------------ 2. bench progress in batch mode


def test_bench_logs_each_method_and_run_before_its_table(cli_argv, tmp_path):
    """stderr not a terminal (a batch job): a line per method and timed run as it goes, all of
    them before the table (stdout and stderr merged, as in a batch log)."""
    done = subprocess.run([*cli_argv, "bench", str(bundled("poisson2d-cg")), "--repeat", "2",
                           *sets("problem.n=16")], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          env=_env(), cwd=tmp_path, timeout=180, text=True)
    assert done.returncode == 0, done.stdout[-3000:]
    log = done.stdout
    table = log.index("poisson2d-cg: 256 unknowns")
    for method in ("learnsolve cg (stencil)", "scipy.sparse.linalg.cg (csr)", "pyamg krylov.cg"):
        for k in (1, 2):
            line = re.search(rf"^\S+ \S+ INFO {re.escape(method)}: run {k}/2: 48 iterations", log, re.M)
            assert line and line.start() < table, f"{method} run {k} not logged before the table"
    assert log.index("memory bandwidth: STREAM triad") < table


def test_bench_quiet_prints_the_table_alone(run_cli):
    args = ["bench", bundled("sor-poisson2d"), "--repeat", "1", *sets("problem.n=16")]
    loud = run_cli(*args)
    assert loud.exit_code == 0, loud.stderr
    for label in ("cg", "sor (natural)", "sor (red-black)"):
        line = rf"INFO {re.escape(label)}: run 2/2: [0-9.]+ ms per sweep$"
        assert re.search(line, loud.stderr, re.M), label
    quiet = run_cli(*args, "--quiet")
    assert quiet.exit_code == 0, quiet.stderr
    assert quiet.stderr == ""
    assert "ratio to cg iteration" in quiet.stdout


# ------------------------------------------------------------------ 3. list and example


def test_list_alone_is_a_compact_overview_with_examples(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    result = run_cli("list")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) < 120, len(lines)
    assert max(len(line) for line in lines) <= 100
    assert "…" not in result.stdout and "Spec(" not in result.stdout
    for name in ("poisson", "cg", "pinn", "sketch-newton", *bundled_examples()):
        assert re.search(rf"^  {re.escape(name)}\s", result.stdout, re.M), name
    # each example's one-line description is its comment's first sentence, in full
    assert "by sketching Newton from the published start." in " ".join(result.stdout.split())


def test_list_one_type_shows_every_key_nested_rows_and_yaml_defaults(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "80")
    result = run_cli("list", "poisson")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert max(len(line) for line in text.splitlines()) <= 80
    assert "…" not in text and "ObstacleSpec" not in text and "'none'" not in text
    # nested model: one row per key, with the default as YAML would write it
    for row in ("obstacles.type: none", "obstacles.count: 4", "obstacles.radius: 0.1",
                "obstacles.seed: null", "n: 64", "operator: stencil", "rhs_file: null"):
        assert re.search(rf"^  {re.escape(row)}\s", text, re.M), row
    assert re.search(r"^  n: 64\s+integer in \[1, 100000\]$", text, re.M)
    # descriptions in full (wrapped, never cut): this one is 66 characters
    assert "f = 1, seeded Gaussian b, f of a known solution, or b from rhs_file" in " ".join(text.split())


def test_list_solver_with_union_and_float_defaults(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    result = run_cli("list", "cg")
    assert result.exit_code == 0, result.stderr
    text = result.stdout
    assert re.search(r"^  rtol: 1\.0e-08\s+number in \[0, 1\)$", text, re.M)
    assert re.search(r"^  omega: 1\.0\s", text, re.M)
    assert re.search(r"^  omega\.tuner: \(required\)\s+tsallis-inf \| tsallis-inf-cb \| chebcb", text, re.M)
    assert re.search(r"^  amg\.method: sa\s", text, re.M)
    assert "poisson2d-cg" in text  # the examples that use it
    assert "problem keys" not in text  # only the solver


def _model_default(model, dotted: str):
    """The default of a dotted key, walking into nested models (and a union's model)."""


    head, _, rest = dotted.partition(".")
    field = next(f for k, f in model.model_fields.items() if (f.alias or k) == head)
    if not rest:
        return field.get_default(call_default_factory=True)
    from learnsolve.cli.listing import _models_in

    sub = _models_in(field.annotation)[0]
    return _model_default(sub, rest)


@pytest.mark.parametrize("name", ["poisson", "cg", "premixed-flame", "pinn", "sketch-newton"])
def test_list_defaults_read_back_as_yaml_to_the_real_defaults(name, run_cli, monkeypatch):
    import yaml

    from learnsolve.cli.registry import PROBLEMS, SOLVERS

    monkeypatch.setenv("COLUMNS", "100")
    model = (PROBLEMS.get(name) or SOLVERS[name]).params
    result = run_cli("list", name)
    keys = result.stdout.split("then the values it takes):\n", 1)[1]
    rows = re.findall(r"^  ([A-Za-z_][\w.]*): (.+?)(?:\s{2,}|$)", keys, re.M)
    checked = 0
    for key, shown in rows:
        if shown == "(required)":
            continue
        value = _model_default(model, key)
        value = value.model_dump(by_alias=True) if hasattr(value, "model_dump") else value
        assert yaml.safe_load(shown) == value, (key, shown)
        checked += 1
    assert checked >= 8, rows


def test_list_unknown_name_suggests_the_closest(run_cli):
    result = run_cli("list", "cgg")
    assert result.exit_code == 2
    line = error_line(result)
    assert "did you mean cg?" in line


def test_list_job_and_training_sections(run_cli):
    result = run_cli("list", "train-dcdm")
    assert result.exit_code == 0, result.stderr
    assert re.search(r"^  training\.steps: 5000\s", result.stdout, re.M)
    assert re.search(r"^  data\.obstacles: \{type: spheres, count: 6, radius: 0\.08\}", result.stdout, re.M)
    result = run_cli("list", "job")
    assert re.search(r"^  output\.dir: runs\s", result.stdout, re.M)


def test_example_without_name_lists_the_examples(run_cli, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    result = run_cli("example")
    assert result.exit_code == 0, result.stderr
    for name in bundled_examples():
        assert re.search(rf"^  {re.escape(name)}\s+\S", result.stdout, re.M), name
    assert "2D Poisson (5-point stencil, matrix-free), plain CG: the main example" in result.stdout


# ------------------------------------------------------------------ 5. example comments


def test_example_comments_name_no_configs_path():
    """A pip user has no configs/ folder: comments show learnsolve example NAME instead."""
    for name, path in bundled_examples().items():
        comments = [line for line in path.read_text().splitlines() if line.lstrip().startswith("#")]
        assert not [c for c in comments if "configs/" in c], name
    assert "learnsolve example train-dcdm2d" in bundled("dcdm-poisson2d").read_text()
    assert "learnsolve example bench-cutest >" in bundled("bench-cutest").read_text()


def test_no_cli_message_names_a_configs_path():
    cli_dir = Path(__import__("learnsolve.cli", fromlist=["x"]).__file__).parent
    for src in cli_dir.glob("*.py"):
        if src.name == "paths.py":  # where the package data is found
            continue
        assert "configs/" not in src.read_text(), src.name



# ------------------------------------------------------------------ 4. report per kind of run


def table_rows(stdout: str) -> dict[str, dict[str, str]]:
    """The rows of rich tables printed by report: {run name: {column: cell}}."""
    rows: dict[str, dict[str, str]] = {}
    heads: list[str] = []
    for line in stdout.splitlines():
        if line.startswith("┃"):
            heads = [h.strip() for h in line.strip("┃").split("┃")]
        elif line.startswith("│") and heads:
            cells = [c.strip() for c in line.strip("│").split("│")]
            rows[cells[0]] = dict(zip(heads, cells, strict=True))
    return rows


def one_run(run_cli, out: Path, job: Path, *overrides: str) -> Path:
    result = run_cli("run", job, "--out", out, "-q", *sets(*overrides))
    assert result.exit_code == 0, result.stderr
    return Path(result.stdout.strip())


def reported(run_cli, monkeypatch, *run_dirs: Path) -> dict[str, dict[str, str]]:
    monkeypatch.setenv("COLUMNS", "200")
    result = run_cli("report", *run_dirs)
    assert result.exit_code == 0, result.stderr
    rows = table_rows(result.stdout)
    assert set(rows) == {d.name for d in run_dirs}, result.stdout
    return rows


def png(path: Path) -> bytes:
    data = path.read_bytes()
    assert data.startswith(PNG_MAGIC) and len(data) > 5000, path
    return data


def close(text: str, value: float, rel: float = 1e-5) -> bool:
    return float(text.rstrip("%")) == pytest.approx(value, rel=rel, abs=1e-300)


def test_report_linear_run_residual_columns_and_convergence_plot(run_cli, tmp_path, monkeypatch):
    d = one_run(run_cli, tmp_path, bundled("poisson2d-cg"), "problem.n=16")
    rec = json.loads((d / "result.json").read_text())
    row = reported(run_cli, monkeypatch, d)[d.name]
    assert int(row["iterations"]) == rec["iterations"]
    assert close(row["rel. residual"], rec["relative_residual"], 1e-3)
    png(d / "convergence.png")


def test_report_sequence_run_ratio_columns(run_cli, tmp_path, monkeypatch):
    d = one_run(run_cli, tmp_path, bundled("relax-tsallis"), "problem.instances=20")
    m = json.loads((d / "result.json").read_text())["metrics"]
    row = reported(run_cli, monkeypatch, d)[d.name]
    assert int(row["total iterations"]) == m["total_iterations"]
    assert int(row["instances"]) == m["instances"] == 20
    assert close(row["ratio to best fixed"], m["ratio_to_best_fixed"], 1e-4)
    assert close(row["ratio to instance-optimal"], m["ratio_to_instance_optimal"], 1e-4)
    png(d / "sequence.png")


def test_report_sketch_newton_objective_kkt_and_kkt_plot(run_cli, tmp_path, monkeypatch):
    d = one_run(run_cli, tmp_path, bundled("sketch-newton-pde"), "problem.N=4")
    m = json.loads((d / "result.json").read_text())["metrics"]
    row = reported(run_cli, monkeypatch, d)[d.name]
    assert close(row["objective"], m["objective"])
    assert close(row["KKT residual"], m["kkt_residual"], 1e-3)
    assert close(row["||c||"], m["c_norm"], 1e-3) if m["c_norm"] else row["||c||"] == "0.000e+00"
    png(d / "convergence.png")  # the KKT residual per Newton iteration


def test_report_pinn_inverse_parameters_loss_and_loss_plot(run_cli, tmp_path, monkeypatch):
    result = run_cli("run", bundled("flame-pinn-inverse"), "--out", tmp_path, "-q",
                     *sets("solver.steps=30", "solver.warmup_steps=10", "solver.lbfgs_steps=5",
                           "solver.points=101", "solver.log_every=5"))
    d = Path(result.stdout.strip())
    assert (d / "result.json").is_file(), result.stderr  # converged or not: it ran and has a loss
    m = json.loads((d / "result.json").read_text())["metrics"]
    row = reported(run_cli, monkeypatch, d)[d.name]
    assert close(row["s_L m/s"], m["s_L"])
    assert close(row["loss"], m["loss"], 1e-4)
    assert close(row["s_L error"], 100 * m["s_L_relative_error"], 1e-2)
    for name in ("E_a", "lambda"):
        assert close(row[name], m["parameters"][name])
        assert close(row[f"{name} error"], 100 * m["relative_errors"][name], 1e-2)
    png(d / "loss.png")
    png(d / "profile.png")


def test_report_training_final_loss_and_loss_plot(run_cli, tmp_path, monkeypatch):
    train = tmp_path / "train.yaml"
    train.write_text(bundled("train-dcdm2d").read_text())
    result = run_cli("train", "dcdm", train, "-q", *sets(
        f"output.dir={tmp_path / 'runs'}", "data.n=8", "data.layouts=2", "data.ritz=10",
        "data.rhs_per_layout=8", "model.channels=4", "model.levels=1", "training.steps=20",
        "training.batch=4", "training.log_every=2", "training.checkpoint_every=0"))
    d = Path(result.stdout.strip())
    assert (d / "result.json").is_file(), result.stderr
    m = json.loads((d / "result.json").read_text())["metrics"]
    row = reported(run_cli, monkeypatch, d)[d.name]
    assert close(row["final loss"], m["final_loss"], 1e-4)
    assert int(row["steps"]) == m["steps"] == 20
    png(d / "loss.png")

