"""Study plans without Snakemake: targets, per-output inputs and params against the recorded DAG
of each preset (tests/plans/golden/, written by dag_records.py), and config errors by key."""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from curvrobust import plans
from curvrobust.plans import ConfigError, base, paths

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).resolve().parent / "golden"
SCHEMA = REPO / "schemas" / "config.schema.yaml"
PRESETS = {"default": "config.yaml", "smoke": "configs/smoke.yaml", "paper": "configs/paper.yaml"}


@pytest.fixture(scope="module", params=list(PRESETS))
def preset(request):
    """(checked config, golden records, plan objects) of one preset."""
    cfg = yaml.safe_load((REPO / PRESETS[request.param]).read_text())
    plans.check_config(cfg, SCHEMA)
    records = json.loads((GOLDEN / f"{request.param}.json").read_text())
    return cfg, records, plans.plan(cfg)


def test_schema_is_read_as_safe_load_reads_it():
    """load_schema takes libyaml's loader for speed; it must give the same mapping."""
    from curvrobust.plans.config import load_schema

    assert load_schema(SCHEMA) == yaml.safe_load(SCHEMA.read_text())


def _jobs(records, rule):
    return [r for r in records.values() if r["rule"] == rule]


def test_all_targets_equal_the_recorded_default_target(preset):
    cfg, records, _ = preset
    assert plans.all_targets(cfg) == records["<all>"]["input"]


def test_study_targets_partition_the_default_target(preset):
    """Each study's target rule (`snakemake study000`) asks for exactly its own outputs."""
    cfg, records, plan = preset
    targets = [p.targets() for p in plan.values()]
    robust = plans.robust_plan(cfg, plan).targets()
    claims = plans.claims_plan(cfg, plan).targets()
    assert [t for ts in targets for t in ts] + robust + claims == records["<all>"]["input"]
    assert robust == [] or robust == ["results/masking.csv", "results/masking.md",
                                      "results/masking.tex"]
    for p, ts in zip(plan.values(), targets):
        assert (ts != []) == p.enabled
        assert all(t.startswith(f"results/{p.name}/") for t in ts)
        assert len(ts) == len(set(ts))


def _stem(job) -> tuple[str, str]:
    """(dataset folder or '', output name) of a table/figure job from its first output."""
    parts = Path(job["output"][0]).with_suffix("").parts  # results/studyNNN/[ds/]name
    return (parts[2] if len(parts) == 4 else "", parts[-1])


@pytest.mark.parametrize("study", ["study000", "study001", "study002", "study003"])
def test_inputs_and_params_of_every_table_and_figure(preset, study):
    cfg, records, plan = preset
    p = plan[study]
    R = plans.robust_plan(cfg, plan)
    jobs = _jobs(records, f"make_table_{study}") + _jobs(records, f"plot_figure_{study}")
    assert len(jobs) == len(p.outputs())
    for job in jobs:
        ds, name = _stem(job)
        args = (ds, name) if ds else (name,)
        robust = R.summary_map(p.params(*args)) if job["rule"].startswith("make_table") else {}
        assert p.inputs(*args) + list(robust.values()) == job["input"], job["output"][0]
        assert p.params(*args) == job["params"]["records"], job["output"][0]
        if robust:  # every table of studies 000-002 shows the robust evaluation of its models
            assert job["params"]["robust"] == robust


def test_model_paths_match_the_recorded_training_jobs(preset):
    _, records, _ = preset
    for job in _jobs(records, "train_model"):
        d = Path(job["output"][0]).parent
        ds, variant, recipe, seed = d.parts[2:6]
        rec = dict(dataset=ds, variant=variant, recipe=recipe, seed=seed[len("seed"):])
        assert f"{paths.model_dir(rec)}/model.pt" == job["output"][0]
        assert paths.data_file(ds, variant, "train") in job["input"]


def test_checkpoint_epochs():
    assert base.checkpoint_epochs(10, 3) == [3, 6, 9, 10]
    assert base.checkpoint_epochs(10, 4, first=1) == [1, 5, 9, 10]
    assert base.checkpoint_epochs(0, 1) == []
    with pytest.raises(ValueError):
        base.checkpoint_epochs(5, 0)
    assert base.recipe_checkpoint_epochs({"epochs": 3}) == [1, 2, 3]


def test_train_uses_the_plans_checkpoint_epochs():
    """One implementation: the trainer's checkpoint schedule is the plans' one."""
    from curvrobust.training import loop as train

    from curvrobust.training import schedules

    assert train.checkpoint_epochs is schedules.checkpoint_epochs is base.checkpoint_epochs


# ---- configuration errors, each naming its key ----
def _smoke():
    return yaml.safe_load((REPO / "configs" / "smoke.yaml").read_text())


def _problems(edit) -> list[str]:
    cfg = _smoke()
    edit(cfg)
    with pytest.raises(ConfigError) as e:
        plans.check_config(cfg, SCHEMA)
    assert e.value.problems
    return e.value.problems


