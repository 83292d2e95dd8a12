"""bioimage.io packages: exported from a model file, passing bioimageio.core's model test, and
loaded back by microvae as the model they came from."""

from __future__ import annotations

import io
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import yaml

import microvae
from microvae import latent
from microvae.config import ModelFileError
from microvae.export import BioimageioError, export_bioimageio
from microvae.synthetic import generate


@pytest.fixture(scope="module")
def package(tmp_path_factory, tiny_model_path):
    out = tmp_path_factory.mktemp("bioimageio") / "tiny.zip"
    model = microvae.load_model(tiny_model_path)
    image = generate(shape=(96, 96), seed=11).image
    export_bioimageio(model, out, image=image, authors=["A. Tester"])
    return out


def test_package_passes_the_bioimageio_model_test(package):
    from bioimageio.core import test_model

    summary = test_model(package)
    failed = [d.name for d in summary.details if d.status != "passed"]
    assert summary.status == "passed", failed
    names = " ".join(d.name for d in summary.details)
    assert "Reproduce test outputs" in names  # the test tensors were run, not only parsed


def test_package_holds_what_the_spec_asks(package):
    with zipfile.ZipFile(package) as z:
        names = set(z.namelist())
        rdf = yaml.safe_load(z.read("rdf.yaml"))
    assert {"rdf.yaml", "weights.pt", "test_input.npy", "test_output.npy", "cover.png"} <= names
    assert rdf["format_version"].startswith("0.5") and rdf["type"] == "model"
    weights = rdf["weights"]["pytorch_state_dict"]
    assert weights["architecture"]["import_from"] == "microvae.model.exported"
    # (the packager adds dtype conversions around them)
    pre = [p["id"] for p in rdf["inputs"][0]["preprocessing"] if p["id"] != "ensure_dtype"]
    post = [p["id"] for p in rdf["outputs"][0]["postprocessing"] if p["id"] != "ensure_dtype"]
    assert pre == ["scale_linear"] and post == ["scale_linear", "clip"]
    assert rdf["authors"] == [{"name": "A. Tester"}]


def test_the_preprocessing_is_the_models_normalisation(package, tiny_model_path):
    """The package's scale_linear maps raw intensities as microvae's Normalisation does."""
    with zipfile.ZipFile(package) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
    kw = next(p for p in rdf["inputs"][0]["preprocessing"] if p["id"] == "scale_linear")
    kw = kw["kwargs"]
    model = microvae.load_model(tiny_model_path)
    raw = np.array([0, 7, 100, 2000, 4095], np.uint16)
    np.testing.assert_allclose(
        raw * kw["gain"] + kw["offset"], model.normalisation.to_model(raw), atol=1e-6
    )
    back = next(p for p in rdf["outputs"][0]["postprocessing"] if p["id"] == "scale_linear")
    back = back["kwargs"]
    x = model.normalisation.to_model(raw)
    np.testing.assert_allclose(x * back["gain"] + back["offset"], raw, atol=1e-3)


def test_load_model_reads_the_package_as_the_model_it_came_from(package, tiny_model_path):
    original = microvae.load_model(tiny_model_path)
    loaded = microvae.load_model(package)
    image = generate(shape=(64, 80), seed=12).image
    np.testing.assert_array_equal(loaded.reconstruct(image), original.reconstruct(image))
    assert loaded.config == original.config
    assert loaded.normalisation == original.normalisation
    assert loaded.summary["steps"] == original.summary["steps"]
    # the fitted top-level prior came too: the same samples
    np.testing.assert_array_equal(
        latent.samples(loaded, 2, seed=3), latent.samples(original, 2, seed=3)
    )


