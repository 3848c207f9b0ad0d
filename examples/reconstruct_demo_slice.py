# %% [markdown]
# # Reconstruct a demo slice with the score prior, beside the classical baselines
#
# A notebook as a percent-format script: open it in Jupyter (with jupytext) or VS Code, or run it
# with `python examples/reconstruct_demo_slice.py` from the repository root. It measures one held-out
# slice of the anatomy demo as `python -m lit_sampler predict` would (4x random lines, 20 dB SNR),
# draws posterior samples with the demo prior (`demo/model.ckpt`, the `fast` preset), and plots the
# posterior mean, the samples' standard deviation and the error, then zero-filled, CG-SENSE,
# L1-wavelet and total-variation reconstructions of the same measurement. See docs/python_api.md.

# %%
import pathlib
import sys
import tempfile

import matplotlib

if "ipykernel" not in sys.modules:  # run as a script: draw into files (a notebook shows the figures inline)
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

import lit_sampler
from lit_sampler.api import cg_sense_recon, l1_wavelet_recon, total_variation_recon, zero_filled_recon
from lit_sampler.evaluation.metrics import psnr, ssim
from lit_sampler.physics.masks import RandomLineMask

OUTPUT = pathlib.Path(tempfile.mkdtemp(prefix="lit_sampler_example_"))  # where the figures go

# %% [markdown]
# ## The measurement
# `measure_slice` returns the slice in the file's units: masked noisy k-space `[coils, H, W]`, the mask,
# the coil maps stored in the file, the noise variance ν that was added, the ground truth and the
# slice's seed key (the CLI's item key without the sample index).

# %%
measured = lit_sampler.measure_slice("demo/data/test/brain_test_coronal_t2.h5", 0, snr_db=20,
                                     mask=RandomLineMask(center_fractions=[0.08], accelerations=[4]), seed=0)
target = measured.target.abs()
print(measured.kspace.shape, f"ν = {measured.noise_var:.3g}", measured.key)

# %% [markdown]
# ## Posterior samples
# Two samples keep this quick; use 8 or more for a trustworthy standard deviation.

# %%
sampler = lit_sampler.Sampler.from_checkpoint("demo/model.ckpt", preset="fast", step_size=1e-4)
print(sampler.describe())
result = sampler.reconstruct(measured.kspace, measured.mask, measured.sens_maps, noise_var=measured.noise_var,
                             num_samples=2, seed=measured.seed, key=measured.key)
print(f"{result.nfe} network calls per sample, first level {result.start_level}")

# %%
mean = result.mean.abs()
figure, axes = plt.subplots(1, 4, figsize=(12, 3.4))
for ax, (title, image, cmap) in zip(axes, [("target", target, "gray"), ("posterior mean", mean, "gray"),
                                          ("std of the samples", result.std, "magma"),
                                          ("|mean - target|", (mean - target).abs(), "magma")]):
    ax.imshow(image, cmap=cmap)
    ax.set_title(title)
    ax.axis("off")
figure.savefig(OUTPUT / "posterior.png", dpi=100, bbox_inches="tight")

# %% [markdown]
# ## The baselines, called the same way
# λ of the compressed-sensing baselines: configs/demo.yaml's (tuned on the validation slabs at 20 dB).

# %%
data = (measured.kspace, measured.mask, measured.sens_maps)
estimates = {
    "zero-filled": zero_filled_recon(*data),
    "CG-SENSE": cg_sense_recon(*data, iterations=10),
    "L1-wavelet": l1_wavelet_recon(*data, lamda=1e-2),
    "total variation": total_variation_recon(*data, lamda=3e-2),
    "score prior": result.mean,
}
figure, axes = plt.subplots(1, len(estimates), figsize=(3 * len(estimates), 3.4))
for ax, (name, image) in zip(axes, estimates.items()):
    image = image.abs()
    quality = f"{psnr(target, image, target.max()):.1f} dB, SSIM {ssim(target, image, target.max()):.2f}"
    print(f"{name:16s} {quality}")
    ax.imshow(image, cmap="gray")
    ax.set_title(f"{name}\n{quality}")
    ax.axis("off")
figure.savefig(OUTPUT / "baselines.png", dpi=100, bbox_inches="tight")
print("figures in", OUTPUT)
