"""Undersampling masks, the classes configs name as ``class_path: lit_sampler.physics.masks.<Class>``.

One file per kind of mask:

* :mod:`.lines`: phase-encode line masks ``[1, W]``: :class:`RandomLineMask`,
  :class:`EquispacedLineMask` (fastMRI's), :class:`CsgmLineMask` (Jalal et al.'s);
* :mod:`.variable_density`: :class:`VariableDensityMask`, a 2-D variable-density Poisson-disc
  pattern ``[H, W]``;
* :mod:`.transposed`: :class:`TransposedMask`, another mask turned by 90°;
* :mod:`.common`: what they share: :class:`MaskSample`, :func:`effective_acceleration`,
  :func:`center_line_slice`, :func:`mask_generator`, the two random sources (a ``torch.Generator``,
  or fastMRI's ``numpy.random.RandomState`` for its masks bit for bit).

Shape convention: a mask function is called with the k-space image shape ``(H, W)`` (the last two
dims of k-space ``[..., coils, H, W]``) and returns a float32 0/1 tensor that broadcasts against
it: ``[1, W]`` for phase-encode line masks and ``[H, W]`` for 2-D patterns. The k-space centre
(DC) sits at index ``(H // 2, W // 2)``, which is where the centered FFT of
:mod:`lit_sampler.physics.fft` puts it. Masks draw from an explicit generator, never a global RNG.

``run_settings.json`` records a mask by its class's module and name
(``lit_sampler.physics.masks.lines.RandomLineMask``) and a resume compares them; a class moved to
another file needs its old name in :mod:`lit_sampler._imports` so that older run directories still
compare equal.
"""

from .common import MaskSample, RandomSource, center_line_slice, effective_acceleration, mask_generator
from .lines import CsgmLineMask, EquispacedLineMask, RandomLineMask
from .transposed import MaskLike, TransposedMask
from .variable_density import VariableDensityMask

__all__ = [
    "MaskSample",
    "RandomLineMask",
    "EquispacedLineMask",
    "CsgmLineMask",
    "VariableDensityMask",
    "TransposedMask",
    "MaskLike",
    "RandomSource",
    "effective_acceleration",
    "center_line_slice",
    "mask_generator",
]
