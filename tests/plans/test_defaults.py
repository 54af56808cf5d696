"""One home for defaults: the config schema (schemas/config.schema.yaml).

`plans.config.validate_config` fills the schema's defaults in place, so the plans read the
validated config directly. These tests keep it that way:

- every `*_DEFAULTS` constant of the library is registered here and equals what it stands for:
  the schema's defaults at its config block, or the keyword defaults of the function it mirrors
  (an attack's defaults for keys an attack or adversary block may leave out: those blocks reach
  the rules' params, so the schema gives them no defaults);
- no plan module has a `.get(key, <literal>)` whose literal repeats a schema default of that key.
"""

from __future__ import annotations

import ast
import importlib
from pathlib import Path

import pytest

from curvrobust.plans import code
from curvrobust.plans.config import fill_defaults, load_schema

LIB = code.LIB
PLANS = LIB / "curvrobust" / "plans"

# every `*_DEFAULTS` constant of the library -> what it repeats: ("schema", dotted config path of
# the block whose properties' defaults it lists) or ("function", "module:function" whose keyword
# defaults it lists)
DEFAULT_CONSTANTS = {
    ("curvrobust.evaluation.masking", "SUITE_DEFAULTS"): ("schema", "robustness.suite"),
    ("curvrobust.evaluation.masking", "LIMIT_DEFAULTS"): ("schema", "robustness.limits"),
    ("curvrobust.plans.study001.haat", "HAAT_DEFAULTS"):
        ("function", "curvrobust.attacks.second_order:haat"),
    ("curvrobust.plans.study001.haat", "PGD_DEFAULTS"):
        ("function", "curvrobust.attacks.gradient:pgd"),
}

# `.get(key, literal)` calls in the plans whose literal equals a schema default of a property of
# the same name elsewhere: (module file under plans/, key) -> why it is not that property
NOT_THE_SCHEMA_KEY = {
    ("study000/text.py", "seed"): "variants.*.seed, the label-poison draw's seed: variants reach "
                                  "the rules' params, so curvrobust.data defaults it, not the "
                                  "schema",
}

# `.get(key, <literal>)` calls in the plans whose default is not the schema's: blocks that reach
# the rules' params (recipes' optimizers and checkpoints, penalties) get no schema defaults, so
# the default lives in the library code that reads the block and the plans' prose repeats it.
# (module file under plans/, key) -> where the library keeps it: "module:Class.method" or
# "module:function" (a keyword default) or "module:.get" (a `.get(key, literal)` there)
LIBRARY_DEFAULTS = {
    ("base.py", "every_epochs"): ["curvrobust.training.loop:.get"],
    ("study000/text.py", "damping"): ["curvrobust.optim.kfac:KFAC.__init__"],
    ("study000/text.py", "kfac_approx"): ["curvrobust.optim.kfac:KFAC.__init__"],
    ("study000/text.py", "update_every"): ["curvrobust.optim.kfac:KFAC.__init__"],
    ("study000/text.py", "ggn_scale"): ["curvrobust.optim.kfac:KFAC.__init__",
                                        "curvrobust.optim.gauss_newton:GaussNewton.__init__"],
    ("study000/text.py", "solver"): ["curvrobust.optim.gauss_newton:GaussNewton.__init__"],
    ("study000/text.py", "cg_max_iter"): ["curvrobust.optim.gauss_newton:GaussNewton.__init__"],
    ("study002/text.py", "norm"): ["curvrobust.training.regimes:.get"],
}
# ... and those that are no default at all: (module file, key) -> what the literal means
NOT_A_DEFAULT = {
    ("study000/claims.py", "n_examples"): "'all': an attack block without n_examples attacks "
                                          "every test image (workflow_scripts/attack_model.py)",
    ("study000/text.py", "n_examples"): "as in study000/claims.py",
}


def _resolve(schema: dict, node):
    """`node`, its local `$ref`s followed from the schema's root."""
    while isinstance(node, dict) and "$ref" in node:
        target = schema
        for key in node["$ref"].removeprefix("#/").split("/"):
            target = target[key]
        node = target
    return node


def schema_block(path: str) -> dict:
    """The schema node at a dotted config path ('*' for any key of a mapping)."""
    schema = load_schema()
    node = schema
    for key in path.split("."):
        node = _resolve(schema, node)
        node = node["additionalProperties"] if key == "*" else node["properties"][key]
    return _resolve(schema, node)


def schema_defaults() -> dict[str, list]:
    """property name -> every default the schema gives a property of that name."""
    schema = load_schema()
    out: dict[str, list] = {}

    def walk(node):
        node = _resolve(schema, node)
        if isinstance(node, dict):
            for key, sub in (node.get("properties") or {}).items():
                if isinstance(sub, dict) and "default" in sub:
                    out.setdefault(key, []).append(sub["default"])
            for value in node.values():
                if isinstance(value, (dict, list)):
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(schema)
    return out


def library_default_constants() -> set[tuple[str, str]]:
    """(module, name) of every module-level `*_DEFAULTS` assignment under lib/curvrobust."""
    found = set()
    for path in sorted((LIB / "curvrobust").rglob("*.py")):
        module = ".".join(path.relative_to(LIB).with_suffix("").parts).removesuffix(".__init__")
        for node in ast.parse(path.read_text(encoding="utf-8")).body:
            targets = (node.targets if isinstance(node, ast.Assign) else
                       [node.target] if isinstance(node, ast.AnnAssign) else [])
            found |= {(module, t.id) for t in targets
                      if isinstance(t, ast.Name) and t.id.endswith("_DEFAULTS")}
    return found


