"""What the Train widget does, without Qt: the settings it edits, the data it writes from
layers, the training job a worker thread runs, and the history its plots draw.

The job calls :func:`microvae.train` with an ``on_event`` that puts events on a queue and a
``stop`` flag; the widget drains the queue on the GUI thread. Tests run these directly.
"""

from __future__ import annotations

import json
import queue
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

import microvae
from microvae.config import ConfigError, RunConfig, load_config, shipped_configs
from microvae.io import atomic_path

from ._train_process import read_frame
from ._work import PluginError, check_layer

__all__ = [
    "KEY_FIELDS",
    "TrainSettings",
    "TrainingHistory",
    "TrainingJob",
    "config_choices",
    "key_values",
    "write_layers",
]

# the fields the widget edits: (config key, label); every other key is the config's
KEY_FIELDS = [
    ("data.tile_size", "tile size"),
    ("train.max_steps", "steps"),
    ("likelihood.name", "likelihood"),
    ("objective.beta", "beta"),
    ("objective.warmup_steps", "KL warm-up steps"),
    ("train.val_every", "validate every"),
    ("train.batch_size", "tiles per step"),
    ("train.seed", "seed"),
]
LIKELIHOODS = ["dmol", "laplace", "gaussian"]


def config_choices() -> dict[str, Path]:
    """The configs of ``configs/`` by name (demo first: it trains in minutes on a CPU)."""
    found = shipped_configs()
    order = sorted(found, key=lambda n: (n != "demo", n != "cpu", n))
    return {name: found[name] for name in order}


def _get(cfg: RunConfig, key: str):
    section, name = key.split(".")
    return getattr(getattr(cfg, section), name)


def key_values(config: str | Path) -> dict[str, object]:
    """The key fields' values in a config file."""
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        raise PluginError(str(exc)) from None
    return {key: _get(cfg, key) for key, _ in KEY_FIELDS}


@dataclass
class TrainSettings:
    """A config file and the widget's values of its key fields (``key -> value``)."""

    config: Path
    values: dict[str, object] = field(default_factory=dict)
    device: str = "auto"

    def overrides(self) -> list[str]:
        """``key=value`` strings, as ``--set`` on the command line."""
        out = [f"{k}={v}" for k, v in self.values.items()]
        # worker processes are forked from a GUI application's thread: load tiles in-thread
        # (the tiles do not depend on the number of workers)
        out.append("data.num_workers=0")
        if self.device != "auto":
            out.append(f"train.accelerator={self.device}")
        return out

    def resolved(self) -> RunConfig:
        """The config the run will use; bad values are said, naming the key."""
        try:
            return load_config(self.config, self.overrides())
        except ConfigError as exc:
            raise PluginError(str(exc)) from None


_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _file_name(name: str, used: set[str]) -> str:
    stem = _SAFE.sub("_", name).strip("._") or "layer"
    candidate, k = stem, 1
    while candidate in used:
        k += 1
        candidate = f"{stem}_{k}"
    used.add(candidate)
    return f"{candidate}.tif"


def write_layers(layers: list, folder: Path, tile_size: int) -> list[Path]:
    """Write image layers (their data, pixel size from their scale) as TIFFs into ``folder``
    for training; layers a 1-channel model cannot read, or smaller than a tile, are refused
    before anything is written."""
    if not layers:
        raise PluginError("no training data: choose image layers or a folder of TIFFs")
    for layer in layers:
        check_layer(layer.data, rgb=layer.rgb, name=layer.name)
        h, w = layer.data.shape[-2:]
        if min(h, w) < tile_size:
            raise PluginError(
                f"layer '{layer.name}' ({h} x {w}) is smaller than the tile size {tile_size}: "
                "lower the tile size (a multiple of 2**levels) or choose a larger image"
            )
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.tif"):  # the layers chosen now, not those of an earlier run
        old.unlink()
    paths, used = [], set()
    for layer in layers:
        data = np.asarray(layer.data)
        axes = "TZYX"[-data.ndim :] if data.ndim <= 4 else None
        if axes is None:
            raise PluginError(f"layer '{layer.name}' has {data.ndim} dimensions; at most 4")
        # the layer's scale is its pixel size; a stack's Z step too (a 3D model's Z strides
        # come from the voxel's shape)
        spatial = "ZYX"[-min(data.ndim, 3) :] if "Z" in axes else "YX"
        scale = [float(s) for s in layer.scale[-len(spatial) :]]
        pixel = dict(zip(spatial, scale)) if any(s != 1.0 for s in scale) else None
        paths.append(
            microvae.write_image(
                folder / _file_name(layer.name, used), data, axes=axes, pixel_size=pixel
            )
        )
    return paths


