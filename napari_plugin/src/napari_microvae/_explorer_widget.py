"""The Latent explorer widget: where the tiles of some images lie in a model's latent space.

A scatter of the tiles' top-level latents (PCA; UMAP where installed), coloured by layer,
label (a labels layer) or k-means cluster, with the holes between the groups marked (the
lowest-density points on the paths between group medoids, :mod:`microvae.latent.holes`) and
decoded into a layer. Clicking a tile shows it and its reconstruction beside the images and
frames it on its layer; clicking a hole shows it decoded. Sliders move the top-level channels
with most KL (the most informative) from the selected point, decoded at each move. The
computations are :func:`microvae.latent.map_latents` and :func:`microvae.latent.move_channels`,
run in workers.
"""

from __future__ import annotations

import napari
import numpy as np
from magicgui.widgets import (
    ComboBox,
    Container,
    FloatSlider,
    Label,
    PushButton,
    Select,
    SpinBox,
)
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure

from microvae import latent
from microvae.latent import LatentMap, TileSet

from ._widget_base import (
    WorkerWidget,
    device_field,
    image_layers,
    model_field,
    optional_layers,
)
from ._work import PluginError, chosen_path

__all__ = ["ExplorerWidget", "LatentScatter", "explorer_tiles"]

SELECTED = "explorer: selected"
RECONSTRUCTION = "explorer: reconstruction"
TRAVERSAL = "explorer: traversal"
HOLES = "explorer: holes (decoded)"
BOX = "explorer: selection"
SLOTS = {SELECTED: 0, RECONSTRUCTION: 1, TRAVERSAL: 2, HOLES: 3}  # left to right
N_SLIDERS = 4  # traversal sliders: the channels with most KL
SLIDER_RANGE = 3.0  # prior standard deviations either way
PICK_RADIUS_PX = 12  # a click this close to a point picks it
COLOUR_CHOICES = [("layer", "source"), ("label (labels layer)", "label"), ("k-means", "cluster")]


