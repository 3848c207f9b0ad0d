"""Score networks and checkpoint loading.

* :class:`NCSNv2`, :class:`NCSNv2Deeper`, :class:`NCSNv2Deepest`: the score networks of Song &
  Ermon 2020 with the original module and parameter names; ``model(x [B, C, H, W], labels [B])``.
  Typed constructors, so YAML ``class_path: lit_sampler.models.NCSNv2Deepest`` works.
* :data:`VARIANTS`: the three classes by name.
* :func:`load_score_model`: any NCSNv2 checkpoint (ncsnv2 / csgm-mri-langevin lists, Aali's
  ``model_state``/``ema_state`` dicts, ``lit_sampler fit`` checkpoints, bare state dicts).
* :func:`describe_checkpoint`: what a checkpoint holds (used by ``scripts/inspect_checkpoint.py``).
* :class:`CheckpointError`: the ``ValueError`` raised for every checkpoint problem.
* :class:`ScoreDenoiser`: a network as the denoiser ``D(x, σ) = x + σ² s(x, σ)`` other libraries'
  samplers take (deepinv's ``denoiser(x, sigma)`` convention; :mod:`lit_sampler.models.denoiser`).

Any other ``torch.nn.Module`` whose ``forward(x, labels)`` returns the score can be used in place
of these networks through a YAML ``class_path``.
"""

from .architecture import resolve_variant
from .checkpoints import CheckpointInfo, describe_checkpoint, load_score_model
from .denoiser import ScoreDenoiser
from ..errors import CheckpointError
from .ncsnv2 import VARIANTS, NCSNv2, NCSNv2Deeper, NCSNv2Deepest

__all__ = [
    "NCSNv2",
    "NCSNv2Deeper",
    "NCSNv2Deepest",
    "VARIANTS",
    "load_score_model",
    "describe_checkpoint",
    "CheckpointError",
    "CheckpointInfo",
    "resolve_variant",
    "ScoreDenoiser",
]
