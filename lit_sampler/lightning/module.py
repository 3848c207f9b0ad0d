"""The Lightning prediction module: one ``predict_step`` runs a whole annealed Langevin chain
for a batch of measurements (or of prior samples) and returns reconstructions in data units.

The math lives in :mod:`lit_sampler.sampling.langevin`, and "measurement batch → chains" in
:func:`lit_sampler.api.engine.run_chains`, the one engine the Python API
(:class:`lit_sampler.api.Sampler`) runs too. This file only wires it to Lightning: the trainer's
precision for the network, the per-item generators from the batch's seed keys (so results never
depend on batch size, order or the number of processes), the baselines, the outputs in data units,
and each item's quality, computed once: it travels in the item's
:class:`~lit_sampler.outputs.prediction.Prediction` to its shard (the report builds every table from the
shards) and feeds running means shown live in TensorBoard.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_only

from ..api.engine import AUTOCAST_DTYPES, ChainOptions, item_generators, network_score, run_chains
from ..data.items import MeasurementBatch
from ..errors import DivergenceError
from ..evaluation.metrics import item_quality, quality_metrics
from ..evaluation.tuning import missing_lambda_error
from ..models import load_score_model
from ..models.varnet import VarNetBaseline
from ..outputs.prediction import Prediction, add_measurement_outputs
from ..physics.fft import channels_to_complex
from ..physics.noise import describe_noise_key
from ..sampling.baselines import CS_METHODS, METHODS, compressed_sensing
from ..sampling.options import (
    check_cs_lambdas, check_network_channels, check_options, cs_lambda_at, default_step_size, given_cs_keys, import_object,
    missing_cs_lambdas, sampler_sigmas,
)
from ..sampling.presets import KNOBS, Preset, StepsSpec, resolve_schedule

log = logging.getLogger(__name__)


def first_of_measurement(batch: MeasurementBatch) -> list[int]:
    """Per item, the index of the first item of the batch with the same measurement (file, slice and
    noise level: the samples of a slice share their measurement), so that the baselines, which
    depend on the measurement alone, are computed once for them."""
    seen: dict[tuple, int] = {}
    return [seen.setdefault((f, int(s), float(n)), i)
            for i, (f, s, n) in enumerate(zip(batch.fname, batch.slice_num.tolist(), batch.snr_db.tolist()))]


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
            ``{0: 3, 1801: 4}`` (Jalal et al.: 3 steps up to level 1800, then 4). Default 3.
        sigma_offset: k, skip the k largest levels; ``auto`` (with a warm ``init``) picks k per item
            from the data (:mod:`lit_sampler.sampling.warm_start`: σ_k ≥ ``start_factor`` × the predicted RMS
            error of the zero-filled image). Default 0.
        levels: run only some levels: a count (evenly spaced in log σ from k to L−1; from 0 with
            ``sigma_offset: auto``) or a list of indices; ``all`` runs every level (the default).
            Each kept level's step is rescaled to do the work of the levels it stands for
            (:func:`lit_sampler.sampling.schedules.level_step_sizes`).
        start_factor: the factor of ``sigma_offset: auto`` (default 2.0; refused with a fixed start,
            where it would do nothing).
        preset: ``reference``, ``balanced`` (Langevin at β = 2), ``fast`` or ``quick`` (the few-call
            sampler) (:mod:`lit_sampler.sampling.presets`): values for ``sampler``, ``steps_each``,
            ``sigma_offset``, ``levels``, ``init``, ``final_denoise``, ``start_factor``, ``noise_boost``
            and ``eta`` relative to the network's σ schedule (``reference`` sets neither
            ``sigma_offset`` nor ``start_factor``). The rule, the same for every one of these knobs:
            **a knob given explicitly wins over the preset; the preset fills in only the knobs left
            unset** (``None``, their default here), and without a preset an unset knob takes the
            plain default named in its entry. ``run_settings.json`` and the ``sampler:`` line printed
            at the start of a run say what the chain ran and which knobs came from the preset, the
            config or the defaults; a combination that cannot run (``sigma_offset: auto`` with
            ``init: reference``, whichever of them the preset set) is one error naming both.
        noise_boost: β; 1 reproduces the reference's noise (its chains sample the posterior at
            temperature ½: half its variance), 2 is textbook Langevin dynamics, whose spread is the
            posterior's (docs/uncertainty.md). Default 1; the ``balanced`` and ``fast`` presets set 2.
        sampler: ``langevin`` (annealed Langevin dynamics, :mod:`lit_sampler.sampling.langevin`, default) or
            ``decomposed`` (the few-call sampler of :mod:`lit_sampler.sampling.decomposed`: Tweedie denoise,
            conjugate-gradient data consistency, re-noise; one network call per level run).
        eta: the few-call sampler's η (0 deterministic, 1 ancestral, ``.inf`` all fresh noise: the default,
            unbiased at every SNR, docs/uncertainty.md).
        dc_steps: the few-call sampler's conjugate-gradient steps per level (default 5).
        dc_boost: λ, the multiplier of the Gaussian data-consistency term.
        prior_sampling: sample the prior (no data consistency), as ``prior_sampling: 1`` in the reference.
        data_consistency: ``gaussian`` (the reference rule λ(AᴴAx − Aᴴy)/(ν/2 + σ²)) or
            ``norm_matched`` (Jalal et al. 2021: the data gradient scaled to ``norm_matched_weight``·‖score‖).
        norm_matched_weight: w of the norm-matched rule (``mse`` in Jalal et al.'s configs, 5.0).
        final_denoise: finish with the Tweedie step x + σ_{L−1}² s(x, L−1) (Song & Ermon 2020).
            Default false.
        init: initial state (default ``reference``). ``reference``: the reference pipeline's (posterior CN(0, 1), i.e.
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
            ``{l1_wavelet: λ, total_variation: λ}``, λ one value or one per noise level
            (``{"20": 3e-3, "5": 3e-2}``, keys as the SNR in dB is written; ``inf`` for no added
            noise; ``measured`` for data with the scanner's own noise and none added, i.e. converted
            raw data at ``snr_range: [null]``; :func:`lit_sampler.physics.noise.noise_key`). Choose λ on
            validation data (``scripts/tune_baselines.py``). Every noise level of the data needs a
            λ, checked before the first chain.
        cs_iterations: iterations of each compressed-sensing solver.
        varnet: fastMRI's E2E-VarNet as a supervised baseline on the same measurements
            (``class_path: lit_sampler.models.varnet.VarNetBaseline`` with its ``checkpoint``; the
            ``varnet`` extra): reported as ``varnet`` beside the other baselines.
        cs_missing: what a noise level of the data without a λ does: ``error`` (the run stops
            before it starts, with the tuning command for that level) or ``skip`` (that baseline
            is left out there, one warning per method and level; the tables and figure lack it there).
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
            processes (``lit_sampler.models.network_call``, docs/reliability.md §2). ``false`` calls
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
        steps_each: StepsSpec | None = None,
        sigma_offset: int | Literal["auto"] | None = None,
        levels: int | list[int] | Literal["all"] | None = None,
        start_factor: float | None = None,
        preset: Preset | None = None,
        noise_boost: float | None = None,
        sampler: Literal["langevin", "decomposed"] | None = None,
        eta: float | None = None,
        dc_steps: int | None = None,
        dc_boost: float = 1.0,
        prior_sampling: bool = False,
        data_consistency: Literal["gaussian", "norm_matched"] = "gaussian",
        norm_matched_weight: float = 5.0,
        final_denoise: bool | None = None,
        init: Literal["reference", "uniform", "noise", "zero_filled", "cg_sense"] | None = None,
        init_sigma: float | None = None,
        operator: str = "lit_sampler.physics.operators.MultiCoilMRI",
        cg_iterations: int = 10,
        cs_lambdas: dict[str, float | dict[str, float]] | None = None,
        cs_iterations: int = 100,
        varnet: VarNetBaseline | None = None,
        cs_missing: Literal["error", "skip"] = "error",
        divergence_factor: float = 100.0,
        fail_fast: bool = False,
        track_best_nrmse: bool = False,
        channels_last: bool = True,
        compile: bool = False,
        compile_mode: str | None = None,
        batch_invariant: bool = True,
        call_size: int = 4,
        cuda_graph: bool = False,
    ):
        super().__init__()
        self.save_hyperparameters(ignore=["score_model", "varnet"])
        self.varnet = varnet
        if varnet is not None:  # what run_settings.json records of it (the module itself is not a setting)
            self.hparams["varnet"] = {"checkpoint": varnet.checkpoint, **varnet.architecture}
        if (checkpoint is None) == (score_model is None):
            raise ValueError("give exactly one of `checkpoint` (a file) and `score_model` (a module)")
        network = load_score_model(checkpoint, use_ema=use_ema) if checkpoint is not None else score_model
        check_network_channels(network, prior_sampling, checkpoint or "score_model")
        self.score_model = network.eval().requires_grad_(False)
        self.register_buffer("sigmas", sampler_sigmas(network, sigmas), persistent=False)
        # the preset's knobs as given (None: unset), merged with the preset by the one rule
        self.schedule = resolve_schedule(self.sigmas.tolist(), preset=preset, **{k: self.hparams[k] for k in KNOBS})
        check_options(self.schedule, prior_sampling=prior_sampling, cg_iterations=cg_iterations, call_size=call_size,
                      step_size=step_size, cuda_graph=cuda_graph, compile=compile, compile_mode=compile_mode)
        check_cs_lambdas(cs_lambdas)
        self.cs_skipped: dict[str, list[str]] = {}  # method → noise keys without a λ (cs_missing: skip)
        self._data_checked: tuple | None = None  # the noise keys check_data last accepted
        self._skip_warned: set[tuple[str, str]] = set()
        self.step_size = float(step_size) if step_size is not None else default_step_size(self.sigmas, max(self.schedule.steps))
        self.operator_class = import_object(operator)
        self._autocast_dtype: torch.dtype | None = None  # the trainer's mixed precision, set at predict start
        self._compiled: dict[str, Any] = {}  # a dict, so the compiled wrapper is not registered as a submodule
        self._level_listeners: list = []
        # this rank's per-item quality, for the live scalars only (never synced: rank 0 logs its own)
        self.quality = torch.nn.ModuleDict(quality_metrics(METHODS, sync_on_compute=False))
        self._items_done = 0

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

    def score(self, x: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """s(x, i) in float32; the network alone runs under the trainer's autocast dtype
        (:func:`lit_sampler.api.engine.network_score`, the Python API's call too)."""
        return network_score(self._network(), x, labels, autocast_dtype=self._autocast_dtype,
                             channels_last=self.hparams.channels_last, batch_invariant=self.hparams.batch_invariant,
                             call_size=self.hparams.call_size, cuda_graph=self.hparams.cuda_graph)

    # ------------------------------------------------------------------ before the first chain
    def setup(self, stage: str) -> None:
        """Lightning calls this after the data module's ``setup``, before any chain: the settings
        are checked against the data (:meth:`check_data`) and the ``sampler:`` line is printed."""
        if stage != "predict":
            return
        datamodule = self.trainer.datamodule
        if datamodule is not None:
            self.check_data(datamodule)
        if rank_zero_only.rank == 0:
            print(self.schedule.setup_line(len(self.sigmas)), flush=True)

    def check_data(self, datamodule) -> None:
        """Every configured compressed-sensing baseline has a λ at every noise level of the data
        (``datamodule.noise_keys()``); else the run stops here with the fix
        (:class:`~lit_sampler.errors.MissingLambdaError`) or, with ``cs_missing: skip``, the levels
        skipped are recorded in ``cs_skipped`` (and ``run_settings.json``) with one warning each.
        The writer calls this before it touches the run directory, so a refused run writes nothing;
        a second call with the same data is free."""
        noise_keys = getattr(datamodule, "noise_keys", None)
        if self.hparams.prior_sampling or not self.hparams.cs_lambdas or noise_keys is None:
            return
        keys = tuple(noise_keys())
        if keys == self._data_checked:
            return
        missing = missing_cs_lambdas(self.hparams.cs_lambdas, keys)
        if missing and self.hparams.cs_missing == "error":
            raise missing_lambda_error(missing, given_cs_keys(self.hparams.cs_lambdas))
        for method, skipped in missing.items():
            for key in skipped:
                self._warn_skipped(method, key)
        self.cs_skipped = missing
        self._data_checked = keys

    def _warn_skipped(self, method: str, key: str) -> None:
        """The one warning of a baseline skipped at a noise level (``cs_missing: skip``)."""
        if (method, key) in self._skip_warned:
            return
        self._skip_warned.add((method, key))
        if rank_zero_only.rank == 0:
            log.warning("warning: cs_lambdas.%s: no λ for %s; %s is skipped there (cs_missing: skip)",
                        method, describe_noise_key(key), method)

    def on_predict_start(self) -> None:
        if self.hparams.cuda_graph and self.device.type != "cuda":
            raise ValueError(
                f"cuda_graph: true needs a CUDA device, but the sampler runs on {self.device.type}; "
                "set cuda_graph: false (the option only removes GPU launch overhead)"
            )
        self._autocast_dtype = AUTOCAST_DTYPES.get(str(self.trainer.precision))

    # ------------------------------------------------------------------ one batch
    def _generators(self, batch: MeasurementBatch) -> list[torch.Generator]:
        return item_generators(batch.seed.tolist(), batch.item_key, self.device)

    def chain_options(self) -> ChainOptions:
        """The chain's settings from the options (read per batch: a caller may change them between runs)."""
        hp = self.hparams
        return ChainOptions(
            prior_sampling=hp.prior_sampling, data_consistency=hp.data_consistency, norm_matched_weight=hp.norm_matched_weight,
            dc_boost=hp.dc_boost, init_sigma=hp.init_sigma, cg_iterations=hp.cg_iterations,
            divergence_factor=hp.divergence_factor, cuda_graph=hp.cuda_graph, operator_class=self.operator_class,
        )

    def predict_step(self, batch: MeasurementBatch, batch_idx: int = 0) -> Prediction | None:
        """The batch's chains (:func:`lit_sampler.api.engine.run_chains`, the engine the Python API runs
        too), then the baselines, outputs in data units and quality."""
        if batch.is_padding:
            return None  # a rank that would otherwise get no batch (fewer batches than processes)
        prior = self.hparams.prior_sampling
        if not prior and not batch.has_measurement:
            raise ValueError("prior_sampling is false but the data has no k-space; use prior_sampling: true")
        run = run_chains(self.score, self.sigmas, self.schedule, self.step_size, batch, self._generators(batch),
                         self.chain_options(), device=self.device, listeners=self._level_listeners,
                         track_target=self.hparams.track_best_nrmse)
        with torch.autocast(self.device.type, enabled=False):  # (the baselines in float32 too)
            cs, cs_skipped = ({}, {}) if prior else self._compressed_sensing(batch)
            if self.varnet is not None and not prior:
                # one call per measurement, of one item each: an item's output is then the same in any batch
                first = first_of_measurement(batch)
                solved = {i: self.varnet(batch.kspace[i:i + 1], batch.mask[i:i + 1])[0] for i in sorted(set(first))}
                cs["varnet"] = torch.stack([solved[i] for i in first]).to(torch.complex64)
        prediction = Prediction(
            item_key=list(batch.item_key), fname=list(batch.fname), slice_num=batch.slice_num.tolist(),
            sample_idx=batch.sample_idx.tolist(), snr_db=batch.snr_db.tolist(),
            diverged_level=run.tracker.diverged_level.tolist(), nfe=run.nfe, start_level=run.start_levels,
            absent=cs_skipped, operator_applications=run.operator_applications,
        )
        for i in prediction.failed:
            self._report_divergence(prediction, i)
        images = channels_to_complex(run.x)
        if prior:
            prediction.images["sample"] = images.cpu()
        else:
            self._measurement_outputs(prediction, batch, images[:, 0], run.cg, cs, run.tracker)
        return prediction

    def _compressed_sensing(self, batch: MeasurementBatch) -> tuple[dict[str, torch.Tensor], dict[str, list[int]]]:
        """The configured CS baselines per item (sigpy, CPU), normalised units ``[B, H, W]``, and per
        method the items it skipped (no λ at their noise level and ``cs_missing: skip``; zeros there,
        never written: :attr:`Prediction.absent`)."""
        out, skipped = {}, {}
        keys = batch.noise_keys()
        first = first_of_measurement(batch)
        for method in CS_METHODS:
            if method not in (self.hparams.cs_lambdas or {}):
                continue
            lambdas = [self._cs_lambda(method, key) for key in keys]
            solved = {
                i: compressed_sensing(method, batch.kspace[i], batch.sens_maps[i], batch.mask[i], lambdas[i],
                                      self.hparams.cs_iterations)
                for i in sorted(set(first)) if lambdas[i] is not None
            }  # once per measurement: the samples of a slice share it (and the solver is deterministic)
            images = [torch.zeros_like(batch.zero_filled[i]) if lamda is None else solved[first[i]]
                      for i, lamda in enumerate(lambdas)]
            out[method] = torch.stack(images)
            if None in lambdas:
                skipped[method] = [i for i, lamda in enumerate(lambdas) if lamda is None]
        return out, skipped

    def _cs_lambda(self, method: str, key: str) -> float | None:
        """λ of ``method`` at noise level ``key``; None: skipped. (Normally :meth:`check_data` has
        refused a missing λ at setup; this catches a module run without a data module.)"""
        lamda = cs_lambda_at(self.hparams.cs_lambdas, method, key)
        if lamda is None and self.hparams.cs_missing == "error":
            raise missing_lambda_error({method: [key]}, given_cs_keys(self.hparams.cs_lambdas))
        if lamda is None:
            self._warn_skipped(method, key)
        return lamda

    def _measurement_outputs(self, prediction: Prediction, batch: MeasurementBatch, recon, cg, cs, tracker) -> None:
        """Reconstruction and baselines in data units, target, mask, and the items' quality."""
        estimates = {"recon": recon, "zero_filled": batch.zero_filled, **({"cg_sense": cg} if cg is not None else {}), **cs}
        oracle = None if tracker.best is None else (tracker.best, tracker.best_nrmse)
        if add_measurement_outputs(prediction, batch, estimates, oracle) is not None:
            prediction.metrics = self._quality(prediction, estimates)

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

    def _quality(self, prediction: Prediction, estimates) -> dict[str, list[float]]:
        """Per-item PSNR/SSIM/NMSE of magnitudes, computed once: they go into the item's shard (the
        report's tables are built from the shards) and into the torchmetrics metrics behind the live
        TensorBoard scalars. A diverged reconstruction scores NaN, and so does a skipped baseline
        (left out of the item's shard)."""
        failed = prediction.failed
        target = prediction.images["target"]
        values: dict[str, list[float]] = {}
        for method in METHODS:
            if method not in estimates:
                continue
            name = "reconstruction" if method == "recon" else method
            for metric, value in item_quality(target.abs(), prediction.images[name].abs()).items():
                if method == "recon" and failed:
                    value[failed] = float("nan")
                if prediction.absent.get(method):
                    value[prediction.absent[method]] = float("nan")
                self.quality[f"{method}_{metric}"].extend(value)
                values[f"{method}_{metric}"] = value.tolist()
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
