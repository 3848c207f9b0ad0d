"""FFT conventions and the MRI operators: numpy equality, unitarity, adjointness, AᴴA = I, and
the LinearOperator model (default normal, duck-typed operators without one)."""

import numpy as np
import pytest
import torch

from lit_sampler.physics.fft import channels_to_complex, complex_to_channels, fft2c, ifft2c
from lit_sampler.physics.operators import LinearOperator, MultiCoilMRI, SingleCoilMRI, normal_of

SIZES = [(8, 8), (7, 9), (16, 11), (5, 5)]


def crandn(*shape, generator, dtype=torch.complex128):
    return torch.randn(*shape, generator=generator, dtype=dtype)


def inner(a, b):
    return (a * b.conj()).sum()


def assert_adjoint(op, x, y):
    """⟨A x, y⟩ = ⟨x, Aᴴ y⟩, and ``normal`` equals the base's default AᴴA = adjoint(forward(x))."""
    assert isinstance(op, LinearOperator)
    lhs, rhs = inner(op.forward(x), y), inner(x, op.adjoint(y))
    assert abs(lhs - rhs) < 1e-10 * abs(lhs)
    torch.testing.assert_close(op.normal(x), LinearOperator.normal(op, x))


@pytest.mark.parametrize("shape", SIZES)
def test_fft2c_matches_numpy_centered_ortho(shape):
    g = torch.Generator().manual_seed(0)
    x = crandn(3, *shape, generator=g)
    expected = np.fft.fftshift(np.fft.fft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(fft2c(x).numpy(), expected, atol=1e-12)
    expected_inv = np.fft.fftshift(np.fft.ifft2(np.fft.ifftshift(x.numpy(), axes=(-2, -1)), norm="ortho"), axes=(-2, -1))
    np.testing.assert_allclose(ifft2c(x).numpy(), expected_inv, atol=1e-12)


@pytest.mark.parametrize("shape", SIZES)
def test_fft2c_is_unitary_and_centered(shape):
    g = torch.Generator().manual_seed(1)
    x = crandn(2, *shape, generator=g)
    k = fft2c(x)
    torch.testing.assert_close(k.norm(), x.norm())
    torch.testing.assert_close(ifft2c(k), x)
    # a constant image puts all its energy at the centre index (n // 2), odd sizes included
    ones = torch.ones(shape, dtype=torch.complex128)
    peak = fft2c(ones).abs()
    assert peak.argmax().item() == (shape[0] // 2) * shape[1] + shape[1] // 2
    torch.testing.assert_close(peak.max(), torch.tensor(float(np.sqrt(shape[0] * shape[1])), dtype=torch.float64))


def test_complex_channel_layout_round_trip_and_reference_order():
    g = torch.Generator().manual_seed(2)
    x = crandn(4, 3, 5, 6, generator=g, dtype=torch.complex64)
    channels = complex_to_channels(x)
    assert channels.shape == (4, 6, 5, 6)
    torch.testing.assert_close(channels[:, 0], x[:, 0].real)
    torch.testing.assert_close(channels[:, 1], x[:, 0].imag)
    torch.testing.assert_close(channels[:, 4], x[:, 2].real)
    torch.testing.assert_close(channels_to_complex(channels), x)
    # K = 1 equals the reference pipeline's view_as_real(x).permute(0, 3, 1, 2)
    single = x[:, 0]
    torch.testing.assert_close(complex_to_channels(single[:, None]), torch.view_as_real(single).permute(0, 3, 1, 2))
    with pytest.raises(ValueError, match=r"needs an even channel count \(re, im pairs\), got C=3"):
        channels_to_complex(torch.zeros(1, 3, 4, 4))


def random_maps(batch, coils, shape, generator, normalise=True):
    maps = crandn(batch, coils, *shape, generator=generator)
    if normalise:
        maps = maps / maps.abs().square().sum(dim=1, keepdim=True).sqrt()
    return maps


def masks_for(batch, shape, generator):
    lines = (torch.rand(batch, 1, 1, shape[1], generator=generator) < 0.4).double()
    plane = (torch.rand(batch, 1, *shape, generator=generator) < 0.3).double()
    return {"lines": lines, "2d": plane, "bool": plane.bool()}


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("mask_kind", ["lines", "2d", "bool"])
def test_multicoil_adjointness(shape, mask_kind):
    g = torch.Generator().manual_seed(3)
    batch, coils = 2, 4
    op = MultiCoilMRI(random_maps(batch, coils, shape, g, normalise=False), masks_for(batch, shape, g)[mask_kind])
    assert_adjoint(op, crandn(batch, *shape, generator=g), crandn(batch, coils, *shape, generator=g))


@pytest.mark.parametrize("shape", SIZES)
@pytest.mark.parametrize("mask_kind", ["lines", "2d", "bool"])
def test_singlecoil_adjointness(shape, mask_kind):
    g = torch.Generator().manual_seed(4)
    op = SingleCoilMRI(masks_for(3, shape, g)[mask_kind])
    x = crandn(3, *shape, generator=g)
    assert op.forward(x).shape == (3, 1, *shape)
    assert_adjoint(op, x, crandn(3, 1, *shape, generator=g))


class DenseOperator(LinearOperator):
    """A random complex matrix on flattened images: only forward and adjoint, the base's normal."""

    def __init__(self, matrix: torch.Tensor, shape: tuple[int, int]):
        self.matrix, self.shape = matrix, shape

    def forward(self, image):
        return image.flatten(1) @ self.matrix.T

    def adjoint(self, kspace):
        return (kspace @ self.matrix.conj()).reshape(-1, *self.shape)


def test_linear_operator_default_normal_and_adjointness():
    g = torch.Generator().manual_seed(8)
    shape = (5, 4)
    op = DenseOperator(crandn(7, 20, generator=g), shape)
    x = crandn(2, *shape, generator=g)
    assert_adjoint(op, x, crandn(2, 7, generator=g))
    torch.testing.assert_close(op.normal(x), ((x.flatten(1) @ op.matrix.T) @ op.matrix.conj()).reshape(2, *shape))
    with pytest.raises(NotImplementedError):
        LinearOperator().forward(x)


class DuckOperator:
    """The configurable "forward class" a user may write: forward and adjoint only, no base, no normal."""

    def __init__(self, inner: LinearOperator):
        self.inner = inner

    def forward(self, image):
        return self.inner.forward(image)

    def adjoint(self, kspace):
        return self.inner.adjoint(kspace)


def test_duck_typed_operator_without_normal_works_through_the_default():
    from lit_sampler.sampling.baselines import cg_sense
    from lit_sampler.sampling.langevin import GaussianDataConsistency

    g = torch.Generator().manual_seed(9)
    shape = (6, 7)
    op = MultiCoilMRI(random_maps(2, 3, shape, g), masks_for(2, shape, g)["lines"])
    duck = DuckOperator(op)
    assert not hasattr(duck, "normal")
    x = crandn(2, *shape, generator=g)
    assert torch.equal(normal_of(op, x), op.normal(x))  # the operator's own (faster) normal
    torch.testing.assert_close(normal_of(duck, x), op.normal(x))  # the default adjoint(forward(x))
    y = op.forward(crandn(2, *shape, generator=g))
    torch.testing.assert_close(cg_sense(duck, y, iterations=8), cg_sense(op, y, iterations=8))
    state = complex_to_channels(x[:, None])
    through_default, through_normal = (GaussianDataConsistency(o, y, noise_var=0.1)(state, 0.5, state) for o in (duck, op))
    torch.testing.assert_close(through_default, through_normal)


@pytest.mark.parametrize("shape", SIZES)
def test_normal_operator_is_identity_for_full_mask_and_normalised_maps(shape):
    g = torch.Generator().manual_seed(5)
    x = crandn(2, *shape, generator=g)
    full = torch.ones(1, 1, 1, shape[1], dtype=torch.float64)
    torch.testing.assert_close(MultiCoilMRI(random_maps(2, 3, shape, g), full).normal(x), x)
    torch.testing.assert_close(SingleCoilMRI(full).normal(x), x)


def test_singlecoil_equals_multicoil_with_unit_map():
    g = torch.Generator().manual_seed(6)
    mask = masks_for(2, (6, 10), g)["lines"]
    x = crandn(2, 6, 10, generator=g)
    ones = torch.ones(2, 1, 6, 10, dtype=torch.complex128)
    torch.testing.assert_close(SingleCoilMRI(mask).forward(x), MultiCoilMRI(ones, mask).forward(x))


def test_multicoil_rejects_real_maps():
    with pytest.raises(ValueError, match=r"sens_maps must be complex \[B, coils, H, W\], got \(2, 4, 4\) torch.float32"):
        MultiCoilMRI(torch.zeros(2, 4, 4), torch.ones(4))


def test_cg_sense_solves_normal_equations():
    from lit_sampler.sampling.baselines import cg_sense

    g = torch.Generator().manual_seed(7)
    shape = (8, 10)
    op = MultiCoilMRI(random_maps(2, 4, shape, g), masks_for(2, shape, g)["lines"])
    x_true = crandn(2, *shape, generator=g)
    y = op.forward(x_true)
    x = cg_sense(op, y, iterations=60)
    # the least-squares solution satisfies the normal equations (it need not equal x_true: A has a null space)
    residual = op.normal(x) - op.adjoint(y)
    assert residual.abs().max() < 1e-6 * op.adjoint(y).abs().max()
    # with a full mask A is invertible and CG recovers the image
    full = MultiCoilMRI(random_maps(2, 4, shape, g), torch.ones(1, 1, 1, shape[1], dtype=torch.float64))
    torch.testing.assert_close(cg_sense(full, full.forward(x_true), iterations=5), x_true)


def test_cg_sense_intensity_correction_preconditions_without_changing_the_solution():
    """Pruessmann et al.'s intensity correction: maps whose energy varies over the image (those of
    whitened scanner data) make plain CG slow; I = (Σ|S|²)^(−1/2) restores the convergence of
    unit-norm maps and leaves the least-squares solution as it is. For unit-norm maps I = 1."""
    from lit_sampler.sampling.baselines import cg_sense, intensity_correction

    g = torch.Generator().manual_seed(8)
    shape = (16, 12)
    unit = random_maps(2, 4, shape, g)
    gain = torch.linspace(0.4, 1.4, shape[0], dtype=torch.float64)[:, None].expand(shape)  # a smooth per-pixel gain
    maps = unit * gain
    mask = masks_for(2, shape, g)["lines"]
    mask[..., shape[1] // 2 - 2 : shape[1] // 2 + 2] = 1
    op, x_true = MultiCoilMRI(maps, mask), crandn(2, *shape, generator=g)
    y = op.forward(x_true)
    intensity = intensity_correction(maps)
    torch.testing.assert_close(intensity, 1 / gain.expand(2, *shape))
    torch.testing.assert_close(intensity_correction(unit), torch.ones(2, *shape, dtype=torch.float64))
    solution = cg_sense(op, y, iterations=300)
    torch.testing.assert_close(cg_sense(op, y, iterations=300, intensity=intensity), solution)

    def error(x):
        return float((x - solution).norm() / solution.norm())

    # after 8 iterations: the preconditioned CG is where CG on the unit-norm problem (image x·gain) is
    plain, corrected = cg_sense(op, y, iterations=8), cg_sense(op, y, iterations=8, intensity=intensity)
    unit_problem = cg_sense(MultiCoilMRI(unit, mask), y, iterations=8) / gain
    torch.testing.assert_close(corrected, unit_problem)
    assert error(corrected) < 0.5 * error(plain)
    assert torch.equal(cg_sense(op, y, iterations=8, intensity=None), plain)
