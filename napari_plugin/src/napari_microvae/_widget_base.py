"""What both widgets share: device choices, the model cache, image-layer choices, and a
Container that runs workers (counting them), shows errors as notifications and follows the
viewer's layers."""

from __future__ import annotations

from pathlib import Path

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, FileEdit, Label, SpinBox
from napari.qt.threading import create_worker
from napari.utils.notifications import show_error

from microvae.errors import MicrovaeError

from ._work import PluginError, check_layer, load

__all__ = [
    "DEVICES",
    "MODEL_FILES",
    "ModelCache",
    "WorkerWidget",
    "batch_field",
    "device_field",
    "image_layers",
    "model_field",
    "optional_layers",
]

DEVICES = ["auto", "cpu", "cuda", "mps"]
MODEL_FILES = "*.pt *.zip"  # model.pt, or a bioimage.io package microvae exported


# the form pieces every widget shares, written once (napari-n2v's widgets/ in spirit)
def model_field(label: str = "model", *, several: bool = False) -> FileEdit:
    """The model file(s): ``model.pt`` or an exported bioimage.io ``.zip``."""
    return FileEdit(label=label, mode="rm" if several else "r", filter=MODEL_FILES)


def device_field() -> ComboBox:
    """Where the model runs: auto (CUDA, MPS, CPU) or one of them."""
    return ComboBox(label="device", choices=DEVICES, value="auto")


def batch_field() -> SpinBox:
    """Tiles per batch through the network."""
    return SpinBox(label="tiles per batch", value=8, min=1, max=512)


def image_layers(viewer: napari.viewer.Viewer) -> list:
    """The viewer's image layers, as choices for a combo box."""
    return [layer for layer in viewer.layers if isinstance(layer, napari.layers.Image)]


def optional_layers(viewer: napari.viewer.Viewer, kind: type) -> list:
    """None and the viewer's layers of ``kind`` (e.g. ``napari.layers.Labels``), as choices
    for a combo box whose choice may be left empty."""
    return [None] + [layer for layer in viewer.layers if isinstance(layer, kind)]


class ModelCache:
    """Loaded models by (file, device, modification time): a file trained again is loaded
    again; the Compare widget holds several at once."""

    def __init__(self):
        self.loaded: dict[tuple, object] = {}

    def get(self, path, device: str):
        p = Path(str(path))
        stamp = p.stat().st_mtime_ns if p.exists() else None
        key = (str(p), device, stamp)
        if key not in self.loaded:
            # the same file at another time or device: not kept twice
            self.loaded = {k: v for k, v in self.loaded.items() if k[:2] != key[:2]}
            self.loaded[key] = load(path, device)
        return self.loaded[key]


class WorkerWidget(Container):
    """A Container with a ``status`` Label (set by the subclass before ``__init__``) that
    starts workers, counts them in ``busy`` and turns errors into notifications."""

    def __init__(self, viewer: napari.viewer.Viewer, widgets: list):
        self.viewer = viewer
        super().__init__(widgets=widgets)
        for w in widgets:  # long messages wrap, not widen the dock past the viewer's canvas
            if isinstance(w, Label):
                w.native.setWordWrap(True)
        self.models = ModelCache()
        self.busy = 0  # workers started and not yet finished
        # combo boxes list the layers there are now
        for event in ("inserted", "removed", "reordered"):
            getattr(self.viewer.layers.events, event).connect(self._reset)

    def _reset(self, event=None) -> None:
        self.reset_choices()

    def _worker(self, func, *args, **kwargs):
        """A napari worker of ``func(*args, **kwargs)`` (not started) whose errors become
        notifications: only through here, since a worker without its own errored
        connection re-raises in the Qt event loop."""
        worker = create_worker(func, *args, _ignore_errors=True, **kwargs)
        worker.errored.connect(self._fail)
        return worker

    def _start_worker(self, worker):
        """Start ``worker``, counted in ``busy`` from before its start (so a worker that ends
        at once is not missed); returns it."""
        self.busy += 1
        worker.finished.connect(self._one_less)
        worker.start()
        return worker

    def _one_less(self) -> None:
        self.busy -= 1

    def _fail(self, exc: BaseException) -> None:
        self.status.value = f"error: {exc}"
        show_error(f"microvae: {exc}")

    def _guard(self, start):
        """``start()``, its problems shown as notifications (then None)."""
        try:
            return start()
        except (PluginError, MicrovaeError) as exc:
            self._fail(exc)
            return None

    def chosen_layer(self, layer):
        """An image layer chosen in a combo box, checked as a 1-channel model's input."""
        if layer is None:
            raise PluginError("no image layer: open an image first")
        check_layer(layer.data, rgb=layer.rgb, name=layer.name)
        return layer

    def plane_under_sliders(self, data) -> np.ndarray:
        """The 2D plane of a layer's ``data`` (..., Y, X) at the viewer's sliders."""
        lead = data.ndim - 2
        index = tuple(int(i) for i in self.viewer.dims.current_step[:lead])
        return np.asarray(data[index])


def show_in_3d(viewer, layer, models) -> None:
    """Render the grid in 3D when a 3D model reconstructed a stack: every cell of napari's
    grid shares one camera, so the original and the reconstructions turn together (the 2D/3D
    button goes back to slices)."""
    if layer.data.ndim >= 3 and any(getattr(m, "dims", 2) == 3 for m in models if m is not None):
        viewer.dims.ndisplay = 3
