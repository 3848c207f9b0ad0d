"""fastMRI's E2E-VarNet (Sriram et al., MICCAI 2020, "End-to-End Variational Networks for
Accelerated MRI Reconstruction") as a supervised peer: its weights read from fastMRI's published
state dicts or from our own training (:mod:`lit_sampler.lightning.supervised`), and its inputs built from our
records.

The network is ``fastmri.models.VarNet`` itself (the optional ``varnet`` extra), never a copy:
``VarNet(masked_kspace [B, coils, H, W, 2], mask bool [B, 1, 1, W, 1] or [B, 1, H, W, 1],
num_low_frequencies: int) -> [B, H, W]``, the root-sum-of-squares magnitude of its coil images,
uncropped. ``num_low_frequencies`` is passed as an int (fastMRI's batched-tensor path crashes) and
always (its own estimate reads only the first row of the mask, which is wrong for 2-D masks).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional

import torch

from .checkpoint_formats import _strip, read_checkpoint
from ..errors import CheckpointError

ARCHITECTURE_KEYS = ("num_cascades", "chans", "pools", "sens_chans", "sens_pools")
# fastMRI's published brain/knee leaderboard model
FASTMRI_ARCHITECTURE = {"num_cascades": 12, "chans": 18, "pools": 4, "sens_chans": 8, "sens_pools": 4}


def varnet_class():
    """``fastmri.models.VarNet``, or one ImportError that says how to install it."""
    try:
        from fastmri.models import VarNet
    except ImportError as error:
        raise ImportError(
            f"the varnet baseline needs the fastmri package ({error}): "
            "pip install -e '.[varnet]' && pip install --no-deps fastmri==0.3.0"
        ) from None
    return VarNet


def _unet_size(state: Mapping[str, torch.Tensor], prefix: str) -> Optional[tuple[int, int]]:
    """``(chans, pools)`` of the fastMRI U-Net whose parameters start with ``prefix``."""
    first = state.get(f"{prefix}down_sample_layers.0.layers.0.weight")
    if first is None:
        return None
    pools = len({key[len(prefix):].split(".")[1] for key in state if key.startswith(f"{prefix}down_sample_layers.")})
    return int(first.shape[0]), pools


def infer_architecture(state: Mapping[str, torch.Tensor]) -> dict[str, int]:
    """The constructor arguments a VarNet state dict was made with (those it shows)."""
    found: dict[str, int] = {}
    cascades = {key.split(".")[1] for key in state if key.startswith("cascades.")}
    if cascades:
        found["num_cascades"] = len(cascades)
    cascade = _unet_size(state, "cascades.0.model.unet.")
    if cascade:
        found["chans"], found["pools"] = cascade
    sens = _unet_size(state, "sens_net.norm_unet.unet.")
    if sens:
        found["sens_chans"], found["sens_pools"] = sens
    return found


def read_varnet_state(path: str | Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """``(state dict, architecture saved with it)`` of a VarNet checkpoint: a bare state dict
    (fastMRI's published ``*_leaderboard_state_dict.pt``), a fastMRI Lightning checkpoint
    (``state_dict`` under ``varnet.``), or a ``lit_sampler fit`` checkpoint of
    :class:`~lit_sampler.lightning.VarNetTraining` (``state_dict`` under ``varnet.``, the
    architecture in ``hyper_parameters``)."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path}: VarNet checkpoint not found")
    obj = read_checkpoint(path)
    saved: dict[str, Any] = {}
    if isinstance(obj, Mapping) and isinstance(obj.get("state_dict"), Mapping):
        hyper = obj.get("hyper_parameters") or {}
        saved = {key: int(hyper[key]) for key in ARCHITECTURE_KEYS if isinstance(hyper, Mapping) and key in hyper}
        state = _strip(obj["state_dict"], "varnet.")
    elif isinstance(obj, Mapping):
        state = _strip(obj)
    else:
        raise CheckpointError(f"{path}: expected a VarNet state dict or Lightning checkpoint, found {type(obj).__name__}")
    if not any(key.startswith("cascades.") for key in state):
        raise CheckpointError(
            f"{path}: no VarNet parameters (keys 'cascades.*', 'sens_net.*') in the file; "
            f"found {sorted(state)[:4] or 'no tensors'}"
        )
    return state, saved


