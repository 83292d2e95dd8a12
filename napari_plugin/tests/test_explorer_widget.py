"""The Latent explorer widget: a map of tiles from layers, a click that shows a tile and its
reconstruction, the holes decoded, traversal sliders, and bad input said plainly. Results are
checked against microvae's API run on a separately loaded model."""

from __future__ import annotations

import numpy as np
from matplotlib.backend_bases import MouseEvent

import microvae
from microvae import latent
from microvae.synthetic import generate
from napari_microvae._explorer_widget import (
    BOX,
    HOLES,
    RECONSTRUCTION,
    SELECTED,
    TRAVERSAL,
    ExplorerWidget,
)

WAIT_MS = 120_000


def _widget(make_napari_viewer, model_path):
    viewer = make_napari_viewer()
    widget = ExplorerWidget(viewer)
    viewer.window.add_dock_widget(widget)
    widget.model_file.value = model_path
    widget.device.value = "cpu"
    return viewer, widget


def _click(widget, kind: str, i: int) -> None:
    """A left click on the map at point ``i``, as Matplotlib delivers it from Qt."""
    canvas = widget.scatter.canvas
    canvas.draw()  # the transforms of the figure as shown
    x, y = widget.scatter.display_xy(kind, i)
    MouseEvent("button_press_event", canvas, x, y, button=1)._process()


def test_map_click_a_tile_see_it_and_move_its_channels(
    make_napari_viewer, qtbot, model_path, errors
):
    viewer, widget = _widget(make_napari_viewer, model_path)
    flat_image = generate(shape=(128, 128), seed=21).image
    stack = np.stack([generate(shape=(128, 128), seed=s).image for s in (22, 23)])
    a = viewer.add_image(flat_image, name="a", scale=(0.05, 0.05))
    b = viewer.add_image(stack, name="b", scale=(1.0, 0.05, 0.05))
    widget.layers.value = [a, b]
    assert widget.map() is not None, errors
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    m = widget.latent_map
    assert set(m.tiles.sources) == {"a", "b"} and len(m.coords) >= latent.MIN_TILES
    # the tiles are the layers' own pixels
    for tile, src, (k, y, x) in zip(m.tiles.tiles, m.tiles.sources, m.tiles.positions):
        data = flat_image if src == "a" else stack[k]
        np.testing.assert_array_equal(tile, data[y : y + 32, x : x + 32])
    # one hole between the two layers, decoded into a layer, as decode_top decodes it
    model = microvae.load_model(model_path, device="cpu")
    assert len(m.holes) == 1 and m.holes[0].groups == ("a", "b")
    np.testing.assert_allclose(
        viewer.layers[HOLES].data.astype(float),
        latent.decode_top(model, m.holes[0].point[None]).astype(float),
        atol=1,
    )
    # the scatter shows every tile where the map put it
    drawn = np.concatenate([c.get_offsets() for c in widget.scatter.ax.collections[:2]])
    assert len(drawn) == len(m.coords)
    assert "collapse verdict on these tiles" in widget.status.value
    # click a tile of the stack's second plane
    j = int(np.nonzero((np.asarray(m.tiles.sources) == "b") & (m.tiles.positions[:, 0] == 1))[0][0])
    _click(widget, "tile", j)
    assert widget.selected is not None and widget.selected[0] == "tile"
    j = widget.selected[1]  # a tile on the same spot of the map would do as well
    assert np.allclose(m.coords[j], widget.scatter.point("tile", widget.selected[1]))
    qtbot.waitUntil(lambda: widget.busy == 0 and TRAVERSAL in viewer.layers, timeout=WAIT_MS)
    assert not errors, errors
    tile = m.tiles.tiles[j]
    np.testing.assert_array_equal(viewer.layers[SELECTED].data, tile)
    np.testing.assert_array_equal(viewer.layers[RECONSTRUCTION].data, model.reconstruct(tile))
    # beside the tile's layer, at its scale, left to right; not offered as layers to map
    src = viewer.layers[m.tiles.sources[j]]
    right = src.translate[-1] + 128 * 0.05
    xs = [viewer.layers[n].translate[-1] for n in (SELECTED, RECONSTRUCTION, TRAVERSAL)]
    assert right < xs[0] < xs[1] < xs[2]
    assert tuple(viewer.layers[SELECTED].scale) == (0.05, 0.05)
    assert [la.name for la in widget.layers.choices] == ["a", "b"]
    k, y, x = m.tiles.positions[j]
    (box,) = viewer.layers[BOX].data
    np.testing.assert_allclose(box.min(0), [y, x])
    np.testing.assert_allclose(box.max(0), [y + 32, x + 32])
    if m.tiles.sources[j] == "b":
        assert viewer.dims.current_step[0] == k  # the sliders went to the tile's plane
    # the sliders: the channels with most KL, each moved from the tile's own latent
    assert len(widget.sliders) == min(4, m.channel_kl.size)
    assert widget.channels == m.informative_channels(4)
    still = latent.move_channels(model, {}, z_top=m.flat[j])
    np.testing.assert_allclose(viewer.layers[TRAVERSAL].data.astype(float), still, atol=1)
    c = widget.channels[0]
    widget.sliders[0].value = 2.5
    expected = latent.move_channels(model, {c: 2.5}, z_top=m.flat[j])
    qtbot.waitUntil(
        lambda: (
            widget.busy == 0
            and np.abs(viewer.layers[TRAVERSAL].data.astype(float) - expected).max() <= 1
        ),
        timeout=WAIT_MS,
    )
    assert not np.array_equal(expected, still)
    widget.reset_sliders()
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    np.testing.assert_allclose(viewer.layers[TRAVERSAL].data.astype(float), still, atol=1)
    # click the hole: it is shown decoded; it has no reconstruction
    _click(widget, "hole", 0)
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert widget.selected == ("hole", 0)
    np.testing.assert_array_equal(viewer.layers[SELECTED].data, m.hole_images[0])
    assert RECONSTRUCTION not in viewer.layers
    assert "between a and b" in widget.point_info.value
    assert not errors, errors
    # mapped again (one layer): the earlier selection goes, the holes are the new map's
    widget.layers.value = [a]
    assert widget.map() is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    assert not {SELECTED, RECONSTRUCTION, TRAVERSAL, BOX} & {la.name for la in viewer.layers}
    m2 = widget.latent_map  # one layer is one group: the holes are between k-means clusters
    assert m2.grouping == "k-means clusters (3)" and set(m2.tiles.sources) == {"a"}
    if m2.hole_images is not None:
        np.testing.assert_array_equal(viewer.layers[HOLES].data, m2.hole_images)
    else:
        assert HOLES not in viewer.layers


