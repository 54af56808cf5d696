"""Rebuild tracking: each rule's library-code inputs are its script's import closure.

The closure in curvrobust.plans.code is read from the source with `ast`; here it is checked by an
independent route, the standard library's `modulefinder`, which scans the scripts' and modules'
bytecode (imports inside functions included) the way the interpreter would load them.
"""

from __future__ import annotations

import json
import modulefinder
from pathlib import Path

import pytest

from curvrobust.plans import code

REPO = Path(__file__).resolve().parents[2]
LIB = REPO / "lib"
SCRIPTS = sorted((REPO / "workflow_scripts").glob("*.py"))
GOLDEN = Path(__file__).resolve().parent / "golden"
# rules that compute statistics of a model and never attack it
STATISTICS = ["compute_input_stats", "compute_sharpness", "compute_indicator",
              "compute_param_surface", "compute_input_surface"]


def modulefinder_closure(script: Path, *modules: str) -> set[str]:
    """Library modules loaded by running `script` and importing `modules` (what it imports by
    name at run time), as modulefinder sees them."""
    finder = modulefinder.ModuleFinder(path=[str(LIB)])
    finder.run_script(str(script))
    for m in modules:
        finder.import_hook(m)
    return {m for m in finder.modules if m == "curvrobust" or m.startswith("curvrobust.")}


def by_name(job: dict, key: str) -> tuple[str, ...]:
    """The modules a job's script imports by name: judge_claims, its study's report."""
    if job["rule"] == "judge_claims":
        return (f"curvrobust.reports.{Path(key).parent.name}",)
    return ()


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.stem)
def test_closure_equals_modulefinder(script):
    assert set(code.script_modules(script, LIB)) == modulefinder_closure(script)


@pytest.mark.parametrize("preset", ["default", "smoke", "paper"])
def test_recorded_code_inputs_are_the_scripts_closures(preset):
    """Every job of the recorded DAG declares exactly the files modulefinder says its script
    loads, plus the data files those modules read."""
    records = json.loads((GOLDEN / f"{preset}.json").read_text())
    expected = {}
    for key, job in records.items():
        if not job["script"]:
            assert job["code"] == [], key
            continue
        which = (job["script"], by_name(job, key))
        if which not in expected:
            mods = modulefinder_closure(REPO / "workflow_scripts" / f"{job['script']}.py",
                                        *which[1])
            files = {str(code.module_file(m, LIB).relative_to(REPO)) for m in mods}
            files |= {str(p.relative_to(REPO)) for m in mods
                      for pattern in code.MODULE_DATA.get(m, [])
                      for p in (LIB / "curvrobust").glob(pattern)}
            expected[which] = sorted(files)
        assert job["code"] == expected[which], key


STUDIES = ["study000", "study001", "study002", "study003"]


@pytest.mark.parametrize("preset", ["default", "evidence"])
@pytest.mark.parametrize("study", STUDIES)
def test_editing_a_study_report_reruns_only_that_study(preset, study):
    """The jobs that declare a study's report module (tables or figures) as a code input are
    that study's tables, figures and claim judging, and the page that publishes every study."""
    records = json.loads((GOLDEN / f"{preset}.json").read_text())
    for module in (f"{study}.py", f"{study}_figures.py"):
        path = f"lib/curvrobust/reports/{module}"
        jobs = {key: job for key, job in records.items() if path in job["code"]}
        assert jobs, path
        for key, job in jobs.items():
            own = (job["rule"].endswith(study)
                   or job["rule"] == "judge_claims" and Path(key).parent.name == study
                   or job["rule"] == "publish_evidence")
            assert own, (path, job["rule"], key)
    judged = [k for k, j in records.items() if j["rule"] == "judge_claims"
              and Path(k).parent.name == study]
    assert judged


def test_code_inputs_refuse_an_unknown_module():
    with pytest.raises(ValueError, match="curvrobust.reports.study999"):
        code.code_inputs("judge_claims", LIB, ("curvrobust.reports.study999",))


def test_no_statistics_rule_depends_on_attack_code():
    """Editing an attack reruns attacks and what reads them, never statistics."""
    for rule in STATISTICS:
        mods = code.script_modules(rule, LIB)
        assert not {"curvrobust.attacks", "curvrobust.attacks.second_order", "curvrobust.attacks.base"} & set(mods), (
            rule, mods)


def test_attack_rules_depend_on_attack_code():
    assert "curvrobust.attacks" in code.script_modules("attack_model", LIB)
    files = code.code_inputs("make_table_study000", LIB)
    assert any(f.endswith("reference/study000.yaml") for f in files), files


def test_closure_follows_function_level_and_relative_imports(tmp_path):
    pkg = tmp_path / "curvrobust"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from . import b\n    return b\n")
    (pkg / "b.py").write_text("from .c import x\n")
    (pkg / "c.py").write_text("x = 1\n")
    (pkg / "d.py").write_text("")
    script = tmp_path / "s.py"
    script.write_text("from curvrobust import a\n")
    code._direct.cache_clear()
    try:
        assert code.script_modules(script, tmp_path) == [
            "curvrobust", "curvrobust.a", "curvrobust.b", "curvrobust.c"]
    finally:
        code._direct.cache_clear()


NESTED = """\
import curvrobust.m0
class K:
    import curvrobust.m1
    def f(self):
        if x:
            import curvrobust.m2
        elif y:
            from curvrobust import m3
        else:
            from . import m4
try:
    from .m5 import z
except ImportError:
    import curvrobust.m6
else:
    import curvrobust.m7
finally:
    import curvrobust.m8
async def g():
    async with a:
        import curvrobust.m9
    async for i in b:
        pass
    else:
        import curvrobust.m10
while c:
    with d:
        import curvrobust.m11
match e:
    case 1:
        import curvrobust.m12
    case _:
        from curvrobust import m13
x = [lambda: 1 for _ in range(3)]
"""


def test_imports_are_found_in_every_kind_of_block(tmp_path):
    """The statement walk finds what a full `ast.walk` finds, at every nesting level."""
    import ast

    pkg = tmp_path / "curvrobust"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    for i in range(14):
        (pkg / f"m{i}.py").write_text("")
    tree = ast.parse(NESTED)
    found = code._imported(tree, "curvrobust.host", False, tmp_path)
    assert found == {f"curvrobust.m{i}" for i in range(14)} | {"curvrobust"}
    walked = {n for n in ast.walk(tree) if isinstance(n, (ast.Import, ast.ImportFrom))}
    assert walked == {n for n in code._statements(tree)
                      if isinstance(n, (ast.Import, ast.ImportFrom))}


def test_attack_and_evaluation_rules_do_not_depend_on_training_code():
    """Editing the trainer or Gauss-Newton retrains models, never re-attacks them directly."""
    for script in ["attack_model", "evaluate_checkpoint", "trace_power_iteration", "attack_pga",
                   "compute_input_stats", "compute_sharpness"]:
        mods = set(code.script_modules(script, LIB))
        assert not {"curvrobust.training.loop", "curvrobust.optim"} & mods, (script, mods)
