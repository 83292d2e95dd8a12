"""The Compare widget: several models side by side on one image, with a metrics table for
the whole image and for the view, and bad input said plainly."""

from __future__ import annotations

import numpy as np

import microvae
from microvae.metrics import volume_metrics
from microvae.report import structure_uncertainty
from microvae.synthetic import generate
from napari_microvae._compare_widget import CompareWidget, model_names

WAIT_MS = 120_000


def test_model_names_are_short_and_distinct(tmp_path):
    paths = [tmp_path / "ladder" / "model.pt", tmp_path / "base.pt", tmp_path / "x" / "base.pt"]
    assert model_names(paths) == ["ladder", "base", "base (2)"]


def test_two_models_side_by_side_with_a_table(
    make_napari_viewer, qtbot, model_path, deterministic_path, errors
):
    viewer = make_napari_viewer()
    image = generate(shape=(96, 96), seed=21).image  # camera noise: the split estimate works
    orig = viewer.add_image(image, name="mito", scale=(0.065, 0.065))
    widget = CompareWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.layer.value = orig
    widget.model_files.value = [model_path, deterministic_path]
    widget.device.value = "cpu"
    worker = widget.run()
    assert worker is not None, errors
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    names = [layer.name for layer in viewer.layers]
    assert names == ["mito", "mito · run", "mito · run (2)"]
    for layer in viewer.layers[1:]:
        assert layer.data.shape == image.shape and layer.data.dtype == image.dtype
    # each reconstruction is its model's (and the two differ)
    a, b = viewer.layers[1].data, viewer.layers[2].data
    np.testing.assert_array_equal(a, microvae.load_model(model_path).reconstruct(image))
    np.testing.assert_array_equal(b, microvae.load_model(deterministic_path).reconstruct(image))
    assert not np.array_equal(a, b)
    # contrast linked across all three; grid on with the original first
    orig.contrast_limits = (100.0, 900.0)
    assert all(tuple(la.contrast_limits) == (100.0, 900.0) for la in viewer.layers)
    assert viewer.canvas.grid.enabled and viewer.canvas.grid.stride == 1
    table = widget.whole.value
    assert list(table["index"]) == ["run", "run (2)"]
    columns = list(table["columns"])
    assert "PSNR" in columns and "noise-split PSNR" in columns
    psnr, split = columns.index("PSNR"), columns.index("noise-split PSNR")
    for row in table["data"]:
        assert row[psnr].endswith(" dB") and row[split].endswith(" dB"), row
    # the metrics of the view
    worker = widget.view_metrics()
    assert worker is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert widget.view_label.value.startswith("view: rows")
    assert list(widget.view.value["index"]) == ["run", "run (2)"]
    # compared again: the layers are replaced, not added twice
    widget.run()
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert len(viewer.layers) == 3 and not errors


def test_compare_with_posterior_samples_shows_spread_and_intervals(
    make_napari_viewer, qtbot, model_path, errors
):
    viewer = make_napari_viewer()
    orig = viewer.add_image(generate(shape=(96, 96), seed=22).image, name="mito")
    widget = CompareWidget(viewer)
    widget.layer.value = orig
    widget.model_files.value = [model_path]
    widget.device.value = "cpu"
    widget.samples.value = 4
    assert widget.run() is not None, errors
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    assert [la.name for la in viewer.layers] == ["mito", "mito · run", "mito · run posterior std"]
    # the mean of the draws kept for the intervals, in the layer's dtype
    u = structure_uncertainty(microvae.load_model(model_path), orig.data, samples=4, seed=0)
    recon = viewer.layers[1].data
    assert recon.dtype == orig.data.dtype
    assert np.abs(recon.astype(np.float64) - u.mmse).max() <= 0.5
    table = widget.whole.value
    col = list(table["columns"]).index("network length (MMSE [90% of draws])")
    cell = table["data"][0][col]
    assert cell.count("[") == 1 and cell.endswith("]"), cell


def test_compare_errors_become_notifications(make_napari_viewer, tmp_path, model_path, errors):
    viewer = make_napari_viewer()
    widget = CompareWidget(viewer)
    assert widget.run() is None and "no image layer" in errors[-1]
    viewer.add_image(np.zeros((64, 64), np.uint16), name="gray")
    widget.layer.value = viewer.layers["gray"]
    assert widget.run() is None and "no models chosen" in errors[-1]
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"garbage")
    widget.model_files.value = [model_path, bad]
    assert widget.run() is None and "bad.pt" in errors[-1]
    assert widget.view_metrics() is None and "compare models first" in errors[-1]
    assert [layer.name for layer in viewer.layers] == ["gray"]


def test_a_2d_and_a_3d_model_compared_on_a_stack(
    make_napari_viewer, qtbot, model_path, model3d_path, errors
):
    """The table gains the 3D columns, filled for the 3D model only; the 3D model's
    noise-split estimate is over the volume (a plane alone it cannot reconstruct)."""
    viewer = make_napari_viewer()
    stack = generate(shape=(12, 64, 64), seed=6, z_step_um=0.2, pixel_size_um=0.05).image
    orig = viewer.add_image(stack, name="stack", scale=(0.2, 0.05, 0.05))
    widget = CompareWidget(viewer)
    widget.layer.value = orig
    widget.model_files.value = [model_path, model3d_path]
    widget.device.value = "cpu"
    assert widget.run() is not None, errors
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    table = widget.whole.value
    columns = list(table["columns"])
    length, split = columns.index("3D network length ratio"), columns.index("noise-split PSNR")
    flat, deep = table["data"]
    assert flat[length] == "n/a" and deep[length] != "n/a"
    recon3d = viewer.layers[-1].data
    expected = volume_metrics(stack, recon3d, voxel=(0.2, 0.05, 0.05), unit="um")
    assert deep[length] == f"{expected['net3d_total_length']:.2f}"
    assert flat[split].endswith(" dB") and deep[split].endswith(" dB"), (flat, deep)
