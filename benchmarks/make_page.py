"""Run the benchmarks and write docs/benchmarks.md from their output.

    python benchmarks/make_page.py [--only NAME ...] [--dry-run] [--timeout SECONDS]
                                   [--output docs/benchmarks.md] [--list]

Every `benchmarks/bench_*.py` runs in its own process, from the repository root, with no
arguments (as `make bench` does); what it prints to stdout goes into the page verbatim, under
its module docstring. A benchmark that another one imports (`bench_fgsm`, `bench_gauss_newton`,
run by `bench_study000`) is not run on its own unless `--only` names it.

The page starts with the hand-written introduction `benchmarks/page_intro.md`, then a header
with the date, the git commit (`-dirty` when tracked files other than the page differ from it),
the Python and torch versions, `nproc` and the load from `uptime`, then one section per
benchmark with its own date, commit, load, wall time and exit status.

`--only NAME` (repeatable; `study000` or `bench_study000`) reruns the named benchmarks and keeps
the other sections of the existing page as they are. `--dry-run` runs nothing and writes a
placeholder line in each selected section. The page is written atomically (a temporary file in
the same folder, then a rename). Exits 1 when a benchmark failed or timed out (its section says
so, with the end of its stderr), 0 otherwise.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import os
import platform
import re
import subprocess
import sys
import tempfile
import threading
import time
from importlib import metadata
from pathlib import Path

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
INTRO = BENCH_DIR / "page_intro.md"
DEFAULT_OUTPUT = REPO / "docs" / "benchmarks.md"
# Page order: the study benchmarks first, the run-level ones after; others alphabetically.
ORDER = ("bench_study000", "bench_study001", "bench_study002", "bench_threads", "bench_dryrun")
STDERR_TAIL = 40  # lines of stderr shown for a failed benchmark


def discover() -> dict[str, Path]:
    """name -> path of every benchmarks/bench_*.py, in page order."""
    found = {p.stem: p for p in BENCH_DIR.glob("bench_*.py")}
    rank = {name: i for i, name in enumerate(ORDER)}
    return {n: found[n] for n in sorted(found, key=lambda n: (rank.get(n, len(ORDER)), n))}


def components(benches: dict[str, Path]) -> set[str]:
    """Benchmarks another benchmark imports (and so runs): not run on their own by default."""
    out = set()
    pattern = re.compile(r"^\s*(?:import|from)\s+(bench_\w+)", re.MULTILINE)
    for name, path in benches.items():
        out |= {m for m in pattern.findall(path.read_text()) if m != name and m in benches}
    return out


def docstring(path: Path) -> str:
    doc = ast.get_docstring(ast.parse(path.read_text()), clean=True)
    return doc or "(no module docstring)"


def run_text(cmd: list[str]) -> str | None:
    try:
        p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return p.stdout.strip() if p.returncode == 0 else None


def git_commit() -> str:
    commit = run_text(["git", "rev-parse", "--short", "HEAD"])
    if commit is None:
        return "unknown (not a git checkout)"
    page = os.path.relpath(DEFAULT_OUTPUT, REPO)
    status = run_text(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                       f":(exclude){page}"])
    return commit + ("-dirty" if status else "")


def torch_version() -> str:
    try:
        return metadata.version("torch")
    except metadata.PackageNotFoundError:
        return "not installed"


def nproc() -> str:
    return run_text(["nproc"]) or str(os.cpu_count())


def load() -> str:
    up = run_text(["uptime"])
    if up:
        m = re.search(r"load averages?:\s*(.*)$", up)
        return m.group(1) if m else up
    try:
        return ", ".join(f"{v:.2f}" for v in os.getloadavg())
    except OSError:
        return "unknown"


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")


def fence(text: str) -> str:
    """A code fence longer than any backtick run inside the text."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    tick = "`" * max(3, longest + 1)
    return f"{tick}text\n{text.rstrip()}\n{tick}"


def run_bench(name: str, path: Path, timeout: float | None) -> dict:
    """Run one benchmark, echoing its stdout live, and return what the page needs."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "lib"),
                                                      env.get("PYTHONPATH")]))
    cmd = [sys.executable, path.relative_to(REPO).as_posix()]
    info = dict(date=now(), commit=git_commit(), load_before=load())
    print(f"== {name}: {' '.join(cmd)}", flush=True)
    out_lines: list[str] = []

    def pump(stream) -> None:
        for line in stream:
            out_lines.append(line)
            print(line, end="", flush=True)

    t0 = time.perf_counter()
    with tempfile.TemporaryFile(mode="w+") as err:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=err,
                                text=True, bufsize=1)
        reader = threading.Thread(target=pump, args=(proc.stdout,), daemon=True)
        reader.start()
        timed_out = False
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            proc.kill()
            proc.wait()
        reader.join()
        err.seek(0)
        stderr = err.read()
    info.update(wall_s=time.perf_counter() - t0, load_after=load(), stdout="".join(out_lines),
                returncode=proc.returncode, timed_out=timed_out, stderr=stderr)
    status = "timed out" if timed_out else f"exit {proc.returncode}"
    print(f"== {name}: {status} after {info['wall_s']:.0f} s", flush=True)
    return info


def section(name: str, path: Path, result: dict | None) -> str:
    """One benchmark's section, between markers so that --only can keep the others."""
    rel = path.relative_to(REPO).as_posix()
    lines = [f"<!-- bench:{name}:start -->", f"## {name}", "",
             f"`python {rel}` ([source](../{rel}))", "", docstring(path), ""]
    if result is None:
        lines += ["*Not run yet: this page was written with `--dry-run`. Run `make bench` or "
                  f"`python benchmarks/make_page.py --only {name}` to fill it in.*", ""]
    else:
        status = ("timed out" if result["timed_out"] else
                  "succeeded" if result["returncode"] == 0 else
                  f"failed (exit status {result['returncode']})")
        lines += [f"Run {result['date']} on commit `{result['commit']}`: {status} after "
                  f"{result['wall_s']:.0f} s; load (1, 5, 15 min) {result['load_before']} "
                  f"before, {result['load_after']} after.", "",
                  fence(result["stdout"] or "(no output)"), ""]
        if result["timed_out"] or result["returncode"] != 0:
            tail = "\n".join(result["stderr"].rstrip().splitlines()[-STDERR_TAIL:])
            lines += [f"End of its stderr (last {STDERR_TAIL} lines at most):", "",
                      fence(tail or "(empty)"), ""]
    lines.append(f"<!-- bench:{name}:end -->")
    return "\n".join(lines)


def old_sections(page: Path) -> dict[str, str]:
    if not page.is_file():
        return {}
    text = page.read_text()
    pat = re.compile(r"<!-- bench:(\w+):start -->.*?<!-- bench:\1:end -->", re.DOTALL)
    return {m.group(1): m.group(0) for m in pat.finditer(text)}


def header(ran: list[str], dry_run: bool, kept: list[str]) -> str:
    if dry_run:
        what = "none (dry run: placeholders for " + ", ".join(ran) + ")"
    else:
        what = ", ".join(ran) or "none"
    rows = [("date", now()), ("commit", f"`{git_commit()}`"),
            ("python", platform.python_version()), ("torch", torch_version()),
            ("nproc", nproc()), ("load (uptime: 1, 5, 15 min)", load()),
            ("benchmarks run", what)]
    if kept:
        rows.append(("sections kept from the previous page", ", ".join(kept)))
    table = "\n".join(f"| {k} | {v} |" for k, v in rows)
    return ("## This page's last generation\n\n"
            "Written by `benchmarks/make_page.py` on the machine described here; each section\n"
            "below also says when and on which commit its benchmark ran.\n\n"
            f"| | |\n| --- | --- |\n{table}")


def write_atomic(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--only", action="append", metavar="NAME", default=[],
                    help="run only this benchmark (repeatable); keep the others' sections")
    ap.add_argument("--dry-run", action="store_true",
                    help="run nothing; write a placeholder line per selected benchmark")
    ap.add_argument("--timeout", type=float, default=None, metavar="SECONDS",
                    help="stop a benchmark after this many seconds (default: no limit)")
    ap.add_argument("--output", type=Path, default=DEFAULT_OUTPUT)
    ap.add_argument("--list", action="store_true", help="list the benchmarks and exit")
    args = ap.parse_args(argv)

    benches = discover()
    parts = components(benches)
    default = [n for n in benches if n not in parts]
    if args.list:
        for n in benches:
            note = f" (run by another benchmark; --only {n} to run alone)" if n in parts else ""
            print(f"{n}{note}")
        return 0

    selected = []
    for raw in args.only:
        name = raw if raw.startswith("bench_") else f"bench_{raw}"
        name = name[:-3] if name.endswith(".py") else name
        if name not in benches:
            ap.error(f"--only {raw}: no benchmarks/{name}.py; known: {', '.join(benches)}")
        if name not in selected:
            selected.append(name)
    selected = selected or default

    previous = old_sections(args.output) if args.only else {}
    results: dict[str, dict | None] = {}
    for name in selected:
        results[name] = None if args.dry_run else run_bench(name, benches[name], args.timeout)

    shown = [n for n in benches if n in default or n in selected or n in previous]
    kept = [n for n in shown if n not in selected and n in previous]
    sections = [previous[n] if n in kept else section(n, benches[n], results.get(n))
                for n in shown]
    intro = INTRO.read_text().strip() if INTRO.is_file() else ""
    page = "\n\n".join([
        "# Benchmarks",
        "<!-- Generated by benchmarks/make_page.py. Do not edit: edit benchmarks/page_intro.md "
        "or the benchmarks' docstrings, then rerun it. -->",
        intro, header(selected, args.dry_run, kept), *sections]) + "\n"
    write_atomic(args.output, page)
    print(f"wrote {os.path.relpath(args.output)}")
    failed = [n for n, r in results.items()
              if r is not None and (r["timed_out"] or r["returncode"] != 0)]
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
