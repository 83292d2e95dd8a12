"""Regenerate the README's napari screenshot: HeLa mitochondria and their reconstruction, side
by side in grid mode, zoomed in on tubules.

    xvfb-run -a .venv/bin/python napari_plugin/scripts/readme_screenshot.py [--model MODEL]

Without --model, configs/demo.yaml is first trained on the image itself (about 2 minutes on 2
CPU cores; the run goes to --work). Needs ../shared/data/real/hela-cells_mito_ch1.tif.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
IMAGE = ROOT.parent / "shared" / "data" / "real" / "hela-cells_mito_ch1.tif"
OUT = ROOT / "docs" / "images" / "napari_side_by_side.png"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", type=Path, default=None)
    ap.add_argument("--image", type=Path, default=IMAGE)
    ap.add_argument("--out", type=Path, default=OUT)
    ap.add_argument("--work", type=Path, default=Path("napari_screenshot_run"))
    ap.add_argument("--steps", type=int, default=800)
    ap.add_argument("--crop", type=int, default=100, help="side of the zoomed region, pixels")
    args = ap.parse_args()
    if not args.image.is_file():
        print(f"{args.image}: not found (the shared real data)", file=sys.stderr)
        return 2

    # napari settings of this run only: no pop-up notifications over the screenshot
    os.environ["NAPARI_CONFIG"] = str(Path(tempfile.mkdtemp()) / "settings.yaml")
    import napari
    from napari.settings import get_settings
    from qtpy.QtWidgets import QApplication

    get_settings().application.gui_notification_level = "none"

    import microvae
    from microvae.report.figures import detail_crop
    from napari_microvae._reconstruct_widget import ReconstructWidget

    model = args.model
    if model is None:
        model = (
            microvae.train(
                ROOT / "configs" / "demo.yaml",
                [str(args.image)],
                args.work,
                overrides=[f"train.max_steps={args.steps}", "data.num_workers=0"],
                overwrite=True,
            )[1]
            / "model.pt"
        )

    rec = microvae.read_image(args.image)
    image = rec.data
    viewer = napari.Viewer(show=True)
    viewer.window.resize(1400, 800)
    px = rec.pixel_size.get("X", 1.0)
    layer = viewer.add_image(image, name="HeLa mitochondria", scale=(px, px))
    widget = ReconstructWidget(viewer)
    viewer.window.add_dock_widget(widget, name="microvae")
    widget.layer.value = layer
    widget.model_file.value = model
    widget.device.value = "auto"
    widget.run()
    app = QApplication.instance()
    while widget.busy:
        app.processEvents()
    # zoom on the region with most fine detail: it fills the width of each grid cell, and the
    # view is kept inside the image
    rows, cols = detail_crop(image, args.crop)
    camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
    canvas_h, canvas_w = viewer.canvas.size
    cell_w = canvas_w / 2  # two grid cells side by side
    zoom = cell_w / (args.crop * px)
    half_h, half_w = canvas_h / zoom / 2 / px, cell_w / zoom / 2 / px  # in pixels
    h, w = image.shape
    cy = min(max((rows.start + rows.stop) / 2, half_h), max(h - half_h, half_h))
    cx = min(max((cols.start + cols.stop) / 2, half_w), max(w - half_w, half_w))
    camera.center = (0.0, cy * px, cx * px)
    camera.zoom = zoom
    for w in app.allWidgets():  # napari's start-up toasts would cover the view
        if type(w).__name__ == "NapariQtNotification":
            w.close()
    end = time.monotonic() + 2
    while time.monotonic() < end:
        app.processEvents()
        time.sleep(0.05)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    viewer.screenshot(str(args.out), canvas_only=False, flash=False)
    print(f"written: {args.out}")
    print(widget.metrics.value)
    viewer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
