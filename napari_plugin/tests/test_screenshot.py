"""A shown viewer: both grid cells show image content, the original left, the reconstruction
right: each cell, cut out of the screenshot, matches its own layer best."""

from __future__ import annotations

import numpy as np
from skimage.transform import resize

from microvae.synthetic import generate
from napari_microvae._reconstruct_widget import ReconstructWidget


def _content(rgb: np.ndarray) -> np.ndarray:
    return rgb[..., :3].astype(np.float32).mean(axis=-1)


def _cell(gray: np.ndarray) -> np.ndarray:
    """The drawn image inside one half of the canvas (the canvas around it is black)."""
    rows = np.nonzero(gray.max(axis=1) > 2)[0]
    cols = np.nonzero(gray.max(axis=0) > 2)[0]
    return gray[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1]


def _match(cell: np.ndarray, image: np.ndarray) -> float:
    """Correlation of a screenshot cell with a layer's data scaled to the cell's size."""
    scaled = resize(image.astype(np.float32), cell.shape, order=0, anti_aliasing=False)
    return float(np.corrcoef(cell.ravel(), scaled.ravel())[0, 1])


def test_grid_shows_original_left_and_reconstruction_right(make_napari_viewer, qtbot, model_path):
    viewer = make_napari_viewer(show=True)
    image = generate(shape=(128, 128), seed=11).image
    orig = viewer.add_image(image, name="original")
    widget = ReconstructWidget(viewer)
    widget.layer.value = orig
    widget.model_file.value = model_path
    widget.device.value = "cpu"
    widget.with_metrics.value = False
    assert widget.run() is not None
    qtbot.waitUntil(lambda: widget.busy == 0 and len(viewer.layers) == 2, timeout=120_000)
    viewer.reset_view()
    qtbot.wait(200)
    shot = viewer.screenshot(canvas_only=True, flash=False)
    gray = _content(shot)
    w = gray.shape[1]
    left, right = _cell(gray[:, : w // 2]), _cell(gray[:, w // 2 :])
    recon = viewer.layers["original reconstruction"].data
    for cell in (left, right):
        assert min(cell.shape) > 100 and cell.std() > 10  # an image fills each cell
    assert abs(left.shape[0] - right.shape[0]) <= 2  # same size: the same field, side by side
    assert _match(left, image) > 0.8 and _match(right, recon) > 0.8
    assert _match(left, image) > _match(left, recon)  # the original is on the left
    assert _match(right, recon) > _match(right, image)  # the reconstruction on the right
