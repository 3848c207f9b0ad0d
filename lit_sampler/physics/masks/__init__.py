"""Undersampling masks, the classes configs name as ``class_path: lit_sampler.physics.masks.<Class>``.

* :class:`RandomLineMask`, :class:`EquispacedLineMask` (fastMRI), :class:`CsgmLineMask` (Jalal et
  al.): phase-encode line masks ``[1, W]`` (:mod:`.lines`);
* :class:`VariableDensityMask`: a 2-D variable-density Poisson-disc pattern ``[H, W]``
  (:mod:`.variable_density`);
* :class:`TransposedMask`: another mask turned by 90°;
* :class:`MaskSample`, :func:`effective_acceleration`, :func:`center_line_slice`,
  :func:`mask_generator`: what every mask shares (:mod:`.common`).

Shapes, the k-space centre and the two random sources are described in :mod:`.lines`.
"""

from .common import MaskSample, center_line_slice, effective_acceleration
from .lines import (
    CsgmLineMask, EquispacedLineMask, MaskLike, RandomLineMask, TransposedMask, VariableDensityMask, mask_generator,
)

__all__ = [
    "MaskSample",
    "RandomLineMask",
    "EquispacedLineMask",
    "CsgmLineMask",
    "VariableDensityMask",
    "TransposedMask",
    "MaskLike",
    "effective_acceleration",
    "center_line_slice",
    "mask_generator",
]
