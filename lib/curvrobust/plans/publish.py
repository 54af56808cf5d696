"""Publishing a run (rule publish_evidence; config key `publish`, set by configs/evidence.yaml):
the page and the files it writes, what it reads and its params. The page itself:
curvrobust.claims.publish."""

from __future__ import annotations

from typing import Any

from .claims import ClaimsPlan


def fingerprint(cfg: dict) -> str:
    """SHA-256 of a checked configuration (canonical JSON, keys sorted): what a published page
    records, so that a test can tell it was made from the configuration it claims."""
    import hashlib
    import json

    text = json.dumps(cfg, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode()).hexdigest()


class PublishPlan:
    """The published page of a configuration, if it has a `publish` block."""

    def __init__(self, cfg: dict, claims: ClaimsPlan):
        self.cfg = cfg
        self.claims = claims
        self.block: dict = cfg.get("publish") or {}

    @property
    def enabled(self) -> bool:
        return bool(self.block) and bool(self.claims.judged())

    def files(self) -> dict[str, Any]:
        """page, claims and power (CSV), provenance (JSON) and per judged study its evidence
        (json, npz)."""
        d = self.block["dir"]
        return dict(page=self.block["page"], claims=f"{d}/claims.csv", power=f"{d}/power.csv",
                    provenance=f"{d}/provenance.json",
                    studies={s: {"json": f"{d}/{s}.json", "npz": f"{d}/{s}.npz"}
                             for s in self.claims.judged()})

    def outputs(self) -> list[str]:
        f = self.files()
        out = [f["page"], f["claims"], f["provenance"], f["power"]]
        return out + [p for s in f["studies"].values() for p in s.values()]

    def targets(self) -> list[str]:
        return self.outputs() if self.enabled else []

    def inputs(self) -> dict[str, list[str]]:
        """The claims and power reports, each study's judged rows and what its evidence reads."""
        c = self.claims
        return dict(claims=[c.report_files()["csv"], c.power_files()["csv"]],
                    judged=[c.study_files(s)["json"] for s in c.judged()],
                    results=sorted({f for s in c.judged() for f in c.inputs(s)}))

    def params(self, configfiles: list[str]) -> dict[str, Any]:
        c, cfg = self.claims, self.cfg
        used = {it["recipe"] for it in self.block["not_run"]}
        return dict(
            plans={s: c.params(s) for s in c.judged()},
            statistics=cfg["claims"], fingerprint=fingerprint(cfg), configfiles=configfiles,
            threads=cfg["threads"], device=cfg["device"], report_dir=c.root,
            forecast=f"{c.root}/forecast.json", ledger=f"{c.root}/run_ledger.json",
            default_power=self.block["default_power"],
            not_run=list(self.block["not_run"]),
            recipes={r: cfg["recipes"][r] for r in sorted(used)},
            variants=cfg["variants"],
        )
