"""The Lightning prediction module: one ``predict_step`` runs a whole annealed Langevin chain
for a batch of measurements (or of prior samples) and returns reconstructions in data units.

The math lives in :mod:`lit_sampler.sampling`; this file only wires it to Lightning: it builds the
operator and data-consistency rule per batch, draws every random number from generators seeded
per item (so results never depend on batch size, order or the number of processes), runs the
score network under the trainer's precision while keeping FFTs, data consistency and the
Langevin update in float32, and accumulates per-item metrics that are synced across ranks.
"""

from __future__ import annotations

import importlib
import logging
from typing import Any, Literal

import pytorch_lightning as pl
import torch

from .baselines import CS_METHODS, METHODS, cg_sense, compressed_sensing
from .chain_tracker import ChainTracker
from .data.items import MeasurementBatch
from .errors import DivergenceError
from .fft import channels_to_complex, complex_to_channels
from .metrics import item_quality, quality_metrics
from .models import load_score_model
from .models.fixed_shape import fixed_shape_call
from .prediction import Prediction
from .presets import Preset, StepsSpec, resolve_schedule
from .sampling import GaussianDataConsistency, NormMatchedDataConsistency, annealed_langevin, randn_like
from .schedules import technique4_step_size
from .seeding import seeded_generator
from .warm_start import auto_start_levels, zero_filled_error

log = logging.getLogger(__name__)

AUTOCAST_DTYPES = {"bf16-mixed": torch.bfloat16, "16-mixed": torch.float16}


def import_object(dotted: str) -> Any:
    """``"package.module.Name"`` → the object (used for the configurable operator class)."""
    module_name, _, name = dotted.rpartition(".")
    try:
        return getattr(importlib.import_module(module_name), name)
    except (ImportError, AttributeError, ValueError) as error:
        raise ValueError(f"operator: cannot import {dotted!r} ({error})") from error