def load_varnet(path: str | Path, **architecture: Optional[int]) -> tuple[torch.nn.Module, dict[str, int]]:
    """A ``fastmri.models.VarNet`` with the weights of ``path``, in eval mode, and its architecture.

    Architecture arguments left ``None`` come from the checkpoint (saved hyper-parameters, else the
    shapes of the state dict). A state dict that does not fit is one :class:`CheckpointError`
    naming the first mismatched key, its shape in the file and the shape the architecture needs.
    """
    state, saved = read_varnet_state(path)
    inferred = {**infer_architecture(state), **saved}
    chosen = {key: int(architecture[key]) if architecture.get(key) is not None else inferred.get(key) for key in ARCHITECTURE_KEYS}
    missing = [key for key, value in chosen.items() if value is None]
    if missing:
        raise CheckpointError(f"{path}: cannot tell {missing} from the file; give them in the config")
    network = varnet_class()(**chosen)
    expected = network.state_dict()
    given = ", ".join(f"{k}={v}" for k, v in chosen.items())
    for key, value in expected.items():
        if key not in state:
            raise CheckpointError(f"{path}: parameter {key!r} is missing from the file (VarNet with {given})")
        if tuple(state[key].shape) != tuple(value.shape):
            raise CheckpointError(
                f"{path}: parameter {key!r} has shape {list(state[key].shape)} in the file but VarNet with "
                f"{given} needs {list(value.shape)}"
            )
    extra = sorted(set(state) - set(expected))
    if extra:
        raise CheckpointError(f"{path}: unexpected parameter {extra[0]!r} for VarNet with {given}")
    network.load_state_dict(state)
    return network.eval(), chosen


def center_lines(mask: torch.Tensor) -> int:
    """The calibration width VarNet's sensitivity net keeps: the sampled run of columns around the
    centre ``W // 2`` on the centre row of a mask ``[H, W]`` (``[1, W]`` for lines), made symmetric
    about the centre as VarNet makes it (its block is centred; the shorter side sets it)."""
    row = mask.reshape(-1, mask.shape[-1])[mask.reshape(-1, mask.shape[-1]).shape[0] // 2].bool()
    centre = row.shape[0] // 2
    if not bool(row[centre]):
        return 0
    left = int(torch.cumprod(row[:centre + 1].flip(0).int(), 0).sum()) - 1
    right = int(torch.cumprod(row[centre:].int(), 0).sum()) - 1
    return 2 * min(left, right) + 1


def varnet_inputs(kspace: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """Our batch → VarNet's inputs.

    Args:
        kspace: measured k-space ``[B, coils, H, W]`` complex (zeros where not sampled).
        mask: ``[B, 1, H, W]`` (or ``[B, 1, 1, W]``) 0/1.

    Returns:
        ``masked_kspace [B, coils, H, W, 2]`` float, ``mask`` bool ``[B, 1, 1, W, 1]`` when every
        item's mask is a line mask, else ``[B, 1, H, W, 1]``, and each item's calibration width.
    """
    height, width = kspace.shape[-2:]
    full = torch.broadcast_to(mask.reshape(mask.shape[0], -1, width), (mask.shape[0], height, width)).bool()
    lines = bool((full == full[:, :1]).all())
    vn_mask = (full[:, :1] if lines else full)[:, None, :, :, None]
    masked = torch.view_as_real((kspace * full[:, None]).to(torch.complex64)).contiguous()
    return masked, vn_mask, [center_lines(m) for m in full]


class VarNetBaseline(torch.nn.Module):
    """fastMRI's E2E-VarNet run on a batch's masked, noisy k-space and mask.

    Its output (RSS magnitude of the coil images) is on the scale of the k-space it is given: our
    batches are normalised per slice, so the estimate is on the item's normalised scale like every
    other method (VarNet's U-Nets normalise their inputs, so it does not depend on the data's units).

    Args:
        checkpoint: fastMRI's published state dict or a ``lit_sampler fit`` VarNet checkpoint.
        num_cascades, chans, pools, sens_chans, sens_pools: the architecture; ``None`` = from the
            checkpoint (saved hyper-parameters or the state dict's shapes).
    """

    def __init__(self, checkpoint: str, num_cascades: Optional[int] = None, chans: Optional[int] = None,
                 pools: Optional[int] = None, sens_chans: Optional[int] = None, sens_pools: Optional[int] = None):
        super().__init__()
        self.checkpoint = str(checkpoint)
        network, self.architecture = load_varnet(checkpoint, num_cascades=num_cascades, chans=chans, pools=pools,
                                                 sens_chans=sens_chans, sens_pools=sens_pools)
        self.network = network.requires_grad_(False)

    def __repr__(self) -> str:  # what run_settings.json records
        return f"VarNetBaseline(checkpoint={self.checkpoint!r})"

    @torch.no_grad()
    def forward(self, kspace: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``[B, H, W]`` float magnitude; items of different calibration widths are run apart."""
        masked, vn_mask, widths = varnet_inputs(kspace, mask)
        return run_varnet(self.network, masked, vn_mask, widths)


def run_varnet(network: torch.nn.Module, masked: torch.Tensor, mask: torch.Tensor, widths: list[int]) -> torch.Tensor:
    """``network(masked, mask, width)`` per group of items sharing a calibration width (an int each call)."""
    out = None
    for width in sorted(set(widths)):
        index = torch.tensor([i for i, w in enumerate(widths) if w == width], device=masked.device)
        result = network(masked[index], mask[index], max(width, 1))
        out = result.new_empty(masked.shape[0], *result.shape[1:]) if out is None else out
        out[index] = result
    return out
