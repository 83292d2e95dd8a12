"""The widgets in a real viewer (make_napari_viewer, qtbot), under Xvfb."""

from __future__ import annotations

import numpy as np

from microvae.metrics import volume_metrics
from microvae.synthetic import generate
from napari_microvae._latent_widget import LatentWidget
from napari_microvae._reconstruct_widget import ReconstructWidget

WAIT_MS = 120_000


def _wait(qtbot, widget, worker) -> None:
    """Until the widget's workers have all finished (the widget counts them from before
    their start, so a worker that ends at once is not missed)."""
    assert worker is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)


def test_reconstruct_2d_side_by_side_with_linked_contrast(make_napari_viewer, qtbot, model_path):
    viewer = make_napari_viewer()
    image = generate(shape=(96, 128), seed=5).image
    orig = viewer.add_image(image, name="mito", scale=(0.065, 0.065), translate=(3.0, 4.0))
    widget = ReconstructWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.layer.value = orig
    widget.model_file.value = model_path
    widget.device.value = "cpu"
    widget.error.value = True
    _wait(qtbot, widget, widget.run())
    qtbot.waitUntil(lambda: len(viewer.layers) == 3, timeout=WAIT_MS)
    recon, err = viewer.layers["mito reconstruction"], viewer.layers["mito |error|"]
    assert recon.data.shape == image.shape and recon.data.dtype == image.dtype
    np.testing.assert_array_equal(recon.scale, orig.scale)
    np.testing.assert_array_equal(recon.translate, orig.translate)
    np.testing.assert_allclose(err.data, np.abs(image.astype(np.float32) - recon.data))
    assert tuple(recon.contrast_limits) == tuple(orig.contrast_limits)
    orig.contrast_limits = (200.0, 900.0)  # linked: adjusting one adjusts both
    assert tuple(recon.contrast_limits) == (200.0, 900.0)
    recon.contrast_limits = (150.0, 800.0)
    assert tuple(orig.contrast_limits) == (150.0, 800.0)
    assert viewer.canvas.grid.enabled and viewer.canvas.grid.stride == 1
    assert "PSNR" in widget.metrics.value and "FRC resolution" in widget.metrics.value
    assert widget.run_button.enabled and not widget.cancel_button.enabled
    # metrics of the field of view, on request
    _wait(qtbot, widget, widget.view_metrics())
    qtbot.waitUntil(lambda: widget.metrics.value.startswith("view: rows"), timeout=WAIT_MS)


def test_reconstruct_with_posterior_samples_adds_spread_and_presence(
    make_napari_viewer, qtbot, model_path
):
    viewer = make_napari_viewer()
    orig = viewer.add_image(generate(shape=(96, 96), seed=6).image, name="mito")
    widget = ReconstructWidget(viewer)
    widget.layer.value = orig
    widget.model_file.value = model_path
    widget.device.value = "cpu"
    widget.samples.value = 4
    _wait(qtbot, widget, widget.run())
    qtbot.waitUntil(lambda: len(viewer.layers) == 4, timeout=WAIT_MS)
    std = viewer.layers["mito posterior std"]
    presence = viewer.layers["mito branch presence"]
    assert std.data.shape == orig.data.shape and float(std.data.max()) > 0
    assert presence.data.shape == orig.data.shape and presence.data.max() > 0
    assert "network length" in widget.metrics.value and "posterior draws" in widget.metrics.value


def test_a_3d_model_shows_the_stack_side_by_side_in_3d(make_napari_viewer, qtbot, model3d_path):
    """A 3D model reconstructs the stack in 3D tiles, and the grid renders in 3D: one
    camera for every cell, so the original and its reconstruction turn together."""
    viewer = make_napari_viewer()
    stack = generate(shape=(12, 64, 64), seed=6, z_step_um=0.2, pixel_size_um=0.05).image
    orig = viewer.add_image(stack, name="stack", scale=(0.2, 0.05, 0.05))
    widget = ReconstructWidget(viewer)
    widget.layer.value = orig
    widget.model_file.value = model3d_path
    widget.device.value = "cpu"
    _wait(qtbot, widget, widget.run())
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=WAIT_MS)
    recon = viewer.layers["stack reconstruction"]
    assert recon.data.shape == stack.shape and recon.data.dtype == stack.dtype
    assert viewer.dims.ndisplay == 3 and viewer.canvas.grid.enabled
    np.testing.assert_array_equal(recon.scale, orig.scale)
    # the 3D metrics of the volume, in um from the layer's scale, under the plane metrics
    qtbot.waitUntil(lambda: "3D network length ratio" in widget.metrics.value, timeout=WAIT_MS)
    expected = volume_metrics(stack, recon.data, voxel=(0.2, 0.05, 0.05), unit="um")
    text = widget.metrics.value
    assert f"3D network length ratio: {expected['net3d_total_length']:.2f}" in text, text
    assert f"FRC resolution along Z: {expected['frc_z_planes']:.2f} planes" in text, text
    assert text.index("PSNR") < text.index("3D:")