class LangevinSampler(pl.LightningModule):
    """Posterior (or prior) sampling with a score network and annealed Langevin dynamics.

    The reference pipeline's knobs keep their names: ``step_size`` (ε), ``steps_each`` (T),
    ``sigma_offset`` (k), ``noise_boost`` (β), ``dc_boost`` (λ), ``prior_sampling``; ``seed``,
    ``snr_range``, ``image_size`` and ``num_samples`` belong to the data module.

    Args:
        checkpoint: a score-network checkpoint in any format :func:`lit_sampler.models.load_score_model`
            reads (ncsnv2 list, the reference's dict, a state dict, a ``lit_sampler fit`` checkpoint).
        score_model: instead of ``checkpoint``, any ``torch.nn.Module`` with ``forward(x, labels)``
            (configured by ``class_path``); it must carry a ``sigmas`` buffer unless ``sigmas`` is given.
        use_ema: take the EMA weights of a checkpoint when it has them.
        sigmas: the noise levels σ_0 > … > σ_{L−1}; default: the network's own ``sigmas``.
        step_size: ε, with α_i = ε (σ_i/σ_{L−1})². ``None`` chooses it by Song & Ermon's technique 4
            (the reference does so when the value is missing, and always for prior sampling).
        steps_each: T, Langevin steps per level; or ``{first level: steps}`` pieces, e.g.
            ``{0: 3, 1801: 4}`` (Jalal et al.: 3 steps up to level 1800, then 4).
        sigma_offset: k, skip the k largest levels; ``auto`` (with a warm ``init``) picks k per item
            from the data (:mod:`lit_sampler.warm_start`: σ_k ≥ ``start_factor`` × the predicted RMS
            error of the zero-filled image).
        levels: run only some levels: a count (evenly spaced in log σ from k to L−1; from 0 with
            ``sigma_offset: auto``) or a list of indices. Each kept level's step is rescaled to do
            the work of the levels it stands for (:func:`lit_sampler.schedules.level_step_sizes`).
        start_factor: the factor of ``sigma_offset: auto``.
        preset: ``reference``, ``balanced`` or ``fast`` (:mod:`lit_sampler.presets`): sets
            ``init``, ``sigma_offset``, ``levels``, ``steps_each`` and ``final_denoise`` relative to
            the network's σ schedule (``reference`` keeps the configured ``sigma_offset``).
        noise_boost: β; 1 reproduces the reference's noise, 2 is textbook Langevin dynamics.
        dc_boost: λ, the multiplier of the Gaussian data-consistency term.
        prior_sampling: sample the prior (no data consistency), as ``prior_sampling: 1`` in the reference.
        data_consistency: ``gaussian`` (the reference rule λ(AᴴAx − Aᴴy)/(ν/2 + σ²)) or
            ``norm_matched`` (Jalal et al. 2021: the data gradient scaled to ``norm_matched_weight``·‖score‖).
        norm_matched_weight: w of the norm-matched rule (``mse`` in Jalal et al.'s configs, 5.0).
        final_denoise: finish with the Tweedie step x + σ_{L−1}² s(x, L−1) (Song & Ermon 2020).
        init: initial state. ``reference``: the reference pipeline's (posterior CN(0, 1), i.e.
            N(0, ½) per real entry; prior N(0, 1) per entry). ``uniform``: U[0, 1) per entry
            (Jalal et al.'s ``torch.rand``). ``noise``: N(0, init_sigma²). ``zero_filled`` /
            ``cg_sense``: that estimate plus N(0, init_sigma²) noise (a warm start: with
            ``sigma_offset`` it skips the largest levels, Chung et al. 2022).
        init_sigma: standard deviation of the initial noise for ``noise`` / ``zero_filled``;
            default σ at the first level run (σ_k).
        operator: import path of the forward-operator class, built per batch as
            ``cls(sens_maps=[B, coils, H, W], mask=[B, 1, H, W])``; any class with
            ``forward``/``adjoint`` works (the reference's "forward class").
        cg_iterations: iterations of the CG-SENSE baseline reported beside zero-filled (0: off).
        cs_lambdas: compressed-sensing baselines to report too (sigpy, the ``baselines`` extra):
            ``{l1_wavelet: λ, total_variation: λ}``, λ one value or one per SNR
            (``{"20": 3e-3, "5": 3e-2}``, keys as the SNR in dB is written; ``inf`` for no noise).
            Choose λ on validation data (``scripts/tune_baselines.py``).
        cs_iterations: iterations of each compressed-sensing solver.
        divergence_factor: an item has diverged once its RMS exceeds ``divergence_factor·(1 + σ_i)``
            (images are normalised to a 99th percentile of 1) or is not finite.
        fail_fast: stop the run at the first diverged item instead of recording it as failed.
        track_best_nrmse: DIAGNOSTIC that uses the ground truth: also return the iterate with the
            lowest NRMSE against the target at the end of a level, as the reference pipeline does.
            Never a reconstruction method; outputs are labelled ``oracle_best``.
        channels_last: feed the network in channels-last memory format (faster convolutions on CPU
            and GPU; the reference's ``view_as_real(x).permute(0, 3, 1, 2)`` happens to give this layout).
        compile: ``torch.compile`` the score network (first batch pays the compilation).
        compile_mode: ``torch.compile`` mode; ``reduce-overhead`` captures the network in CUDA
            graphs on GPU (one replay per call instead of hundreds of kernel launches).
        batch_invariant: on CPU, call the network only with batches of exactly ``call_size``
            items (chunks, the last one padded), because oneDNN picks its convolution algorithm,
            hence its rounding, from the shape: an item's output bits then depend on its own input
            alone, so results are bit-identical whatever the batch size, item order or number of
            processes (``lit_sampler.models.fixed_shape``, docs/reliability.md §2). ``false`` calls
            the network with whatever batch arrives (results then agree to rounding). No effect on
            GPU (not measured there; the guarantee on GPU is equality to rounding).
        call_size: items per network call in the ``batch_invariant`` mode; results depend on it
            (and on nothing else of the batching). Memory grows linearly with it; a batch size
            that is a multiple of it wastes no work on padding (docs/benchmarks.md).
        cuda_graph: on a CUDA device, capture one whole Langevin step (score network, data
            consistency, update) in a CUDA graph per batch and replay it for every step, with the
            noise drawn outside the graph from the same per-item generators (results equal the eager
            path's to rounding). Removes the per-step kernel-launch and Python overhead. Needs a CUDA
            device (an error otherwise) and excludes ``compile_mode`` values that capture graphs themselves.
    """

    def __init__(
        self,
        checkpoint: str | None = None,
        score_model: torch.nn.Module | None = None,
        use_ema: bool = True,
        sigmas: list[float] | None = None,
        step_size: float | None = None,
        steps_each: StepsSpec = 3,
        sigma_offset: int | Literal["auto"] = 0,
        levels: int | list[int] | None = None,
        start_factor: float = 2.0,
        preset: Preset | None = None,
        noise_boost: float = 1.0,
        dc_boost: float = 1.0,
        prior_sampling: bool = False,
        data_consistency: Literal["gaussian", "norm_matched"] = "gaussian",
        norm_matched_weight: float = 5.0,
        final_denoise: bool = False,
        init: Literal["reference", "uniform", "noise", "zero_filled", "cg_sense"] = "reference",
        init_sigma: float | None = None,
        operator: str = "lit_sampler.operators.MultiCoilMRI",
        cg_iterations: int = 10,
        cs_lambdas: dict[str, float | dict[str, float]] | None = None,
        cs_iterations: int = 100,
        divergence_factor: float = 100.0,
        fail_fast: bool = False,
        track_best_nrmse: bool = False,
        channels_last: bool = True,
        compile: bool = False,
        compile_mode: str | None = None,
        batch_invariant: bool = True,
        call_size: int = 8,
        cuda_graph: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["score_model"])
        if (checkpoint is None) == (score_model is None):
            raise ValueError("give exactly one of `checkpoint` (a file) and `score_model` (a module)")
        network = load_score_model(checkpoint, use_ema=use_ema) if checkpoint is not None else score_model
        channels = getattr(network, "in_channels", None)
        if not prior_sampling and isinstance(channels, int) and channels != 2:
            raise ValueError(
                f"{checkpoint or 'score_model'}: the score network takes {channels} input channels but posterior "
                "MRI sampling needs 2 (one complex image as real, imaginary); use a checkpoint trained on complex images"
            )
        self.score_model = network.eval().requires_grad_(False)
        self.register_buffer("sigmas", self._resolve_sigmas(network, sigmas), persistent=False)
        self.schedule = resolve_schedule(
            self.sigmas.tolist(), preset=preset, steps_each=steps_each, sigma_offset=sigma_offset, levels=levels,
            init=init, final_denoise=final_denoise, start_factor=start_factor,
        )
        if prior_sampling and (self.schedule.auto_start or self.schedule.init in ("zero_filled", "cg_sense")):
            raise ValueError(f"prior sampling has no data: init {self.schedule.init!r} and sigma_offset: auto need a measurement")
        if self.schedule.init == "cg_sense" and cg_iterations < 1:
            raise ValueError("init: cg_sense needs cg_iterations >= 1")
        self._check_cs_lambdas(cs_lambdas)
        if call_size < 1:
            raise ValueError(f"call_size must be a positive number of items per network call, got {call_size}")
        if step_size is not None and not step_size > 0:
            raise ValueError(f"step_size must be positive, got {step_size}")
        if cuda_graph and compile and compile_mode in ("reduce-overhead", "max-autotune"):
            raise ValueError(
                f"cuda_graph: the step is already captured; compile_mode {compile_mode!r} would nest CUDA graphs"
            )
        self.step_size = self._resolve_step_size()
        self.operator_class = import_object(operator)
        self._autocast_dtype: torch.dtype | None = None  # the trainer's mixed precision, set at predict start
        self._compiled: dict[str, Any] = {}  # a dict, so the compiled wrapper is not registered as a submodule
        self._level_listeners: list = []
        # this rank's per-item quality, for the live scalars only (never synced: rank 0 logs its own)
        self.quality = torch.nn.ModuleDict(quality_metrics(METHODS, sync_on_compute=False))
        self._items_done = 0

    @staticmethod
    def _resolve_sigmas(network: torch.nn.Module, sigmas: list[float] | None) -> torch.Tensor:
        stored = getattr(network, "sigmas", None)
        if sigmas is not None:
            chosen = torch.as_tensor(sigmas, dtype=torch.float32)
            if isinstance(stored, torch.Tensor) and stored.numel() != chosen.numel():
                raise ValueError(
                    f"sigmas: {chosen.numel()} levels given but the network was trained with {stored.numel()}"
                )
        elif isinstance(stored, torch.Tensor):
            chosen = stored.detach().float().cpu()
        else:
            raise ValueError("sigmas: the score model has no `sigmas` buffer; give the noise levels in the config")
        if chosen.dim() != 1 or chosen.numel() < 2 or not bool(torch.all(chosen[1:] < chosen[:-1])):
            raise ValueError("sigmas must be a strictly descending list of at least two noise levels")
        return chosen.clone()

    # ------------------------------------------------------------------ knobs derived once
    def _resolve_step_size(self) -> float:
        """ε: the configured one, or Song & Ermon's technique 4 for this schedule and T."""
        if self.hparams.step_size is not None:
            return float(self.hparams.step_size)
        sigmas = self.sigmas.double()
        gamma = float((sigmas[:-1] / sigmas[1:]).mean())
        return technique4_step_size(float(sigmas[-1]), gamma, max(self.schedule.steps))

    @staticmethod
    def _check_cs_lambdas(cs_lambdas) -> None:
        for method, value in (cs_lambdas or {}).items():
            if method not in CS_METHODS:
                raise ValueError(f"cs_lambdas: unknown method {method!r}; expected one of {list(CS_METHODS)}")
            for lamda in (value.values() if isinstance(value, dict) else [value]):
                if not float(lamda) >= 0:
                    raise ValueError(f"cs_lambdas.{method}: λ must be >= 0, got {lamda}")
        if cs_lambdas:
            from .baselines import _sigpy_mri

            _sigpy_mri()  # fail at configuration time, not after the first chain

    def cs_lambda(self, method: str, snr_db: float) -> float | None:
        """The configured λ of a compressed-sensing baseline at ``snr_db`` (None: not configured)."""
        value = (self.hparams.cs_lambdas or {}).get(method)
        if not isinstance(value, dict):
            return None if value is None else float(value)
        key = "inf" if not torch.isfinite(torch.tensor(float(snr_db))) else f"{float(snr_db):g}"
        if key not in value:
            raise ValueError(f"cs_lambdas.{method}: no λ for SNR {key} dB (given for {sorted(value)})")
        return float(value[key])

    @property
    def network_evaluations(self) -> int:
        """Score-network calls of a chain that runs every level of the schedule (exact for a fixed
        start; with ``sigma_offset: auto`` the maximum, each item's own count is in its outputs)."""
        return self.schedule.evaluations(self.schedule.levels[0])

    def add_level_listener(self, listener) -> None:
        """``listener(info)`` is called after every level of every chain (progress bars use this)."""
        self._level_listeners.append(listener)

    # ------------------------------------------------------------------ the network
    def _network(self):
        if not self.hparams.compile:
            return self.score_model
        if "network" not in self._compiled:
            self._compiled["network"] = torch.compile(self.score_model, mode=self.hparams.compile_mode)
        return self._compiled["network"]

    def _score(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """s(x, i) in float32; the network alone runs under the trainer's autocast dtype."""
        dtype = self._autocast_dtype
        param = next(self.score_model.parameters(), None)
        net_input = x if param is None or dtype is not None else x.to(param.dtype)
        network = self._network()
        layout = torch.channels_last if self.hparams.channels_last else torch.contiguous_format

        def call(images: torch.Tensor, levels: torch.Tensor) -> torch.Tensor:
            return network(images.contiguous(memory_format=layout), levels)

        # no weight-cast cache inside a captured graph (each weight is cast once per call anyway)
        cache = not self.hparams.cuda_graph
        with torch.autocast(x.device.type, dtype=dtype or torch.float32, enabled=dtype is not None, cache_enabled=cache):
            if self.hparams.batch_invariant and x.device.type == "cpu":
                out = fixed_shape_call(call, net_input, labels, self.hparams.call_size)
            else:
                out = call(net_input, labels)
        return out.float()

    def on_predict_start(self) -> None:
        if self.hparams.cuda_graph and self.device.type != "cuda":
            raise ValueError(
                f"cuda_graph: true needs a CUDA device, but the sampler runs on {self.device.type}; "
                "set cuda_graph: false (the option only removes GPU launch overhead)"
            )
        self._autocast_dtype = AUTOCAST_DTYPES.get(str(self.trainer.precision))

    # ------------------------------------------------------------------ one batch
    def _generators(self, batch: MeasurementBatch) -> list[torch.Generator]:
        return [
            seeded_generator(int(seed), key, "langevin", device=self.device)
            for seed, key in zip(batch.seed.tolist(), batch.item_key)
        ]

    def _start_levels(self, batch: MeasurementBatch) -> list[int]:
        """Each item's first level: the schedule's, or (``sigma_offset: auto``) one picked from its data."""
        schedule = self.schedule
        if not schedule.auto_start:
            return [schedule.levels[0]] * len(batch)
        error = zero_filled_error(batch.kspace, batch.mask, batch.noise_var.double())
        return auto_start_levels(self.sigmas.tolist(), error, schedule.start_factor, schedule.levels)

    def _initial_state(self, shape, generators, starts: list[int], estimate) -> torch.Tensor:
        init = self.schedule.init
        if init == "uniform":  # torch.rand per item, as Jalal et al.'s chain starts
            return torch.stack([torch.rand(shape[1:], generator=g, device=self.device) for g in generators])
        noise = randn_like(torch.empty(shape, device=self.device), generators)
        if init == "reference":
            return noise if self.hparams.prior_sampling else noise * 0.5**0.5
        sigma = self.hparams.init_sigma
        sigma = self.sigmas[torch.tensor(starts)].to(self.device) if sigma is None else torch.full((shape[0],), float(sigma), device=self.device)
        noise = noise * sigma.reshape(-1, 1, 1, 1)
        if init == "noise" or self.hparams.prior_sampling:
            return noise
        return complex_to_channels(estimate[:, None]) + noise

    def _data_consistency(self, batch: MeasurementBatch, operator):
        if self.hparams.data_consistency == "norm_matched":
            return NormMatchedDataConsistency(operator, batch.kspace, weight=self.hparams.norm_matched_weight)
        return GaussianDataConsistency(operator, batch.kspace, batch.noise_var.float(), dc_boost=self.hparams.dc_boost)

    def predict_step(self, batch: MeasurementBatch, batch_idx: int = 0) -> Prediction | None:
        if batch.is_padding:
            return None  # a rank that would otherwise get no batch (fewer batches than processes)
        prior = self.hparams.prior_sampling
        if not prior and not batch.has_measurement:
            raise ValueError("prior_sampling is false but the data has no k-space; use prior_sampling: true")
        generators = self._generators(batch)
        shape = (len(batch), *[int(v) for v in batch.image_shape[0]])
        operator = None if prior else self.operator_class(sens_maps=batch.sens_maps, mask=batch.mask)
        oracle = self.hparams.track_best_nrmse and not prior and bool(batch.has_target.all())
        tracker = ChainTracker(len(batch), self.hparams.divergence_factor, self.device, self._level_listeners,
                               target=batch.target if oracle else None)
        schedule = self.schedule
        # FFTs, data consistency and the update in float32 whatever the trainer's precision
        with torch.autocast(self.device.type, enabled=False):
            cg = cg_sense(operator, batch.kspace, self.hparams.cg_iterations) if operator and self.hparams.cg_iterations else None
            starts = [schedule.levels[0]] * len(batch) if prior else self._start_levels(batch)
            estimate = cg if schedule.init == "cg_sense" else (None if prior else batch.zero_filled)
            x = annealed_langevin(
                self._score,
                self._initial_state(shape, generators, starts, estimate),
                self.sigmas,
                step_size=self.step_size,
                steps_each=schedule.steps,
                levels=schedule.levels,
                start_levels=starts if schedule.auto_start else None,
                noise_boost=self.hparams.noise_boost,
                data_consistency=None if prior else self._data_consistency(batch, operator),
                final_denoise=schedule.final_denoise,
                generator=generators,
                callback=tracker,
                cuda_graph=self.hparams.cuda_graph,
            )
            cs = {} if prior else self._compressed_sensing(batch)
        prediction = Prediction(
            item_key=list(batch.item_key), fname=list(batch.fname), slice_num=batch.slice_num.tolist(),
            sample_idx=batch.sample_idx.tolist(), snr_db=batch.snr_db.tolist(),
            diverged_level=tracker.diverged_level.tolist(), nfe=[schedule.evaluations(k) for k in starts],
            start_level=starts,
        )
        for i in prediction.failed:
            self._report_divergence(prediction, i)
        images = channels_to_complex(x)
        if prior:
            prediction.images["sample"] = images.cpu()
        else:
            self._measurement_outputs(prediction, batch, images[:, 0], cg, cs, tracker)
        return prediction

    def _compressed_sensing(self, batch: MeasurementBatch) -> dict[str, torch.Tensor]:
        """The configured CS baselines per item (sigpy, CPU), normalised units ``[B, H, W]``."""
        out = {}
        for method in CS_METHODS:
            if method not in (self.hparams.cs_lambdas or {}):
                continue
            images = [
                compressed_sensing(method, batch.kspace[i], batch.sens_maps[i], batch.mask[i],
                                   self.cs_lambda(method, float(batch.snr_db[i])), self.hparams.cs_iterations)
                for i in range(len(batch))
            ]
            out[method] = torch.stack(images)
        return out

    def _measurement_outputs(self, prediction: Prediction, batch: MeasurementBatch, recon, cg, cs, tracker) -> None:
        """Reconstruction, baselines, target and mask in data units (× scale), and their quality."""
        scale = batch.scale.float().reshape(-1, 1, 1)
        estimates = {"recon": recon * scale, "zero_filled": batch.zero_filled * scale}
        if cg is not None:
            estimates["cg_sense"] = cg * scale
        for method, image in cs.items():
            estimates[method] = image * scale
        images = prediction.images
        images.update({"reconstruction" if name == "recon" else name: value.cpu() for name, value in estimates.items()})
        images["mask"] = batch.mask.float().cpu()
        sampled = torch.broadcast_to(batch.mask[:, 0].float(), (len(batch), *batch.kspace.shape[-2:]))
        prediction.scalars["acceleration"] = (sampled[0].numel() / sampled.flatten(1).sum(1)).tolist()
        prediction.scalars["scale"] = batch.scale.tolist()
        prediction.scalars["noise_var"] = (batch.noise_var.double() * batch.scale.double() ** 2).tolist()
        if tracker.best is not None:
            images["oracle_best"] = (tracker.best * scale).cpu()
            prediction.scalars["oracle_best_nrmse"] = tracker.best_nrmse.tolist()
        if bool(batch.has_target.all()):
            target = batch.target * scale
            images["target"] = target.cpu()
            prediction.metrics = self._quality(target, estimates, prediction.failed)

    def _report_divergence(self, prediction: Prediction, i: int) -> None:
        level = prediction.diverged_level[i]
        message = (
            f"diverged: {prediction.fname[i]} slice {prediction.slice_num[i]} SNR {prediction.snr_db[i]:g} dB "
            f"sample {prediction.sample_idx[i]} at level {level} (σ = {float(self.sigmas[level]):.4g}); "
            f"the item is recorded as failed. Lower step_size (now {self.step_size:.3g})."
        )
        if self.hparams.fail_fast:
            raise DivergenceError(message + " Stopping: fail_fast is set.")
        log.warning(message)

    def _quality(self, target, estimates, failed) -> dict[str, list[float]]:
        """Per-item PSNR/SSIM/NMSE of magnitudes, computed once: they go into the item's shard (the
        report's tables are built from the shards) and into the torchmetrics metrics behind the live
        TensorBoard scalars."""
        target_mag = target.abs()
        values: dict[str, list[float]] = {}
        for method in METHODS:
            if method not in estimates:
                continue
            computed = item_quality(target_mag, estimates[method].abs())
            for name, value in computed.items():
                if method == "recon" and failed:
                    value[failed] = float("nan")
                self.quality[f"{method}_{name}"].extend(value)
                values[f"{method}_{name}"] = value.tolist()
        return values

    # ------------------------------------------------------------------ live TensorBoard scalars
    def on_predict_batch_end(self, outputs, batch, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Running means over this rank's items so far, as ``live/{method}_{metric}`` (the per-SNR
        tables of the whole run, resumed items included, are the report's, from the shards)."""
        if outputs is None or not outputs.metrics or self.logger is None:
            return
        self._items_done += len(outputs)
        running = {}
        for name, metric in self.quality.items():
            values = metric.per_image()
            values = values[~torch.isnan(values)]
            if values.numel():
                running[f"live/{name}"] = float(values.mean())
        self.logger.log_metrics(running, step=self._items_done)

    def on_predict_epoch_end(self) -> None:
        for metric in self.quality.values():
            metric.reset()