def keyword_defaults(target: str) -> dict:
    """The parameter defaults of `module:function` or `module:Class.method`, read from its
    source (no import: torch)."""
    module, name = target.split(":")
    tree = ast.parse(code.module_file(module).read_text(encoding="utf-8"))
    owner, _, method = name.rpartition(".")
    if owner:
        tree = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == owner)
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == method)
    args = fn.args.posonlyargs + fn.args.args
    pairs = list(zip(args[len(args) - len(fn.args.defaults):], fn.args.defaults))
    pairs += [(a, d) for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None]
    return {a.arg: ast.literal_eval(d) for a, d in pairs}


def test_every_default_constant_is_registered():
    assert library_default_constants() == set(DEFAULT_CONSTANTS), (
        "a `*_DEFAULTS` constant was added or removed: register it in DEFAULT_CONSTANTS with "
        "the schema block or function whose defaults it repeats")


@pytest.mark.parametrize("module, name", sorted(DEFAULT_CONSTANTS))
def test_default_constant_equals_what_it_repeats(module, name):
    kind, where = DEFAULT_CONSTANTS[(module, name)]
    constant = getattr(importlib.import_module(module), name)
    if kind == "schema":
        props = schema_block(where)["properties"]
        expected = {k: p["default"] for k, p in props.items() if "default" in p}
        expected.pop("enabled", None)   # the suite's switch, not an attack setting
        assert constant == expected, f"{module}.{name} differs from the schema's {where}"
    else:
        defaults = keyword_defaults(where)
        assert constant == {k: defaults[k] for k in constant}, (
            f"{module}.{name} differs from the keyword defaults of {where}")


def test_validated_config_fills_the_schema_defaults():
    """A partial study block gets the schema's defaults (what the plans now read directly)."""
    cfg = fill_defaults({"studies": {"study003": {"pga": {}, "adversarial_training": {}}}})
    block = cfg["studies"]["study003"]
    assert block["pga"]["climb_fraction"] == 0.9
    assert block["adversarial_training"]["lr_scalings"] == ["inverse_square", "none"]
    assert cfg["robustness"]["n_examples"] == 500


def _literal_gets(path: Path):
    """(line, key, value) of every `.get("key", <literal>)` in a module."""
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get" and len(node.args) == 2
                and isinstance(node.args[0], ast.Constant) and isinstance(node.args[0].value, str)):
            try:
                value = ast.literal_eval(node.args[1])
            except ValueError:
                continue   # not a literal: another key of the config, a computed value
            yield node.lineno, node.args[0].value, value


def test_no_plan_repeats_a_schema_default():
    defaults = schema_defaults()
    offenders = []
    for path in sorted(PLANS.rglob("*.py")):
        rel = path.relative_to(PLANS).as_posix()
        for line, key, value in _literal_gets(path):
            if (rel, key) in NOT_THE_SCHEMA_KEY:
                continue
            if any(value == d and type(value) is type(d) for d in defaults.get(key, [])):
                offenders.append(f"plans/{rel}:{line}: .get({key!r}, {value!r})")
    assert not offenders, (
        "read the validated config instead (the schema fills these defaults): "
        + "; ".join(offenders))


def library_default(where: str, key: str):
    """The default the library keeps for `key` at `where` (see LIBRARY_DEFAULTS), from its
    source (no import: torch)."""
    module, name = where.split(":")
    path = code.module_file(module)
    if name == ".get":
        values = {repr(v) for _, k, v in _literal_gets(path) if k == key}
        assert len(values) == 1, f"{module}: .get({key!r}, …) with defaults {sorted(values)}"
        return ast.literal_eval(values.pop())
    return keyword_defaults(where)[key]


def test_every_literal_default_in_the_plans_is_the_librarys():
    """A `.get(key, <scalar>)` in a plan module repeats the library default of a block the
    schema leaves without defaults (and equals it), or is named as no default; a new one must
    be registered, so a default cannot drift from its one home."""
    unregistered, differ = [], []
    for path in sorted(PLANS.rglob("*.py")):
        rel = path.relative_to(PLANS).as_posix()
        for line, key, value in _literal_gets(path):
            if value is None or isinstance(value, (dict, list, tuple)):
                continue   # an absent optional block or list, not a default value
            if (rel, key) in NOT_A_DEFAULT or (rel, key) in NOT_THE_SCHEMA_KEY:
                continue
            if (rel, key) not in LIBRARY_DEFAULTS:
                unregistered.append(f"plans/{rel}:{line}: .get({key!r}, {value!r})")
                continue
            for where in LIBRARY_DEFAULTS[(rel, key)]:
                if library_default(where, key) != value:
                    differ.append(f"plans/{rel}:{line}: .get({key!r}, {value!r}) but {where} "
                                  f"defaults to {library_default(where, key)!r}")
    assert not unregistered, ("read the validated config (a schema default) or register the "
                              "library's default in LIBRARY_DEFAULTS: " + "; ".join(unregistered))
    assert not differ, "; ".join(differ)