@pytest.mark.parametrize("edit,expected", [
    (lambda c: c["attacks"]["fgsm_paper"].update(eps=[-0.1]), "attacks.fgsm_paper.eps[0]:"),
    (lambda c: c["variants"]["poison10"].update(fraction=1.0), "variants.poison10.fraction:"),
    (lambda c: c["recipes"]["cnn_sgd"].update(epochs="three"), "recipes.cnn_sgd.epochs:"),
    (lambda c: c["recipes"]["cnn_sgd"].update(learning_rate=0.1),
     "recipes.cnn_sgd.learning_rate: unknown key"),
    (lambda c: c["recipes"]["cnn_sgd"]["optimizer"].update(momentum="high"),
     "recipes.cnn_sgd.optimizer.momentum:"),
    (lambda c: c["recipes"]["cnn_sgd"].update(epochs=float("nan")), "recipes.cnn_sgd.epochs:"),
    (lambda c: c["studies"]["study000"].update(seeds=[]), "studies.study000.seeds:"),
    (lambda c: c["studies"]["study000"].pop("attack"),
     "studies.study000.attack: required key is missing"),
    (lambda c: c["studies"]["study000"]["recipes"].update(gn="cnn_missing"),
     "studies.study000.recipes.gn: recipe 'cnn_missing' is not in `recipes`"),
    (lambda c: c["studies"]["study003"].update(pair=[3, 3]), "studies.study003.pair:"),
])
def test_config_error_names_the_key(edit, expected):
    problems = _problems(edit)
    assert any(p.startswith(expected) for p in problems), problems


def test_a_dangling_attack_is_named_at_every_path_that_refers_to_it():
    cfg = _smoke()
    name = cfg["studies"]["study000"]["attack"]
    problems = _problems(lambda c: c["attacks"].pop(name))
    assert any(p.startswith("studies.study000.attack:") for p in problems), problems


def test_defaults_are_filled_and_a_valid_config_passes():
    cfg = _smoke()
    cfg["recipes"]["cnn_sgd"].pop("batch_size", None)
    checked = plans.check_config(copy.deepcopy(cfg), SCHEMA)
    assert checked["recipes"]["cnn_sgd"]["batch_size"] == 128


def test_plans_import_and_plan_without_torch_or_pandas():
    """The Snakefile imports the plans in Snakemake's own environment: no torch, no pandas."""
    code = (
        "import sys\n"
        "for m in ('torch', 'pandas', 'numpy', 'matplotlib'):\n"
        "    sys.modules[m] = None  # any import of them raises ImportError\n"
        "import yaml\n"
        "from curvrobust import plans\n"
        f"cfg = yaml.safe_load(open({str(REPO / 'config.yaml')!r}))\n"
        f"plans.check_config(cfg, {str(SCHEMA)!r})\n"
        "print(len(plans.all_targets(cfg)))\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          cwd=REPO / "lib")
    assert proc.returncode == 0, proc.stderr
    assert int(proc.stdout) > 0


def test_two_sweep_recipes_with_one_value_are_refused():
    """Sweep models are labelled by their ξ: two recipes with the same ξ would collide."""
    def edit(c):
        twin = copy.deepcopy(c["recipes"]["s1_haat_xi1em3"])
        c["recipes"]["s1_haat_xi1em3_twin"] = twin
        c["studies"]["study001"]["datasets"]["mnist"]["xi_sweep"].append("s1_haat_xi1em3_twin")

    problems = _problems(edit)
    assert any(p.startswith("studies.study001.datasets.mnist.xi_sweep[2]: recipe "
                            "'s1_haat_xi1em3_twin' has the same xi") for p in problems), problems


def test_clean_only_labels_skip_the_poisoned_variant_and_survive_a_narrowed_preset():
    cfg = yaml.safe_load((REPO / "configs/smoke.yaml").read_text())
    s0 = cfg["studies"]["study000"]
    assert s0["clean_only"] == ["kfac"] and "kfac" in s0["recipes"]
    plans.check_config(cfg, SCHEMA)
    plan = plans.plan(cfg)["study000"]
    trained = {(m["label"], m["variant"]) for m in plan.models(plan.variants())}
    assert ("kfac", s0["clean_variant"]) in trained
    assert ("kfac", s0["poisoned_variant"]) not in trained
    assert ("gn", s0["poisoned_variant"]) in trained
    # narrowing the recipes (as the SLURM test does) leaves clean_only harmless
    narrow = copy.deepcopy(cfg)
    n0 = narrow["studies"]["study000"]
    n0["recipes"] = {"gn": "cnn_gn"}
    for key in ("seeds_per_recipe", "match", "headline"):
        n0.pop(key)
    plans.check_config(narrow, SCHEMA)
    plan = plans.plan(narrow)["study000"]
    assert {m["label"] for m in plan.models(plan.variants())} == {"gn"}
