"""Snakemake adapter: study 003's instrumented inner maximisation — PGA from several random
starts on the first test examples of the digit pair, for one input scale and one stage (the
network at initialisation, rule attack_pga; or after adversarial training with one
learning-rate scaling, rule attack_pga_trained)."""

from pathlib import Path

from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.attacks.pga_dynamics import binary_pair, pga, pga_example_rows, pga_trace_rows
from curvrobust.seeds import derive_seed
from curvrobust.utils import select_device, write_csv
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
p, w = snakemake.params, snakemake.wildcards
threat, spec = dict(p.threat), dict(p.spec)
tol = spec["tol"]  # schema defaults are filled in by validate()
x, y = binary_pair(*load_variant(Path(snakemake.input.test).parent, "test"), p.pair,
                   spec["n_examples"])
model = load_model(snakemake.input.model, map_location=device)
eps = threat["eps"]
step = spec["step_size"] * eps
log(f"device {device}; stage {w.stage}, scale {threat['scale']:g}: PGA {threat['norm']} eps "
    f"{eps:g}, range {threat['data_range']}, {spec['starts']} starts x {spec['steps']} steps of "
    f"{step:g} on {len(x)} test examples of pair {p.pair}")
res = pga(model, x.to(device), y.to(device), eps, steps=spec["steps"], step_size=step,
          norm=threat["norm"], data_range=tuple(threat["data_range"]), starts=spec["starts"],
          seed=derive_seed(int(w.seed), "pga"), tol=tol)
lr_scaling = w.get("lr_scaling", "")  # the trained network's; none for the initialisation
meta = dict(stage=w.stage, lr_scaling=lr_scaling, scale=threat["scale"], eps=eps,
            norm=threat["norm"],
            data_lo=threat["data_range"][0], data_hi=threat["data_range"][1],
            step_size=step, seed=int(w.seed))
trace = [dict(meta, **r) for r in pga_trace_rows(res, tol)]
examples = [dict(meta, **r) for r in pga_example_rows(
    res, loss_rtol=spec["loss_rtol"], maxima_rtol=spec["maxima_rtol"],
    climb_fraction=spec["climb_fraction"], plateau_window=spec["plateau_window"])]
write_csv(snakemake.output.trace, trace, list(trace[0]))
write_csv(snakemake.output.examples, examples, list(examples[0]))
first, last = trace[0], trace[-1]
n = len(examples)
conv = [e["maxima_converged"] for e in examples if e["maxima_converged"] == e["maxima_converged"]]
climb = sum(e["iters_to_climb"] for e in examples) / n
log(f"mean loss {first['loss_mean']:.4g} -> {last['loss_mean']:.4g}; iterations to "
    f"{spec['climb_fraction']:g} of the climb {climb:.1f}; "
    f"converged starts {sum(e['converged_share'] for e in examples) / n:.2f}; distinct maxima "
    f"among them {sum(conv) / max(len(conv), 1):.2f} ({len(conv)} examples with one)")
