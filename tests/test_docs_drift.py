"""What the docs say about the workflow is what the workflow is: docs/design.md's rule table
names exactly the workflow's rules (each with its rules file), the documented GPU rules are
exactly the rules that request `gpu=gpu_resource`, the documented attack kinds are exactly the
attack registry, and the statement of where each rule's Python lives is true for every rule.

The workflow side is read from the Snakefile and `rules/*.smk` (their `rule NAME:` blocks),
cross-checked once against `snakemake --list-rules`. The docs are read from the folder in
`CURVROBUST_DOCS_ROOT` (README.md and docs/*.md; default: this repository), so the same tests
can be run against an older copy of the docs.
"""

from __future__ import annotations

import fnmatch
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
DOCS_ROOT = Path(os.environ.get("CURVROBUST_DOCS_ROOT", REPO))
PAGES = [DOCS_ROOT / "README.md", *sorted((DOCS_ROOT / "docs").glob("*.md"))]
RULE_FILES = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
RULE_LINE = re.compile(r"^(\s*)rule (\w+):", re.M)
TICKED = re.compile(r"`([^`]+)`")


def rule_blocks() -> dict[str, tuple[str, str]]:
    """Every rule of the workflow: name -> (its file relative to the repository, its text)."""
    blocks = {}
    for path in RULE_FILES:
        text = path.read_text()
        starts = list(RULE_LINE.finditer(text))
        for i, m in enumerate(starts):
            # a rule's block runs to the next line indented no deeper than its `rule` line
            indent = len(m.group(1))
            body = []
            for line in text[m.end():].split("\n")[1:]:
                if line.strip() and len(line) - len(line.lstrip()) <= indent \
                        and not line.lstrip().startswith("#"):
                    break
                body.append(line)
            assert m.group(2) not in blocks, f"rule {m.group(2)} defined twice"
            blocks[m.group(2)] = (str(path.relative_to(REPO)), "\n".join(body))
    return blocks


RULES = rule_blocks()


def gpu_rules() -> set[str]:
    return {r for r, (_, body) in RULES.items() if re.search(r"\bgpu\s*=\s*gpu_resource\b", body)}


def rule_scripts() -> dict[str, str | None]:
    """Each rule's `script:` path relative to the repository (None: the rule runs nothing)."""
    out = {}
    for rule, (rfile, body) in RULES.items():
        m = re.search(r"^\s*script:\s*\n\s*[\"']([^\"']+)[\"']", body, re.M)
        if m is None:
            assert not re.search(r"^\s*(shell|run|wrapper|notebook):", body, re.M), \
                f"rule {rule} runs code that is not a script"
            out[rule] = None
        else:
            out[rule] = os.path.normpath((REPO / rfile).parent.relative_to(REPO) / m.group(1))
    return out


def paragraphs(text: str) -> list[str]:
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def after_marker(marker: str) -> list[tuple[str, str]]:
    """(page name, the paragraph after `<!-- marker -->`) for every occurrence in the docs."""
    found = []
    for page in PAGES:
        text = page.read_text()
        for m in re.finditer(rf"<!-- {re.escape(marker)} -->\n", text):
            found.append((page.name, paragraphs(text[m.end():])[0]))
    return found


def named_rules(text: str, strict: bool) -> set[str]:
    """The rules a text names in backticks (a `compute_*` pattern names every rule it matches).
    strict: every backticked name must be a rule or a pattern matching one."""
    names = set()
    for tok in TICKED.findall(text):
        hits = fnmatch.filter(RULES, tok) if re.fullmatch(r"[a-z][a-z0-9_]*\*?", tok) else []
        if strict:
            assert hits, f"`{tok}` is not a rule of the workflow"
        names.update(hits)
    return names


