"""The Train widget: train a model on image layers or a folder, watching it learn.

Training runs in a process of its own, watched by a worker thread
(:class:`~napari_microvae._train_job.TrainingJob`); its events
come through a queue that a timer drains on the GUI thread, so the viewer never waits on
training. Each validation updates the plots (loss, bits/dim, KL per level), the collapse
verdict and the preview layer (a fixed validation tile | its reconstruction).
"""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    FileEdit,
    FloatSpinBox,
    Label,
    PushButton,
    Select,
    SpinBox,
)
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from qtpy.QtCore import QTimer

from ._train_job import (
    LIKELIHOODS,
    TrainingHistory,
    TrainingJob,
    TrainSettings,
    config_choices,
    key_values,
    write_layers,
)
from ._widget_base import WorkerWidget, device_field, image_layers
from ._work import PluginError, export_package

__all__ = ["TrainWidget"]

PREVIEW = "training preview (tile | reconstruction)"
POLL_MS = 100  # how often the GUI thread takes the training events


class TrainPlots:
    """Three small plots: training loss, bits/dim (training and validation), validation KL
    per latent level.

    The lines are made once and their data replaced at each update, under a layout fixed at
    the start: clearing the axes and laying the figure out again at every validation made
    each redraw cost the GUI thread hundreds of milliseconds beside a training run
    (benchmarks/gui_stall.py)."""

    def __init__(self):
        self.figure = Figure(figsize=(4, 4.8))
        self.figure.subplots_adjust(left=0.17, right=0.97, top=0.97, bottom=0.09, hspace=0.12)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(300)
        self.axes = self.figure.subplots(3, 1, sharex=True)
        loss, bpd, kl = self.axes
        for ax in self.axes:
            ax.tick_params(labelsize=7)
        (self.loss,) = loss.plot([], [], lw=1, color="tab:blue")
        loss.set_ylabel("loss", fontsize=8)
        (self.bpd,) = bpd.plot([], [], lw=1, color="tab:blue", label="training")
        (self.val_bpd,) = bpd.plot([], [], "o-", ms=3, color="tab:orange", label="val")
        bpd.set_ylabel("bits/dim", fontsize=8)
        bpd.legend(fontsize=6, loc="upper right")
        kl.set_ylabel("val KL (nats)", fontsize=8)
        kl.set_xlabel("step", fontsize=8)
        self.kl: list = []  # one line per latent level, made at the first validation
        self.draw(TrainingHistory())

    def draw(self, h: TrainingHistory) -> None:
        loss, bpd, kl = self.axes
        self.loss.set_data(h.steps, h.loss)
        self.bpd.set_data(h.steps, h.bits_per_dim)
        self.val_bpd.set_data(h.val_steps, h.val_bits_per_dim)
        per_level = np.array(h.val_kl_per_level, float)
        if per_level.ndim != 2:  # no validation yet
            per_level = np.zeros((len(h.val_steps), 0))
        if per_level.shape[1] != len(self.kl):  # the first validation, or a new run
            for line in self.kl:
                line.remove()
            self.kl = [
                kl.plot([], [], "o-", ms=3, label=f"level {i}")[0]
                for i in range(per_level.shape[1])
            ]
            if self.kl:
                kl.legend(fontsize=6, loc="upper right")
            elif kl.get_legend() is not None:
                kl.get_legend().remove()
        for i, line in enumerate(self.kl):
            line.set_data(h.val_steps, per_level[:, i])
        for ax in self.axes:
            ax.relim()
            ax.autoscale_view()
        self.canvas.draw_idle()