def test_colour_by_labels_and_bad_input(make_napari_viewer, qtbot, model_path, errors):
    viewer, widget = _widget(make_napari_viewer, model_path)
    widget.model_file.line_edit.value = ""  # the user clears the field
    assert widget.map() is None and "no model chosen" in errors[-1]
    widget.model_file.value = model_path
    assert widget.map() is None and "no image layers chosen" in errors[-1]
    image = generate(shape=(128, 128), seed=24).image
    layer = viewer.add_image(image, name="cells")
    widget.layers.value = [layer]
    widget.colour_by.value = "label"
    assert widget.map() is None and "needs a labels layer" in errors[-1]
    wrong = viewer.add_labels(np.zeros((64, 64), np.uint8), name="wrong")
    widget.labels_layer.value = wrong
    assert widget.map() is None and "unlike image layer(s) 'cells'" in errors[-1]
    rgb = viewer.add_image(np.zeros((64, 64, 3), np.uint8), name="rgb", rgb=True)
    widget.labels_layer.value = None
    widget.colour_by.value = "source"
    widget.layers.value = [rgb]
    assert widget.map() is None and "RGB" in errors[-1]
    small = viewer.add_image(np.zeros((16, 16), np.uint16), name="small")
    widget.layers.value = [small]
    assert widget.map() is not None  # the tiles are cut in the worker: its error is shown
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert "no tiles" in errors[-1] and widget.latent_map is None
    assert widget.select("tile", 0) is None and "map the latent space first" in errors[-1]
    # labels drawn on the image: left half 1, right half 2
    labels = np.zeros(image.shape, np.uint8)
    labels[:, :64], labels[:, 64:] = 1, 2
    widget.labels_layer.value = viewer.add_labels(labels, name="halves")
    widget.layers.value = [layer]
    widget.colour_by.value = "label"
    n_errors = len(errors)
    assert widget.map() is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert len(errors) == n_errors, errors
    m = widget.latent_map
    for (_, y, x), colour in zip(m.tiles.positions, m.colours):
        assert colour == latent.majority_label(labels[y : y + 32, x : x + 32])
    assert {"label 1", "label 2"} <= set(m.colours) and m.grouping == "labels"
    assert widget.select("hole", 99) is None and "no hole 99" in errors[-1]
    assert widget.select("tile", len(m.coords)) is None and "no tile" in errors[-1]


def test_a_model_that_cannot_generate_maps_without_sliders(
    make_napari_viewer, qtbot, deterministic_path, errors
):
    viewer, widget = _widget(make_napari_viewer, deterministic_path)
    image = generate(shape=(128, 128), seed=25).image
    widget.layers.value = [viewer.add_image(image, name="mito")]
    assert widget.map() is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert not errors, errors
    assert "does not generate" in widget.status.value
    assert len(widget.sliders) == 0 and HOLES not in viewer.layers
    widget.select("tile", 0)
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    model = microvae.load_model(deterministic_path, device="cpu")
    tile = widget.latent_map.tiles.tiles[0]
    np.testing.assert_array_equal(viewer.layers[RECONSTRUCTION].data, model.reconstruct(tile))
    assert TRAVERSAL not in viewer.layers and not errors


def test_a_3d_model_is_refused_in_one_line(make_napari_viewer, qtbot, model3d_path, errors):
    """The explorer maps 2D models' tiles; a 3D model gets one line that says so and what
    does take it, and no map."""
    viewer, widget = _widget(make_napari_viewer, model3d_path)
    stack = viewer.add_image(generate(shape=(12, 64, 64), seed=3).image, name="stack")
    widget.layers.value = [stack]
    assert widget.map() is not None
    qtbot.waitUntil(lambda: widget.busy == 0, timeout=WAIT_MS)
    assert "a 3D model" in errors[-1] and "takes 2D models for now" in errors[-1], errors
    assert "\n" not in errors[-1] and widget.latent_map is None
