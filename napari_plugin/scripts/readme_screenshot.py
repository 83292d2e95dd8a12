"""Regenerate the READMEs' napari screenshots, one per widget, from the real images of
``../shared/data/real``, each widget driven as a user would drive it:

- ``reconstruct``: HeLa mitochondria and their reconstruction side by side (grid), zoomed on
  tubules (``docs/images/napari_side_by_side.png``);
- ``train``: the Train widget training a Gaussian (MSE) baseline on the HeLa layer, with its
  plots and preview layer (``napari_train.png``);
- ``compare``: the demo model and that baseline beside the original, with the table;
- ``latent``: the Latent space widget's prototype and samples;
- ``explorer``: the Latent explorer's map of HeLa and yeast tiles, a tile clicked and a channel
  moved;
- ``volume``: a yeast Z-stack (MitoGraphTest001) and its reconstruction by a 3D model, side by
  side in 3D rendering with one camera (``napari_3d.png``);
- ``uncertainty``: Reconstruct with 16 posterior samples on a crop of the HeLa image: the
  MMSE, the draws' standard deviation and the skeleton's branches coloured by presence, with
  the network intervals in the widget (``napari_uncertainty.png``).

    xvfb-run -a .venv/bin/python napari_plugin/scripts/readme_screenshot.py [--model MODEL]
        [--only reconstruct,train,...]

Without --model, configs/demo.yaml is first trained on the HeLa image (about 2 minutes on 2
CPU cores; the run goes to --work); without --model3d, configs/cpu3d.yaml on the yeast stack
(--steps3d steps, about 7 minutes for 600). Needs ../shared/data/real/hela-cells_mito_ch1.tif (and
MitoGraphTest001.tif for the explorer).
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real"
IMAGE = REAL / "hela-cells_mito_ch1.tif"
YEAST = REAL / "MitoGraphTest001.tif"
IMAGES = ROOT / "docs" / "images"
SHOTS = ("reconstruct", "train", "compare", "latent", "explorer", "volume", "uncertainty")
YEAST_VOXEL = (0.2, 0.056, 0.056)  # um, Z Y X (../shared/data/real/README.md)


class Session:
    """The Qt application, the model files and the output folder of one run of the script."""

    def __init__(self, args):
        import microvae

        self.args = args
        rec = microvae.read_image(args.image)
        self.image, self.px = rec.data, rec.pixel_size.get("X", 1.0)
        self.model = args.model
        self.model3d = args.model3d
        self.baseline: Path | None = None

    @property
    def app(self):
        """napari's Qt application (made with the first viewer)."""
        from qtpy.QtWidgets import QApplication

        return QApplication.instance()

    def wait(self, done, timeout_s: float = 1800) -> None:
        end = time.monotonic() + timeout_s
        while not done():
            if time.monotonic() > end:
                raise TimeoutError("the widget did not finish in time")
            self.app.processEvents()
            time.sleep(0.005)

    def viewer(self, width: int = 1500, height: int = 900):
        import napari

        viewer = napari.Viewer(show=True)
        viewer.window.resize(width, height)
        return viewer

    def dock(self, viewer, widget, name: str, width: int) -> None:
        """Dock ``widget`` at ``width`` pixels (magicgui's long labels make docks wide)."""
        from qtpy.QtCore import Qt

        dock = viewer.window.add_dock_widget(widget, name=name)
        viewer.window._qt_window.resizeDocks([dock], [width], Qt.Horizontal)

    def frame(self, viewer, layers: list, margin: float = 0.05) -> None:
        """Fit the view to the 2D extent of ``layers`` together."""
        lo = np.min([la.extent.world[0][-2:] for la in layers], axis=0)
        hi = np.max([la.extent.world[1][-2:] for la in layers], axis=0)
        canvas_h, canvas_w = viewer.canvas.size
        size = np.maximum(hi - lo, 1e-9) * (1 + 2 * margin)
        centre = (lo + hi) / 2
        zoom = min(canvas_h / size[0], canvas_w / size[1])
        self.look(viewer, (float(centre[0]), float(centre[1])), float(zoom))

    @staticmethod
    def look(viewer, centre_yx: tuple[float, float], zoom: float) -> None:
        """Centre the 2D view on ``centre_yx`` (world units) at ``zoom``."""
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
        camera.center = (0.0, *centre_yx)
        camera.zoom = zoom

    def hela(self, viewer, name: str = "HeLa mitochondria"):
        return viewer.add_image(self.image, name=name, scale=(self.px, self.px))

    def zoom(self, viewer, cells: int) -> None:
        """Zoom on the region with most fine detail, filling the width of each of ``cells``
        grid cells side by side, the view kept inside the image."""
        from microvae.report.figures import detail_crop

        crop, px = self.args.crop, self.px
        rows, cols = detail_crop(self.image, crop)
        canvas_h, canvas_w = viewer.canvas.size
        cell_w = canvas_w / cells
        zoom = cell_w / (crop * px)
        half_h, half_w = canvas_h / zoom / 2 / px, cell_w / zoom / 2 / px  # in pixels
        h, w = self.image.shape
        cy = min(max((rows.start + rows.stop) / 2, half_h), max(h - half_h, half_h))
        cx = min(max((cols.start + cols.stop) / 2, half_w), max(w - half_w, half_w))
        self.look(viewer, (cy * px, cx * px), zoom)

    def shoot(self, viewer, name: str) -> Path:
        for w in self.app.allWidgets():  # napari's start-up toasts would cover the view
            if type(w).__name__ == "NapariQtNotification":
                w.close()
        end = time.monotonic() + 2
        while time.monotonic() < end:
            self.app.processEvents()
            time.sleep(0.05)
        out = self.args.out / name
        out.parent.mkdir(parents=True, exist_ok=True)
        viewer.screenshot(str(out), canvas_only=False, flash=False)
        print(f"written: {out}")
        return out


