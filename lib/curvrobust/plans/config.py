"""Checking a configuration before any job runs: the schema, finite numbers, cross-references.

Every problem is reported with the dotted path of the key it concerns (`recipes.cnn_adam.epochs`,
`studies.study000.seeds[0]`), all at once, in a `ConfigError`. `validate_config` also fills the
schema's defaults in place, as Snakemake's `validate` does.
"""

from __future__ import annotations

import copy
import math
from pathlib import Path
from typing import Any, Iterable

from .studies import plan

SCHEMA = Path(__file__).resolve().parents[3] / "schemas" / "config.schema.yaml"


class ConfigError(ValueError):
    """An invalid configuration; `problems` holds one 'dotted.path: what is wrong' per line."""

    def __init__(self, problems: Iterable[str]):
        self.problems = list(problems)
        super().__init__("Invalid configuration:\n  " + "\n  ".join(self.problems))


def dotted(path: Iterable[Any]) -> str:
    """('studies', 'study000', 'seeds', 0) -> 'studies.study000.seeds[0]'."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<top level>"


def non_finite(cfg: Any, path: tuple = ()) -> list[str]:
    """Dotted paths of every NaN or ±inf number in `cfg` (YAML's .nan / .inf)."""
    if isinstance(cfg, float) and not math.isfinite(cfg):
        return [f"{dotted(path)}: {cfg!r} is not a finite number"]
    if isinstance(cfg, dict):
        return [p for k, v in cfg.items() for p in non_finite(v, path + (k,))]
    if isinstance(cfg, list):
        return [p for i, v in enumerate(cfg) for p in non_finite(v, path + (i,))]
    return []


def _messages(error) -> list[str]:
    """'dotted.path: message' lines of one jsonschema error, at the deepest key it concerns."""
    path = tuple(error.absolute_path)
    if error.validator == "additionalProperties":
        allowed = set(error.schema.get("properties", {}))
        extra = [k for k in error.instance if k not in allowed]
        return [f"{dotted(path + (k,))}: unknown key" for k in extra]
    if error.validator == "required":
        missing = error.message.split("'")[1] if "'" in error.message else error.message
        return [f"{dotted(path + (missing,))}: required key is missing"]
    if "propertyNames" in list(error.relative_schema_path)[-2:]:
        # a bad key of a mapping (the error's instance is the key itself): name it like an
        # unknown key, `datasets.svhn`, not the mapping
        return [f"{dotted(path + (error.instance,))}: {error.message}"]
    if error.validator in ("oneOf", "anyOf") and error.context:
        # Report the sub-errors of the branches whose `const` discriminator matched (the
        # optimizer's `name`), not the vague "not valid under any of the given schemas", nor
        # the other branches' complaints (an SGD optimizer's momentum is no unknown key).
        branches: dict = {}
        for e in error.context:
            branches.setdefault(e.relative_schema_path[0], []).append(e)
        subs = [e for errs in branches.values() if all(e.validator != "const" for e in errs)
                for e in errs]
        if subs:
            return sorted({m for e in subs for m in _messages(e)})
    return [f"{dotted(path)}: {error.message}"]


def _validator(schema: dict):
    import jsonschema  # lazily: only validation needs it (Snakemake depends on it)

    base = jsonschema.validators.validator_for(schema)
    # JSON Schema counts 4.0 as an integer; the plans do not (range(), seed4.0 paths)
    types = base.TYPE_CHECKER.redefine(
        "integer", lambda checker, x: isinstance(x, int) and not isinstance(x, bool)
    )

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if isinstance(sub, dict) and "default" in sub and key not in instance:
                    instance[key] = copy.deepcopy(sub["default"])  # filled in further
        yield from base.VALIDATORS["properties"](validator, properties, instance, schema)

    return jsonschema.validators.extend(base, {"properties": set_defaults}, type_checker=types)(schema)


def load_schema(path: str | Path = SCHEMA) -> dict:
    """The config schema. Parsed with libyaml's safe loader where PyYAML has it: the same
    mapping as `yaml.safe_load` (tested), and 0.03 s instead of 0.24 s of every Snakemake call."""
    import yaml

    return yaml.load(Path(path).read_text(), Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))


RETIRED_KEYS = {
    ("robustness", "thresholds"): (
        "retired: the checks now count images, not shares of the subset, and are split into "
        "masking and convergence checks; use robustness.limits (fgsm_only, square_only, "
        "transfer_only, large_eps, zero_grad, margin_only, steps_restarts; whole numbers of "
        "images, docs/robustness.md)"),
}
"""Config keys a former version read: (path) -> what replaced them, so an old configuration
gets an error that says what to write instead of "additional property"."""


def retired_keys(cfg: dict) -> list[str]:
    """One problem per key of :data:`RETIRED_KEYS` present in `cfg`."""
    problems = []
    for path, message in RETIRED_KEYS.items():
        node: Any = cfg
        for key in path[:-1]:
            node = node.get(key) if isinstance(node, dict) else None
        if isinstance(node, dict) and path[-1] in node:
            problems.append(f"{dotted(path)}: {message}")
    return problems


def validate_config(cfg: dict, schema: str | Path | dict = SCHEMA) -> dict:
    """Schema check of `cfg` (defaults filled in place); raises ConfigError naming each key."""
    if not isinstance(cfg, dict):
        raise ConfigError([f"<top level>: expected a mapping, got {type(cfg).__name__}"])
    if retired := retired_keys(cfg):
        raise ConfigError(retired)
    problems = non_finite(cfg)
    if problems:  # a NaN passes some schema checks and fails others confusingly
        raise ConfigError(problems)
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    errors = sorted(_validator(schema).iter_errors(cfg), key=lambda e: list(map(str, e.absolute_path)))
    problems = sorted({m for e in errors for m in _messages(e)})
    if problems:
        raise ConfigError(problems)
    return cfg


def fill_defaults(cfg: dict, schema: str | Path | dict = SCHEMA) -> dict:
    """The schema's defaults filled into `cfg` in place, without checking it: for a partial
    configuration (a unit test's one study block), where `validate_config` would reject the
    missing sections. Returns `cfg`."""
    if not isinstance(schema, dict):
        schema = load_schema(schema)
    for _ in _validator(schema).iter_errors(cfg):
        pass  # the errors of a partial configuration are expected; the defaults are the point
    return cfg


def check_config(cfg: dict, schema: str | Path | dict = SCHEMA) -> dict:
    """validate_config, then the cross-references the schema cannot express (each study's
    names of datasets, variants, recipes, attacks); raises ConfigError listing every problem."""
    validate_config(cfg, schema)
    problems = []
    for name, v in cfg["variants"].items():
        if v["kind"] == "label_poison" and "fraction" not in v:
            problems.append(f"variants.{name}.fraction: kind label_poison needs `fraction`")
        if v["kind"] == "input_scale" and "scale" not in v:
            problems.append(f"variants.{name}.scale: kind input_scale needs `scale`")
    studies = plan(cfg)
    for study in studies.values():
        if study.enabled:
            problems += study.check()
    for i, item in enumerate(cfg["publish"]["not_run"] if "publish" in cfg else []):
        where = f"publish.not_run[{i}]"
        for key, table in (("recipe", "recipes"), ("dataset", "datasets"), ("variant", "variants")):
            if item[key] not in cfg[table]:
                problems.append(f"{where}.{key}: {item[key]!r} is not in `{table}`")
    if problems:
        raise ConfigError(problems)
    return cfg

