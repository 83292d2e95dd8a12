"""Reading TIFF files: real files, channels, axes overrides, lazy planes."""

from __future__ import annotations

import numpy as np
import pytest
import tifffile

from microvae.io import ImageRecord, open_image, read_image, write_image

HELA_PX = 0.0515  # um, from the data README

# file, axes, shape, dtype, bit depth, pixel size X (um) or None, value range
REAL_FILES = [
    ("hela-cells.tif", "YXS", (512, 672, 3), "uint16", 12, HELA_PX, (0, 4095)),
    ("hela-cells_mito_ch1.tif", "YX", (512, 672), "uint16", 12, HELA_PX, (0, 1900)),
    ("MitoGraphTest001.tif", "ZYX", (41, 192, 192), "uint16", 14, None, (2140, 6712)),
    ("123002002001.tif", "ZYX", (33, 157, 115), "uint8", 8, None, (0, 255)),
    ("cell.tif", "ZYX", (33, 91, 142), "uint16", 14, None, (479, 11071)),
]


@pytest.mark.real_data
@pytest.mark.parametrize("name,axes,shape,dtype,bits,px,vrange", REAL_FILES)
def test_real_files(real_data, name, axes, shape, dtype, bits, px, vrange):
    rec = read_image(real_data / name)
    assert rec.axes == axes
    assert rec.shape == shape
    assert rec.data.shape == shape
    assert rec.dtype == np.dtype(dtype)
    assert rec.bit_depth == bits
    assert (rec.stats.min, rec.stats.max) == vrange
    if px is None:
        assert rec.pixel_size == {} and rec.unit is None
    else:
        assert rec.unit == "um"
        assert rec.pixel_size["X"] == pytest.approx(px, rel=2e-3)
        assert rec.pixel_size["Y"] == pytest.approx(px, rel=2e-3)
    # the data match what tifffile itself reads
    np.testing.assert_array_equal(rec.data, tifffile.imread(real_data / name))


@pytest.mark.real_data
def test_hela_channel_selection(real_data):
    full = tifffile.imread(real_data / "hela-cells.tif")
    rec = read_image(real_data / "hela-cells.tif", channel=1)
    assert rec.axes == "YX" and rec.channel == 1
    np.testing.assert_array_equal(rec.data, full[..., 1])
    # sample 1 is the mitochondria image that the data README ships separately
    mito = tifffile.imread(real_data / "hela-cells_mito_ch1.tif")
    np.testing.assert_array_equal(rec.data, mito)


@pytest.mark.real_data
def test_yeast_stack_planes_lazily(real_data):
    with open_image(real_data / "MitoGraphTest001.tif") as rec:
        assert rec.n_planes == 41 and rec.plane_axes == "Z"
        planes = list(rec.iter_planes())
    full = tifffile.imread(real_data / "MitoGraphTest001.tif")
    assert [idx for idx, _ in planes] == [(z,) for z in range(41)]
    np.testing.assert_array_equal(np.stack([p for _, p in planes]), full)


def test_hyperstack_channel_is_a_page_axis(tmp_path):
    data = np.arange(2 * 3 * 4 * 8 * 10, dtype=np.uint16).reshape(2, 3, 4, 8, 10)
    path = write_image(tmp_path / "h.tif", data, axes="TZCYX")
    with open_image(path, channel=2) as rec:
        assert rec.axes == "TZYX" and rec.shape == (2, 3, 8, 10)
        assert rec.plane_axes == "TZ" and rec.n_planes == 6
        planes = dict(rec.iter_planes())
        np.testing.assert_array_equal(rec.data, data[:, :, 2])
    assert set(planes) == {(t, z) for t in range(2) for z in range(3)}
    np.testing.assert_array_equal(planes[(1, 2)], data[1, 2, 2])


def test_planar_samples_are_read_per_sample(tmp_path):
    data = np.random.default_rng(0).integers(0, 255, (3, 16, 20), dtype=np.uint8)
    path = tmp_path / "planar.tif"
    tifffile.imwrite(path, data, photometric="rgb", planarconfig="separate")
    rec = read_image(path)
    assert rec.axes == "SYX"
    np.testing.assert_array_equal(rec.data, data)
    np.testing.assert_array_equal(read_image(path, channel=2).data, data[2])


def test_axes_override_renames_unknown_stack_axis(tmp_path):
    data = np.zeros((5, 16, 16), np.float32)
    path = tmp_path / "pages.tif"
    with tifffile.TiffWriter(path) as tw:  # five separate pages, no metadata: axes unknown
        for plane in data:
            tw.write(plane, metadata=None)
    assert open_image(path).axes == "QYX"
    rec = open_image(path, axes="tyx")
    assert rec.axes == "TYX" and rec.n_planes == 5


def test_compressed_files(tmp_path):
    data = np.random.default_rng(1).integers(0, 4096, (4, 64, 64), dtype=np.uint16)
    for codec in ("zlib", "lzw", "zstd"):
        path = write_image(tmp_path / f"{codec}.tif", data, axes="ZYX", compression=codec)
        with tifffile.TiffFile(path) as tif:
            assert tif.pages[0].compression != 1  # 1 = uncompressed
        rec = open_image(path)
        np.testing.assert_array_equal(np.stack([p for _, p in rec.iter_planes()]), data)


def test_ome_tiff_with_pixel_sizes(tmp_path):
    data = np.zeros((3, 2, 16, 16), np.uint16)
    path = tmp_path / "a.ome.tif"
    tifffile.imwrite(
        path,
        data,
        ome=True,
        metadata={
            "axes": "ZCYX",
            "PhysicalSizeX": 0.1,
            "PhysicalSizeY": 0.1,
            "PhysicalSizeZ": 0.5,
            "PhysicalSizeXUnit": "µm",
            "PhysicalSizeYUnit": "µm",
            "PhysicalSizeZUnit": "µm",
        },
    )
    rec = open_image(path, channel=1)
    assert rec.axes == "ZYX"
    assert rec.pixel_size == pytest.approx({"X": 0.1, "Y": 0.1, "Z": 0.5}) and rec.unit == "um"


def test_integer_valued_float_is_recognised():
    ints = ImageRecord.from_array(np.array([[0.0, 4000.0], [17.0, 3.0]], np.float32), "YX")
    assert ints.stats.integer_valued and ints.bit_depth == 12
    small = ImageRecord.from_array(np.array([[0.0, 200.0]], np.float32).repeat(2, 0), "YX")
    assert small.bit_depth == 8
    real = ImageRecord.from_array(np.array([[0.5, 1.0], [2.0, 3.0]], np.float32), "YX")
    assert not real.stats.integer_valued and real.bit_depth is None


def test_lazy_and_eager_agree(tmp_path):
    data = np.random.default_rng(2).normal(size=(3, 2, 8, 8)).astype(np.float32)
    path = write_image(tmp_path / "f.tif", data, axes="TZYX")
    lazy = open_image(path)
    np.testing.assert_array_equal(lazy.data, read_image(path).data)
    assert lazy.n_planes == 6
    lazy.close()
    # a closed record reopens its file when read again
    np.testing.assert_array_equal(next(lazy.iter_planes())[1], data[0, 0])
    lazy.close()
