"""Writing TIFF: round trips of data, axes and pixel size; atomic writes."""

from __future__ import annotations

import os

import numpy as np
import pytest
import tifffile

from microvae.errors import ImageWriteError
from microvae.io import atomic_path, read_image, write_image

CASES = [  # axes, shape, dtype, expected container
    ("YX", (20, 30), np.uint16, "imagej"),
    ("YX", (20, 30), np.uint8, "imagej"),
    ("ZYX", (4, 20, 30), np.float32, "imagej"),
    ("TZCYX", (2, 3, 2, 10, 12), np.uint16, "imagej"),
    ("CYX", (3, 10, 12), np.uint8, "imagej"),
    ("YXS", (10, 12, 3), np.uint16, "ome"),
    ("YXS", (10, 12, 2), np.float32, "ome"),
    ("ZTYX", (2, 3, 10, 12), np.uint16, "ome"),
    ("QYX", (5, 10, 12), np.uint16, "ome"),
    ("ZYX", (4, 10, 12), np.int16, "ome"),
    ("YX", (10, 12), np.uint32, "ome"),
    ("TYX", (3, 10, 12), np.float64, "ome"),
]


@pytest.mark.parametrize("axes,shape,dtype,kind", CASES)
def test_round_trip(tmp_path, axes, shape, dtype, kind):
    rng = np.random.default_rng(0)
    data = (rng.uniform(0, 200, shape)).astype(dtype)
    px = {"X": 0.065, "Y": 0.065, "Z": 0.25}
    path = write_image(tmp_path / "out.tif", data, axes=axes, pixel_size=px, unit="um")
    with tifffile.TiffFile(path) as tif:
        assert tif.is_imagej if kind == "imagej" else tif.is_ome
    rec = read_image(path)
    assert rec.axes == axes
    assert rec.dtype == np.dtype(dtype)
    np.testing.assert_array_equal(rec.data, data)
    assert rec.unit == "um"
    expected = {a: v for a, v in px.items() if a in axes}
    assert rec.pixel_size == pytest.approx(expected, rel=1e-6)


def test_nanometre_units_survive(tmp_path):
    path = write_image(
        tmp_path / "em.tif",
        np.zeros((8, 8), np.uint8),
        axes="YX",
        pixel_size={"X": 4.0, "Y": 4.0},
        unit="nm",
    )
    rec = read_image(path)
    assert rec.unit == "nm" and rec.pixel_size == pytest.approx({"X": 4.0, "Y": 4.0})


def test_write_from_plane_iterator(tmp_path):
    data = np.arange(6 * 16 * 16, dtype=np.uint16).reshape(6, 16, 16)
    path = write_image(
        tmp_path / "it.tif", (p for p in data), axes="ZYX", shape=data.shape, dtype=data.dtype
    )
    np.testing.assert_array_equal(read_image(path).data, data)


def test_interrupted_write_leaves_nothing(tmp_path):
    def planes():
        yield np.zeros((16, 16), np.uint16)
        raise KeyboardInterrupt  # as if the user pressed Ctrl-C half-way

    target = tmp_path / "out.tif"
    with pytest.raises(KeyboardInterrupt):
        write_image(target, planes(), axes="ZYX", shape=(4, 16, 16), dtype=np.uint16)
    assert os.listdir(tmp_path) == []


def test_interrupted_write_keeps_previous_version(tmp_path):
    target = write_image(tmp_path / "out.tif", np.ones((4, 4), np.uint8), axes="YX")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"partial")
        raise RuntimeError("disk full")
    np.testing.assert_array_equal(read_image(target).data, np.ones((4, 4), np.uint8))
    assert sorted(os.listdir(tmp_path)) == ["out.tif"]


def test_write_errors(tmp_path):
    with pytest.raises(ImageWriteError, match="does not exist"):
        write_image(tmp_path / "no" / "x.tif", np.zeros((4, 4), np.uint8), axes="YX")
    with pytest.raises(ImageWriteError, match="x.tif: axes 'ZYX' has 3 letters"):
        write_image(tmp_path / "x.tif", np.zeros((4, 4), np.uint8), axes="ZYX")
    with pytest.raises(ImageWriteError, match="unsupported pixel type"):
        write_image(tmp_path / "x.tif", np.zeros((4, 4), bool), axes="YX")
    assert os.listdir(tmp_path) == []


def test_unwritable_folder(tmp_path, monkeypatch):
    # CI runs as root, which may write anywhere; so the refusal is simulated where it happens.
    import microvae.io.atomic as atomic

    def refuse(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(atomic.tempfile, "mkstemp", refuse)
    with pytest.raises(ImageWriteError, match=r"x.tif: cannot write \(Permission denied\)"):
        write_image(tmp_path / "x.tif", np.zeros((4, 4), np.uint8), axes="YX")


def test_written_files_get_the_usual_permissions(tmp_path):
    target = write_image(tmp_path / "out.tif", np.zeros((4, 4), np.uint8), axes="YX")
    mask = os.umask(0)
    os.umask(mask)
    assert target.stat().st_mode & 0o777 == 0o666 & ~mask


@pytest.mark.parametrize(
    "axes,dtype", [("ZYX", np.uint16), ("TZYX", np.float32), ("QYX", np.int16)]
)
def test_plane_writer_writes_any_order_and_only_a_complete_file(tmp_path, axes, dtype):
    from microvae.io import TiffPlaneWriter

    shape = (2, 3, 20, 24)[-len(axes) :]
    data = (np.arange(np.prod(shape)) % 1000).reshape(shape).astype(dtype)
    path = tmp_path / "out.tif"
    w = TiffPlaneWriter(path, shape=shape, dtype=dtype, axes=axes, pixel_size={"X": 0.1, "Y": 0.1})
    planes = data.reshape(-1, 20, 24)
    for k in reversed(range(len(planes))):  # any order
        w.write(k, planes[k])
        assert not path.exists()  # nothing under the name before close()
    w.close()
    rec = read_image(path)
    np.testing.assert_array_equal(rec.data.reshape(data.shape), data)
    assert rec.dtype == np.dtype(dtype) and rec.pixel_size["X"] == pytest.approx(0.1)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.tif"]


def test_plane_writer_refuses_a_missing_plane_and_aborts_cleanly(tmp_path):
    from microvae.io import TiffPlaneWriter

    path = tmp_path / "out.tif"
    w = TiffPlaneWriter(path, shape=(3, 8, 8), dtype=np.uint8, axes="ZYX")
    w.write(0, np.zeros((8, 8), np.uint8))
    with pytest.raises(ImageWriteError, match="plane 5 of shape"):
        w.write(5, np.zeros((8, 8), np.uint8))
    with pytest.raises(ImageWriteError, match="1 of 3|2 of 3 planes never written"):
        w.close()
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary left
    w = TiffPlaneWriter(path, shape=(3, 8, 8), dtype=np.uint8, axes="ZYX")
    w.abort()
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(ImageWriteError, match="Y and X last"):
        TiffPlaneWriter(path, shape=(8, 3, 8), dtype=np.uint8, axes="YZX")
