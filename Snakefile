# curvrobust: optimisers, curvature and adversarial robustness, four studies in one DAG.
# Run: snakemake --cores all            (config.yaml, the default reproduction)
#      snakemake --cores all --configfile configs/smoke.yaml   (tiny end-to-end check)
# Nothing here has side effects: this file is parsed again inside every cluster job.

from snakemake.utils import min_version

min_version("9.0")


# A preset given with --configfile replaces config.yaml instead of being merged into it, so a
# preset that drops a recipe or a study really drops it.
if not workflow.overwrite_configfiles:

    configfile: "config.yaml"


# common.smk validates the configuration against schemas/config.schema.yaml (filling its
# defaults, as snakemake.utils.validate does) and its cross-references, naming every problem by
# its dotted key path, before any rule is defined.
include: "rules/common.smk"


# The HTML report (snakemake --report) opens with this page; it points to the claims first.
report: "report/workflow.rst"


wildcard_constraints:
    dataset=alternatives(config["datasets"]),
    variant=alternatives(config["variants"]),
    recipe=alternatives(config["recipes"]),
    attack=alternatives(config["attacks"]),
    seed=r"\d+",
    ckpt=f"final|match(?:acc)?-(?:{alternatives(config['recipes'])})",


include: "rules/data.smk"
include: "rules/train.smk"
include: "rules/attack.smk"
include: "rules/stats.smk"
include: "rules/study000.smk"
include: "rules/study001.smk"
include: "rules/study002.smk"
include: "rules/study003.smk"
include: "rules/robust.smk"
include: "rules/claims.smk"
include: "rules/evidence.smk"


localrules:
    all,
    study000,
    study001,
    study002,
    study003,
    fetch_dataset,


rule all:
    default_target: True
    input:
        all_targets(),
