"""OME-Zarr in and out: NGFF 0.4/0.5 read chunk by chunk, predict --format ome-zarr written
plane by plane and resumed, clear errors for damaged stores."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import zarr
from ome_zarr.format import FormatV04, FormatV05
from ome_zarr.writer import write_image as ome_write_image

from microvae.api import process_stacks
from microvae.errors import ImageReadError, ImageWriteError
from microvae.inference import TrainedModel, load_model
from microvae.io import ZarrPlaneWriter, open_image, read_image, write_image, zarr_progress
from microvae.synthetic import generate

AXES = [
    {"name": "z", "type": "space", "unit": "micrometer"},
    {"name": "y", "type": "space", "unit": "micrometer"},
    {"name": "x", "type": "space", "unit": "micrometer"},
]


def _ome(path: Path, data: np.ndarray, fmt, scale=(0.5, 0.1, 0.1), levels=(2,)) -> Path:
    """An OME-Zarr image written by ome-zarr-py itself (not by microvae), with a pyramid."""
    group = zarr.open_group(str(path), mode="w", zarr_format=3 if fmt.version == "0.5" else 2)
    ome_write_image(
        data,
        group,
        axes=AXES,
        fmt=fmt,
        scale=dict(zip("zyx", scale)),
        axes_units=dict.fromkeys("zyx", "micrometer"),
        scale_factors=levels,
        storage_options={"chunks": (1, *data.shape[1:])},
    )
    return path


@pytest.mark.parametrize("fmt", [FormatV04(), FormatV05()], ids=["ngff-0.4", "ngff-0.5"])
def test_reads_level_0_of_both_ngff_versions_plane_by_plane(tmp_path, fmt):
    data = generate(shape=(3, 48, 64), seed=1).image
    path = _ome(tmp_path / "img.ome.zarr", data, fmt)
    with open_image(path) as rec:
        assert (rec.axes, rec.shape, rec.dtype) == ("ZYX", data.shape, data.dtype)
        assert rec.pixel_size == pytest.approx({"Z": 0.5, "Y": 0.1, "X": 0.1})
        assert rec.unit == "um"
        planes = [p for _, p in rec.iter_planes()]
    np.testing.assert_array_equal(np.stack(planes), data)
    np.testing.assert_array_equal(read_image(path).data, data)


def _chunk_files(array_dir: Path) -> list[Path]:
    return sorted(
        p
        for p in array_dir.rglob("*")
        if p.is_file() and not p.name.startswith((".z", "zarr.json"))
    )


def test_a_damaged_chunk_fails_only_its_plane_and_names_it(tmp_path):
    data = generate(shape=(3, 48, 64), seed=1).image
    path = _ome(tmp_path / "img.ome.zarr", data, FormatV05())
    chunks = _chunk_files(path / "s0")
    assert len(chunks) == 3  # one chunk per plane
    chunks[2].write_bytes(b"not a chunk")
    with open_image(path) as rec:
        planes = rec.iter_planes()
        np.testing.assert_array_equal(next(planes)[1], data[0])  # read lazily: plane 0 is fine
        next(planes)
        with pytest.raises(ImageReadError, match=r"img.ome.zarr: cannot read plane \(2,\)"):
            next(planes)


@pytest.mark.parametrize("fmt", [FormatV04(), FormatV05()], ids=["ngff-0.4", "ngff-0.5"])
def test_a_missing_chunk_is_an_error_not_a_plane_of_zeros(tmp_path, fmt, tiny_model_path):
    data = generate(shape=(3, 48, 64), seed=1).image
    path = _ome(tmp_path / "img.ome.zarr", data, fmt)
    chunks = _chunk_files(path / "s0")
    assert len(chunks) == 3  # a chunk per plane
    key = chunks[1].relative_to(path).as_posix()
    chunks[1].unlink()  # lost in a copy: zarr alone reads the plane as its fill value, 0
    assert int(zarr.open_group(str(path))["s0"][1].max()) == 0
    with open_image(path) as rec:
        with pytest.raises(ImageReadError) as info:
            list(rec.iter_planes())
    assert str(info.value).startswith(f"img.ome.zarr: plane (1,) has no chunk {key} in the store")
    assert "--missing-chunks fill" in str(info.value)
    # predict fails the file with that line, and says nothing is processed from it
    out = tmp_path / "out"
    model = load_model(tiny_model_path)
    summary = process_stacks(model, path, out, progress=False)
    assert summary.results[0].status == "failed"
    assert f"plane (1,) has no chunk {key}" in summary.results[0].message
    assert not (out / "img_recon.tif").exists()
    # a writer that leaves chunks of only the fill value unwritten: asked for, it reads so
    filled = read_image(path, missing_chunks="fill").data
    assert filled[1].max() == 0 and np.array_equal(filled[[0, 2]], data[[0, 2]])
    again = process_stacks(model, path, out, progress=False, missing_chunks="fill")
    assert again.results[0].status == "done"


def test_missing_level_and_foreign_stores_are_named(tmp_path):
    data = generate(shape=(2, 32, 32), seed=1).image
    path = _ome(tmp_path / "img.ome.zarr", data, FormatV05())
    shutil.rmtree(path / "s0")
    with pytest.raises(ImageReadError, match="scale level 's0' .* missing"):
        open_image(path)
    plain = tmp_path / "plain.zarr"
    zarr.open_group(str(plain), mode="w").create_array("a", shape=(4, 4), dtype="u1")
    with pytest.raises(ImageReadError, match="plain.zarr: a Zarr store without OME-Zarr"):
        open_image(plain)


def test_plane_writer_resumes_and_never_counts_a_half_written_plane(tmp_path):
    data = generate(shape=(3, 32, 40), seed=2).image
    path = tmp_path / "out.ome.zarr"
    kw = {"shape": data.shape, "dtype": data.dtype, "axes": "ZYX", "pixel_size": {"X": 0.1}}
    w = ZarrPlaneWriter(path, **kw)
    w.write(0, data[0])
    # a kill while plane 1's chunk was being written: half its bytes there, no record of it
    first = _chunk_files(path / "0")[0]  # 0/c/0/0/0: plane 0's chunk
    half = first.parents[2] / "1" / "0" / "0"
    half.parent.mkdir(parents=True)
    half.write_bytes(first.read_bytes()[: first.stat().st_size // 2])
    assert zarr_progress(path) == (False, {0})
    w = ZarrPlaneWriter(path, **kw)  # resumed
    assert w.planes_done == {0}
    with pytest.raises(ImageWriteError, match="2 of 3 planes not written"):
        w.close()
    w.write(2, data[2])
    w.write(1, data[1])
    w.close()
    assert zarr_progress(path) == (True, {0, 1, 2})
    np.testing.assert_array_equal(read_image(path).data, data)
    with pytest.raises(ImageWriteError, match="already exists and is complete"):
        ZarrPlaneWriter(path, **kw)
    with pytest.raises(ImageWriteError, match="needs axes from TCZYX"):
        ZarrPlaneWriter(tmp_path / "q.ome.zarr", shape=(2, 8, 8), dtype="u1", axes="QYX")


def _stacks(folder: Path) -> None:
    folder.mkdir()
    px = {"Z": 0.2, "Y": 0.065, "X": 0.065}
    for i in range(2):
        write_image(
            folder / f"s{i}.tif",
            generate(shape=(4, 40, 52), seed=i).image,
            axes="ZYX",
            pixel_size=px,
        )


def test_predict_ome_zarr_equals_tiff_and_napari_opens_it(tmp_path, tiny_model_path):
    data = tmp_path / "in"
    _stacks(data)
    model = load_model(tiny_model_path)
    outputs = ["reconstruction", "error", "latents", "embedding"]
    tif = process_stacks(model, data, tmp_path / "tif", outputs=outputs, progress=False)
    oz = process_stacks(
        model, data, tmp_path / "zarr", outputs=outputs, format="ome-zarr", progress=False
    )
    assert not tif.failed and not oz.failed
    for stem in ("s0", "s1"):
        rec = read_image(tmp_path / "zarr" / f"{stem}_recon.ome.zarr")
        ref = read_image(tmp_path / "tif" / f"{stem}_recon.tif")
        np.testing.assert_array_equal(rec.data, ref.data)
        assert rec.axes == "ZYX" and rec.pixel_size == pytest.approx(ref.pixel_size)
        err = read_image(tmp_path / "zarr" / f"{stem}_error.ome.zarr").data
        np.testing.assert_array_equal(err, read_image(tmp_path / "tif" / f"{stem}_error.tif").data)
        for lv in range(model.vae.n_latent_levels):
            lat = read_image(tmp_path / "zarr" / f"{stem}_latents_level{lv}.ome.zarr")
            npy = np.load(tmp_path / "tif" / f"{stem}_latents_level{lv}.npy")  # (Z, C, h, w)
            assert lat.axes == "CZYX"  # NGFF's order: channel before space
            np.testing.assert_array_equal(np.moveaxis(lat.data, 0, 1), npy)
        a = np.load(tmp_path / "zarr" / f"{stem}_embedding.npz")["embedding"]
        np.testing.assert_array_equal(
            a, np.load(tmp_path / "tif" / f"{stem}_embedding.npz")["embedding"]
        )
    rows = list(csv.DictReader(open(tmp_path / "zarr" / "metrics.csv")))
    assert rows == list(csv.DictReader(open(tmp_path / "tif" / "metrics.csv")))
    # the outputs are inputs again (OME-Zarr in), and napari's OME-Zarr reader opens them
    again = process_stacks(
        model, tmp_path / "zarr" / "s0_recon.ome.zarr", tmp_path / "again", progress=False
    )
    assert not again.failed
    from napari_ome_zarr import napari_get_reader

    layers = napari_get_reader(str(tmp_path / "zarr" / "s0_recon.ome.zarr"))(
        str(tmp_path / "zarr" / "s0_recon.ome.zarr")
    )
    assert tuple(layers[0][0][0].shape) == (4, 40, 52)


def test_a_stopped_ome_zarr_run_continues_from_its_planes(tmp_path, tiny_model_path, monkeypatch):
    data = tmp_path / "in"
    _stacks(data)
    model = load_model(tiny_model_path)
    outputs = ["reconstruction", "error", "latents", "embedding"]
    clean = tmp_path / "clean"
    process_stacks(model, data, clean, outputs=outputs, format="ome-zarr", progress=False)
    calls = {"n": 0}
    original = TrainedModel.plane_steps

    def counting(self, *args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 7:  # the third plane of the second file
            raise KeyboardInterrupt
        return (yield from original(self, *args, **kwargs))

    monkeypatch.setattr(TrainedModel, "plane_steps", counting)
    out = tmp_path / "out"
    with pytest.raises(KeyboardInterrupt):
        process_stacks(model, data, out, outputs=outputs, format="ome-zarr", progress=False)
    assert zarr_progress(out / "s1_recon.ome.zarr") == (False, {0, 1})
    assert not (out / "s1_metrics.csv").exists()  # the file is not marked complete
    calls["n"] = -100  # no more interruptions
    summary = process_stacks(
        model, data, out, outputs=outputs, format="ome-zarr", resume=True, progress=False
    )
    assert [r.status for r in summary.results] == ["skipped", "done"]
    assert calls["n"] == -100 + 2  # only the two planes s1 did not hold
    for name in ("s1_recon.ome.zarr", "s1_error.ome.zarr", "s1_latents_level0.ome.zarr"):
        np.testing.assert_array_equal(read_image(out / name).data, read_image(clean / name).data)
    np.testing.assert_array_equal(
        np.load(out / "s1_embedding.npz")["embedding"],
        np.load(clean / "s1_embedding.npz")["embedding"],
    )
    assert (out / "s1_metrics.csv").read_text() == (clean / "s1_metrics.csv").read_text()
    assert not list(out.glob(".*.partial.jsonl"))  # the journals are gone once complete
    json.loads((out / "s1_recon.ome.zarr" / "zarr.json").read_text())  # valid metadata


def test_evaluate_takes_ome_zarr_images_and_their_ground_truth(tmp_path, tiny_model_path):
    from microvae.report.evaluate import evaluate

    s = generate(shape=(2, 96, 96), seed=6)
    for name, data in (("img", s.image), ("img_gt", s.ground_truth)):
        w = ZarrPlaneWriter(
            tmp_path / f"{name}.ome.zarr", shape=data.shape, dtype=data.dtype, axes="ZYX"
        )
        for k, plane in enumerate(data):
            w.write(k, plane)
        w.close()
    result = evaluate(
        load_model(tiny_model_path),
        tmp_path / "img.ome.zarr",
        tmp_path / "eval",
        gt="{stem}_gt.ome.zarr",
        max_tiles=8,
        progress=False,
    )
    assert result.files == ["img.ome.zarr"]  # the ground truth beside it is no input
    pairs = {(r["reference"], r["compared"]) for r in result.rows if r["file"] == "img.ome.zarr"}
    assert pairs == {
        ("input", "reconstruction"),
        ("ground truth", "reconstruction"),
        ("ground truth", "input"),
    }
    assert (tmp_path / "eval" / "report.md").is_file()


def test_a_plane_of_zeros_is_written_as_a_chunk_and_reads_back(tmp_path):
    # zarr 3 leaves chunks of only the fill value unwritten by default; microvae's writer
    # writes them, so that its own outputs never read as missing chunks
    w = ZarrPlaneWriter(tmp_path / "z.ome.zarr", shape=(2, 8, 8), dtype=np.uint8, axes="ZYX")
    w.write(0, np.zeros((8, 8), np.uint8))
    w.write(1, np.ones((8, 8), np.uint8))
    w.close()
    assert len(_chunk_files(tmp_path / "z.ome.zarr" / "0")) == 2
    np.testing.assert_array_equal(read_image(tmp_path / "z.ome.zarr").data[:, 0, 0], [0, 1])


def test_an_unfinished_output_is_flagged_by_inspect_info_and_readers(tmp_path, capsys):
    from microvae.cli.main import main
    from microvae.io import unfinished_output

    path = tmp_path / "s0_recon.ome.zarr"
    w = ZarrPlaneWriter(path, shape=(4, 8, 8), dtype=np.uint16, axes="ZYX")
    w.write(0, np.full((8, 8), 7, np.uint16))
    w.write(1, np.full((8, 8), 7, np.uint16))
    w.abort()  # a run stopped after 2 of 4 planes: the image lies under its final name
    note = unfinished_output(path)
    assert note.startswith("unfinished microvae output: 2 of 4 planes written")
    assert main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert f"  UNFINISHED  {note}" in out
    assert main(["inspect", "--json", str(path)]) == 0
    assert json.loads(capsys.readouterr().out)[0]["unfinished"] == note
    # given where a model goes, it is named for what it is
    assert main(["info", str(path)]) == 2
    assert (
        "an OME-Zarr image (a folder; unfinished microvae output: 2 of 4" in capsys.readouterr().err
    )
    # read as an input: the plane never written is an error that says why
    with pytest.raises(ImageReadError, match=r"plane \(2,\) was never written: unfinished"):
        read_image(path)
    # finished, it is an image like any other
    w = ZarrPlaneWriter(path, shape=(4, 8, 8), dtype=np.uint16, axes="ZYX")
    for k in (2, 3):
        w.write(k, np.full((8, 8), 7, np.uint16))
    w.close()
    assert unfinished_output(path) is None and read_image(path).data.min() == 7