def shot_reconstruct(s: Session) -> None:
    from napari_microvae._reconstruct_widget import ReconstructWidget

    viewer = s.viewer(1400, 800)
    layer = s.hela(viewer)
    widget = ReconstructWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microvae")
    widget.layer.value = layer
    widget.model_file.value = s.model
    widget.device.value = "auto"
    widget.run()
    s.wait(lambda: widget.busy == 0)
    s.zoom(viewer, 2)
    s.shoot(viewer, "napari_side_by_side.png")
    print(widget.metrics.value)
    viewer.close()


def shot_uncertainty(s: Session) -> None:
    """16 draws of a crop of HeLa (the region with most fine detail, 192 px a side): the
    MMSE, the spread and branch presence side by side, the intervals in the widget."""
    from microvae.report.figures import detail_crop
    from napari_microvae._reconstruct_widget import ReconstructWidget

    rows, cols = detail_crop(s.image, 192)
    viewer = s.viewer(1700, 800)
    layer = viewer.add_image(s.image[rows, cols], name="HeLa mitochondria", scale=(s.px, s.px))
    widget = ReconstructWidget(viewer)
    s.dock(viewer, widget, "microvae", 430)
    widget.layer.value = layer
    widget.model_file.value = s.model
    widget.device.value = "auto"
    widget.samples.value = 16
    widget.run()
    s.wait(lambda: widget.busy == 0)
    viewer.reset_view()
    s.shoot(viewer, "napari_uncertainty.png")
    print(widget.metrics.value)
    viewer.close()


