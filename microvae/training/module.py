"""The Lightning module: one optimisation step with skipping of non-finite updates and of
gradient spikes, a learning-rate schedule, optional EMA weights, and at each validation the
ELBO terms, collapse diagnostics, a gradient report, a warning when validation gets worse than
its best, a copy of the best weights (what model.pt holds) and a preview PNG."""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from ..config import RunConfig, load_config
from ..data import Normalisation
from ..io import atomic_path, save_png, side_by_side
from ..model import VAE, build_vae, collapse_report
from ..objective import NonFiniteGuard, compute_loss
from .lr_schedule import lr_factor
from .watch import GradientWatch, ValidationWatch

__all__ = ["VAEModule"]

_log = logging.getLogger("microvae.training")
VERDICT_CODES = {"healthy": 0, "partly collapsed": 1, "collapsed": 2}


class VAEModule(pl.LightningModule):
    """Trains a VAE built from ``config`` for data with ``normalisation`` (both plain dicts,
    so that checkpoints hold no pickled objects)."""

    def __init__(self, config: dict, normalisation: dict, run_dir: str | None = None):
        super().__init__()
        self.save_hyperparameters()
        self.cfg: RunConfig = load_config(config)
        self.norm = Normalisation.from_dict(normalisation)
        self.vae = build_vae(self.cfg.model, self.cfg.likelihood, bit_depth=self.norm.bit_depth)
        self.vae.set_input_normalisation(*self.norm.encoder_affine())
        self.ema = (
            AveragedModel(self.vae, multi_avg_fn=get_ema_multi_avg_fn(self.cfg.train.ema_decay))
            if self.cfg.train.ema
            else None
        )
        self.automatic_optimization = False  # to skip non-finite updates after backward
        self.guard = NonFiniteGuard(self.cfg.train.max_skipped)
        t = self.cfg.train
        self.grad_watch = GradientWatch(clip=t.grad_clip, spike_factor=t.skip_spikes)
        self.val_watch = ValidationWatch(tolerance=t.worse_tolerance)
        self.best_state: dict[str, torch.Tensor] | None = None  # eval weights, on the CPU
        self.best_val: dict = {}
        self.best_report: dict | None = None
        self.run_dir = Path(run_dir) if run_dir else None
        self.last_report: dict | None = None
        self.last_val: dict = {}
        self._val_sums: dict[str, float] = {}
        self._preview: torch.Tensor | None = None
        # for a TrainingMonitor: the last step's terms, the last verdict line, and the fixed
        # validation tile with its reconstruction (data units)
        self.last_train: dict[str, float] = {}
        self.last_report_line: str | None = None
        self.last_preview: tuple | None = None

    @property
    def eval_model(self) -> VAE:
        """The weights to validate and save: the EMA when enabled."""
        return self.ema.module if self.ema is not None else self.vae

    def configure_optimizers(self):
        t = self.cfg.train
        opt = torch.optim.AdamW(self.vae.parameters(), lr=t.lr, weight_decay=t.weight_decay)
        sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_factor(step, t))
        return [opt], [{"scheduler": sched, "interval": "step"}]

    # -- training ----------------------------------------------------------------------------

    def training_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        opt = self.optimizers()
        step = self.global_step
        out = self.vae(batch)
        terms = compute_loss(out, self.cfg.objective, step)
        opt.zero_grad(set_to_none=True)
        self.manual_backward(terms.loss)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.vae.parameters(), self.cfg.train.grad_clip)
        self._update(opt, terms, grad_norm, step)
        if math.isfinite(float(grad_norm)):
            self.grad_watch.record(step, float(grad_norm))
        self._log_step(opt, terms, grad_norm, batch.shape[0])

    def _update(self, opt, terms, grad_norm: torch.Tensor, step: int) -> None:
        """The optimiser's step, unless the terms are not finite or the gradient spikes
        (each skip said, and counted)."""
        checks = {"loss": terms.loss.detach(), "recon": terms.recon, "kl": terms.kl}
        checks.update({f"kl_level_{i}": v for i, v in enumerate(terms.kl_per_level)})
        if not self.guard.ok(step, checks, self.vae):
            _log.warning(
                "skipped update: %s (%d skipped so far)",
                self.guard.last_problem,
                self.guard.skipped,
            )
        elif self.grad_watch.is_spike(float(grad_norm)):
            _log.warning(
                "step %d: skipped a gradient spike, norm %.3g (train.skip_spikes = %g times the "
                "recent median); %d so far",
                step,
                float(grad_norm),
                self.cfg.train.skip_spikes,
                self.grad_watch.spikes_total,
            )
        else:
            opt.step()
            self.lr_schedulers().step()
            if self.ema is not None:
                self.ema.update_parameters(self.vae)

    def _log_step(self, opt, terms, grad_norm: torch.Tensor, batch_size: int) -> None:
        """The step's terms, gradient norm, skips and learning rate to the loggers."""
        logs = {f"train/{k}": v for k, v in terms.as_dict().items()}
        logs["train/grad_norm"] = float(grad_norm)
        logs["train/skipped_updates"] = float(self.guard.skipped)
        logs["train/skipped_spikes"] = float(self.grad_watch.spikes_total)
        logs["train/lr"] = float(opt.param_groups[0]["lr"])
        self.last_train = {k[len("train/") :]: float(v) for k, v in logs.items()}
        for lv, channels in enumerate(terms.kl_per_channel):
            logs.update({f"train/kl_l{lv}_c{c}": float(v) for c, v in enumerate(channels)})
        self.log_dict(logs, on_step=True, on_epoch=False, batch_size=batch_size)
        self.log("bpd", terms.bits_per_dim, prog_bar=True, on_step=True, logger=False)

    # -- validation --------------------------------------------------------------------------

    def on_validation_epoch_start(self) -> None:
        self._val_sums = {}
        self._val_batches: list[torch.Tensor] = []

    def validation_step(self, batch: torch.Tensor, batch_idx: int) -> None:
        out = self.eval_model(batch)
        sums = {
            "log_px": out.log_px.sum(),
            "elbo": out.elbo.sum(),
            "n": torch.tensor(float(batch.shape[0])),
        }
        for i, v in enumerate(out.kl_per_level.sum(dim=0)):
            sums[f"kl_level_{i}"] = v
        for k, v in sums.items():
            self._val_sums[k] = self._val_sums.get(k, 0.0) + float(v)
        self._val_batches.append(batch)
        if batch_idx == 0:
            self._preview = batch[:1]
        self._n_dims = out.n_dims

    def on_validation_epoch_end(self) -> None:
        if not self._val_sums:
            return
        val = self._validation_terms()
        report = collapse_report(self.eval_model, self._val_batches)
        val["val/active_units"] = float(report.active_units)
        val["val/sensitivity"] = report.sensitivity
        val["val/verdict_code"] = float(VERDICT_CODES[report.verdict])
        val.update({f"val/z_weight_norm_l{i}": v for i, v in enumerate(report.z_weight_norms)})
        # several processes: the same validation on every rank (summed in _validation_terms);
        # the collapse measures of each rank's own tiles averaged
        self.log_dict(val, on_step=False, on_epoch=True, sync_dist=self.trainer.world_size > 1)
        self.last_val = val
        self.last_report = report.to_dict()
        self.last_report_line = report.summary()
        self.last_preview = self._preview_pair()
        self._say_validation(val, report)
        self._keep_if_best(val, report)
        if self.run_dir is not None and self.trainer.is_global_zero:
            self._write_outputs(report.to_dict())
        self._val_batches = []

    def _validation_terms(self) -> dict[str, float]:
        """The validation's ELBO terms per dimension and bits/dim, over every rank's tiles."""
        if self.trainer.world_size > 1:
            # every rank validated its share of the tiles: the sums over all of them, so that
            # every rank sees the same validation (and picks the same best weights)
            keys = sorted(self._val_sums)
            local = torch.tensor([self._val_sums[k] for k in keys], dtype=torch.float64)
            total = self.trainer.strategy.reduce(local.to(self.device), reduce_op="sum")
            self._val_sums = dict(zip(keys, total.cpu().tolist()))
        n, dims = self._val_sums.pop("n"), self._n_dims
        val = {
            "val/recon": self._val_sums.pop("log_px") / n / dims,
            "val/elbo": self._val_sums["elbo"] / n / dims,
            "val/bits_per_dim": -self._val_sums.pop("elbo") / n / dims / math.log(2),
        }
        val.update({f"val/{k}": v / n for k, v in self._val_sums.items()})
        return val

    def _say_validation(self, val: dict, report) -> None:
        """The validation's line (a warning unless the latent space is healthy), and the
        gradient watch's."""
        message = f"step {self.global_step}: validation bits/dim {val['val/bits_per_dim']:.4f}; "
        message += f"latent space {report.summary()}"
        if report.verdict != "healthy":
            _log.warning("WARNING: %s", message)
        else:
            _log.info(message)
        grads = self.grad_watch.report()
        if grads is not None:
            (_log.warning if grads.mostly_clipped else _log.info)("%s", grads.summary())

    def _keep_if_best(self, val: dict, report) -> None:
        """A copy of the weights when validation is the best yet; a warning when it got
        worse than its best."""
        is_best, worse = self.val_watch.update(self.global_step, val["val/bits_per_dim"])
        if is_best:
            self.best_val, self.best_report = dict(val), report.to_dict()
            self.best_state = {
                k: v.detach().to("cpu", copy=True) for k, v in self.eval_model.state_dict().items()
            }
        if worse:
            _log.warning("WARNING: %s", worse)

    def _preview_pair(self) -> tuple:
        """The first validation tile and its reconstruction, float32 (T, T), data units; of a
        volume, its middle plane."""
        x = self._preview
        with torch.no_grad():
            recon = self.eval_model.reconstruct(x)
        orig, rec = x[0, 0], recon[0, 0]
        if orig.ndim == 3:
            orig, rec = orig[len(orig) // 2], rec[len(rec) // 2]
        orig = self.norm.from_model(orig.float().cpu().numpy()).astype(np.float32)
        rec = self.norm.from_model(rec.float().cpu().numpy()).astype(np.float32)
        return orig, rec

    def _write_outputs(self, report: dict) -> None:
        with atomic_path(self.run_dir / "diagnostics.json") as tmp:
            tmp.write_text(json.dumps({"step": self.global_step, **report}, indent=2) + "\n")
        orig, rec = self.last_preview
        previews = self.run_dir / "previews"
        previews.mkdir(exist_ok=True)
        save_png(previews / f"step_{self.global_step:07d}.png", side_by_side(orig, rec, zoom=2))

    # -- checkpoint state beyond the weights -------------------------------------------------

    def on_train_end(self) -> None:
        # with several processes (DDP): every rank's weights, digested and gathered, so the
        # summary can say whether they ended identical (the gradients are all-reduced)
        params = torch.cat([p.detach().double().flatten() for p in self.vae.parameters()])
        digest = torch.stack([params.sum(), (params * params).sum(), params.abs().max()])
        gathered = self.all_gather(digest.to(self.device))
        self.rank_digests = gathered.reshape(-1, 3).cpu().tolist()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        checkpoint["microvae"] = {
            "skipped": self.guard.skipped,
            "consecutive": self.guard.consecutive,
            "gradients": self.grad_watch.state(),
            "validation": self.val_watch.state(),
            "best_val": self.best_val,
            "best_report": self.best_report,
        }

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        state = checkpoint.get("microvae", {})
        self.guard.skipped = int(state.get("skipped", 0))
        self.guard.consecutive = int(state.get("consecutive", 0))
        self.grad_watch.load(state.get("gradients", {}))
        self.val_watch.load(state.get("validation", {}))
        self.best_val = dict(state.get("best_val", {}))
        self.best_report = state.get("best_report")