@dataclass
class TrainingHistory:
    """The series the plots draw, gathered from events: per step (loss, bits/dim, KL) and per
    validation (bits/dim, KL per level, the verdict)."""

    steps: list[int] = field(default_factory=list)
    loss: list[float] = field(default_factory=list)
    bits_per_dim: list[float] = field(default_factory=list)
    kl: list[float] = field(default_factory=list)
    val_steps: list[int] = field(default_factory=list)
    val_bits_per_dim: list[float] = field(default_factory=list)
    val_kl_per_level: list[list[float]] = field(default_factory=list)
    verdict: str | None = None
    verdict_text: str | None = None
    preview: tuple[np.ndarray, np.ndarray] | None = None
    messages: list[str] = field(default_factory=list)
    step: int = 0
    max_steps: int = 0

    def add(self, event) -> None:
        self.step, self.max_steps = event.step, event.max_steps
        v = event.values
        if event.kind == "step":
            self.steps.append(event.step)
            self.loss.append(v.get("loss", np.nan))
            self.bits_per_dim.append(v.get("bits_per_dim", np.nan))
            self.kl.append(v.get("kl", np.nan))
        elif event.kind == "validation":
            if self.val_steps and self.val_steps[-1] == event.step:
                return  # the same step validated again (the end of a run after a stop)
            self.val_steps.append(event.step)
            self.val_bits_per_dim.append(v.get("val/bits_per_dim", np.nan))
            levels = sorted(k for k in v if k.startswith("val/kl_level_"))
            self.val_kl_per_level.append([v[k] for k in levels])
            self.verdict, self.verdict_text = event.verdict, event.text
            if event.preview is not None:
                self.preview = event.preview
        elif event.kind == "message" and event.text:
            self.messages.append(event.text)


class TrainingJob:
    """One run of :func:`microvae.train` from the widget.

    ``run()`` (in a worker thread) trains in a process of its own
    (:mod:`napari_microvae._train_process`) and relays its events to ``events``, a queue the
    GUI thread drains; ``stop()`` works from any thread. A process and not a thread: training
    then never holds the viewer's GIL, and what it loads (Lightning pulls in triton, whose
    LLVM crashes beside Mesa's software OpenGL) stays out of the viewer's process. If the
    viewer goes away, the process's stdin closes and the run stops, saving its checkpoints
    (Resume continues it).
    """

    def __init__(
        self,
        settings: TrainSettings,
        data: list[Path],
        run_dir: Path,
        *,
        resume: bool = False,
        overwrite: bool = False,
        model_file: Path | None = None,
    ):
        self.settings, self.data, self.run_dir = settings, data, Path(run_dir)
        self.resume, self.overwrite, self.model_file = resume, overwrite, model_file
        self.events: queue.Queue = queue.Queue()
        self.process: subprocess.Popen | None = None
        self.pid: int | None = None  # the training process (for tests)
        self._stop_asked = False

    def stop(self) -> None:
        self._stop_asked = True
        process = self.process
        if process is not None and process.poll() is None:
            try:
                process.stdin.write(b"stop\n")
                process.stdin.flush()
            except (BrokenPipeError, ValueError):  # it has just ended
                pass

    def spec(self) -> dict:
        """The arguments of :func:`microvae.train` for the process."""
        if self.resume:
            # a resumed run keeps its saved config; only train.* may change (its length)
            overrides = [f"train.max_steps={self.settings.values['train.max_steps']}"]
            config = None
        else:
            overrides, config = self.settings.overrides(), str(self.settings.config)
        return {
            "config": config,
            "data": [str(p) for p in self.data],
            "run_dir": str(self.run_dir),
            "overrides": overrides,
            "resume": self.resume,
            "overwrite": self.overwrite,
        }

    def run(self) -> Path:
        """Train (or resume) and wait; returns the model file written."""
        self.process = subprocess.Popen(
            [sys.executable, "-m", "napari_microvae._train_process"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        self.pid = self.process.pid
        self.process.stdin.write((json.dumps(self.spec()) + "\n").encode())
        self.process.stdin.flush()
        if self._stop_asked:  # Stop came before the process was there
            self.stop()
        end = None
        while (item := read_frame(self.process.stdout)) is not None:
            if isinstance(item, tuple):
                end = item
            else:
                self.events.put(item)
        code = self.process.wait()
        if end is None:
            raise PluginError(
                f"the training process ended without a result (exit code {code}); "
                f"{self.run_dir / 'checkpoints' / 'last.ckpt'} holds the last saved step"
            )
        kind, text = end
        if kind == "error":
            raise PluginError(text)
        written = Path(text)
        if self.model_file is not None and self.model_file.resolve() != written.resolve():
            self.model_file.parent.mkdir(parents=True, exist_ok=True)
            with atomic_path(self.model_file) as tmp:
                shutil.copyfile(written, tmp)
            written = self.model_file
        return written

    def drain(self) -> list:
        """The events sent since the last call."""
        out = []
        while True:
            try:
                out.append(self.events.get_nowait())
            except queue.Empty:
                return out
