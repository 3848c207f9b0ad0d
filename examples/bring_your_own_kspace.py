# %% [markdown]
# # Bring your own k-space: numpy arrays in, numpy arrays out
#
# A notebook as a percent-format script (Jupyter with jupytext, or VS Code; or `python
# examples/bring_your_own_kspace.py` from the repository root). The k-space here is read with h5py
# from a demo file and undersampled and made noisy with numpy, as your scanner or simulation would
# hand it over: `[coils, H, W]` complex per slice, a `[W]` line mask, the noise variance ν, and no
# coil maps (the sampler estimates them by ESPIRiT from the fully sampled centre lines).
# See docs/python_api.md for the conventions.

# %%
import pathlib
import sys
import tempfile

import h5py
import matplotlib
import numpy as np

if "ipykernel" not in sys.modules:  # run as a script: draw into files (a notebook shows the figures inline)
    matplotlib.use("Agg")
import matplotlib.pyplot as plt

import lit_sampler

OUTPUT = pathlib.Path(tempfile.mkdtemp(prefix="lit_sampler_example_"))

# %% [markdown]
# ## Your data
# Two slices of fully sampled 8-coil k-space, an equispaced 4x line mask plus 16 centre lines,
# and complex Gaussian noise of variance ν per sampled point and coil (20 dB below the signal).

# %%
with h5py.File("demo/data/test/brain_test_sagittal_t2.h5", "r") as handle:
    full = handle["kspace"][:]  # [2, 8, 64, 64] complex64
batch, coils, height, width = full.shape
mask = np.zeros(width, dtype=np.float32)
mask[::4] = 1
mask[width // 2 - 8: width // 2 + 8] = 1
rng = np.random.default_rng(1)
nu = np.mean(np.abs(full[..., mask == 1]) ** 2) * 10 ** (-20 / 10)
kspace = (full + np.sqrt(nu / 2) * (rng.standard_normal(full.shape) + 1j * rng.standard_normal(full.shape))) * mask
print(kspace.shape, kspace.dtype, f"ν = {nu:.3g}")

# %% [markdown]
# ## Reconstruct the batch
# `noise_var` is required: ν in the k-space's units (for scanner data, the variance of a noise
# prescan's samples per coil). One key per slice names its random streams.

# %%
sampler = lit_sampler.Sampler.from_checkpoint("demo/model.ckpt", preset="fast", step_size=1e-4)
result = sampler.reconstruct(kspace, mask, noise_var=nu, num_samples=2, key=["sagittal|0", "sagittal|1"])
print(type(result.mean).__name__, result.mean.shape, result.std.shape, "maps:", result.sens_maps.shape)

# %%
reference = np.sqrt((np.abs(np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(full, axes=(-2, -1)), norm="ortho"),
                                            axes=(-2, -1))) ** 2).sum(axis=1))  # root-sum-of-squares of the full data
figure, axes = plt.subplots(batch, 4, figsize=(12, 3.2 * batch))
for b in range(batch):
    panels = [("fully sampled (RSS)", reference[b]), ("zero-filled", np.abs(result.zero_filled[b])),
              ("posterior mean", np.abs(result.mean[b])), ("std of the samples", result.std[b])]
    for ax, (title, image) in zip(axes[b], panels):
        ax.imshow(image, cmap="magma" if title.startswith("std") else "gray")
        ax.set_title(title)
        ax.axis("off")
figure.savefig(OUTPUT / "own_kspace.png", dpi=100, bbox_inches="tight")
print("figure in", OUTPUT)
