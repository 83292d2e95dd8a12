"""A stack of a few hundred MB is walked plane by plane with memory bounded by a few planes."""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import tifffile

from microvae.io import open_image

N_PLANES, SIDE = 150, 1024  # 300 MiB of uint16
PLANE_BYTES = SIDE * SIDE * 2


@pytest.fixture(scope="module")
def big_stack(tmp_path_factory):
    path = tmp_path_factory.mktemp("big") / "big.tif"
    base = np.arange(SIDE, dtype=np.uint16)[None, :].repeat(SIDE, 0)

    def planes():
        for z in range(N_PLANES):
            yield base + z  # plane z is its column index plus z

    tifffile.imwrite(
        path,
        planes(),
        shape=(N_PLANES, SIDE, SIDE),
        dtype=np.uint16,
        imagej=True,
        metadata={"axes": "ZYX"},
    )
    assert path.stat().st_size > 300e6
    return path


def _peak_while(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_iterate_planes_with_bounded_memory(big_stack):
    seen = []

    def walk():
        with open_image(big_stack) as rec:
            for (z,), plane in rec.iter_planes():
                if z % 37 == 0:  # spot checks; keeping no plane alive
                    seen.append((z, int(plane[5, 7]), int(plane[-1, -1])))

    peak = _peak_while(walk)
    assert len(seen) == 5 and seen[1] == (37, 44, 1023 + 37)
    assert peak < 4 * PLANE_BYTES, f"peak {peak / 1e6:.1f} MB for {PLANE_BYTES / 1e6:.1f} MB planes"


def test_value_scan_with_bounded_memory(big_stack):
    def scan():
        with open_image(big_stack) as rec:
            assert (rec.stats.min, rec.stats.max) == (0, SIDE - 1 + N_PLANES - 1)
            assert rec.bit_depth == 12

    assert _peak_while(scan) < 4 * PLANE_BYTES


def test_memory_mapped_fallback_reads_the_same(tmp_path):
    # Layouts that cannot be read page by page (ImageJ's >4 GB files keep one page header)
    # are memory-mapped when contiguous; forced here on a small file.
    data = np.random.default_rng(0).integers(0, 999, (6, 32, 40), dtype=np.uint16)
    path = tmp_path / "c.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})
    rec = open_image(path)
    rec._reader._by_page = False
    np.testing.assert_array_equal(np.stack([p for _, p in rec.iter_planes()]), data)
    assert isinstance(rec._reader._whole_array()._canonical.base, np.memmap)
    rec.close()
