"""A score network as a denoiser for other libraries: ``D(x, σ) = x + σ² s(x, σ)``.

Tweedie's formula (Efron 2011; Song & Ermon 2020, "Improved techniques", §3) turns the score of the
σ-perturbed prior, ``s(x, σ) = ∇ₓ log p_σ(x)``, into the MMSE denoiser
``E[x₀ | x = x₀ + σ z] = x + σ² s(x, σ)``. Samplers such as deepinv's diffusion and plug-and-play
ones take a denoiser with this call convention:

* ``denoiser(x, sigma)``: ``x`` real ``[B, C, H, W]``; ``sigma`` a float, a 0-d tensor, or one
  value per item ``[B]`` (``[B, 1, 1, 1]`` is accepted too): the standard deviation of the
  Gaussian noise **per real entry** of ``x`` (deepinv's ``sigma``; NCSNv2 was trained with noise
  ``σ z``, ``z ~ N(0, I)`` per real entry);
* a complex image is ``C = 2`` channels (real, imaginary), deepinv's MRI layout ``(B, 2, H, W)``
  and ours (:mod:`lit_sampler.physics.fft`);
* the network knows only its trained levels σ_0 > … > σ_{L−1} (integer labels): ``σ`` is mapped
  to the **nearest level in log σ**, ``i = argmin_i |log σ_i − log σ|``, and
  ``D(x, σ) = x + σ² s(x, i)`` with the requested σ in the factor. At a trained level this is
  Tweedie's formula for the network's score; between levels it reads the score at the nearest
  level (for geometric levels the relative gap is at most half a level's ratio: ≤ 2.3 % for the
  demo prior's 200 levels from 94 to 0.01). σ beyond the trained range uses the end level;
* ``x`` must be in the units the network was trained in: for the priors of this package, images
  normalised so that the 99th percentile of the magnitude is 1 (:mod:`lit_sampler.data.transforms`).

The network runs in its own dtype and returns float32; no gradient is kept unless asked for
(``torch.no_grad`` is the caller's choice: plug-and-play methods that differentiate through the
denoiser may need gradients).
"""

from __future__ import annotations

from typing import Optional, Sequence, Union

import torch

from .network_call import call_network


class ScoreDenoiser(torch.nn.Module):
    """``D(x, σ) = x + σ² s(x, i(σ))`` of a score network (module docstring).

    Args:
        network: ``network(x [B, C, H, W], labels [B]) → s(x, σ_labels)`` (NCSNv2 and any network
            of :mod:`lit_sampler.models`, or :class:`lit_sampler.sampling.gaussian_chain.GaussianPriorScore`).
        sigmas: the trained levels σ_0 > … > σ_{L−1}; default: the network's ``sigmas`` buffer.
        channels_last: feed the network in channels-last memory format (faster convolutions).
    """

    def __init__(self, network: torch.nn.Module, sigmas: Union[Sequence[float], torch.Tensor, None] = None,
                 channels_last: bool = True):
        super().__init__()
        levels = getattr(network, "sigmas", None) if sigmas is None else sigmas
        if levels is None:
            raise ValueError("ScoreDenoiser: the network has no `sigmas` buffer; give its trained noise levels (sigmas=)")
        levels = torch.as_tensor(levels, dtype=torch.float64).detach().reshape(-1)
        if levels.numel() < 1 or not bool((levels > 0).all()):
            raise ValueError(f"ScoreDenoiser: sigmas must be positive noise levels, got {levels.tolist()[:4]}…")
        self.network = network
        self.register_buffer("log_sigmas", levels.log(), persistent=False)
        self.channels_last = channels_last

    @property
    def sigmas(self) -> torch.Tensor:
        """The trained levels ``[L]`` (float64)."""
        return self.log_sigmas.exp()

    def level_of(self, sigma: Union[float, torch.Tensor], batch: Optional[int] = None) -> torch.Tensor:
        """The network's label of each σ: the nearest trained level in log σ, long ``[B]``."""
        sigma = self._per_item(sigma, batch if batch is not None else 1, self.log_sigmas.device)
        if not bool((sigma > 0).all()):
            raise ValueError(f"sigma must be positive, got {sigma.tolist()}")
        return (sigma.double().log()[:, None] - self.log_sigmas[None, :]).abs().argmin(dim=1)

    def forward(self, x: torch.Tensor, sigma: Union[float, torch.Tensor]) -> torch.Tensor:
        """``D(x, σ)`` ``[B, C, H, W]`` (float32) for ``x`` ``[B, C, H, W]`` and σ a float or ``[B]``."""
        if x.dim() != 4 or x.is_complex():
            raise ValueError(f"x must be real [B, C, H, W] (a complex image as 2 channels), got {x.dtype} {list(x.shape)}")
        sigma = self._per_item(sigma, x.shape[0], x.device)
        labels = self.level_of(sigma, x.shape[0]).to(x.device)
        score = call_network(self.network, x, labels, channels_last=self.channels_last)
        return x.float() + sigma.float().reshape(-1, 1, 1, 1) ** 2 * score

    @staticmethod
    def _per_item(sigma: Union[float, torch.Tensor], batch: int, device) -> torch.Tensor:
        """σ as ``[B]`` float64 (a number or 0-d tensor for all items; ``[B]`` or ``[B, 1, 1, 1]`` per item)."""
        value = torch.as_tensor(sigma, dtype=torch.float64, device=device)
        if value.numel() == 1:
            return value.reshape(1).expand(batch)
        if value.numel() != batch:
            raise ValueError(f"sigma must be one number or one per item ([{batch}]), got shape {list(value.shape)}")
        return value.reshape(batch)
