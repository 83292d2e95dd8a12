"""The Compare widget: several models on one image, side by side, with a table of metrics.

The original and each model's reconstruction stand in napari's grid (zoom, pan and the
stack's sliders are the viewer's, so shared), their contrast limits linked. The table gives
per model PSNR/SSIM against the input, FRC resolution, high-frequency ratio, morphology
ratios and the ground-truth-free noise-split estimate (where the image's noise can be
measured), for the whole image and, on request, for the view.
"""

from __future__ import annotations

from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Label,
    PushButton,
    SpinBox,
    Table,
)
from napari.experimental import link_layers

from microvae.devices import release_memory
from microvae.inference import TileOptions, TrainedModel
from microvae.metrics import fine_structure_metrics

from ._widget_base import (
    WorkerWidget,
    batch_field,
    device_field,
    image_layers,
    model_field,
    show_in_3d,
)
from ._work import (
    INTERVALS,
    SHOWN,
    SPLIT,
    VOLUME_SHOWN,
    PluginError,
    reconstruct_steps,
    split_estimate,
    summary_metrics,
    total_steps,
    view_box,
    z_step_of,
)

__all__ = ["CompareWidget", "compare_steps", "model_names"]

COLUMNS = [(key, label) for key, label, _ in SHOWN + SPLIT]
COLUMNS_3D = [(key, label) for key, label, _ in VOLUME_SHOWN]  # when a model is 3D


def model_names(paths: list[Path]) -> list[str]:
    """Short, distinct names: a file's stem, or its run folder's name for ``model.pt``."""
    names = []
    for p in paths:
        p = Path(p)
        name = p.parent.name if p.stem == "model" and p.parent.name else p.stem
        base, k = name, 1
        while name in names:
            k += 1
            name = f"{base} ({k})"
        names.append(name)
    return names


@dataclass
class Compared:
    """One model's reconstruction of the image and its metrics (whole image); with posterior
    samples the draws' standard deviation and, for one 2D plane, the network statistics'
    intervals over the draws as table cells ("1.00 [0.97, 1.04]")."""

    name: str
    reconstruction: np.ndarray
    metrics: dict[str, float]
    std: np.ndarray | None = None
    intervals: dict[str, str] = field(default_factory=dict)


def compare_steps(
    models: list[tuple[str, TrainedModel]],
    data: np.ndarray,
    options: TileOptions,
    *,
    plane_index: tuple[int, ...] = (),
    split_noise: bool = True,
    pixel_size: float | None = None,
    z_step: float | None = None,
    name: str = "layer",
) -> Generator[tuple[int, int], None, list[Compared]]:
    """Reconstruct ``data`` (..., Y, X) with each model in turn (yields (done, total)
    batches of tiles); metrics are the mean over planes (and a 3D model's 3D metrics the mean
    over volumes), and the noise-split estimate is of the plane at ``plane_index`` (the
    sliders'; a 3D model: the volume that holds it) since it reconstructs that again."""
    data = np.asarray(data)
    totals = [total_steps(m, data.shape, options) for _, m in models]
    total, done, out = sum(totals) + (len(models) if split_noise else 0), 0, []
    for (label, model), n in zip(models, totals):
        steps = reconstruct_steps(
            model, data, options, pixel_size=pixel_size, z_step=z_step, name=name
        )
        while True:
            try:
                k, _ = next(steps)
                yield done + k, total
            except StopIteration as stop:
                result = stop.value
                break
        done += n
        values = summary_metrics(result.metrics)
        if result.volumes:
            values.update(summary_metrics(result.volumes, VOLUME_SHOWN))
        if split_noise:
            where = plane_index[:-1] if model.dims == 3 else plane_index
            values.update(split_estimate(model, data[where], options))
            done += 1
            yield done, total
        cells = {}
        if result.structure is not None:  # a plane's (a 3D model's volume has other fields)
            cells = {k: str(v) for k, v in result.structure.intervals.items()}
        out.append(Compared(label, result.reconstruction, values, result.std, cells))
    return out