class TrainWidget(WorkerWidget):
    """Choose data (layers or a folder), a config and its key fields, an output folder;
    Train, Stop, Resume."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self.viewer = napari_viewer
        self.configs = config_choices()
        self._make_fields()
        buttons = Container(
            widgets=[self.train_button, self.stop_button, self.resume_button],
            layout="horizontal",
            labels=False,
        )
        super().__init__(
            napari_viewer,
            [
                self.layers,
                self.folder,
                self.config,
                self.config_file,
                *self.fields.values(),
                self.device,
                self.out,
                self.model_file,
                self.overwrite,
                buttons,
                self.package_file,
                self.export_button,
                self.status,
                self.verdict,
            ],
        )
        self.plots = TrainPlots()
        self.native.layout().addWidget(self.plots.canvas)
        self.job: TrainingJob | None = None  # the run going on
        self.last_job: TrainingJob | None = None
        self.worker = None
        self.history = TrainingHistory()
        self.model_written: Path | None = None
        self._connect()
        self._config_chosen()

    def _make_fields(self) -> None:
        """The form: data, config and its key fields (``self.fields``: config key -> field),
        device, output, buttons and status lines."""
        self.layers = Select(
            label="image layers",  # not the preview: it shows training, it is not data
            choices=lambda _: [la for la in image_layers(self.viewer) if la.name != PREVIEW],
        )
        self.folder = FileEdit(label="or a folder of TIFFs", mode="d")
        self.config = ComboBox(label="config", choices=list(self.configs) or [""])
        self.config_file = FileEdit(label="or a config file", mode="r", filter="*.yaml")
        self.tile_size = SpinBox(label="tile size", value=64, min=8, max=2048, step=8)
        self.steps = SpinBox(label="steps", value=800, min=1, max=10_000_000)
        self.likelihood = ComboBox(label="likelihood", choices=LIKELIHOODS, value="dmol")
        self.beta = FloatSpinBox(label="beta", value=1.0, min=0.0, max=1000.0, step=0.1)
        self.warmup = SpinBox(label="KL warm-up steps", value=0, min=0, max=10_000_000)
        self.val_every = SpinBox(label="validate every", value=200, min=1, max=10_000_000)
        self.batch_size = SpinBox(label="tiles per step", value=8, min=1, max=4096)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.fields = {
            "data.tile_size": self.tile_size,
            "train.max_steps": self.steps,
            "likelihood.name": self.likelihood,
            "objective.beta": self.beta,
            "objective.warmup_steps": self.warmup,
            "train.val_every": self.val_every,
            "train.batch_size": self.batch_size,
            "train.seed": self.seed,
        }
        self.device = device_field()
        self.out = FileEdit(label="output folder", mode="d")
        self.model_file = FileEdit(label="model file (default: output/model.pt)", mode="w")
        self.overwrite = CheckBox(text="start again if the output folder holds a run")
        self.train_button = PushButton(text="Train")
        self.stop_button = PushButton(text="Stop", enabled=False)
        self.resume_button = PushButton(text="Resume")
        self.package_file = FileEdit(
            label="bioimage.io package (default: output/bioimageio.zip)", mode="w", filter="*.zip"
        )
        self.export_button = PushButton(text="Export bioimage.io package")
        self.status = Label(value="")
        self.verdict = Label(value="")

    def _connect(self) -> None:
        """The poll timer, and what the config choice and the buttons do."""
        self.timer = QTimer()
        self.timer.setInterval(POLL_MS)
        self.timer.timeout.connect(self.poll)
        self.config.changed.connect(self._config_chosen)
        self.config_file.changed.connect(self._config_chosen)
        self.train_button.changed.connect(self.train)
        self.stop_button.changed.connect(self.stop)
        self.resume_button.changed.connect(self.resume)
        self.export_button.changed.connect(self.export)

    # -- settings ------------------------------------------------------------------------------

    def config_path(self) -> Path:
        text = str(self.config_file.line_edit.value).strip()
        if text:
            return Path(text)
        if not self.config.value:
            raise PluginError("no config: configs/ was not found; choose a config file")
        return self.configs[self.config.value]

    def _config_chosen(self, *_) -> None:
        """Fill the key fields from the chosen config (a bad file becomes a notification)."""

        def fill():
            for key, value in key_values(self.config_path()).items():
                self.fields[key].value = value

        self._guard(fill)

    def settings(self) -> TrainSettings:
        values = {key: w.value for key, w in self.fields.items()}
        return TrainSettings(self.config_path(), values, device=self.device.value)

    def output(self) -> Path:
        text = str(self.out.line_edit.value).strip()
        if not text:
            raise PluginError("no output folder: choose where the run and model file go")
        return Path(text)

    def _model_file(self, out: Path) -> Path:
        text = str(self.model_file.line_edit.value).strip()
        return Path(text) if text else out / "model.pt"

    def _data(self, out: Path, tile_size: int, *, resume: bool) -> list[Path]:
        """The training inputs: the chosen layers (written to OUT/data), else the folder."""
        chosen = list(self.layers.value)
        folder = str(self.folder.line_edit.value).strip()
        if chosen:
            if resume and (out / "data").is_dir():
                return [out / "data"]  # the layers the run started with
            return write_layers(chosen, out / "data", tile_size)
        if folder:
            if not Path(folder).is_dir():
                raise PluginError(f"{folder}: not a folder; choose a folder of TIFFs")
            return [Path(folder)]
        if resume and (out / "data").is_dir():
            return [out / "data"]
        raise PluginError("no training data: choose image layers or a folder of TIFFs")

    # -- running -------------------------------------------------------------------------------

    def train(self, *_):
        """Start training in a worker (returns it); problems become notifications."""
        return self._guard(lambda: self._start(resume=False))

    def resume(self, *_):
        """Continue the run in the output folder to ``steps`` (returns the worker)."""
        return self._guard(lambda: self._start(resume=True))

    def _start(self, *, resume: bool):
        if self.job is not None:
            raise PluginError("a training run is going on: stop it first")
        settings = self.settings()
        cfg = settings.resolved()  # bad values named before anything starts
        out = self.output()
        run = out / "run"
        has_run = (run / "checkpoints" / "last.ckpt").is_file()
        if resume and not has_run:
            raise PluginError(f"{out}: no run to resume (no run/checkpoints/last.ckpt); Train")
        if not resume and run.exists() and any(run.iterdir()) and not self.overwrite.value:
            raise PluginError(
                f"{out} already holds a run: Resume continues it, or tick 'start again' to "
                "replace it"
            )
        data = self._data(out, cfg.data.tile_size, resume=resume)
        self.job = TrainingJob(
            settings,
            data,
            run,
            resume=resume,
            overwrite=self.overwrite.value and not resume,
            model_file=self._model_file(out),
        )
        self.last_job = self.job
        if not resume:
            self.history = TrainingHistory()
            self.plots.draw(self.history)
        self.worker = self._worker(self.job.run)
        self.worker.returned.connect(self._done)
        self.worker.finished.connect(self._finished)
        self.train_button.enabled = self.resume_button.enabled = False
        self.stop_button.enabled = True
        self.status.value = ("resuming" if resume else "training") + f" in {run}..."
        self.timer.start()
        return self._start_worker(self.worker)

    def stop(self, *_) -> None:
        """Ask the run to stop after its current step (it then saves and can be resumed)."""
        if self.job is not None:
            self.job.stop()
            self.status.value = "stopping after the current step..."

    def poll(self) -> None:
        """Take the training events (GUI thread) and show them."""
        if self.job is None:
            return
        events = self.job.drain()
        if not events:
            return
        validated = False
        for event in events:
            self.history.add(event)
            validated |= event.kind == "validation"
        h = self.history
        if h.max_steps:
            self.status.value = f"step {h.step} of {h.max_steps}"
        if validated:
            self.plots.draw(h)
            self.verdict.value = f"latent space: {h.verdict_text}" if h.verdict_text else ""
            self._show_preview(h.preview)
        elif any(e.kind == "step" for e in events) and len(h.steps) % 5 == 0:
            self.plots.draw(h)

    def _show_preview(self, pair) -> None:
        if pair is None:
            return
        orig, rec = pair
        gap = np.full((orig.shape[0], 2), np.nan, np.float32)
        image = np.concatenate([orig, gap, rec], axis=1)
        lo, hi = np.percentile(orig, (0.5, 99.8))
        limits = (float(lo), float(hi) if hi > lo else float(lo) + 1.0)
        if PREVIEW in self.viewer.layers:
            layer = self.viewer.layers[PREVIEW]
            layer.data = image
            layer.contrast_limits = limits
        else:
            self.viewer.add_image(image, name=PREVIEW, contrast_limits=limits)

    def _done(self, model_file: Path) -> None:
        self.poll()
        self.model_written = Path(model_file)
        h = self.history
        early = h.max_steps and h.step < h.max_steps
        what = f"stopped at step {h.step} of {h.max_steps}" if early else f"{h.step} steps"
        self.status.value = f"model written: {model_file} ({what})"

    # -- export --------------------------------------------------------------------------------

    def export(self, *_):
        """Write the output folder's model as a bioimage.io package, in a worker (returns it);
        its test tile comes from the first chosen layer where there is one."""

        def start():
            out = self.output()
            model_file = self.model_written or self._model_file(out)
            if not Path(model_file).is_file():
                raise PluginError(f"no model to export: {model_file} does not exist; Train first")
            text = str(self.package_file.line_edit.value).strip()
            target = Path(text) if text else out / "bioimageio.zip"
            layers = list(self.layers.value)
            image = self.plane_under_sliders(layers[0].data) if layers else None
            worker = self._worker(export_package, model_file, target, image)
            worker.returned.connect(
                lambda path: setattr(self.status, "value", f"bioimage.io package: {path}")
            )
            self.status.value = f"exporting {model_file} to {target}..."
            return self._start_worker(worker)

        return self._guard(start)

    def _finished(self) -> None:
        self.timer.stop()
        self.job = None
        self.worker = None
        self.train_button.enabled = self.resume_button.enabled = True
        self.stop_button.enabled = False
