"""The data and network every configuration shares: phantom volumes in fastMRI layout, a
random-weight checkpoint (so the real ``checkpoint:`` loading path runs), FLOPs per image-evaluation."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from .configs import Setup
from ...data.fastmri_write import write_volume
from ...data.phantoms import demo_volume
from ...datamodules import FastMRIDataModule
from ...models import VARIANTS, describe_checkpoint
from ...physics.coils import rss
from ...physics.masks import EquispacedLineMask
from ...seeding import seeded_generator


@dataclass
class Prepared:
    """What :func:`prepare` wrote into ``workdir``: the phantom folder, the checkpoint, the network's
    constructor arguments and its FLOPs per image-evaluation."""

    setup: Setup
    workdir: Path
    data_dir: Path
    checkpoint: Path
    network_kwargs: dict
    flops_per_image_eval: int


def write_phantoms(folder: Path, setup: Setup) -> None:
    """``setup.files`` phantom volumes in fastMRI layout (k-space, in-file maps, RSS target)."""
    for index in range(setup.files):
        volume = demo_volume(seeded_generator(setup.seed, "benchmark", index), setup.slices, setup.size, setup.size,
                             coils=setup.coils)
        write_volume(folder / f"bench_{index:03d}.h5", volume.kspace, sens_maps=volume.maps,
                     reconstruction_rss=rss(volume.kspace), attrs={"acquisition": "SYNTHETIC"})


def network_flops(setup: Setup) -> int:
    """FLOPs of one image-evaluation (batch 1), counted by ``FlopCounterMode`` on a meta-device copy
    (no arithmetic is done, so this is instant even for the 94 M-parameter network)."""
    from torch.utils.flop_counter import FlopCounterMode

    with torch.device("meta"):
        net = VARIANTS[setup.variant](in_channels=2, ngf=setup.ngf, num_classes=setup.num_classes,
                                      sigma_begin=setup.sigma_begin, sigma_end=setup.sigma_end)
    net = net.to("meta")
    x = torch.empty(1, 2, setup.size, setup.size, device="meta")
    labels = torch.zeros(1, dtype=torch.long, device="meta")
    with FlopCounterMode(display=False) as counter:
        net(x, labels)
    return int(counter.get_total_flops())


def prepare(setup: Setup, workdir: Path) -> Prepared:
    """Write the data and a random-weight checkpoint (its ``sigmas`` buffer included) into ``workdir``."""
    if setup.checkpoint:  # describe the network that runs (FLOPs, the Setup line), not the preset's
        info = describe_checkpoint(setup.checkpoint)
        setup = dataclasses.replace(setup, variant=info.variant, ngf=info.ngf, num_classes=info.num_classes,
                                    sigma_begin=info.sigma_max, sigma_end=info.sigma_min)
    data_dir = workdir / "data"
    write_phantoms(data_dir, setup)
    kwargs = dict(in_channels=2, ngf=setup.ngf, num_classes=setup.num_classes,
                  sigma_begin=setup.sigma_begin, sigma_end=setup.sigma_end)
    if setup.checkpoint:
        checkpoint = Path(setup.checkpoint)
    else:
        torch.manual_seed(setup.seed)
        network = VARIANTS[setup.variant](**kwargs)
        checkpoint = workdir / "random_weights.pt"
        torch.save(network.state_dict(), checkpoint)
        del network
    return Prepared(setup, workdir, data_dir, checkpoint, kwargs, network_flops(setup))


def datamodule(prepared: Prepared, batch_size: int, items: Optional[int] = None,
               samples: Optional[int] = None) -> FastMRIDataModule:
    s = prepared.setup
    dm = FastMRIDataModule(
        data_path=str(prepared.data_dir), snr_range=list(s.snrs), num_samples=samples or s.samples, seed=s.seed,
        batch_size=batch_size, mask=EquispacedLineMask(center_fractions=[0.08], accelerations=[4]),
    )
    dm.setup("predict")
    if items is not None and items < len(dm.items):
        dm.exclude_items(dm.items[items:])
    return dm
