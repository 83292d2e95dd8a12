"""The Reconstruct widget: a model on an image layer, the result beside the original."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import CheckBox, ComboBox, Label, PushButton, SpinBox
from napari.experimental import link_layers
from napari.utils.colormaps import DirectLabelColormap
from napari.utils.notifications import show_error

from microvae.devices import release_memory
from microvae.inference import TileOptions
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
    VOLUME_SHOWN,
    chosen_path,
    format_metrics,
    presence_colours,
    reconstruct_steps,
    structure_text,
    summary_metrics,
    total_steps,
    view_box,
    z_step_of,
)

__all__ = ["ReconstructWidget"]


class ReconstructWidget(WorkerWidget):
    """Choose an image layer and a model file; Run reconstructs in a worker thread."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self.viewer = napari_viewer
        self.layer = ComboBox(label="image", choices=lambda _: image_layers(self.viewer))
        self.model_file = model_field()
        self.tile_size = SpinBox(label="tile size (0: model's)", value=0, min=0, max=4096, step=8)
        self.overlap = SpinBox(label="overlap (-1: tile/4)", value=-1, min=-1, max=2048)
        self.batch_size = batch_field()
        self.device = device_field()
        self.samples = SpinBox(label="posterior samples (1: none)", value=1, min=1, max=256)
        self.error = CheckBox(text="add |error| layer", value=False)
        self.with_metrics = CheckBox(text="metrics (PSNR, SSIM, FRC, ...)", value=True)
        self.run_button = PushButton(text="Run")
        self.cancel_button = PushButton(text="Cancel", enabled=False)
        self.view_button = PushButton(text="Metrics of the view", enabled=False)
        self.status = Label(value="")
        self.metrics = Label(value="")
        super().__init__(
            napari_viewer,
            [
                self.layer,
                self.model_file,
                self.tile_size,
                self.overlap,
                self.batch_size,
                self.device,
                self.samples,
                self.error,
                self.with_metrics,
                self.run_button,
                self.cancel_button,
                self.status,
                self.metrics,
                self.view_button,
            ],
        )
        self.worker = None
        self.result_layers: tuple | None = None  # (original, reconstruction)
        self.run_button.changed.connect(self.run)
        self.cancel_button.changed.connect(self.cancel)
        self.view_button.changed.connect(self.view_metrics)

    # -- running -------------------------------------------------------------------------------

    def options(self) -> TileOptions:
        return TileOptions(
            tile_size=self.tile_size.value or None,
            overlap=None if self.overlap.value < 0 else self.overlap.value,
            batch_size=self.batch_size.value,
            samples=self.samples.value,
            seed=0 if self.samples.value > 1 else None,
        )

    def run(self, *_):
        """Start the worker (returns it); problems become notifications."""
        return self._guard(self._start)

    def _start(self):
        layer = self.chosen_layer(self.layer.value)
        # the field's text: an empty field reads as the current folder in FileEdit.value
        path = chosen_path(self.model_file.line_edit.value)
        model = self.models.get(path, self.device.value)
        options = self.options()
        total = total_steps(model, layer.data.shape, options)
        unit = str(layer.units[-1]) if getattr(layer, "units", None) is not None else "um"
        self.worker = self._worker(
            reconstruct_steps,
            model,
            layer.data,
            options,
            error=self.error.value,
            metrics=self.with_metrics.value,
            pixel_size=float(layer.scale[-1]) if layer.scale[-1] != 1 else None,
            z_step=z_step_of(layer),
            unit="um" if unit in ("pixel", "px") else unit,
            name=layer.name,
            _progress={"total": total, "desc": f"microvae: {layer.name}"},
        )
        self.worker.returned.connect(lambda result: self._done(layer, result, model))
        self.worker.aborted.connect(lambda: self._set_status("cancelled"))
        self.worker.finished.connect(lambda: self._finished(model))
        self.run_button.enabled, self.cancel_button.enabled = False, True
        self._set_status(f"reconstructing {layer.name} ({total} batches of tiles)...")
        return self._start_worker(self.worker)

    def cancel(self, *_):
        if self.worker is not None:
            self.worker.quit()  # stops at the next batch of tiles

    def _finished(self, model) -> None:
        self.run_button.enabled, self.cancel_button.enabled = True, False
        self.worker = None
        release_memory(model.device)

    def _set_status(self, text: str) -> None:
        self.status.value = text

    def _done(self, layer, result, model=None) -> None:
        common = {"scale": layer.scale, "translate": layer.translate}
        recon = self.viewer.add_image(
            result.reconstruction,
            name=f"{layer.name} reconstruction",
            contrast_limits=layer.contrast_limits,
            colormap=layer.colormap.name,
            **common,
        )
        link_layers([layer, recon], ("contrast_limits",))
        if result.error is not None:
            self.viewer.add_image(
                result.error, name=f"{layer.name} |error|", colormap="magma", **common
            )
        self._add_uncertainty(layer, result, common)
        grid = self.viewer.canvas.grid
        grid.stride = 1  # layers in list order: the original first (left), then the rest
        grid.enabled = True
        show_in_3d(self.viewer, layer, [model])
        self.result_layers = (layer, recon)
        self.view_button.enabled = True
        if result.metrics:
            n = len(result.metrics)
            head = "whole image" + (f" (mean of {n} planes)" if n > 1 else "")
            text = f"{head}:\n" + format_metrics(summary_metrics(result.metrics))
            if result.volumes:
                n = len(result.volumes)
                vol = summary_metrics(result.volumes, VOLUME_SHOWN)
                text += f"\n3D{f' (mean of {n} volumes)' if n > 1 else ''}:\n"
                text += format_metrics(vol, VOLUME_SHOWN)
            self.metrics.value = text
        if result.structure is not None:
            self.metrics.value = f"{self.metrics.value}\n{structure_text(result.structure)}"
        self._set_status(f"done: {recon.name} added beside {layer.name}")

    def _add_uncertainty(self, layer, result, common: dict) -> None:
        """With posterior samples: the draws' standard deviation, and for one plane (a 3D
        model: one volume) the MMSE skeleton's branches coloured by presence (red: in no
        draw, green: in all)."""
        if result.std is not None:
            self.viewer.add_image(
                result.std, name=f"{layer.name} posterior std", colormap="inferno", **common
            )
        if result.structure is not None:
            p = result.structure.presence
            self.viewer.add_labels(
                p.labels,
                name=f"{layer.name} branch presence",
                colormap=DirectLabelColormap(color_dict=presence_colours(p.presence)),
                **common,
            )

    # -- metrics of the field of view ----------------------------------------------------------

    def current_planes(self) -> tuple[np.ndarray, np.ndarray, tuple]:
        """The original's and the reconstruction's plane under the sliders, and the view box."""
        original, recon = self.result_layers
        a, b = self.plane_under_sliders(original.data), self.plane_under_sliders(recon.data)
        box = view_box(original.corner_pixels, a.shape)
        return a, b, box

    def view_metrics(self, *_):
        """Metrics of the visible region of the current plane, in a worker (returns it)."""
        if self.result_layers is None:
            show_error("microvae: run a reconstruction first")
            return None
        a, b, (rows, cols) = self.current_planes()
        original = self.result_layers[0]
        px = float(original.scale[-1]) if original.scale[-1] != 1 else None
        head = f"view: rows {rows.start}-{rows.stop}, columns {cols.start}-{cols.stop}:\n"
        worker = self._worker(fine_structure_metrics, a[rows, cols], b[rows, cols], pixel_size=px)
        worker.returned.connect(
            lambda values: setattr(self.metrics, "value", head + format_metrics(values))
        )
        return self._start_worker(worker)
