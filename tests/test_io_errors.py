"""Bad input: one clear error naming the file, a typed exception, exit status 2 on the CLI."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import tifffile

from microvae.errors import AxesError, ChannelError, ImageReadError, MicrovaeError
from microvae.io import ImageRecord, open_image, read_image


def _good(tmp_path, name="good.tif", pages=12):
    data = np.random.default_rng(0).integers(0, 4096, (pages, 32, 48), dtype=np.uint16)
    path = tmp_path / name
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})
    return path


def _truncated_files(tmp_path):
    good = _good(tmp_path).read_bytes()
    cases = {}
    for label, cut in (
        ("half", len(good) // 2),
        ("tail", len(good) - 3000),
        ("last-bytes", len(good) - 100),
        ("header-only", 40),
    ):
        p = tmp_path / f"trunc-{label}.tif"
        p.write_bytes(good[:cut])
        cases[label] = p
    comp = np.random.default_rng(1).integers(0, 4096, (5, 64, 64), dtype=np.uint16)
    zpath = tmp_path / "z.tif"
    tifffile.imwrite(zpath, comp, compression="zlib")
    cases["compressed"] = tmp_path / "trunc-compressed.tif"
    cases["compressed"].write_bytes(zpath.read_bytes()[:-3000])
    return cases


def _read_all(path):
    with open_image(path) as rec:
        for _ in rec.iter_planes():
            pass
        return rec.data


def test_missing_file(tmp_path):
    with pytest.raises(ImageReadError, match="nope.tif: file not found"):
        read_image(tmp_path / "nope.tif")


def test_empty_file(tmp_path):
    (tmp_path / "empty.tif").touch()
    with pytest.raises(ImageReadError, match=r"empty.tif: file is empty \(0 bytes\)"):
        read_image(tmp_path / "empty.tif")


def test_text_file_named_tif(tmp_path):
    (tmp_path / "notes.tif").write_text("these are my notes\n")
    with pytest.raises(ImageReadError, match="notes.tif: not a TIFF file"):
        read_image(tmp_path / "notes.tif")


def test_folder_given(tmp_path):
    with pytest.raises(ImageReadError, match="is a folder"):
        read_image(tmp_path)


@pytest.mark.parametrize("label", ["half", "tail", "last-bytes", "header-only", "compressed"])
def test_truncated_tiff(tmp_path, label):
    path = _truncated_files(tmp_path)[label]
    with pytest.raises(ImageReadError) as info:
        _read_all(path)
    assert str(info.value).startswith(path.name + ": ")
    assert "truncated" in str(info.value) or "corrupt" in str(info.value)


@pytest.mark.parametrize("dtype", [bool, np.complex64])
def test_unsupported_dtype(tmp_path, dtype):
    path = tmp_path / "odd.tif"
    tifffile.imwrite(path, np.zeros((8, 8), dtype))
    with pytest.raises(ImageReadError, match=r"odd.tif: unsupported pixel type"):
        read_image(path)
    with pytest.raises(ImageReadError, match="unsupported pixel type"):
        ImageRecord.from_array(np.zeros((8, 8), dtype), "YX")


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_values(tmp_path, bad):
    data = np.ones((3, 8, 8), np.float32)
    data[2, 4, 4] = bad
    path = tmp_path / "nan.tif"
    tifffile.imwrite(path, data, imagej=True, metadata={"axes": "ZYX"})
    with pytest.raises(ImageReadError, match="nan.tif: contains .* NaN and .* infinite"):
        read_image(path)
    rec = open_image(path)
    it = rec.iter_planes()
    next(it), next(it)  # the first two planes are fine and come out before the bad one
    with pytest.raises(ImageReadError):
        next(it)
    rec.close()


@pytest.mark.parametrize(
    "axes,match",
    [
        ("YX", "has 2 letters but the image has 3"),
        ("ZYXT", "has 4 letters"),
        ("ZXY", "must contain Y and then X"),
        ("ZZX", "repeats Z"),
        ("WYX", "unknown letter"),
    ],
)
def test_axes_that_do_not_fit(tmp_path, axes, match):
    path = _good(tmp_path, pages=3)
    with pytest.raises(AxesError, match=match) as info:
        open_image(path, axes=axes)
    assert str(info.value).startswith("good.tif: ")


def test_channel_out_of_range(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((16, 16, 3), np.uint16), photometric="rgb")
    with pytest.raises(ChannelError, match=r"rgb.tif: channel 3 is out of range.*channel=0..2"):
        open_image(path, channel=3)
    with pytest.raises(ChannelError, match="no channel axis"):
        open_image(_good(tmp_path, pages=2), channel=0)
    with pytest.raises(ChannelError, match="rgb.tif: axes YXS has 3 samples; pass channel=0..2"):
        next(open_image(path).iter_planes())


def test_errors_are_typed():
    for cls in (ImageReadError, AxesError, ChannelError):
        assert issubclass(cls, MicrovaeError) and issubclass(cls, ValueError)


def _cli(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "microvae.cli.main", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd,
    )


def test_cli_reports_each_bad_file_in_one_line(tmp_path):
    (tmp_path / "empty.tif").touch()
    (tmp_path / "notes.tif").write_text("hello")
    trunc = _truncated_files(tmp_path)["half"]
    good = _good(tmp_path, pages=2)
    res = _cli(
        "inspect",
        tmp_path / "missing.tif",
        tmp_path / "empty.tif",
        tmp_path / "notes.tif",
        trunc,
        good,
    )
    assert res.returncode == 2
    err = res.stderr.strip().splitlines()
    assert len(err) == 4, res.stderr
    assert all(line.startswith("microvae: error: ") for line in err)
    assert "Traceback" not in res.stderr
    for name in ("missing.tif", "empty.tif", "notes.tif", trunc.name):
        assert sum(name in line for line in err) == 1
    assert "good.tif" in res.stdout  # the good file is still reported


def test_cli_channel_out_of_range(tmp_path):
    path = tmp_path / "rgb.tif"
    tifffile.imwrite(path, np.zeros((16, 16, 3), np.uint8), photometric="rgb")
    res = _cli("inspect", "--channel", "5", path)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.count("\n") == 1 and "rgb.tif: channel 5 is out of range" in res.stderr
