"""The Latent space widget: prototype, samples at a temperature, interpolation, as layers."""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import ComboBox, FloatSpinBox, Label, PushButton, SpinBox

from microvae import latent

from ._widget_base import (
    WorkerWidget,
    device_field,
    image_layers,
    model_field,
    optional_layers,
)
from ._work import PluginError, check_layer, chosen_path, interpolation, latent_tile

__all__ = ["LatentWidget"]


class LatentWidget(WorkerWidget):
    """Decode the latent space of a generative model into new layers."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self.viewer = napari_viewer
        self.model_file = model_field()
        self.device = device_field()
        self.prototype_button = PushButton(text="Prototype (z = 0)")
        self.n_samples = SpinBox(label="samples", value=8, min=1, max=256)
        self.temperature = FloatSpinBox(label="temperature", value=0.8, min=0.0, max=3.0, step=0.1)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.samples_button = PushButton(text="Sample")
        self.first = ComboBox(label="from image", choices=lambda _: image_layers(self.viewer))
        self.second = ComboBox(label="to image", choices=lambda _: image_layers(self.viewer))
        self.regions = ComboBox(
            label="or 2 regions (shapes)",
            choices=lambda _: optional_layers(self.viewer, napari.layers.Shapes),
        )
        self.steps = SpinBox(label="steps", value=8, min=2, max=64)
        self.interpolate_button = PushButton(text="Interpolate")
        self.status = Label(value="")
        super().__init__(
            napari_viewer,
            [
                self.model_file,
                self.device,
                self.prototype_button,
                self.n_samples,
                self.temperature,
                self.seed,
                self.samples_button,
                self.first,
                self.second,
                self.regions,
                self.steps,
                self.interpolate_button,
                self.status,
            ],
        )
        self.prototype_button.changed.connect(self.prototype)
        self.samples_button.changed.connect(self.samples)
        self.interpolate_button.changed.connect(self.interpolate)

    def _model(self):
        path = chosen_path(self.model_file.line_edit.value)
        return self.models.get(path, self.device.value)

    def _run(self, func, name: str, meta: dict | None = None):
        """Run ``func()`` in a worker; its array becomes layer ``name``. Returns the worker."""
        worker = self._worker(func)
        worker.returned.connect(lambda data: self._add(data, name, meta or {}))
        self.status.value = f"computing {name}..."
        return self._start_worker(worker)

    def _add(self, data: np.ndarray, name: str, meta: dict) -> None:
        self.viewer.add_image(data, name=name, **meta)
        self.status.value = f"added {name}"

    def prototype(self, *_):
        def start():
            model = self._model()
            model.vae.priors()  # raises at once for a model that cannot generate
            return self._run(lambda: latent.prototype(model), "prototype")

        return self._guard(start)

    def samples(self, *_):
        def start():
            model = self._model()
            model.vae.priors()
            n, t, seed = self.n_samples.value, self.temperature.value, self.seed.value
            return self._run(
                lambda: latent.samples(model, n, temperature=t, seed=seed),
                f"samples T={t:g} seed={seed}",
            )

        return self._guard(start)

    def _plane(self, layer) -> np.ndarray:
        check_layer(layer.data, rgb=layer.rgb, name=layer.name)
        return self.plane_under_sliders(layer.data)

    def _region_boxes(self, shapes, plane_shape) -> list[tuple[slice, slice]]:
        boxes = []
        for corners in shapes.data[:2]:
            yx = np.asarray(corners)[:, -2:]
            lo, hi = np.floor(yx.min(0)).astype(int), np.ceil(yx.max(0)).astype(int)
            lo = np.clip(lo, 0, plane_shape)
            hi = np.clip(hi, 0, plane_shape)
            boxes.append((slice(lo[0], hi[0]), slice(lo[1], hi[1])))
        if len(boxes) < 2:
            raise PluginError(f"shapes layer '{shapes.name}' needs two regions (rectangles)")
        return boxes

    def interpolate(self, *_):
        def start():
            model = self._model()
            a_layer, b_layer = self.first.value, self.second.value
            if a_layer is None:
                raise PluginError("no image layer to interpolate from")
            a_plane = self._plane(a_layer)
            if self.regions.value is not None:  # two regions of the first image
                box_a, box_b = self._region_boxes(self.regions.value, a_plane.shape)
                a = latent_tile(model, a_plane, box_a)
                b = latent_tile(model, a_plane, box_b)
                name = f"interpolation {a_layer.name}: 2 regions"
            else:
                if b_layer is None:
                    raise PluginError("no image layer to interpolate to")
                a = latent_tile(model, a_plane)
                b = latent_tile(model, self._plane(b_layer))
                name = f"interpolation {a_layer.name} -> {b_layer.name}"
            steps = self.steps.value
            meta = {"scale": (1.0, *a_layer.scale[-2:])}
            return self._run(lambda: interpolation(model, a, b, steps), name, meta)

        return self._guard(start)
