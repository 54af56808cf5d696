"""The library's import structure, read from its source with ``ast`` (nothing is imported):
no import cycles (function-level imports included), no module reaching into another's private
names, ``import curvrobust`` stays light (no torch), and every third-party package the library
imports is declared in pyproject.toml."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[1]
PKG = "curvrobust"
PKG_DIR = ROOT / "lib" / PKG

# import name -> distribution name, where they differ
DISTRIBUTION = {"yaml": "pyyaml", "PIL": "pillow", "mpl_toolkits": "matplotlib",
                "sklearn": "scikit-learn", "curvlinops": "curvlinops-for-pytorch"}


@dataclass(frozen=True)
class Import:
    """One ``import`` / ``from ... import`` statement, resolved to absolute module names."""

    lineno: int
    module: str                          # the module after ``import`` / ``from`` (absolute)
    names: tuple[tuple[str, str], ...]   # ``from``: (imported name, local name) pairs
    binds: tuple[str, str]               # ``import``: (local name, module it is bound to)
    level: int                           # 0: absolute; > 0: relative


def package_modules(pkg_dir: Path = PKG_DIR, pkg: str = PKG) -> dict[str, Path]:
    """Dotted module name -> source file, for every ``.py`` under ``pkg_dir`` (``__init__.py``
    is the package itself)."""
    out = {}
    for path in sorted(pkg_dir.rglob("*.py")):
        parts = list(path.relative_to(pkg_dir).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join([pkg, *parts])] = path
    return out


def imports_of(module: str, path: Path) -> list[Import]:
    """Every import statement of the module, at any depth (module level, functions, classes,
    ``if`` / ``try`` blocks), with relative imports made absolute."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for a in node.names:
                # ``import p.q`` binds p to p; ``import p.q as r`` binds r to p.q
                binds = (a.asname, a.name) if a.asname else (a.name.split(".")[0],) * 2
                out.append(Import(node.lineno, a.name, (), binds, 0))
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                if node.level > len(base):
                    raise ValueError(f"{path}:{node.lineno}: relative import beyond the package")
                base = base[:len(base) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            out.append(Import(node.lineno, target,
                              tuple((a.name, a.asname or a.name) for a in node.names), ("", ""),
                              node.level))
    return out


def _owning_module(name: str, modules: dict[str, Path]) -> str | None:
    """The longest known module that ``name`` is or lies in (None: outside the package)."""
    parts = name.split(".")
    for i in range(len(parts), 0, -1):
        candidate = ".".join(parts[:i])
        if candidate in modules:
            return candidate
    return None


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """module -> {imported package module: line of an import of it}. ``from m import x``
    counts as importing the submodule ``m.x`` when there is one, else ``m``."""
    graph: dict[str, dict[str, int]] = {m: {} for m in modules}
    for mod, path in modules.items():
        for imp in imports_of(mod, path):
            targets = []
            if imp.names:
                for name, _ in imp.names:
                    sub = f"{imp.module}.{name}"
                    targets.append(sub if sub in modules else imp.module)
            else:
                targets.append(imp.module)
            for t in targets:
                owner = _owning_module(t, modules)
                if owner is not None and owner != mod:
                    graph[mod].setdefault(owner, imp.lineno)
    return graph


def find_cycles(graph: dict[str, dict[str, int]]) -> list[list[str]]:
    """One cycle (a path ending where it starts) per back edge found by depth-first search."""
    cycles: list[list[str]] = []
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(graph.get(node, {})):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    return cycles


def _private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


def private_uses(modules: dict[str, Path], pkg: str = PKG, root: Path = ROOT) -> list[str]:
    """``from other import _name`` and ``other._name`` attribute reads, where ``other`` is
    another module of the package (dunder names such as ``__version__`` are public); one
    message per use."""
    problems = []
    for mod, path in modules.items():
        rel = path.relative_to(root)
        aliases: dict[str, str] = {}  # local name -> the package module it is bound to
        for imp in imports_of(mod, path):
            if imp.names:
                if _owning_module(imp.module, modules) is None:
                    continue
                for name, local in imp.names:
                    if _private(name) and imp.module != mod:
                        problems.append(f"{rel}:{imp.lineno}: from {imp.module} import {name}")
                    if f"{imp.module}.{name}" in modules:
                        aliases[local] = f"{imp.module}.{name}"
            else:
                local, target = imp.binds
                if target.split(".")[0] == pkg:
                    aliases[local] = target
                if any(_private(part) for part in imp.module.split(".")):
                    problems.append(f"{rel}:{imp.lineno}: import {imp.module}")
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Attribute) and _private(node.attr)):
                continue
            chain, value = [], node.value
            while isinstance(value, ast.Attribute):
                chain.append(value.attr)
                value = value.value
            if not (isinstance(value, ast.Name) and value.id in aliases):
                continue
            owner = ".".join([aliases[value.id], *reversed(chain)])
            if owner in modules and owner != mod:
                problems.append(f"{rel}:{node.lineno}: {owner}.{node.attr}")
    return problems