def test_reconstruct_a_stack_moves_with_the_sliders(make_napari_viewer, qtbot, model_path):
    viewer = make_napari_viewer()
    stack = generate(shape=(3, 64, 64), seed=6).image
    orig = viewer.add_image(stack, name="stack", scale=(0.2, 0.065, 0.065))
    widget = ReconstructWidget(viewer)
    widget.layer.value = orig
    widget.model_file.value = model_path
    widget.device.value = "cpu"
    widget.with_metrics.value = False
    _wait(qtbot, widget, widget.run())
    qtbot.waitUntil(lambda: len(viewer.layers) == 2, timeout=WAIT_MS)
    recon = viewer.layers["stack reconstruction"]
    assert recon.data.shape == stack.shape
    np.testing.assert_array_equal(recon.scale, orig.scale)
    viewer.dims.set_current_step(0, 2)  # one slider for both layers
    a, b, _ = widget.current_planes()
    np.testing.assert_array_equal(a, stack[2])
    np.testing.assert_array_equal(b, recon.data[2])


def test_errors_become_notifications(make_napari_viewer, model_path, tmp_path, errors):
    viewer = make_napari_viewer()
    widget = ReconstructWidget(viewer)
    assert widget.run() is None  # no image layer
    assert "no image layer" in errors[-1]
    viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    widget.layer.value = viewer.layers["rgb"]
    widget.model_file.value = model_path
    assert widget.run() is None
    assert "RGB" in errors[-1] and "Split RGB" in errors[-1]
    viewer.add_image(np.zeros((64, 64), np.uint16), name="gray")
    widget.layer.value = viewer.layers["gray"]
    widget.model_file.line_edit.value = ""  # the user clears the field
    assert widget.run() is None
    assert "no model chosen" in errors[-1]
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"garbage")
    widget.model_file.value = bad
    assert widget.run() is None
    assert "model.pt" in errors[-1]  # a damaged file: a message, not a crash
    widget.model_file.value = model_path
    widget.tile_size.value = 42  # not a multiple of 2**levels = 4
    assert widget.run() is None
    assert "multiple" in errors[-1]
    assert len(viewer.layers) == 2  # nothing was added


def test_cancel_stops_the_worker(make_napari_viewer, qtbot, model_path):
    viewer = make_napari_viewer()
    viewer.add_image(generate(shape=(8, 128, 128), seed=7).image, name="long")
    widget = ReconstructWidget(viewer)
    widget.model_file.value = model_path
    widget.device.value = "cpu"
    widget.batch_size.value = 1
    worker = widget.run()
    widget.cancel()
    _wait(qtbot, widget, worker)
    assert "cancelled" in widget.status.value
    assert [layer.name for layer in viewer.layers] == ["long"]


def test_latent_widget_adds_prototype_samples_and_interpolation(
    make_napari_viewer, qtbot, model_path, errors
):
    viewer = make_napari_viewer()
    widget = LatentWidget(viewer)
    widget.model_file.value = model_path
    widget.device.value = "cpu"
    _wait(qtbot, widget, widget.prototype())
    widget.n_samples.value = 3
    _wait(qtbot, widget, widget.samples())
    a = viewer.add_image(generate(shape=(64, 64), seed=1).image, name="a")
    b = viewer.add_image(generate(shape=(64, 64), seed=2).image, name="b")
    widget.first.value, widget.second.value = a, b
    widget.steps.value = 5
    _wait(qtbot, widget, widget.interpolate())
    shapes = viewer.add_shapes(
        [
            np.array([[0, 0], [0, 31], [31, 31], [31, 0]]),
            np.array([[30, 30], [30, 63], [63, 63], [63, 30]]),
        ],
        shape_type="rectangle",
        name="regions",
    )
    widget.regions.value = shapes
    _wait(qtbot, widget, widget.interpolate())
    qtbot.waitUntil(lambda: len(viewer.layers) == 7, timeout=WAIT_MS)
    names = [layer.name for layer in viewer.layers]
    assert "prototype" in names and "samples T=0.8 seed=0" in names
    assert viewer.layers["prototype"].data.shape == (32, 32)
    assert viewer.layers["samples T=0.8 seed=0"].data.shape == (3, 32, 32)
    assert viewer.layers["interpolation a -> b"].data.shape == (5, 32, 32)
    assert viewer.layers["interpolation a: 2 regions"].data.shape == (5, 32, 32)
    assert not errors


def test_latent_widget_refuses_a_model_that_cannot_generate(
    make_napari_viewer, deterministic_path, errors
):
    widget = LatentWidget(make_napari_viewer())
    assert widget.prototype() is None  # no model chosen
    widget.model_file.value = deterministic_path
    widget.device.value = "cpu"
    assert widget.prototype() is None
    assert "cannot" in errors[-1] and "ladder" in errors[-1]


def test_sample_data_are_registered_and_open(make_napari_viewer):
    import npe2

    pm = npe2.PluginManager.instance()
    keys = {c.key for c in pm.get_manifest("napari-microvae").contributions.sample_data}
    assert keys == {"synthetic_2d", "synthetic_stack"}
    viewer = make_napari_viewer()
    viewer.open_sample("napari-microvae", "synthetic_stack")
    layer = viewer.layers["synthetic stack"]
    assert layer.data.shape == (16, 256, 256) and layer.data.dtype == np.uint16
    np.testing.assert_allclose(layer.scale, (0.2, 0.065, 0.065))
