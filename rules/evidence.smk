# Publishing a run (configs/evidence.yaml's `publish`): docs/evidence.md and docs/evidence/, the
# claims with the per-seed and per-image evidence they were judged on, SESOI, MDE and power, what
# the preset leaves out with its forecast cost, and the provenance (commit, configuration
# fingerprint, machine, wall time, job-minutes). Plan: curvrobust.plans.publish; page:
# curvrobust.claims.publish.


if P.enabled:

    rule publish_evidence:
        input:
            # evaluated when the job is planned, not when every cluster job parses this file
            unpack(lambda w: P.inputs()),
            code=code("publish_evidence"),
        output:
            page=P.files()["page"],
            claims=P.files()["claims"],
            provenance=P.files()["provenance"],
            power=P.files()["power"],
            studies=[p for s in P.files()["studies"].values() for p in s.values()],
        log:
            f"{REPORT_LOGS}/publish_evidence/publish.log",
        conda:
            "../envs/curvrobust.yaml"
        params:
            spec=lambda w: P.params(configfiles()),
            files=P.files(),
        script:
            "../workflow_scripts/publish_evidence.py"