def _normalise(dist: str) -> str:
    return re.sub(r"[-_.]+", "-", dist).lower()


def _requirement_name(req: str) -> str:
    m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", req)
    assert m, f"unparsable requirement {req!r}"
    return _normalise(m.group(1))


def third_party_imports(modules: dict[str, Path]) -> dict[str, list[str]]:
    """Top-level import name -> where (file:line), for every absolute import outside the
    standard library and the package itself."""
    out: dict[str, list[str]] = {}
    for mod, path in modules.items():
        for imp in imports_of(mod, path):
            if imp.level:
                continue
            top = imp.module.split(".")[0]
            if top == PKG or top in sys.stdlib_module_names:
                continue
            out.setdefault(top, []).append(f"{path.relative_to(ROOT)}:{imp.lineno}")
    return out


def _pyproject() -> dict:
    with open(ROOT / "pyproject.toml", "rb") as f:
        return tomllib.load(f)


# --------------------------------------------------------------------------- the helpers

def _write_package(root: Path, files: dict[str, str]) -> dict[str, Path]:
    for rel, text in files.items():
        p = root / "pkgx" / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(text)
    return package_modules(root / "pkgx", "pkgx")


def test_helpers_see_function_level_and_relative_imports(tmp_path):
    mods = _write_package(tmp_path, {
        "__init__.py": "",
        "a.py": "from . import b\n",
        "b.py": "def f():\n    from .sub.c import g\n",
        "sub/__init__.py": "",
        "sub/c.py": "import pkgx.a as aa\nfrom .. import d\n",
        "d.py": "from .a import x\n",
    })
    graph = import_graph(mods)
    assert graph["pkgx.a"] == {"pkgx.b": 1}
    assert graph["pkgx.b"] == {"pkgx.sub.c": 2}
    assert graph["pkgx.sub.c"] == {"pkgx.a": 1, "pkgx.d": 2}
    cycles = find_cycles(graph)
    assert ["pkgx.a", "pkgx.b", "pkgx.sub.c", "pkgx.a"] in cycles
    assert any(c[0] == "pkgx.a" and "pkgx.d" in c for c in cycles)


def test_helper_finds_private_names(tmp_path):
    mods = _write_package(tmp_path, {
        "__init__.py": "__version__ = '1'\n",
        "a.py": "_x = 1\nfrom . import __version__\n",
        "b.py": "from .a import _x\nfrom . import a\nimport pkgx.a\nimport pkgx.a as m\n"
                "def f():\n    return a._x + pkgx.a._x + m._x + a.y + a.__doc__\n",
    })
    found = private_uses(mods, pkg="pkgx", root=tmp_path)
    assert len(found) == 4, found
    assert all("b.py" in p for p in found)


# --------------------------------------------------------------------------- the library

