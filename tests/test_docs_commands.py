"""Every `snakemake` command in the README and docs/ works as written: each is dry-run.

Commands are taken from inline code spans (`snakemake …`) and from fenced blocks tagged
bash, sh, shell or console, or untagged (lines starting with `snakemake`, `\\` continuation
lines joined; output blocks are tagged `text` and skipped). Each runs through bash, as a
reader would paste it, in a copy of the workflow (nothing under the repository's `results/` or
`.snakemake/` is touched), with `--dry-run --quiet all --cores 1` inserted right after
`snakemake`; its own arguments follow unchanged, so a target that `--configfile` would swallow
still fails here, except that its own `--cores N|all` and `-n`/`--dry-run` are dropped (they
change neither how the rest parses nor the DAG), so that commands differing only there are
dry-run once between them (about 20 distinct runs, 2 to 3 minutes on two busy cores). What cannot be dry-run as written is replaced, and the test's id says so:

* `--report [FILE]` needs a finished run: dropped, the same configuration is dry-run;
* `--sdm conda` needs conda: dropped when conda is not on the PATH.

`--profile profiles/slurm` runs as written (snakemake-executor-plugin-slurm is installed
with the workflow; a dry run submits nothing). A command with a placeholder (`<target>`, `…`)
fails unless its line carries `<!-- template -->`; such templates are skipped, and the skip
reason names them.

The docs are read from `CURVROBUST_DOCS_ROOT` (default: this repository), the workflow is
always this repository's.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DOCS_ROOT = Path(os.environ.get("CURVROBUST_DOCS_ROOT", REPO))
PAGES = [DOCS_ROOT / "README.md", *sorted((DOCS_ROOT / "docs").glob("*.md"))]
VENV_BIN = Path(sys.executable).parent
COPY = ["Snakefile", "rules", "workflow_scripts", "schemas", "config.yaml", "configs", "report",
        "lib", "envs", "profiles", "pyproject.toml"]
SHELL_TAGS = {"", "bash", "sh", "shell", "console"}
FENCE = re.compile(r"^([ \t]*)```(\w*)[^\n]*\n(.*?)^\1```", re.M | re.S)
SPAN = re.compile(r"`([^`]+)`")
PLACEHOLDER = re.compile(r"<[A-Za-z][\w-]*>|…")
TEMPLATE = "<!-- template -->"
DRY = "--dry-run --quiet all --cores 1"


@dataclass(frozen=True)
class Command:
    page: str
    line: int
    text: str        # as written (continuations joined)
    template: bool   # its line is marked <!-- template -->

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def extract(page: Path, root: Path = DOCS_ROOT) -> list[Command]:
    text = page.read_text()
    name = str(page.relative_to(root))
    lines = text.split("\n")
    found = []
    fenced_spans = []
    for m in FENCE.finditer(text):
        fenced_spans.append((m.start(), m.end()))
        if m.group(2).lower() not in SHELL_TAGS:
            continue
        first = text.count("\n", 0, m.start(3)) + 1
        body = m.group(3).split("\n")
        i = 0
        while i < len(body):
            line = body[i].strip()
            if line.startswith("$ "):
                line = line[2:]
            start = i
            if re.match(r"snakemake(\s|$)", line):
                while line.endswith("\\") and i + 1 < len(body):
                    i += 1
                    line = line[:-1].rstrip() + " " + body[i].strip()
                line = re.sub(r"\s+#.*$", "", line)  # a trailing comment
                mark = TEMPLATE in lines[first + start - 2] if first + start >= 2 else False
                found.append(Command(name, first + start, line, mark))
            i += 1
    # code spans outside the fenced blocks, paired from the left as Markdown pairs them
    outside = list(text)
    for a, b in fenced_spans:
        outside[a:b] = [c if c == "\n" else " " for c in text[a:b]]
    outside = "".join(outside)
    for para in re.finditer(r"(?:[^\n]|\n(?!\s*\n))+", outside):  # one paragraph at a time
        for m in SPAN.finditer(para.group(0)):
            if not re.match(r"snakemake\s+\S", m.group(1)):
                continue
            lineno = text.count("\n", 0, para.start() + m.start()) + 1
            found.append(Command(name, lineno, " ".join(m.group(1).split()),
                                 TEMPLATE in lines[lineno - 1]))
    return sorted(found, key=lambda c: c.line)


COMMANDS = [c for page in PAGES for c in extract(page)]


def runnable(cmd: str) -> tuple[str, list[str]]:
    """The command to dry-run, and what was replaced to make it runnable."""
    notes = []
    if re.search(r"--report(\s|$)", cmd):
        cmd = re.sub(r"\s--report(\s+(?!-)\S+)?", "", cmd)
        notes.append("--report dropped (needs a finished run)")
    if re.search(r"--sdm\s+conda\b", cmd) and shutil.which("conda") is None:
        cmd = re.sub(r"\s--sdm\s+conda\b", "", cmd)
        notes.append("--sdm conda dropped (no conda here)")
    # what only sets the number of cores or asks for a dry run changes neither the parse of the
    # rest nor the DAG: without it, commands that differ only there build one DAG between them
    cmd = re.sub(r"\s--cores\s+(?:all|\d+)(?=\s|$)|\s(?:-n|--dry-run)(?=\s|$)", "", cmd)
    return re.sub(r"^snakemake\b", f"snakemake {DRY}", cmd), notes


@pytest.fixture(scope="module")
def workflow_copy(tmp_path_factory):
    work = tmp_path_factory.mktemp("docs_commands")
    for name in COPY:
        src = REPO / name
        if src.is_dir():
            shutil.copytree(src, work / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy(src, work / name)
    return work


_RESULTS: dict[str, tuple[subprocess.CompletedProcess, float]] = {}


def dry_run(cmd: str, work: Path):
    """Dry-run a command once per session (the same command on two pages runs once)."""
    if cmd not in _RESULTS:
        env = {**os.environ, "PATH": f"{VENV_BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
        t0 = time.perf_counter()
        proc = subprocess.run(["bash", "-c", cmd], cwd=work, env=env, capture_output=True,
                              text=True, timeout=300)
        _RESULTS[cmd] = (proc, time.perf_counter() - t0)
    return _RESULTS[cmd]


def test_the_docs_have_commands():
    """The extraction finds the commands the pages are known to carry (a broken parser would
    make every other case vanish)."""
    texts = {c.text for c in COMMANDS}
    assert "snakemake --cores all" in texts
    assert any("--profile profiles/slurm" in t for t in texts)


def test_extraction_of_spans_blocks_continuations_and_templates(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Run `snakemake --cores all study000` or\n`snakemake -n\n--cores 1 all`; the word\n"
        "`snakemake` alone is no command.\n\n"
        "```bash\n$ snakemake --cores all \\\n    study001   # a comment\nmake run\n```\n\n"
        "```text\nsnakemake -n: 5 s\n```\n\n"
        "| see | `snakemake -n <target>` <!-- template --> |\n")
    got = [(c.line, c.text, c.template) for c in extract(page, tmp_path)]
    assert got == [(1, "snakemake --cores all study000", False),
                   (2, "snakemake -n --cores 1 all", False),
                   (7, "snakemake --cores all study001", False),
                   (16, "snakemake -n <target>", True)]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: c.id)
def test_documented_snakemake_command_dry_runs(command, workflow_copy):
    if PLACEHOLDER.search(command.text):
        if command.template:
            pytest.skip(f"template, not run: {command.text}")
        pytest.fail(f"{command.id}: `{command.text}` has a placeholder; give a real target, "
                    f"or mark the line {TEMPLATE}")
    cmd, notes = runnable(command.text)
    proc, seconds = dry_run(cmd, workflow_copy)
    note = f" ({'; '.join(notes)})" if notes else ""
    if proc.returncode != 0:
        err = "\n".join((proc.stderr + proc.stdout).strip().splitlines()[-25:])
        pytest.fail(f"{command.id}: `{command.text}` fails{note}\nran: {cmd}\n"
                    f"exit {proc.returncode} after {seconds:.1f} s; Snakemake said:\n{err}",
                    pytrace=False)