def test_rule_lines_are_what_snakemake_lists():
    """The parsed `rule` lines are the workflow's rules (the default preset, plus
    `publish_evidence`, which exists only with the evidence preset)."""
    snakemake = Path(sys.executable).parent / "snakemake"
    listed = set()
    for configs in ([], ["--configfile", "config.yaml", "configs/evidence.yaml"]):
        proc = subprocess.run([str(snakemake), "--list-rules", *configs], cwd=REPO,
                              capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr[-3000:]
        listed |= {line.split()[0] for line in proc.stdout.splitlines() if line.strip()}
    assert listed == set(RULES)


def test_design_rule_table_lists_every_rule_with_its_file():
    text = (DOCS_ROOT / "docs" / "design.md").read_text()
    m = re.search(r"^\| rule \| writes \| rules file \|\n\|[-| ]+\|\n((?:\|.*\n?)+)", text, re.M)
    assert m, "docs/design.md has no `| rule | writes | rules file |` table"
    documented, wrong_file, unknown = set(), [], []
    for row in m.group(1).strip().splitlines():
        cells = [c.strip() for c in row.strip().strip("|").split("|")]
        files = set(TICKED.findall(cells[-1]))
        # the rule names: the backticked words before the cell's first parenthesis
        for name in TICKED.findall(cells[0].split("(")[0]):
            if name not in RULES:
                unknown.append(name)
                continue
            documented.add(name)
            if RULES[name][0] not in files:
                wrong_file.append(f"{name}: documented in {sorted(files)}, defined in "
                                  f"{RULES[name][0]}")
    missing = sorted(set(RULES) - documented)
    assert not (missing or unknown or wrong_file), (
        f"docs/design.md's rule table: missing rules {missing}; not rules of the workflow "
        f"{sorted(unknown)}; wrong rules file {wrong_file}")


def test_documented_gpu_rules_are_the_rules_requesting_a_gpu():
    """Every list of GPU rules in the docs: the paragraph after `<!-- gpu-rules -->` (only rule
    names), and any paragraph that says the rules declare `resources: gpu` and names rules."""
    expected = gpu_rules()
    assert expected, "no rule requests gpu=gpu_resource: the parser is broken"
    lists = [(page, para, named_rules(para, strict=True))
             for page, para in after_marker("gpu-rules")]
    marked = bool(lists)
    for page in PAGES:
        for para in paragraphs(page.read_text()):
            if "resources: gpu" in para and "<!-- gpu-rules -->" not in para:
                names = named_rules(para, strict=False)
                if len(names) >= 2:
                    lists.append((page.name, para, names))
    for page, para, names in lists:
        assert names == expected, (
            f"{page}: the GPU rules listed leave out {sorted(expected - names)} and add "
            f"{sorted(names - expected)}:\n{para}")
    assert marked, "no page has a <!-- gpu-rules --> list of the GPU rules"


def test_documented_attack_kinds_are_the_registry():
    import curvrobust.attacks  # registers every attack
    registry = set(curvrobust.attacks.ATTACKS)
    text = (DOCS_ROOT / "docs" / "design.md").read_text()
    row = next((line for line in text.splitlines() if line.startswith("| **attack** |")), None)
    assert row, "docs/design.md's vocabulary has no `| **attack** |` row"
    m = re.search(r"`kind` \(([^)]*)\)", row)
    assert m, f"the attack row lists no kinds as `kind` (...): {row}"
    kinds = {k for k in TICKED.findall(m.group(1)) if "." not in k}
    assert kinds == registry, (f"docs/design.md's attack kinds leave out {sorted(registry - kinds)} "
                               f"and add {sorted(kinds - registry)}")


def test_every_rule_script_exists():
    for rule, script in rule_scripts().items():
        if script is not None:
            assert (REPO / script).is_file(), f"rule {rule}: {script} does not exist"


def test_where_each_rules_python_lives_is_true():
    """docs/design.md: "Every rule's Python lives in `workflow_scripts/<rule>.py`", with its
    exceptions named (`R` runs `workflow_scripts/x.py`; the target rules ... run no code)."""
    text = (DOCS_ROOT / "docs" / "design.md").read_text()
    assert "Every rule's Python lives in `workflow_scripts/<rule>.py`" in text
    found = after_marker("rule-scripts")
    para = next((p for page, p in found if page == "design.md"), None)
    if para is None:  # no marker: the paragraph making the statement, exceptions or not
        para = next(p for p in paragraphs(text) if "Every rule's Python lives in" in p)
    flat = " ".join(para.split())
    said_runs = dict(re.findall(r"`(\w+)` runs `([^`]+)`", flat))
    m = re.search(r"target rules (.*?) run no code", flat)
    said_nothing = set(TICKED.findall(m.group(1))) if m else set()
    actual = rule_scripts()
    wrong = []
    for rule, script in sorted(actual.items()):
        default = f"workflow_scripts/{rule}.py"
        if script is None:
            if rule not in said_nothing:
                wrong.append(f"{rule} runs no script, which the docs do not say")
        elif script != default and said_runs.get(rule) != script:
            wrong.append(f"{rule} runs {script}, not {default}, which the docs do not say")
    for rule, script in said_runs.items():
        if actual.get(rule, "(no such rule)") != script:
            wrong.append(f"the docs say {rule} runs {script}; it runs {actual.get(rule)}")
    for rule in said_nothing:
        if actual.get(rule, "") is not None:
            wrong.append(f"the docs say {rule} runs no code; it runs {actual.get(rule)}")
    assert not wrong, "docs/design.md on where each rule's Python lives:\n" + "\n".join(wrong)