def _table_rows(names: list[str], values: list[dict], intervals: list[dict] | None = None) -> dict:
    """The table's cells: the metrics, and with posterior samples the intervals' columns."""

    def fmt(v: float, pattern: str) -> str:
        return "n/a" if not np.isfinite(v) else pattern.format(v)

    patterns = {key: pattern for key, _, pattern in SHOWN + SPLIT + VOLUME_SHOWN}
    columns = COLUMNS + (COLUMNS_3D if any(k in v for v in values for k, _ in COLUMNS_3D) else [])
    data = [[fmt(v.get(k, np.nan), patterns[k]) for k, _ in columns] for v in values]
    labels = [label for _, label in columns]
    if intervals and any(intervals):
        labels += [f"{label} (MMSE [90% of draws])" for _, label in INTERVALS]
        for row, cells in zip(data, intervals):
            row += [cells.get(key, "n/a") for key, _ in INTERVALS]
    return {"data": data, "index": names, "columns": labels}


class CompareWidget(WorkerWidget):
    """Choose an image layer and several model files; Compare runs them in a worker."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self.viewer = napari_viewer
        self.layer = ComboBox(label="image", choices=lambda _: image_layers(self.viewer))
        self.model_files = model_field("models", several=True)
        self.device = device_field()
        self.batch_size = batch_field()
        self.samples = SpinBox(label="posterior samples (1: none)", value=1, min=1, max=256)
        self.split_noise = CheckBox(
            text="noise-split estimate (no ground truth needed)", value=True
        )
        self.run_button = PushButton(text="Compare")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.view_button = PushButton(text="Metrics of the view", enabled=False)
        self.status = Label(value="")
        self.whole_label = Label(value="whole image")
        self.whole = Table(value={"data": [], "index": [], "columns": []})
        self.view_label = Label(value="view")
        self.view = Table(value={"data": [], "index": [], "columns": []})
        super().__init__(
            napari_viewer,
            [
                self.layer,
                self.model_files,
                self.device,
                self.batch_size,
                self.samples,
                self.split_noise,
                self.run_button,
                self.cancel_button,
                self.status,
                self.whole_label,
                self.whole,
                self.view_button,
                self.view_label,
                self.view,
            ],
        )
        self.worker = None
        self.compared: list[tuple[str, TrainedModel, object]] = []  # (name, model, layer)
        self.original = None
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.view_button.changed.connect(self.view_metrics)

    def paths(self) -> list[Path]:
        value = self.model_files.value
        paths = [Path(p) for p in (value if isinstance(value, (list, tuple)) else [value])]
        paths = [p for p in paths if str(p).strip() not in ("", ".") and not p.is_dir()]
        if not paths:
            raise PluginError("no models chosen: pick one or more model files (model.pt)")
        return paths

    def options(self) -> TileOptions:
        n = self.samples.value
        return TileOptions(batch_size=self.batch_size.value, samples=n, seed=0 if n > 1 else None)

    def run(self, *_):
        return self._guard(self._start)

    def _start(self):
        layer = self.chosen_layer(self.layer.value)
        paths = self.paths()
        models = [self.models.get(p, self.device.value) for p in paths]
        named = list(zip(model_names(paths), models))
        lead = layer.data.ndim - 2
        index = tuple(int(i) for i in self.viewer.dims.current_step[:lead])
        options = self.options()
        px = float(layer.scale[-1]) if layer.scale[-1] != 1 else None
        self.worker = self._worker(
            compare_steps,
            named,
            layer.data,
            options,
            plane_index=index,
            split_noise=self.split_noise.value,
            pixel_size=px,
            z_step=z_step_of(layer),
            name=layer.name,
            _progress={"desc": f"microvae: comparing {len(named)} models"},
        )
        self.worker.yielded.connect(self._progress)
        self.worker.returned.connect(lambda result: self._done(layer, named, result))
        self.worker.aborted.connect(lambda: setattr(self.status, "value", "cancelled"))
        self.worker.finished.connect(lambda: self._finished(models))
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self.status.value = f"comparing {len(named)} models on {layer.name}..."
        return self._start_worker(self.worker)

    def _progress(self, step) -> None:
        done, total = step
        self.status.value = f"comparing: {done} of {total} batches"

    def cancel(self, *_):
        if self.worker is not None:
            self.worker.quit()

    def _finished(self, models) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.worker = None
        for m in models:
            release_memory(m.device)

    def _done(self, layer, named, results: list[Compared]) -> None:
        common = {"scale": layer.scale, "translate": layer.translate}
        added = []
        for (name, _), r in zip(named, results):
            title = f"{layer.name} · {name}"
            if title in self.viewer.layers:  # a comparison again: replace the earlier
                self.viewer.layers.remove(title)
            added.append(
                self.viewer.add_image(
                    r.reconstruction,
                    name=title,
                    contrast_limits=layer.contrast_limits,
                    colormap=layer.colormap.name,
                    **common,
                )
            )
        link_layers([layer, *added], ("contrast_limits",))
        for (name, _), r in zip(named, results):
            if r.std is not None:  # each model's spread after the reconstructions
                title = f"{layer.name} · {name} posterior std"
                if title in self.viewer.layers:
                    self.viewer.layers.remove(title)
                self.viewer.add_image(r.std, name=title, colormap="inferno", **common)
        grid = self.viewer.canvas.grid
        grid.stride, grid.enabled = 1, True
        show_in_3d(self.viewer, layer, [m for _, m in named])
        self.original = layer
        self.compared = [(n, m, a) for (n, m), a in zip(named, added)]
        n = layer.data.ndim - 2
        planes = int(np.prod(layer.data.shape[:n])) if n else 1
        head = "whole image" + (f" (mean of {planes} planes" if planes > 1 else "")
        if planes > 1 and self.split_noise.value:
            head += "; noise split: the plane under the sliders"
        self.whole_label.value = head + (")" if planes > 1 else "")
        self.whole.value = _table_rows(
            [r.name for r in results], [r.metrics for r in results], [r.intervals for r in results]
        )
        self.whole.native.resizeColumnsToContents()
        self.view_button.enabled = True
        self.status.value = f"done: {len(results)} models beside {layer.name}"

    # -- metrics of the view -------------------------------------------------------------------

    def view_metrics(self, *_):
        """Each model's metrics on the visible region of the current plane (a worker)."""

        def start():
            if not self.compared:
                raise PluginError("compare models first")
            original = self.original
            plane = self.plane_under_sliders(original.data)
            rows, cols = view_box(original.corner_pixels, plane.shape)
            px = float(original.scale[-1]) if original.scale[-1] != 1 else None
            crop = plane[rows, cols]
            pairs = [
                (name, model, self.plane_under_sliders(layer.data)[rows, cols])
                for name, model, layer in self.compared
            ]
            split = self.split_noise.value
            options = self.options()

            def work():
                out = []
                for name, model, rec in pairs:
                    values = fine_structure_metrics(crop, rec, pixel_size=px)
                    # a 3D model's estimate needs the volume: the whole-image table has it
                    if split and model.dims == 2 and min(crop.shape) >= model.default_tile():
                        values.update(split_estimate(model, crop, options))
                    out.append((name, values))
                return out

            worker = self._worker(work)
            where = f"view: rows {rows.start}-{rows.stop}, columns {cols.start}-{cols.stop}"
            worker.returned.connect(lambda out: self._view_done(where, out))
            return self._start_worker(worker)

        return self._guard(start)

    def _view_done(self, where: str, out: list) -> None:
        self.view_label.value = where
        self.view.value = _table_rows([n for n, _ in out], [v for _, v in out])
        self.view.native.resizeColumnsToContents()