def test_no_import_cycles():
    graph = import_graph(package_modules())
    cycles = find_cycles(graph)
    msgs = [" -> ".join(f"{a} (line {graph[a][b]})" for a, b in zip(c, c[1:])) + f" -> {c[-1]}"
            for c in cycles]
    assert not cycles, "import cycles in lib/curvrobust:\n" + "\n".join(msgs)


def test_import_graph_layering():
    """The layering the refactors set up: shared helpers import no analysis module, the attack
    families do not import each other's runner, curvature statistics import no attack."""
    graph = import_graph(package_modules())
    assert set(graph[f"{PKG}.models.inference"]) == set()
    assert set(graph[f"{PKG}.attacks.base"]) == {f"{PKG}._checks"}
    assert set(graph[f"{PKG}._checks"]) == set()
    for mod in ("second_order", "pga_dynamics", "autoattack", "random_search"):
        assert not {f"{PKG}.attacks", f"{PKG}.attacks.gradient",
                    f"{PKG}.attacks.outcomes"} & set(graph[f"{PKG}.attacks.{mod}"]), mod
    for mod in ("statistics", "surfaces"):
        assert not {m for m in graph[f"{PKG}.curvature.{mod}"]
                    if m.startswith((f"{PKG}.attacks", f"{PKG}.training"))}, mod
    assert f"{PKG}.attacks.second_order" in graph[f"{PKG}.attacks"]


# The package's top level: the subpackages by concern and these few shared modules.
SHARED_MODULES = {"__init__.py", "_checks.py", "seeds.py", "utils.py"}
SUBPACKAGES = {"attacks", "claims", "curvature", "data", "evaluation", "models", "optim",
               "plans", "reference", "reports", "training", "workflow"}


def test_package_top_level():
    top = {p.name for p in PKG_DIR.iterdir() if p.name != "__pycache__"}
    assert {p for p in top if p.endswith(".py")} == SHARED_MODULES
    dirs = {p.name for p in PKG_DIR.iterdir() if p.is_dir() and p.name != "__pycache__"}
    assert dirs == SUBPACKAGES
    assert top == SHARED_MODULES | SUBPACKAGES
    for d in dirs:
        assert (PKG_DIR / d / "__init__.py").is_file(), d


def _loads(modules: list[str]) -> set[str]:
    """Which of torch, pandas and numpy importing `modules` loads (a fresh interpreter)."""
    code = ("import importlib, sys\n"
            f"for m in {modules!r}: importlib.import_module(m)\n"
            "print(' '.join(p for p in ('torch', 'pandas', 'numpy') if p in sys.modules))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    return set(r.stdout.split())


def test_plans_import_neither_torch_nor_pandas():
    plans = [m for m in package_modules() if m.startswith(f"{PKG}.plans")]
    assert not _loads(plans)


@pytest.mark.parametrize("module", [f"{PKG}.reports.study00{i}" for i in range(4)]
                         + [f"{PKG}.reports.robustness", f"{PKG}.evaluation.outcomes",
                            f"{PKG}.claims", f"{PKG}.claims.power"])
def test_reading_results_needs_no_torch(module):
    """Tables, claims and the worst case read result files: none of them loads torch."""
    assert "torch" not in _loads([module])


def test_no_private_names_across_modules():
    problems = private_uses(package_modules())
    assert not problems, "private names used across modules:\n" + "\n".join(problems)


def test_import_curvrobust_does_not_import_torch():
    code = "import sys, curvrobust; assert 'torch' not in sys.modules, 'torch was imported'"
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr


# Jobs that only read result files: starting them without torch saves about a second each
# (issue 28). plot_figure_study002 reads the saved Jacobians (.pt), so it needs torch.
TORCH_FREE_SCRIPTS = sorted(
    p.stem for p in (ROOT / "workflow_scripts").glob("*.py")
    if p.stem.startswith(("make_table_", "make_claims_", "make_masking_", "judge_", "plot_"))
    and p.stem != "plot_figure_study002")


def test_reporting_jobs_start_without_torch():
    assert len(TORCH_FREE_SCRIPTS) >= 10
    code = (
        "import ast, sys\n"
        "for path in sys.argv[1:]:\n"
        "    tree = ast.parse(open(path).read())\n"
        "    top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]\n"
        "    exec(compile(ast.Module(top, []), path, 'exec'), {})\n"
        "from curvrobust.utils import set_threads\n"
        "set_threads(1)\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n")
    paths = [str(ROOT / "workflow_scripts" / f"{s}.py") for s in TORCH_FREE_SCRIPTS]
    r = subprocess.run([sys.executable, "-c", code, *paths], capture_output=True, text=True,
                       cwd=ROOT, timeout=300)
    assert r.returncode == 0, r.stderr


def test_threads_set_before_torch_loads_still_apply():
    """A job pins its threads at start-up; torch loaded afterwards must still use them."""
    code = ("import os, sys\nos.environ.pop('OMP_NUM_THREADS', None)\n"
            "from curvrobust.utils import set_threads\nset_threads(1)\n"
            "assert 'torch' not in sys.modules\nimport torch\n"
            "print(torch.get_num_threads())\nset_threads(2)\nprint(torch.get_num_threads())")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                       cwd=ROOT, timeout=120)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == ["1", "2"]