def explorer_tiles(
    layers: list[tuple[str, np.ndarray]],
    tile: int,
    *,
    max_tiles: int,
    planes: int,
    labels: np.ndarray | None = None,
) -> TileSet:
    """Training-sized tiles of image layers' data (name, (..., Y, X)), shared evenly between
    the layers, from up to ``planes`` planes of each; labelled by ``labels`` (one array of
    every layer's shape) where given."""
    per_layer = max(1, -(-max_tiles // max(len(layers), 1)))
    sets = [
        latent.tiles_from_array(
            np.asarray(data),  # dask or zarr layers: read here, in the worker
            tile,
            max_tiles=per_layer,
            planes=planes,
            source=name,
            labels=None if labels is None else np.asarray(labels),
        )
        for name, data in layers
    ]
    return TileSet.concat(sets)


class LatentScatter:
    """The map: tiles coloured by group, the paths between groups and their holes, the
    selected point ringed."""

    def __init__(self):
        self.figure = Figure(figsize=(4, 4), tight_layout=True)
        self.canvas = FigureCanvasQTAgg(self.figure)
        self.canvas.setMinimumHeight(300)
        self.ax = self.figure.subplots()
        self.map: LatentMap | None = None
        self.hole_xy = np.zeros((0, 2))

    def draw(self, m: LatentMap, selected: tuple[str, int] | None = None) -> None:
        ax = self.ax
        ax.clear()
        ax.tick_params(labelsize=7)
        self.map, self.hole_xy = m, m.hole_coords()
        names = sorted(set(m.colours))
        colours = np.asarray(m.colours)
        for i, name in enumerate(names):
            xy = m.coords[colours == name]
            ax.scatter(xy[:, 0], xy[:, 1], s=12, color=f"C{i % 10}", label=name, alpha=0.8)
        for i in range(len(m.holes)):
            path = m.path_coords(i)
            ax.plot(path[:, 0], path[:, 1], ":", color="0.4", lw=0.8)
        if len(self.hole_xy):
            ax.scatter(*self.hole_xy.T, marker="X", s=70, color="red", label="holes", zorder=3)
            for i, (x, y) in enumerate(self.hole_xy):
                ax.annotate(str(i), (x, y), fontsize=7, xytext=(4, 4), textcoords="offset points")
        if selected is not None:
            x, y = self.point(*selected)
            ax.scatter([x], [y], s=160, facecolors="none", edgecolors="black", lw=1.5, zorder=4)
        if m.projection.method == "pca":
            e = m.projection.explained
            ax.set_xlabel(f"PC 1 ({100 * e[0]:.0f}%)", fontsize=8)
            ax.set_ylabel(f"PC 2 ({100 * e[1]:.0f}%)", fontsize=8)
        else:
            ax.set_xlabel("UMAP 1", fontsize=8)
            ax.set_ylabel("UMAP 2", fontsize=8)
        ax.set_title(f"{len(m.coords)} tiles, top-level latents", fontsize=8)
        if len(names) <= 12:
            ax.legend(fontsize=6, loc="best")
        self.canvas.draw_idle()

    def point(self, kind: str, i: int) -> tuple[float, float]:
        """Map coordinates of tile or hole ``i``."""
        xy = self.map.coords if kind == "tile" else self.hole_xy
        return float(xy[i, 0]), float(xy[i, 1])

    def display_xy(self, kind: str, i: int) -> tuple[float, float]:
        """Canvas pixel coordinates (from the bottom left, as Matplotlib's events give them)
        of tile or hole ``i``."""
        return tuple(self.ax.transData.transform(self.point(kind, i)))

    def nearest(self, x: float, y: float) -> tuple[str, int] | None:
        """The tile or hole nearest canvas pixel (x, y), within ``PICK_RADIUS_PX``; holes
        first, since they lie among the tiles."""
        if self.map is None:
            return None
        best = None
        for kind, xy in (("hole", self.hole_xy), ("tile", self.map.coords)):
            if not len(xy):
                continue
            d = np.hypot(*(self.ax.transData.transform(xy) - (x, y)).T)
            i = int(np.argmin(d))
            if d[i] <= PICK_RADIUS_PX and (best is None or d[i] < best[0]):
                best = (d[i], kind, i)
        return None if best is None else (best[1], best[2])


class ExplorerWidget(WorkerWidget):
    """Choose a model, image layers (and a labels layer); Map; click the map; move sliders."""

    def __init__(self, napari_viewer: napari.viewer.Viewer):
        self.viewer = napari_viewer
        self.model_file = model_field()
        self.device = device_field()
        self.layers = Select(label="image layers", choices=lambda _: self._image_layers())
        self.labels_layer = ComboBox(
            label="labels layer (optional)",
            choices=lambda _: optional_layers(self.viewer, napari.layers.Labels),
        )
        self.colour_by = ComboBox(label="colour by", choices=COLOUR_CHOICES, value="source")
        self.n_clusters = SpinBox(label="k-means clusters", value=3, min=2, max=12)
        self.method = ComboBox(label="map", choices=latent.available_projections(), value="pca")
        self.max_tiles = SpinBox(label="tiles", value=256, min=4, max=4096)
        self.planes = SpinBox(label="planes per layer", value=8, min=1, max=1024)
        self.seed = SpinBox(label="seed", value=0, min=0, max=2**31 - 1)
        self.map_button = PushButton(text="Map latent space")
        self.status = Label(value="")
        self.point_info = Label(value="")
        self.sliders = Container(widgets=[], labels=True)
        self.reset_button = PushButton(text="Reset sliders", enabled=False)
        super().__init__(
            napari_viewer,
            [
                self.model_file,
                self.device,
                self.layers,
                self.labels_layer,
                self.colour_by,
                self.n_clusters,
                self.method,
                self.max_tiles,
                self.planes,
                self.seed,
                self.map_button,
                self.status,
            ],
        )
        self.scatter = LatentScatter()
        self.native.layout().addWidget(self.scatter.canvas)
        for w in (self.point_info, self.sliders, self.reset_button):
            self.append(w)
        self.point_info.native.setWordWrap(True)
        self.scatter.canvas.mpl_connect("button_press_event", self._clicked)
        self.map_button.changed.connect(self.map)
        self.reset_button.changed.connect(self.reset_sliders)
        self.latent_map: LatentMap | None = None
        self.model = None
        self.layer_of: dict[str, object] = {}  # tile source -> its image layer
        self.anchor = None  # the layer the explorer's layers stand beside: the tile's
        self.selected: tuple[str, int] | None = None
        self.base: np.ndarray | None = None  # the flat top latent the sliders move from
        self.channels: list[int] = []
        self._traversing, self._pending = False, False

    def _image_layers(self) -> list:
        """The image layers to map: not the explorer's own."""
        return [la for la in image_layers(self.viewer) if la.name not in SLOTS]

    # -- mapping --------------------------------------------------------------------------------

    def map(self, *_):
        return self._guard(self._start_map)

    def _start_map(self):
        model = self.models.get(chosen_path(self.model_file.line_edit.value), self.device.value)
        chosen = list(self.layers.value)
        if not chosen:
            raise PluginError("no image layers chosen: select one or more in 'image layers'")
        for layer in chosen:
            self.chosen_layer(layer)
        labels_layer, colour_by = self.labels_layer.value, self.colour_by.value
        if colour_by == "label" and labels_layer is None:
            raise PluginError(
                "colouring by label needs a labels layer: choose one, or colour by layer"
            )
        if labels_layer is not None:
            wrong = [la.name for la in chosen if la.data.shape != labels_layer.data.shape]
            if wrong:
                raise PluginError(
                    f"labels layer '{labels_layer.name}' has shape {labels_layer.data.shape}, "
                    f"unlike image layer(s) {', '.join(repr(w) for w in wrong)}: choose image "
                    "layers of its shape, or no labels layer"
                )
        pairs = [(layer.name, layer.data) for layer in chosen]
        labels = None if labels_layer is None else labels_layer.data
        tile, n, planes = model.default_tile(), self.max_tiles.value, self.planes.value
        kw = dict(
            colour_by=colour_by,
            n_clusters=self.n_clusters.value,
            method=self.method.value,
            seed=self.seed.value,
        )

        def work() -> LatentMap:
            tiles = explorer_tiles(pairs, tile, max_tiles=n, planes=planes, labels=labels)
            return latent.map_latents(model, tiles, **kw)

        worker = self._worker(work, _progress={"desc": "microvae: mapping the latent space"})
        worker.returned.connect(lambda m: self._mapped(model, chosen, m))
        worker.finished.connect(lambda: setattr(self.map_button, "enabled", True))
        self.map_button.enabled = False
        self.status.value = f"mapping tiles of {len(chosen)} layer(s)..."
        return self._start_worker(worker)

    def _mapped(self, model, layers: list, m: LatentMap) -> None:
        self.model, self.latent_map = model, m
        self.layer_of = {layer.name: layer for layer in layers}
        self.anchor = layers[0]
        self.selected, self.base = None, None
        self.scatter.draw(m)
        for stale in (*SLOTS, BOX):  # an earlier map's selection and holes are not this one's
            if stale in self.viewer.layers:
                self.viewer.layers.remove(stale)
        if m.hole_images is not None:
            self._show(HOLES, m.hole_images)
        self.channels = m.informative_channels(N_SLIDERS)
        self._build_sliders()
        lines = [f"{len(m.coords)} tiles; holes between {m.grouping}: {len(m.holes)}"]
        if m.verdict is not None:
            lines.append(f"collapse verdict on these tiles: {m.verdict}")
        lines += m.notes
        lines.append("click a point of the map to show it")
        self.status.value = "\n".join(lines)
        self.point_info.value = ""

    def _build_sliders(self) -> None:
        self.sliders.clear()
        kl = self.latent_map.channel_kl
        for c in self.channels:
            slider = FloatSlider(
                label=f"channel {c} (KL {kl[c]:.2g})",
                value=0.0,
                min=-SLIDER_RANGE,
                max=SLIDER_RANGE,
                step=0.1,
            )
            slider.changed.connect(self.traverse)
            self.sliders.append(slider)
        self.reset_button.enabled = bool(self.channels)

    # -- selection ------------------------------------------------------------------------------

    def _clicked(self, event) -> None:
        if event.inaxes is not self.scatter.ax or event.button != 1:
            return
        picked = self.scatter.nearest(event.x, event.y)
        if picked is not None:
            self.select(*picked)

    def select(self, kind: str, i: int):
        """Show tile or hole ``i`` (as the map's click does); returns the worker, if any."""

        def start():
            m = self.latent_map
            if m is None:
                raise PluginError("map the latent space first")
            if kind == "hole":
                return self._select_hole(m, i)
            if not 0 <= i < len(m.coords):
                raise PluginError(f"no tile {i}: the map has {len(m.coords)}")
            return self._select_tile(m, i)

        return self._guard(start)

    def _select_tile(self, m: LatentMap, i: int):
        tile = m.tiles.tiles[i]
        source, (plane, y, x) = m.tiles.sources[i], m.tiles.positions[i]
        layer = self.layer_of[source]
        self.selected, self.base = ("tile", i), m.flat[i]
        self.scatter.draw(m, self.selected)
        self._frame(layer, int(plane), int(y), int(x), tile.shape[0])
        self.anchor = layer
        self._show(SELECTED, tile)
        self.point_info.value = (
            f"tile {i}: {source}, plane {plane}, rows {y}-{y + tile.shape[0]}, "
            f"columns {x}-{x + tile.shape[1]} ({m.colours[i]})"
        )
        model = self.model
        worker = self._worker(lambda: model.reconstruct(tile))
        worker.returned.connect(lambda rec: self._show(RECONSTRUCTION, rec))
        self._start_worker(worker)
        self.traverse()
        return worker

    def _select_hole(self, m: LatentMap, i: int):
        if not 0 <= i < len(m.holes):
            raise PluginError(f"no hole {i}: the map has {len(m.holes)}")
        h = m.holes[i]
        self.selected, self.base = ("hole", i), h.point
        self.scatter.draw(m, self.selected)
        self._show(SELECTED, m.hole_images[i])
        if RECONSTRUCTION in self.viewer.layers:  # a hole has no input to reconstruct
            self.viewer.layers.remove(RECONSTRUCTION)
        self.point_info.value = (
            f"hole {i}: between {h.groups[0]} and {h.groups[1]} at t = {h.t:.2f} of the path, "
            f"log density {h.log_density:.1f} (typical tile: 0), decoded"
        )
        return self.traverse()

    def _frame(self, layer, plane: int, y: int, x: int, t: int) -> None:
        """A rectangle round the tile on its layer, and the sliders at its plane."""
        lead = layer.data.ndim - 2
        if lead:
            index = np.unravel_index(plane, layer.data.shape[:lead])
            step = list(self.viewer.dims.current_step)
            first = self.viewer.dims.ndim - layer.data.ndim
            for k, v in enumerate(index):
                step[first + k] = int(v)
            self.viewer.dims.current_step = tuple(step)
        corners = np.array([[y, x], [y, x + t], [y + t, x + t], [y + t, x]], float)
        kw = {"scale": layer.scale[-2:], "translate": layer.translate[-2:]}
        if BOX in self.viewer.layers:
            self.viewer.layers[BOX].data = [corners]
        else:
            self.viewer.add_shapes(
                [corners],
                name=BOX,
                shape_type="rectangle",
                edge_color="yellow",
                face_color="transparent",
                edge_width=max(1.0, t / 32),
                **kw,
            )

    # -- traversal ------------------------------------------------------------------------------

    def offsets(self) -> dict[int, float]:
        """The sliders' values: top-level channel -> prior standard deviations."""
        return {c: float(s.value) for c, s in zip(self.channels, self.sliders)}

    def reset_sliders(self, *_):
        for s in self.sliders:
            with s.changed.blocked():
                s.value = 0.0
        return self.traverse()

    def traverse(self, *_):
        """Decode the selected point (or the prior mean) with the sliders' channels moved; a
        move while one is decoding is decoded after it (the latest values)."""
        if self.latent_map is None or not self.channels:
            return None
        if self._traversing:
            self._pending = True
            return None
        model, offsets, base = self.model, self.offsets(), self.base
        worker = self._worker(lambda: latent.move_channels(model, offsets, z_top=base))
        worker.returned.connect(lambda img: self._show(TRAVERSAL, img))
        worker.finished.connect(self._traversed)
        self._traversing = True
        return self._start_worker(worker)

    def _traversed(self) -> None:
        self._traversing = False
        if self._pending:
            self._pending = False
            self.traverse()

    # -- layers ---------------------------------------------------------------------------------

    def _place(self, layer, slot: int) -> None:
        """Stand ``layer`` at ``slot`` to the right of the anchor layer, at its scale."""
        like = self.anchor
        t = self.model.default_tile() if self.model is not None else layer.data.shape[-1]
        right = float(like.translate[-1] + like.data.shape[-1] * like.scale[-1])
        sx = float(like.scale[-1])
        lead = layer.data.ndim - 2  # the holes' stack: one per plane of a slider
        layer.scale = (*(1.0,) * lead, *like.scale[-2:])
        layer.translate = (
            *(0.0,) * lead,
            float(like.translate[-2]),
            right + sx * (t // 4 + slot * (t + t // 8)),
        )

    def _show(self, name: str, data: np.ndarray) -> None:
        """Put ``data`` in the explorer's layer ``name`` (replaced in place), every explorer
        layer standing in its slot beside the anchor layer (that of the selected tile)."""
        if name in self.viewer.layers:
            layer = self.viewer.layers[name]
            layer.data = data
            layer.reset_contrast_limits()
        else:
            self.viewer.add_image(data, name=name, colormap=self.anchor.colormap.name)
        for other, slot in SLOTS.items():
            if other in self.viewer.layers:
                self._place(self.viewer.layers[other], slot)