def shot_train(s: Session) -> None:
    from napari_microvae._train_widget import TrainWidget

    viewer = s.viewer(1600, 1150)
    layer = s.hela(viewer)
    widget = TrainWidget(viewer)
    s.dock(viewer, widget, "microvae: Train", 560)
    widget.layers.value = [layer]
    widget.config.value = "demo"
    widget.likelihood.value = "gaussian"  # the baseline that blurs, for Compare
    widget.steps.value = s.args.steps
    widget.val_every.value = max(s.args.steps // 8, 1)
    widget.device.value = "auto"
    widget.out.value = s.args.work / "baseline"
    widget.overwrite.value = True
    if widget.train() is None:
        raise RuntimeError(f"the Train widget refused: {widget.status.value}")
    s.wait(lambda: widget.busy == 0)
    s.baseline = widget.model_written
    preview = viewer.layers[-1]
    viewer.layers.selection.active = preview
    viewer.layers["HeLa mitochondria"].visible = False
    s.frame(viewer, [preview])
    s.shoot(viewer, "napari_train.png")
    viewer.close()


def shot_compare(s: Session) -> None:
    from napari_microvae._compare_widget import CompareWidget

    if s.baseline is None:
        raise RuntimeError("compare needs the baseline the train shot makes: run it too")
    viewer = s.viewer(1800, 800)
    layer = s.hela(viewer)
    widget = CompareWidget(viewer)
    s.dock(viewer, widget, "microvae: Compare models", 620)
    widget.layer.value = layer
    widget.model_files.value = [s.model, s.baseline]
    widget.device.value = "auto"
    if widget.run() is None:
        raise RuntimeError(f"the Compare widget refused: {widget.status.value}")
    s.wait(lambda: widget.busy == 0)
    viewer.canvas.grid.shape = (1, 3)  # original, demo, baseline in a row
    s.zoom(viewer, 3)
    s.shoot(viewer, "napari_compare.png")
    viewer.close()


def shot_latent(s: Session) -> None:
    from napari_microvae._latent_widget import LatentWidget

    viewer = s.viewer(1400, 800)
    widget = LatentWidget(viewer)
    s.dock(viewer, widget, "microvae: Latent space", 420)
    widget.model_file.value = s.model
    widget.device.value = "auto"
    widget.n_samples.value = 8
    widget.prototype()
    s.wait(lambda: widget.busy == 0)
    widget.samples()
    s.wait(lambda: widget.busy == 0)
    viewer.canvas.grid.enabled = True
    viewer.reset_view()
    s.shoot(viewer, "napari_latent.png")
    viewer.close()


def shot_explorer(s: Session) -> None:
    import microvae
    from napari_microvae._explorer_widget import ExplorerWidget

    viewer = s.viewer(1700, 1150)
    hela = s.hela(viewer, "HeLa")
    layers = [hela]
    if YEAST.is_file():
        layers.append(viewer.add_image(microvae.read_image(YEAST).data, name="yeast"))
    widget = ExplorerWidget(viewer)
    s.dock(viewer, widget, "microvae: Latent explorer", 620)
    widget.model_file.value = s.model
    widget.device.value = "auto"
    widget.layers.value = layers
    widget.max_tiles.value = 200
    if widget.map() is None:
        raise RuntimeError(f"the explorer refused: {widget.status.value}")
    s.wait(lambda: widget.busy == 0)
    m = widget.latent_map
    # the HeLa tile farthest from the yeast tiles' centre on the map
    hela_rows = [i for i, src in enumerate(m.tiles.sources) if src == "HeLa"]
    centre = m.coords[[i for i in range(len(m.coords)) if i not in hela_rows]].mean(0)
    far = max(hela_rows, key=lambda i: float(((m.coords[i] - centre) ** 2).sum()))
    widget.select("tile", far)
    s.wait(lambda: widget.busy == 0)
    if len(widget.sliders):
        widget.sliders[0].value = 2.0
        s.wait(lambda: widget.busy == 0)
    for layer in layers[1:]:
        layer.visible = False
    from napari_microvae._explorer_widget import SLOTS

    s.frame(viewer, [hela] + [viewer.layers[n] for n in SLOTS if n in viewer.layers])
    s.shoot(viewer, "napari_explorer.png")
    print(widget.status.value)
    print(widget.point_info.value)
    viewer.close()


def shot_volume(s: Session) -> None:
    import microvae
    from napari_microvae._reconstruct_widget import ReconstructWidget

    viewer = s.viewer(1500, 800)
    stack = microvae.read_image(YEAST).data
    layer = viewer.add_image(stack, name="yeast", scale=YEAST_VOXEL, rendering="mip")
    widget = ReconstructWidget(viewer)
    s.dock(viewer, widget, "microvae", 460)
    widget.layer.value = layer
    widget.model_file.value = s.model3d
    widget.device.value = "auto"
    if widget.run() is None:
        raise RuntimeError(f"the Reconstruct widget refused: {widget.status.value}")
    s.wait(lambda: widget.busy == 0)
    viewer.layers[-1].rendering = "mip"
    viewer.reset_view()
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    camera.angles = (-20.0, 0.0, 90.0)  # the default view, tilted by 20 degrees: depth shows
    camera.zoom *= 1.05
    s.shoot(viewer, "napari_3d.png")
    print(widget.metrics.value)
    viewer.close()


def _train(args, config: str, data: Path, out: Path, overrides: list[str]) -> Path:
    """Train ``config`` on ``data`` in a process of its own, as the Train widget does:
    Lightning's imports (triton) crash beside Mesa's software OpenGL in the viewer's process."""
    cmd = [sys.executable, "-m", "microvae.cli.main", "train", str(ROOT / "configs" / config)]
    cmd += ["--data", str(data), "--out", str(out), "--overwrite", "--no-progress"]
    for o in ["data.num_workers=0", *overrides]:
        cmd += ["--set", o]
    subprocess.run(cmd, check=True)
    return out / "model.pt"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--model3d", type=Path, default=None, help="a 3D model for the volume shot")
    ap.add_argument("--steps3d", type=int, default=600, help="steps of the 3D model trained")
    ap.add_argument("--image", type=Path, default=IMAGE)
    ap.add_argument("--out", type=Path, default=IMAGES, help="folder of the screenshots")
    ap.add_argument("--work", type=Path, default=Path("napari_screenshot_run"))
    ap.add_argument("--steps", type=int, default=800, help="steps of each model trained")
    ap.add_argument("--crop", type=int, default=100, help="side of the zoomed region, pixels")
    ap.add_argument("--only", default=",".join(SHOTS), help=f"some of {','.join(SHOTS)}")
    args = ap.parse_args()
    wanted = [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in wanted if w not in SHOTS]
    if bad:
        print(f"--only: unknown {', '.join(bad)}; choose from {', '.join(SHOTS)}", file=sys.stderr)
        return 2
    if not args.image.is_file():
        print(f"{args.image}: not found (the shared real data)", file=sys.stderr)
        return 2
    if not os.environ.get("DISPLAY"):
        print("no X display: run under xvfb-run -a", file=sys.stderr)
        return 2
    args.work = args.work.resolve()

    # napari settings of this run only: no pop-up notifications over the screenshots
    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")
    from napari.settings import get_settings

    get_settings().application.gui_notification_level = "none"

    if args.model is None:
        args.model = _train(
            args, "demo.yaml", args.image, args.work / "demo", [f"train.max_steps={args.steps}"]
        )
    if "volume" in wanted and args.model3d is None:
        if not YEAST.is_file():
            print(f"{YEAST}: not found (the shared real data)", file=sys.stderr)
            return 2
        z, _, x = YEAST_VOXEL
        args.model3d = _train(
            args,
            "cpu3d.yaml",
            YEAST,
            args.work / "volume",
            [f"train.max_steps={args.steps3d}", f"data.z_over_xy={z / x:.4g}"],
        )
    session = Session(args)
    shots = {
        "reconstruct": shot_reconstruct,
        "train": shot_train,
        "compare": shot_compare,
        "latent": shot_latent,
        "explorer": shot_explorer,
        "volume": shot_volume,
        "uncertainty": shot_uncertainty,
    }
    for name in SHOTS:
        if name in wanted:
            shots[name](session)
    return 0


if __name__ == "__main__":
    sys.exit(main())