def test_third_party_imports_are_declared():
    project = _pyproject()["project"]
    declared = {_requirement_name(r) for r in project.get("dependencies", [])}
    for reqs in project.get("optional-dependencies", {}).values():
        declared |= {_requirement_name(r) for r in reqs}
    used = third_party_imports(package_modules())
    assert "torch" in used  # the scan sees something
    missing = {name: where for name, where in used.items()
               if _normalise(DISTRIBUTION.get(name, name)) not in declared}
    assert not missing, f"imported but not declared in pyproject.toml: {missing}"


def test_torchattacks_is_an_extra_not_a_dependency():
    project = _pyproject()["project"]
    assert "torchattacks" not in {_requirement_name(r) for r in project["dependencies"]}
    assert "torchattacks" in {_requirement_name(r)
                              for r in project["optional-dependencies"]["reference"]}


def test_paths_to_the_checkout_survive_the_package_layout():
    """Modules that find the repository from their own file (the job's git provenance, the
    forecast's reference costs, the schema) point at it."""
    from curvrobust.plans import code, config
    from curvrobust.workflow import forecast, jobs

    assert (jobs.REPO / "Snakefile").is_file()
    assert forecast.REFERENCE.is_file()
    assert config.SCHEMA.is_file()
    assert (code.LIB / PKG / "__init__.py").is_file() and code.SCRIPTS.is_dir()


def _dotted_references() -> list[str]:
    """Every `curvrobust.a.b…` name in the library, the scripts, the README and docs/ (the
    module moves of issue 30 must leave none pointing nowhere)."""
    files = [*PKG_DIR.rglob("*.py"), *(ROOT / "workflow_scripts").glob("*.py"),
             ROOT / "README.md", *(ROOT / "docs").glob("*.md")]
    names = set()
    for f in files:
        names |= set(re.findall(r"\bcurvrobust(?:\.[A-Za-z_][A-Za-z_0-9]*)+",
                                f.read_text(encoding="utf-8")))
    # placeholders in prose (curvrobust.reports.studyNNN, curvrobust.x.y), a file name, and a
    # benchmark's row label (docs/benchmarks.md)
    prose = {"curvrobust.yaml", "curvrobust.fgsm"}
    return sorted(n for n in names
                  if n not in prose and not re.search(r"NNN|\.study$|\.x(\.y)?$", n))


def test_every_dotted_reference_resolves():
    import importlib

    broken = []
    for name in _dotted_references():
        parts = name.split(".")
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            for p in parts[i:]:
                obj = getattr(obj, p, None)
                if obj is None:
                    broken.append(name)
                    break
            break
    assert not broken, broken
