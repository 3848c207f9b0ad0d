"""Reconstruct from Python: :class:`Sampler` and :class:`ReconstructionResult`.

    sampler = Sampler.from_checkpoint("demo/model.ckpt", preset="fast")
    result = sampler.reconstruct(kspace, mask, sens_maps, noise_var=nu, num_samples=8)
    result.mean, result.std, result.samples, result.nfe

A notebook-sized front door over the engine the CLI runs (:func:`lit_sampler.api.engine.run_chains`):
the same schedule resolution and option checks (:func:`lit_sampler.sampling.presets.resolve_schedule`, one
rule: a knob given wins over the preset), the same per-slice normalisation
(:mod:`lit_sampler.api.inputs`), the same per-item random streams and network calls. An item
reconstructed here and by ``python -m lit_sampler predict`` with the same knobs, measurement,
``seed`` and ``key`` is bit-identical (on CPU with ``batch_invariant``; to rounding otherwise).

Seed keys. Sample ``n`` of batch item ``b`` draws its initial state and chain noise from
``seeded_generator(seed, f"{key_b}|{n}", "langevin")``, where ``key_b`` is ``key[b]`` (or ``key``
itself for one slice), by default ``f"reconstruct|{b}"``. The pipeline names the same streams by its
item keys ``"file.h5|slice|snr_label|sample"``: pass ``key="file.h5|12|snr_20dB"`` and the data
module's ``seed`` to reproduce its samples (:func:`lit_sampler.data.measure_slice` returns both).

Noise. ``noise_var`` is ν, the complex noise variance per sampled k-space point and coil, in the
units of ``kspace``: the chain's likelihood ``‖A x − y‖²/ν`` needs it, and nothing guesses it.
``snr_db`` is only a label: the SNR a calibration file was made at (its k is keyed by
``snr_label(snr_db)``, e.g. ``snr_20dB``; ``math.inf`` for data without added noise).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np
import torch

from ..data.items import MeasurementBatch
from .engine import AUTOCAST_DTYPES, ChainOptions, item_generators, network_score, run_chains
from ..errors import DataError
from ..evaluation.calibration import Calibration, CalibrationError, file_sha256
from ..evaluation.uncertainty import posterior_summary
from .inputs import ArrayLike, check_inputs, check_noise_var, complete_maps, normalise, per_item, to_data_units
from ..models import load_score_model
from ..physics.fft import channels_to_complex
from ..physics.noise import snr_label
from ..sampling.options import check_network_channels, check_options, default_step_size, sampler_sigmas
from ..sampling.presets import Preset, StepsSpec, resolve_schedule

PRECISIONS = ("32-true", "bf16-mixed", "16-mixed")
OPERATOR = "lit_sampler.physics.operators.MultiCoilMRI"  # (what the calibration settings name the operator)


@dataclass
class ReconstructionResult:
    """What :meth:`Sampler.reconstruct` returns, in the caller's units and array type (numpy, or
    torch on the k-space's device). One slice: ``[H, W]`` images; a batch: a leading ``B`` axis.

    Attributes:
        mean: the posterior mean over the samples that did not diverge, complex ``[H, W]``
            (its magnitude is the volume files' ``reconstruction``).
        std: per-pixel standard deviation of the samples' magnitudes (Bessel-corrected; zero for one
            sample): the error bar of ``|mean|``, as the pipeline writes it.
        samples: every sample, complex ``[N, H, W]`` (diverged ones included; see ``diverged``).
        lower, upper: the calibrated interval ``|mean| ∓ k·std`` (lower clipped at 0) at ``level``,
            with ``calibration``; else ``None``.
        zero_filled: the MVUE zero-filled image of the measurement, complex ``[H, W]``.
        sens_maps: the coil maps used (given or estimated), complex ``[coils, H, W]``.
        nfe: network evaluations per sample chain (an int; per item for a batch).
        start_level: the chains' first level (per item for a batch).
        diverged: per sample, whether its chain diverged (bool ``[N]``, ``[B, N]``).
        scale: the per-slice scale the chain ran at (99th percentile of ``|zero_filled|``).
        noise_var: ν as given.
        k, level, snr_label: the calibration's multiplier, coverage and SNR label (``None`` without).
        keys: the seed key of every sample (``[N]``, ``[B][N]``).
    """

    mean: Any
    std: Any
    samples: Any
    zero_filled: Any
    sens_maps: Any
    nfe: Union[int, list[int]]
    start_level: Union[int, list[int]]
    diverged: Any
    scale: Union[float, list[float]]
    noise_var: Union[float, list[float]]
    lower: Any = None
    upper: Any = None
    k: Union[float, list[float], None] = None
    level: Optional[float] = None
    snr_label: Union[str, list[str], None] = None
    keys: list = field(default_factory=list)


class Sampler:
    """A score network with a resolved sampler schedule, ready to reconstruct arrays.

    Build it with :meth:`from_checkpoint` (any checkpoint :func:`lit_sampler.models.load_score_model`
    reads), or from a network in memory. The keyword arguments are the
    :class:`~lit_sampler.lightning.LangevinSampler` options of the same names and meanings (and the
    same checks): ``preset``, the schedule knobs ``step_size``, ``steps_each``, ``sigma_offset``,
    ``levels``, ``start_factor``, ``noise_boost``, ``sampler``, ``eta``, ``dc_steps``, ``init``,
    ``final_denoise`` (unset: the preset's value, else the plain default), ``init_sigma``,
    ``dc_boost``, ``data_consistency``, ``norm_matched_weight``, ``cg_iterations`` (the ``cg_sense``
    warm start's), ``divergence_factor``, ``batch_invariant``, ``call_size``, ``channels_last``,
    ``sigmas``.

    Args:
        network: the score network ``network(x [B, 2, H, W], labels [B]) → s(x, σ_labels)``.
        preset: ``reference``, ``balanced`` (default) or ``fast`` (:mod:`lit_sampler.sampling.presets`);
            ``None``: the plain defaults.
        device: where the chains run; ``None``: CUDA when available, else the CPU.
        precision: ``32-true`` (default), ``bf16-mixed`` or ``16-mixed``: the network alone under
            that autocast dtype (FFTs, data consistency and the update stay float32).
        batch_size: chains run together (items × samples are cut into batches of this size; on
            CPU with ``batch_invariant`` the results do not depend on it).
        checkpoint: the file the network came from (recorded, and hashed to check a calibration).
        use_ema: recorded for the calibration check (:meth:`from_checkpoint` loads accordingly).
    """

    def __init__(
        self,
        network: torch.nn.Module,
        *,
        preset: Optional[Preset] = "balanced",
        device: Union[str, torch.device, None] = None,
        precision: str = "32-true",
        sigmas: Optional[list[float]] = None,
        step_size: Optional[float] = None,
        steps_each: Optional[StepsSpec] = None,
        sigma_offset: Union[int, Literal["auto"], None] = None,
        levels: Union[int, list[int], Literal["all"], None] = None,
        start_factor: Optional[float] = None,
        noise_boost: Optional[float] = None,
        sampler: Optional[Literal["langevin", "decomposed"]] = None,
        eta: Optional[float] = None,
        dc_steps: Optional[int] = None,
        init: Optional[Literal["reference", "uniform", "noise", "zero_filled", "cg_sense"]] = None,
        final_denoise: Optional[bool] = None,
        init_sigma: Optional[float] = None,
        dc_boost: float = 1.0,
        data_consistency: Literal["gaussian", "norm_matched"] = "gaussian",
        norm_matched_weight: float = 5.0,
        cg_iterations: int = 10,
        divergence_factor: float = 100.0,
        batch_size: int = 8,
        batch_invariant: bool = True,
        call_size: int = 4,
        channels_last: bool = True,
        checkpoint: Union[str, Path, None] = None,
        use_ema: bool = True,
    ):
        if str(precision) in ("32", "32-true"):
            precision = "32-true"
        elif precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        if int(batch_size) < 1:
            raise ValueError(f"batch_size must be a positive number of chains, got {batch_size}")
        self.device = torch.device(device if device is not None else ("cuda" if torch.cuda.is_available() else "cpu"))
        check_network_channels(network, False, str(checkpoint or "network"))
        self.network = network.eval().requires_grad_(False).to(self.device)
        self.sigmas = sampler_sigmas(network, sigmas).to(self.device)
        knobs = dict(sampler=sampler, steps_each=steps_each, sigma_offset=sigma_offset, levels=levels, init=init,
                     final_denoise=final_denoise, start_factor=start_factor, noise_boost=noise_boost, eta=eta,
                     dc_steps=dc_steps)
        self.schedule = resolve_schedule(self.sigmas.tolist(), preset=preset, **knobs)
        check_options(self.schedule, prior_sampling=False, cg_iterations=cg_iterations, call_size=call_size,
                      step_size=step_size, cuda_graph=False, compile=False, compile_mode=None)
        self.step_size = float(step_size) if step_size is not None else default_step_size(self.sigmas, max(self.schedule.steps))
        self.options = ChainOptions(data_consistency=data_consistency, norm_matched_weight=norm_matched_weight,
                                    dc_boost=dc_boost, init_sigma=init_sigma, cg_iterations=cg_iterations,
                                    divergence_factor=divergence_factor)
        self.precision = precision
        self.autocast_dtype = AUTOCAST_DTYPES.get(precision)
        self.batch_size = int(batch_size)
        self.batch_invariant, self.call_size, self.channels_last = bool(batch_invariant), int(call_size), bool(channels_last)
        self.checkpoint = None if checkpoint is None else Path(checkpoint)
        self._settings = {"use_ema": use_ema, "sigmas": sigmas, "dc_boost": dc_boost, "prior_sampling": False,
                          "data_consistency": data_consistency, "norm_matched_weight": norm_matched_weight,
                          "init_sigma": init_sigma, "operator": OPERATOR}
        self._checkpoint_sha256: Optional[str] = None

    @classmethod
    def from_checkpoint(cls, path: Union[str, Path], preset: Optional[Preset] = "balanced",
                        device: Union[str, torch.device, None] = None, precision: str = "32-true", *,
                        use_ema: bool = True, **options: Any) -> "Sampler":
        """A sampler for the score network in ``path`` (EMA weights when the file has them, unless
        ``use_ema=False``); ``options``: the keyword arguments of :class:`Sampler`.

        Raises:
            CheckpointError: the file cannot be read as a score network (the message names the key).
        """
        network = load_score_model(path, use_ema=use_ema)
        return cls(network, preset=preset, device=device, precision=precision, checkpoint=path, use_ema=use_ema, **options)

    # ------------------------------------------------------------------ the network
    def score(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """s(x, i) ``[B, 2, H, W]`` float32, called as the CLI calls it (:func:`lit_sampler.api.engine.network_score`)."""
        return network_score(self.network, x, labels, autocast_dtype=self.autocast_dtype, channels_last=self.channels_last,
                             batch_invariant=self.batch_invariant, call_size=self.call_size)

    def denoiser(self):
        """The network as a denoiser ``D(x, σ) = x + σ² s(x, σ)`` (:class:`lit_sampler.models.ScoreDenoiser`)."""
        from ..models.denoiser import ScoreDenoiser

        return ScoreDenoiser(self.network, self.sigmas)

    @property
    def network_evaluations(self) -> int:
        """Network calls of a chain that runs every level of the schedule (with ``sigma_offset: auto``
        the maximum; ``result.nfe`` has each chain's)."""
        return self.schedule.evaluations(self.schedule.levels[0])

    def describe(self) -> str:
        """One line: what a chain runs and where each knob came from (the CLI's ``sampler:`` line)."""
        return self.schedule.setup_line(len(self.sigmas)) + f"; step_size={self.step_size:.4g}"

    # ------------------------------------------------------------------ reconstruct
    def reconstruct(
        self,
        kspace: ArrayLike,
        mask: ArrayLike,
        sens_maps: Optional[ArrayLike] = None,
        *,
        noise_var: Union[float, Sequence[float], None] = None,
        snr_db: Union[float, Sequence[float], None] = None,
        num_samples: int = 8,
        seed: int = 0,
        key: Union[str, Sequence[str], None] = None,
        calibration: Union[str, Path, Calibration, None] = None,
        level: float = 0.9,
        progress: bool = True,
    ) -> ReconstructionResult:
        """Posterior samples of one slice or a batch, their mean and spread, in the caller's units.

        Args:
            kspace: complex ``[coils, H, W]`` or ``[B, coils, H, W]``, numpy or torch (entries
                outside the mask are ignored). Shapes and types: :mod:`lit_sampler.api.inputs`.
            mask: ``[W]`` or ``[H, W]`` 0/1 for every item, or ``[B, W]`` / ``[B, H, W]`` per item.
            sens_maps: complex ``[coils, H, W]`` (or ``[B, coils, H, W]``); ``None``: ESPIRiT from
                the fully sampled centre of the mask (:func:`lit_sampler.api.inputs.estimate_maps`),
                ``S = 1`` for single-coil data.
            noise_var: ν, the complex noise variance per sampled point and coil in the units of
                ``kspace`` (one number, or one per item); 0 for noiseless data. Required.
            snr_db: the calibration's SNR label for these data (e.g. 20 → ``snr_20dB``; ``math.inf``:
                no added noise); only read with ``calibration``.
            num_samples: posterior samples per slice (≥ 2 for a spread).
            seed, key: the random streams (module docstring): sample ``n`` of item ``b`` uses
                ``(seed, f"{key_b}|{n}")``; ``key`` names a slice (``"file.h5|12|snr_20dB"``, one
                per item for a batch), by default ``"reconstruct|b"``.
            calibration: a calibration file (``python -m lit_sampler calibrate``) or
                :class:`~lit_sampler.evaluation.calibration.Calibration`: adds ``lower``/``upper`` at ``level``.
                It must have been made for this checkpoint, schedule, step size and ``num_samples``
                (checked, one error naming the first difference), and for the mask you use (not
                checked: an array cannot be compared with the mask function it was made with).
            level: the calibrated coverage (one of the file's levels).
            progress: show a progress bar over the chains' levels.

        Raises:
            DataError: a bad array (argument named, expected vs found shapes), a missing or
                negative ``noise_var``, a bad ``key``, or no fully sampled centre for ESPIRiT.
            CalibrationError: a calibration without k for ``snr_db``/``level`` or made for other settings.
        """
        checked = check_inputs(kspace, mask, sens_maps)
        batch = len(checked)
        noise = self._noise(noise_var, snr_db, batch)
        num_samples = _positive_int(num_samples, "num_samples")
        seed = _integer(seed, "seed")
        keys = _slice_keys(key, batch, checked.batched)
        interval = None if calibration is None else self._calibration(calibration, snr_db, level, batch, num_samples)
        maps = complete_maps(checked)
        data = normalise(checked, maps, noise)
        samples, starts, nfe, diverged = self._run(data, keys, seed, num_samples, progress)
        return self._result(checked, data, maps, noise, samples, starts, nfe, diverged, keys, num_samples, interval)

    def _noise(self, noise_var, snr_db, batch: int) -> list[float]:
        if noise_var is None:
            hint = (f"snr_db={snr_db!r} is only the calibration's label and does not say ν; " if snr_db is not None else "")
            raise DataError(
                "noise_var: required: " + hint + "give ν, the complex noise variance per sampled k-space point "
                "and coil in the units of kspace (0 for noiseless data; for scanner data, e.g. the variance of a "
                "noise prescan's samples; for data you simulated at an SNR, the ν you added: "
                "lit_sampler.physics.noise.add_measurement_noise returns it)"
            )
        values = check_noise_var(noise_var, batch)
        for nu, snr in zip(values, _snr_values(snr_db, batch)):
            if snr is not None and nu == 0:
                raise DataError(f"noise_var: 0 (noiseless) but snr_db={snr:g} says noise was added at that SNR; "
                                "give the ν of the data, or snr_db=math.inf for noiseless data")
        return values

    def _calibration(self, calibration, snr_db, level: float, batch: int,
                     num_samples: int) -> tuple[Calibration, list[str], list[float], float]:
        """The calibration checked against this sampler's settings, the label and k of every item, the level."""
        if not isinstance(calibration, Calibration):
            calibration = Calibration(calibration)
        if num_samples < 2:
            raise CalibrationError(f"calibration: a calibrated interval needs num_samples >= 2 (a spread), got {num_samples}")
        if snr_db is None:
            raise CalibrationError(
                f"snr_db: the calibration {calibration.path} keys k by SNR label (it has {sorted(calibration.k)}); "
                "give the SNR the data were measured at (snr_db=20 reads snr_20dB; math.inf: no added noise)"
            )
        labels = [snr_label(s) for s in _snr_values(snr_db, batch)]
        calibration.check({**calibration.settings, **self.calibration_settings(num_samples)})
        return calibration, labels, [calibration.scale(label, level) for label in labels], float(level)

    def calibration_settings(self, num_samples: int) -> dict[str, Any]:
        """What a calibration must have been made for that this sampler can check (the writer's
        :func:`lit_sampler.outputs.run_dir.calibration_settings`, less the mask and the data)."""
        if self._checkpoint_sha256 is None:
            self._checkpoint_sha256 = file_sha256(self.checkpoint) if self.checkpoint is not None else "score_model (no file)"
        return {**self._settings, "checkpoint_sha256": self._checkpoint_sha256, "schedule": self.schedule.describe(),
                "step_size": float(self.step_size), "num_samples": int(num_samples)}

    def _run(self, data, keys: list[str], seed: int, num_samples: int, progress: bool):
        """Every (item, sample) chain, in batches of ``batch_size``: samples ``[B, N, H, W]`` in data
        units (CPU), first levels and NFE per item, divergence per sample."""
        items = [(b, n) for b in range(len(keys)) for n in range(num_samples)]
        chunks = [items[i:i + self.batch_size] for i in range(0, len(items), self.batch_size)]
        bar = _progress_bar(progress, len(chunks), len(self.schedule.levels))
        height, width = data.kspace.shape[-2:]
        samples = torch.empty(len(keys), num_samples, height, width, dtype=torch.complex64)
        diverged = torch.zeros(len(keys), num_samples, dtype=torch.bool)
        starts, nfe = [0] * len(keys), [0] * len(keys)
        try:
            for chunk in chunks:
                batch = self._batch(data, keys, seed, chunk)
                run = run_chains(self.score, self.sigmas, self.schedule, self.step_size, batch,
                                 item_generators(batch.seed.tolist(), batch.item_key, self.device), self.options,
                                 device=self.device, listeners=[bar.listener()] if bar else [])
                images = to_data_units(channels_to_complex(run.x)[:, 0], batch.scale).cpu()
                for i, (b, n) in enumerate(chunk):
                    samples[b, n] = images[i]
                    diverged[b, n] = bool(run.tracker.diverged_level[i] >= 0)
                    starts[b], nfe[b] = run.start_levels[i], run.nfe[i]
                if bar:
                    bar.next_batch()
        finally:
            if bar:
                bar.close()
        failed = [f"{keys[b]}|{n}" for b, n in diverged.nonzero().tolist()]
        if failed:  # (one warning per call: the pipeline records such items as failed and goes on)
            shown = ", ".join(failed[:3]) + (f" and {len(failed) - 3} more" if len(failed) > 3 else "")
            warnings.warn(f"{len(failed)} of {diverged.numel()} chains diverged ({shown}); they are left out of mean "
                          f"and std (result.diverged); lower step_size (now {self.step_size:.3g})", RuntimeWarning, stacklevel=3)
        return samples, starts, nfe, diverged

    def _batch(self, data, keys: list[str], seed: int, chunk: list[tuple[int, int]]) -> MeasurementBatch:
        """The chains of ``chunk`` ((item, sample) pairs) as the data modules collate them."""
        index = torch.tensor([b for b, _ in chunk])
        height, width = data.kspace.shape[-2:]
        count = len(chunk)

        def take(tensor: torch.Tensor) -> torch.Tensor:
            return tensor[index].to(self.device)

        return MeasurementBatch(
            item_key=[f"{keys[b]}|{n}" for b, n in chunk], fname=[keys[b] for b, _ in chunk],
            slice_num=index.clone(), sample_idx=torch.tensor([n for _, n in chunk]),
            seed=torch.full((count,), seed, dtype=torch.int64), snr_db=torch.full((count,), math.inf),
            image_shape=torch.tensor([[2, height, width]] * count, dtype=torch.int64),
            kspace=take(data.kspace), mask=take(data.mask), sens_maps=take(data.sens_maps),
            target=torch.zeros(count, height, width, dtype=torch.complex64, device=self.device),
            has_target=torch.zeros(count, dtype=torch.bool, device=self.device), zero_filled=take(data.zero_filled),
            scale=take(data.scale), noise_var=take(data.noise_var),
        )

    def _result(self, checked, data, maps, noise, samples, starts, nfe, diverged, keys, num_samples,
                interval) -> ReconstructionResult:
        means, stds = [], []
        for b in range(len(keys)):
            mean, std, _ = posterior_summary(samples[b], ~diverged[b])
            means.append(mean)
            stds.append(std)
        mean, std = torch.stack(means), torch.stack(stds)
        lower = upper = None
        k = labels = None
        if interval is not None:
            _, labels, k, _ = interval
            multiplier = torch.tensor(k, dtype=std.dtype).reshape(-1, 1, 1)
            magnitude = mean.abs()
            lower, upper = (magnitude - multiplier * std).clamp_min(0), magnitude + multiplier * std
        zero_filled = to_data_units(data.zero_filled, data.scale)
        one = (lambda v: v) if checked.batched else (lambda v: None if v is None else v[0])
        give = checked.kind.give
        return ReconstructionResult(
            mean=give(one(mean)), std=give(one(std)), samples=give(one(samples)), zero_filled=give(one(zero_filled)),
            sens_maps=give(one(maps)), nfe=one(nfe), start_level=one(starts), diverged=give(one(diverged)),
            scale=one(data.scale.tolist()), noise_var=one(noise), lower=give(one(lower)), upper=give(one(upper)),
            k=one(k), level=None if interval is None else interval[3],
            snr_label=one(labels), keys=one([[f"{keys[b]}|{n}" for n in range(num_samples)] for b in range(len(keys))]),
        )


def _snr_values(snr_db, batch: int) -> list[Optional[float]]:
    """``snr_db`` per item: a finite number in dB, or ``None`` for no added noise (``math.inf``)."""
    values = []
    for value in per_item(snr_db, "snr_db", batch):
        if value is None:
            values.append(None)
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value) or value == -math.inf:
            raise DataError(f"snr_db: expected an SNR in dB (math.inf: no added noise), found {value!r}")
        values.append(None if math.isinf(value) else float(value))
    return values


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise DataError(f"{name}: expected an integer, found {value!r}")
    return int(value)


def _positive_int(value: Any, name: str) -> int:
    if _integer(value, name) < 1:
        raise DataError(f"{name}: expected a positive integer, found {value!r}")
    return int(value)


def _slice_keys(key, batch: int, batched: bool) -> list[str]:
    """Each item's slice key (module docstring): given, or ``reconstruct|b``."""
    if key is None:
        return [f"reconstruct|{b}" for b in range(batch)]
    keys = [key] if isinstance(key, str) else list(key)
    if isinstance(key, str) and batched and batch > 1:
        raise DataError(f"key: one key {key!r} for a batch of {batch} would give every item the same random streams; "
                        f"give {batch} keys (one per item)")
    if len(keys) != batch or not all(isinstance(k, str) and k for k in keys):
        raise DataError(f"key: expected {'one string' if batch == 1 else f'{batch} strings (one per item)'}, found {key!r}")
    for text in keys:
        parts = text.rsplit("|", 3)
        if len(parts) == 4 and parts[2].startswith("snr_") and parts[3].isdigit():
            raise DataError(f"key: {text!r} names a sample (the pipeline's item key ends in the sample index); give the "
                            f"slice's key {parts[0] + '|' + parts[1] + '|' + parts[2]!r}: sample n uses '<key>|n'")
    return keys


class _Progress:
    """One tqdm bar over the levels of every chain batch (the chains report each level run)."""

    def __init__(self, batches: int, levels: int):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=batches * levels, unit="level", desc="chains", leave=False)
        self.levels = levels
        self.done = 0  # levels passed in the current batch

    def listener(self):
        def on_level(info: dict[str, Any]) -> None:
            reached = int(info.get("position", self.done)) + 1
            self.bar.update(reached - self.done)
            self.done = reached
        return on_level

    def next_batch(self) -> None:
        self.bar.update(self.levels - self.done)  # (levels after the last one reported: none, or none ran)
        self.done = 0

    def close(self) -> None:
        self.bar.close()


def _progress_bar(enabled: bool, batches: int, levels: int) -> Optional[_Progress]:
    return _Progress(batches, levels) if enabled else None
