"""Snakemake adapter: study 002's robustness indicator per test image of the shared test subset
(the first n of its seeded permutation, so rows pair with the attacks' per-image outcomes by the
test-set `index`), and the decision function's input gradients of the first few test images for
the Jacobian figure (rule compute_indicator)."""

from pathlib import Path

from curvrobust.curvature.statistics import margin_input_grad, robustness_indicator
from curvrobust.workflow.jobs import start_job
from curvrobust.models import load_model
from curvrobust.data.subsets import select_subset
from curvrobust.utils import atomic_path, select_device, torch_save_atomic
from curvrobust.data.variants import load_variant

log = start_job(snakemake)
device = select_device(snakemake.params.device)
spec = dict(snakemake.params.spec)
model = load_model(snakemake.input.model, map_location=device)
x_all, y_all = load_variant(Path(snakemake.input.test).parent, "test")
subset = snakemake.params.subset
x, y, index = select_subset(x_all, y_all, spec.get("n_examples"), subset["n_default"],
                            subset["seed"])
x, y = x.to(device), y.to(device)
kwargs = {k: spec[k] for k in ("jac_zero_tol", "hess_zero_tol", "hessian", "power_iters",
                               "batch_size") if k in spec}
log(f"indicator on {len(x)} test images, device {device}, {kwargs}")
df = robustness_indicator(model, x, y, **kwargs)
df["index"] = index.tolist()   # test-set indices of the shared subset
with atomic_path(snakemake.output.table) as tmp:
    df.to_csv(tmp, index=False, float_format="%.8g")
log(f"mean ‖∇g‖₂ {df['grad_l2'].mean():.4g}, near-zero Jacobian share "
    f"{df['jac_zero_frac'].mean():.3f}, mean top CE-Hessian eigenvalue "
    f"{df['hess_top_eig'].mean():.4g} ({df['hess_method'].iloc[0]})")
k = spec.get("jacobian_images", 6)
xk, yk = x_all[:k].to(device), y_all[:k].to(device)
grads = margin_input_grad(model, xk, yk)
torch_save_atomic({"images": xk.cpu(), "labels": yk.cpu(), "grads": grads.cpu()},
                  snakemake.output.jacobians)