def test_cli_export_and_info(tmp_path, tiny_model_path):
    out = tmp_path / "cli.zip"
    cli = [sys.executable, "-m", "microvae.cli.main"]
    done = subprocess.run(
        cli + ["export", str(tiny_model_path), "--bioimageio", str(out)],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert out.is_file() and "bioimageio test" in done.stdout
    info = subprocess.run(cli + ["info", str(out)], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr[-2000:]
    assert "ladder" in info.stdout
    bad = subprocess.run(
        cli + ["export", str(tiny_model_path), "--bioimageio", str(tmp_path / "x.tar")],
        capture_output=True,
        text=True,
    )
    assert bad.returncode == 2 and "x.tar" in bad.stderr and ".zip" in bad.stderr


def test_foreign_and_damaged_packages_are_refused(tmp_path, package):
    foreign = tmp_path / "foreign.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(foreign, "w") as dst:
        for name in src.namelist():
            data = src.read(name)
            if name == "rdf.yaml":
                rdf = yaml.safe_load(data)
                del rdf["config"]
                data = yaml.safe_dump(rdf).encode()
            dst.writestr(name, data)
    with pytest.raises(ModelFileError, match="not one microvae exported"):
        microvae.load_model(foreign)
    damaged = tmp_path / "damaged.zip"
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(damaged, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, b"garbage" if name == "weights.pt" else src.read(name))
    with pytest.raises(ModelFileError, match="weights.pt"):
        microvae.load_model(damaged)


def _rewrite(package, out, change) -> None:
    """A copy of ``package`` with ``change(name, data) -> data`` applied to every file."""
    with zipfile.ZipFile(package) as src, zipfile.ZipFile(out, "w") as dst:
        for name in src.namelist():
            dst.writestr(name, change(name, src.read(name)))


def test_a_file_altered_after_export_is_named_by_its_sha256(tmp_path, package):
    import torch

    # weights that still load (weights_only), one value changed: caught by the sha256 alone
    def alter(name, data):
        if name != "weights.pt":
            return data
        state = torch.load(io.BytesIO(data), weights_only=True)
        key = next(k for k, v in state.items() if v.is_floating_point())
        state[key] = state[key] + 1.0
        buf = io.BytesIO()
        torch.save(state, buf)
        return buf.getvalue()

    _rewrite(package, tmp_path / "altered.zip", alter)
    with pytest.raises(ModelFileError) as info:
        microvae.load_model(tmp_path / "altered.zip")
    assert str(info.value).startswith("altered.zip: weights.pt does not match its sha256")
    # any file the rdf lists is checked, not only the weights
    _rewrite(package, tmp_path / "cover.zip", lambda n, d: d + b"x" if n == "cover.png" else d)
    with pytest.raises(ModelFileError, match="cover.png does not match its sha256"):
        microvae.load_model(tmp_path / "cover.zip")


@pytest.mark.parametrize("where", ["absolute", "parent", "link", "url"])
def test_an_unzipped_package_may_not_point_outside_itself(tmp_path, package, where):
    folder = tmp_path / "pkg"
    with zipfile.ZipFile(package) as z:
        z.extractall(folder)
    outside = tmp_path / "elsewhere.pt"
    outside.write_bytes((folder / "weights.pt").read_bytes())
    rdf = yaml.safe_load((folder / "rdf.yaml").read_text())
    source = {
        "absolute": str(outside),
        "parent": "../elsewhere.pt",
        "link": "linked.pt",
        "url": "https://example.org/weights.pt",
    }[where]
    if where == "link":
        (folder / "linked.pt").symlink_to(outside)
    rdf["weights"]["pytorch_state_dict"]["source"] = source
    (folder / "rdf.yaml").write_text(yaml.safe_dump(rdf))
    with pytest.raises(ModelFileError) as info:
        microvae.load_model(folder)
    assert str(info.value) == (
        f"pkg: rdf.yaml names {source!r}, outside the package; refused (a package's files lie "
        "inside it; export the model again)"
    )
    # the folder as exported loads
    (folder / "rdf.yaml").write_text(
        yaml.safe_dump(
            {**rdf, "weights": yaml.safe_load(zipfile.ZipFile(package).read("rdf.yaml"))["weights"]}
        )
    )
    assert microvae.load_model(folder).config == microvae.load_model(package).config


def test_export_refuses_an_image_smaller_than_a_tile(tmp_path, tiny_model_path):
    model = microvae.load_model(tiny_model_path)
    with pytest.raises(BioimageioError, match="smaller than the model's tile"):
        export_bioimageio(model, tmp_path / "x.zip", image=np.zeros((16, 16), np.uint16))
    assert not list(tmp_path.iterdir())  # nothing half-written


def test_a_3d_model_exports_with_zyx_axes_and_loads_back(tmp_path, tiny_3d_model_path):
    """A 3D model's package: b, c, z, y, x axes sized by its tile and strides, a test volume
    that bioimageio.core's model test reproduces, and load_model reading it back."""
    from bioimageio.core import test_model

    original = microvae.load_model(tiny_3d_model_path)
    stack = generate(shape=(16, 64, 64), seed=5, z_step_um=0.2, pixel_size_um=0.05).image
    out = export_bioimageio(original, tmp_path / "tiny3d.zip", image=stack)
    with zipfile.ZipFile(out) as z:
        rdf = yaml.safe_load(z.read("rdf.yaml"))
        test_input = np.load(io.BytesIO(z.read("test_input.npy")))
    axes = rdf["inputs"][0]["axes"]
    assert [a.get("id", a["type"]) for a in axes] == ["batch", "channel", "z", "y", "x"]
    depth, side = original.config.data.tile_depth, original.config.data.tile_size
    z_step = int(np.prod(original.config.model.strides_z()))
    assert axes[2]["size"] == {"min": depth, "step": z_step}
    assert axes[3]["size"] == {"min": side, "step": 2**original.config.model.levels}
    assert test_input.shape == (1, 1, depth, side, side) and "3d" in rdf["tags"]
    summary = test_model(out)
    assert summary.status == "passed", [d.name for d in summary.details if d.status != "passed"]
    loaded = microvae.load_model(out)
    assert loaded.dims == 3 and loaded.config == original.config
    np.testing.assert_array_equal(
        loaded.reconstruct(stack, "ZYX"), original.reconstruct(stack, "ZYX")
    )
    with pytest.raises(BioimageioError, match=r"\(4 x 64 x 64\) is smaller .* \(8 x 32 x 32\)"):
        export_bioimageio(original, tmp_path / "thin.zip", image=stack[:4])
