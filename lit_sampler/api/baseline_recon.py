"""The classical baselines on arrays, called like :meth:`lit_sampler.api.Sampler.reconstruct`:
``recon(kspace, mask, sens_maps=None, …)`` → the image in the caller's units and array type.

Each takes what ``reconstruct`` takes (one slice ``[coils, H, W]`` or a batch ``[B, coils, H, W]``,
numpy or torch, mask ``[W]`` / ``[H, W]`` or per item, maps or ``None`` for ESPIRiT:
:mod:`lit_sampler.api.inputs`), normalises each slice exactly as the pipeline does (scale = 99th
percentile of the zero-filled image), solves in those units with the same code the pipeline's
tables come from (:mod:`lit_sampler.sampling.baselines`), and returns the image times the scale. So a λ
tuned for the pipeline (``cs_lambdas``, ``scripts/tune_baselines.py``; relative to the normalised
data) means the same here, and the results equal the pipeline's ``zero_filled``, ``cg_sense``,
``l1_wavelet`` and ``total_variation`` for the same measurement.
"""

from __future__ import annotations

from typing import Optional

import torch

from .inputs import ArrayLike, CheckedInput, Normalised, check_inputs, complete_maps, normalise, to_data_units
from ..physics.operators import MultiCoilMRI
from ..sampling.baselines import cg_sense, compressed_sensing, intensity_correction


def _prepare(kspace: ArrayLike, mask: ArrayLike, sens_maps: Optional[ArrayLike]) -> tuple[CheckedInput, Normalised]:
    checked = check_inputs(kspace, mask, sens_maps)
    # ν only scales the chain's likelihood; the baselines do not read it
    return checked, normalise(checked, complete_maps(checked), [0.0] * len(checked))


def _give(checked: CheckedInput, data: Normalised, images: torch.Tensor):
    out = to_data_units(images, data.scale)
    return checked.kind.give(out if checked.batched else out[0])


def zero_filled_recon(kspace: ArrayLike, mask: ArrayLike, sens_maps: Optional[ArrayLike] = None):
    """The zero-filled MVUE image ``Σ_c conj(S_c) F⁻¹(M y)_c / sqrt(Σ_c |S_c|²)``, complex ``[H, W]``
    (``[B, H, W]`` for a batch): the estimate the ``balanced``/``fast`` presets start from."""
    checked, data = _prepare(kspace, mask, sens_maps)
    return _give(checked, data, data.zero_filled)


def cg_sense_recon(kspace: ArrayLike, mask: ArrayLike, sens_maps: Optional[ArrayLike] = None, *, iterations: int = 10):
    """CG-SENSE (Pruessmann et al. 2001): ``iterations`` conjugate-gradient steps on
    ``AᴴA x = Aᴴy`` from zero, with the intensity correction as preconditioner
    (:func:`lit_sampler.sampling.baselines.cg_sense`); complex ``[H, W]`` (``[B, H, W]``)."""
    if isinstance(iterations, bool) or not isinstance(iterations, int) or iterations < 1:
        raise ValueError(f"iterations must be a positive integer, got {iterations!r}")
    checked, data = _prepare(kspace, mask, sens_maps)
    operator = MultiCoilMRI(sens_maps=data.sens_maps, mask=data.mask)
    image = cg_sense(operator, data.kspace, iterations, intensity=intensity_correction(data.sens_maps))
    return _give(checked, data, image)


def _compressed_sensing(method: str, kspace, mask, sens_maps, lamda: float, iterations: int):
    checked, data = _prepare(kspace, mask, sens_maps)
    images = torch.stack([compressed_sensing(method, data.kspace[b], data.sens_maps[b], data.mask[b], float(lamda), iterations)
                          for b in range(len(checked))])
    return _give(checked, data, images)


def l1_wavelet_recon(kspace: ArrayLike, mask: ArrayLike, sens_maps: Optional[ArrayLike] = None, *, lamda: float,
                     iterations: int = 100):
    """L1-wavelet compressed sensing (Lustig et al. 2007; sigpy's ``L1WaveletRecon``, Daubechies-4),
    ``min_x ½‖P F S x − y‖² + λ‖W x‖₁`` on the normalised slice; complex ``[H, W]`` (``[B, H, W]``).
    Needs sigpy (``pip install 'lit_sampler[baselines]'``). The demo's λ: 1e-2 at 20 dB, 1e-1 at 5 dB."""
    return _compressed_sensing("l1_wavelet", kspace, mask, sens_maps, lamda, iterations)


def total_variation_recon(kspace: ArrayLike, mask: ArrayLike, sens_maps: Optional[ArrayLike] = None, *, lamda: float,
                          iterations: int = 100):
    """Total-variation compressed sensing (sigpy's ``TotalVariationRecon``), ``min_x ½‖P F S x − y‖² +
    λ‖∇x‖₁`` on the normalised slice; complex ``[H, W]`` (``[B, H, W]``). Needs sigpy. The demo's λ:
    3e-2 at 20 dB, 1e-1 at 5 dB."""
    return _compressed_sensing("total_variation", kspace, mask, sens_maps, lamda, iterations)
