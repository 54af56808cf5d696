"""Snakemake adapter: study 003's adversarial training of the two-layer network on one input
scale with one learning-rate scaling (`inverse_square`: lr/s²; `none`: lr), quadratic loss with
PGA as the inner maximisation (rule train_pga_model)."""

from pathlib import Path

import torch

from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model, save_checkpoint
from curvrobust.attacks.pga_dynamics import adversarial_train, binary_pair
from curvrobust.seeds import derive_seed
from curvrobust.utils import select_device, use_deterministic, write_csv
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
use_deterministic(snakemake.params.deterministic)
device = select_device(snakemake.params.device)
p = snakemake.params
threat, spec = dict(p.threat), dict(p.spec)
variant_dir = Path(snakemake.input.train).parent
x, y = binary_pair(*load_variant(variant_dir, "train"), p.pair, p.n_train)
xt, yt = binary_pair(*load_variant(variant_dir, "test"), p.pair, p.n_test)
model = load_model(snakemake.input.init, map_location=device, eval_mode=False)
eps, step = threat["eps"], spec["pga_step_size"] * threat["eps"]
lr_scaling = snakemake.wildcards.lr_scaling
lr = spec["lr"] / threat["scale"] ** 2 if lr_scaling == "inverse_square" else spec["lr"]
log(f"device {device}; scale {threat['scale']:g}: {len(x)} training / {len(xt)} test examples "
    f"of pair {p.pair}; {threat['norm']} eps {eps:g}, data range {threat['data_range']}, "
    f"PGA {spec['pga_steps']} x {step:g}; SGD lr {lr:g} ({lr_scaling}), "
    f"batch {spec['batch_size']}, {spec['epochs']} epochs")
epochs, steps = adversarial_train(
    model, x.to(device), y.to(device), eps, epochs=spec["epochs"], lr=lr,
    batch_size=spec["batch_size"], pga_steps=spec["pga_steps"], pga_step_size=step,
    norm=threat["norm"], data_range=tuple(threat["data_range"]),
    seed=derive_seed(int(snakemake.wildcards.seed), "data_order"),
    x_test=xt.to(device), y_test=yt.to(device), log=log)
meta = dict(scale=threat["scale"], eps=eps, lr_scaling=lr_scaling, lr=lr,
            seed=int(snakemake.wildcards.seed))
epochs = [dict(meta, **r) for r in epochs]
steps = [dict(meta, **r) for r in steps]
write_csv(snakemake.output.epochs, epochs, list(epochs[0]))
write_csv(snakemake.output.steps, steps, list(steps[0]))
init = torch.load(snakemake.input.init, map_location="cpu", weights_only=True)
save_checkpoint(snakemake.output.model, model, init["arch"], init["arch_kwargs"], **meta)
