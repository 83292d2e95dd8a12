"""Geometry of synthetic mitochondria: cells, tubular networks with branches and loops, puncta.

Everything here is in micrometres, coordinates ordered like the image axes ((y, x) or
(z, y, x)). The result is a list of :class:`Segment` (a centre line with a diameter) and the
graph statistics of the networks, which are the ground truth of the morphology metrics.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components
from scipy.spatial import cKDTree

from .params import SynthParams

__all__ = ["Segment", "Geometry", "make_geometry", "TUBULE", "PUNCTUM"]

TUBULE, PUNCTUM = 1, 2


@dataclass
class Segment:
    """A centre line (N, D) in um with a diameter (um), brightness (0-1) and label."""

    points: np.ndarray
    diameter: float
    brightness: float
    label: int


@dataclass
class Geometry:
    segments: list[Segment]
    cells: list[tuple[np.ndarray, np.ndarray]]  # (centre, semi-axes), um
    network: dict[str, float] = field(default_factory=dict)


def _inside_cells(points: np.ndarray, cells) -> np.ndarray:
    inside = np.zeros(len(points), bool)
    for centre, semi in cells:
        inside |= (((points - centre) / semi) ** 2).sum(axis=1) <= 1.0
    return inside


def _dart_throw(rng, n_try: int, extent: np.ndarray, keep, d_min: float) -> np.ndarray:
    """Random points (Poisson-disk: no two closer than d_min) where ``keep(points)`` is True."""
    cand = rng.uniform(0, 1, (n_try, len(extent))) * extent
    cand = cand[keep(cand)]
    accepted = np.empty_like(cand)
    k = 0
    for p in cand:
        if k == 0 or np.min(np.sum((accepted[:k] - p) ** 2, axis=1)) >= d_min**2:
            accepted[k] = p
            k += 1
    return accepted[:k]


def _crosses(a: np.ndarray, b: np.ndarray, segs: list[tuple[np.ndarray, np.ndarray]]) -> bool:
    """Whether the 2D chord a-b properly intersects any chord in ``segs``."""
    if not segs:
        return False
    p, q = np.array([s[0] for s in segs]), np.array([s[1] for s in segs])

    def orient(u, v, w):
        return np.sign(
            (v[..., 0] - u[..., 0]) * (w[..., 1] - u[..., 1])
            - (v[..., 1] - u[..., 1]) * (w[..., 0] - u[..., 0])
        )

    shares = np.all(p == a, 1) | np.all(p == b, 1) | np.all(q == a, 1) | np.all(q == b, 1)
    hit = (orient(a, b, p) * orient(a, b, q) < 0) & (orient(p, q, a) * orient(p, q, b) < 0)
    return bool(np.any(hit & ~shares))


def _curve(rng, a: np.ndarray, b: np.ndarray, step: float) -> np.ndarray:
    """Quadratic Bezier from a to b, bent sideways by up to 15% of its length."""
    d = b - a
    length = float(np.linalg.norm(d))
    bend = rng.normal(0, 0.3, len(a))
    bend -= bend.dot(d) / max(length**2, 1e-12) * d  # perpendicular to the chord
    ctrl = (a + b) / 2 + np.clip(bend, -0.15, 0.15) * length
    t = np.linspace(0, 1, max(int(np.ceil(length * 1.3 / step)), 2))[:, None]
    return (1 - t) ** 2 * a + 2 * (1 - t) * t * ctrl + t**2 * b


def _network(rng, nodes: np.ndarray, p: SynthParams, step: float) -> tuple[list[Segment], dict]:
    """Random spanning forest over near neighbours, plus loops, minus a few breaks."""
    n = len(nodes)
    if n < 2:
        return [], {}
    pairs = np.array(sorted(cKDTree(nodes).query_pairs(2.1 * p.node_spacing_um)), int)
    if len(pairs) == 0:
        return [], {}
    edges = _random_forest(rng, nodes, pairs[rng.permutation(len(pairs))], p.loop_probability)
    # Breaks after the forest is built, so that they split networks apart.
    edges = [e for e in edges if rng.uniform() >= p.break_probability]
    if not edges:
        return [], {}
    e = np.array(edges)
    degree = np.bincount(e.ravel(), minlength=n)
    adjacency = coo_matrix((np.ones(len(e)), (e[:, 0], e[:, 1])), shape=(n, n))
    _, component = connected_components(adjacency, directed=False)
    used = degree > 0
    bright = {c: rng.uniform(0.7, 1.0) for c in np.unique(component[used])}
    segments = [
        Segment(
            _curve(rng, nodes[i], nodes[j], step),
            rng.uniform(*p.tubule_diameter_um),
            bright[component[i]],
            TUBULE,
        )
        for i, j in edges
    ]
    return segments, _network_stats(edges, degree, len(bright), segments)


def _random_forest(rng, nodes: np.ndarray, pairs: np.ndarray, loop_probability: float):
    """Random Kruskal over the shuffled near-neighbour ``pairs``: a spanning forest first, the
    other edges become loops with ``loop_probability``; in 2D no edge crosses another."""
    parent = list(range(len(nodes)))

    def find(i):
        while parent[i] != i:
            parent[i] = parent[parent[i]]
            i = parent[i]
        return i

    edges, chords = [], []
    flat = nodes.shape[1] == 2
    for i, j in pairs:
        ri, rj = find(i), find(j)
        if ri == rj and rng.uniform() >= loop_probability:
            continue
        if flat and _crosses(nodes[i], nodes[j], chords):
            continue
        parent[ri] = rj
        edges.append((i, j))
        chords.append((nodes[i], nodes[j]))
    return edges


def _network_stats(edges, degree: np.ndarray, n_components: int, segments) -> dict:
    """The ground truth of a network: edges, nodes, junctions, end points, networks, loops
    and the length of its centre lines (um)."""
    used = degree > 0
    return {
        "n_edges": len(edges),
        "n_nodes": int(used.sum()),
        "n_junctions": int((degree >= 3).sum()),
        "n_endpoints": int((degree == 1).sum()),
        "n_networks": n_components,
        "n_loops": len(edges) - int(used.sum()) + n_components,
        "length_um": float(
            sum(np.linalg.norm(np.diff(s.points, axis=0), axis=1).sum() for s in segments)
        ),
    }


def _puncta(rng, centres: np.ndarray, p: SynthParams, step: float) -> list[Segment]:
    segments = []
    for c in centres:
        length = rng.uniform(*p.punctum_length_um)
        direction = rng.normal(size=len(c))
        direction /= np.linalg.norm(direction)
        a, b = c - direction * length / 2, c + direction * length / 2
        n = max(int(np.ceil(length / step)), 1) + 1
        pts = a + np.linspace(0, 1, n)[:, None] * (b - a)
        segments.append(
            Segment(pts, rng.uniform(*p.punctum_diameter_um), rng.uniform(0.6, 1.0), PUNCTUM)
        )
    return segments


def make_geometry(p: SynthParams, rng: np.random.Generator) -> Geometry:
    """Cells and the mitochondria in them, for the image extent that ``p.shape`` spans."""
    spacing = np.array(([p.z_step_um] if p.is_stack else []) + [p.pixel_size_um] * 2)
    extent = np.asarray(p.shape) * spacing
    step = p.pixel_size_um / (2 * p.supersample)  # centre-line sampling finer than the grid
    cells = []
    for _ in range(rng.integers(p.n_cells[0], p.n_cells[1] + 1)):
        centre = rng.uniform(0.25, 0.75, len(extent)) * extent
        semi = rng.uniform(0.3, 0.5, len(extent)) * extent[-2:].min()
        if p.is_stack:  # a cell fills the stack's depth
            centre[0], semi[0] = extent[0] / 2, max(extent[0] * 0.6, 3 * p.z_step_um)
        cells.append((centre, semi))

    def in_cells(pts):
        return _inside_cells(pts, cells)

    if p.phenotype == "mixed":  # each cell split by a random plane: tubules on one side
        normals = [rng.normal(size=len(extent)) * ([0] * p.is_stack + [1, 1]) for _ in cells]

        def tubular_side(pts):
            side = np.zeros(len(pts), bool)
            for (centre, semi), nrm in zip(cells, normals):
                inside = (((pts - centre) / semi) ** 2).sum(axis=1) <= 1.0
                side |= inside & ((pts - centre) @ nrm > 0)
            return side

        keep_tub = tubular_side

        def keep_pun(pts):
            return in_cells(pts) & ~tubular_side(pts)
    else:
        keep_tub = keep_pun = in_cells
    area = np.prod(extent[-2:])
    segments, stats = [], {}
    if p.phenotype in ("tubular", "mixed"):
        n_try = int(40 * area / p.node_spacing_um**2) + 50
        nodes = _dart_throw(rng, n_try, extent, keep_tub, p.node_spacing_um)
        segments, stats = _network(rng, nodes, p, step)
    if p.phenotype in ("fragmented", "mixed"):
        d_min = 0.9
        centres = _dart_throw(rng, int(40 * area / d_min**2) + 50, extent, keep_pun, d_min)
        segments += _puncta(rng, centres, p, step)
        stats["n_puncta"] = len(centres)
    return Geometry(segments=segments, cells=cells, network=stats)
