"""Fixed-shape network calls (issue 15): an item's output depends on its own input alone."""

from __future__ import annotations

import pytest
import torch

from lit_sampler.models.ncsnv2 import NCSNv2
from lit_sampler.models.network_call import fixed_shape_call


@pytest.fixture(scope="module")
def network():
    torch.manual_seed(0)
    net = NCSNv2(in_channels=2, ngf=8, sigma_begin=5.0, sigma_end=0.05, num_classes=6).eval()
    return lambda x, labels: net(x.contiguous(memory_format=torch.channels_last), labels)


def _inputs(count: int, size: int = 24):
    generator = torch.Generator().manual_seed(1)
    return torch.randn(count, 2, size, size, generator=generator), torch.randint(0, 6, (count,), generator=generator)


@torch.no_grad()
def test_an_item_gets_the_same_bits_at_every_position_and_with_any_neighbours(network):
    x, labels = _inputs(12)
    call_size = 4
    alone = fixed_shape_call(network, x[:1], labels[:1], call_size)[0]  # padded with copies of itself
    for position in range(call_size):
        for trial in range(2):
            neighbours = torch.randperm(11, generator=torch.Generator().manual_seed(trial))[: call_size - 1] + 1
            order = torch.cat([neighbours[:position], torch.tensor([0]), neighbours[position:]])
            out = fixed_shape_call(network, x[order], labels[order], call_size)
            assert torch.equal(out[position], alone), (position, trial)


@torch.no_grad()
def test_any_batch_size_and_order_give_the_bits_of_items_evaluated_alone(network):
    x, labels = _inputs(16)
    call_size = 4
    alone = torch.cat([fixed_shape_call(network, x[i : i + 1], labels[i : i + 1], call_size) for i in range(16)])
    for batch_size in (1, 3, 8, 16):
        out = torch.cat([fixed_shape_call(network, x[s : s + batch_size], labels[s : s + batch_size], call_size)
                         for s in range(0, 16, batch_size)])
        assert torch.equal(out, alone), batch_size
    order = torch.randperm(16, generator=torch.Generator().manual_seed(3))
    assert torch.equal(fixed_shape_call(network, x[order], labels[order], call_size), alone[order])


def test_every_call_has_exactly_call_size_items_and_padding_is_dropped():
    shapes = []

    def network(x, labels):
        shapes.append((x.shape[0], labels.shape[0]))
        return x * labels.reshape(-1, 1, 1, 1)

    x, labels = torch.arange(7.0).reshape(7, 1, 1, 1), torch.arange(1, 8)
    out = fixed_shape_call(network, x, labels, 3)
    assert shapes == [(3, 3)] * 3
    assert torch.equal(out, x * labels.reshape(-1, 1, 1, 1))


def test_call_size_must_be_positive():
    with pytest.raises(ValueError, match="call_size must be a positive number of items, got 0"):
        fixed_shape_call(lambda x, labels: x, torch.zeros(1, 2, 4, 4), torch.zeros(1, dtype=torch.long), 0)
