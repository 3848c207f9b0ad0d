"""The physics: the MRI forward model and its measurements. Math core: torch and numpy only,
never Lightning or h5py; imports nothing of the package but :mod:`lit_sampler.errors` and
:mod:`lit_sampler.seeding`.

* :mod:`.fft`: centred orthonormal FFTs (:func:`fft2c`, :func:`ifft2c`) and the complex ↔
  real-channel layout of the networks (:func:`complex_to_channels`, :func:`channels_to_complex`);
* :mod:`.operators`: :class:`LinearOperator` (``forward``, ``adjoint``, ``normal``), the Cartesian
  :class:`SingleCoilMRI` and :class:`MultiCoilMRI` (``A x = M ⊙ F(S ⊙ x)``), :func:`normal_of`;
* :mod:`.coils`: coil combination (:func:`mvue`, :func:`rss`, :func:`combine`);
* :mod:`.masks`: the undersampling masks (:class:`~.masks.RandomLineMask`, …);
* :mod:`.noise`: complex measurement noise at an SNR on the sampled points
  (:func:`add_measurement_noise`, :func:`noise_variance`), SNR labels and noise keys.
"""

from . import masks
from .coils import combine, mvue, rss
from .fft import channels_to_complex, complex_to_channels, fft2c, ifft2c
from .noise import add_measurement_noise, describe_noise_key, noise_key, noise_variance, snr_label
from .operators import LinearOperator, MultiCoilMRI, SingleCoilMRI, normal_of

__all__ = [
    "masks",
    "fft2c",
    "ifft2c",
    "complex_to_channels",
    "channels_to_complex",
    "LinearOperator",
    "SingleCoilMRI",
    "MultiCoilMRI",
    "normal_of",
    "combine",
    "mvue",
    "rss",
    "add_measurement_noise",
    "noise_variance",
    "snr_label",
    "noise_key",
    "describe_noise_key",
]
