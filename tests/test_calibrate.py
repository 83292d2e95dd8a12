"""``microvae calibrate``: the fitted scale stored in the model file and applied to the
posterior's spread, the report before and after, and the refusals (no noise to measure, no
posterior spread, a dry run storing nothing)."""

from __future__ import annotations

import json
import shutil
import zipfile

import numpy as np
import pytest
import tifffile

from microvae.batch.provenance import model_digest
from microvae.cli.main import main
from microvae.errors import MicrovaeError
from microvae.inference import load_model
from microvae.report import calibrate


@pytest.fixture
def model_copy(tiny_model_path, tmp_path):
    path = tmp_path / "model.pt"
    shutil.copy(tiny_model_path, path)
    return path


def _images(synth_data):
    return sorted(p for p in synth_data.glob("synth_*.tif") if not p.stem.endswith("_gt"))


def test_calibrate_stores_the_scale_and_the_model_applies_it(model_copy, synth_data):
    digest = model_digest(load_model(model_copy))
    report = calibrate(load_model(model_copy), _images(synth_data), samples=4, planes=1)
    assert len(report.images) == 3 and report.before.fractions == (0.25, 0.35, 0.5)
    assert report.scale == pytest.approx(np.sqrt(report.before.slope))
    assert np.isfinite(report.after.slope) and report.after.scale > 0
    model = load_model(model_copy)  # read back from the file
    assert model.spread_scale == pytest.approx(report.scale)
    # what the model computes changed (its std): a resumed predict must not mix the two
    assert model_digest(model) != digest
    assert model.calibration["after"]["slope"] == pytest.approx(report.after.slope)
    image = tifffile.imread(_images(synth_data)[0])
    kw = dict(samples=4, seed=1, quantiles=(0.1, 0.9))
    own = model.posterior(image, calibrated=False, **kw)
    cal = model.posterior(image, **kw)
    assert np.array_equal(cal.mmse, own.mmse)
    np.testing.assert_allclose(cal.std, own.std * report.scale, rtol=1e-5, atol=1e-6)
    # the quantiles move away from the mean by the same factor
    width_own, width_cal = own.quantiles[1] - own.quantiles[0], cal.quantiles[1] - cal.quantiles[0]
    np.testing.assert_allclose(width_cal, width_own * report.scale, rtol=1e-4, atol=1e-3)


def test_images_without_noise_are_refused_and_nothing_is_stored(model_copy, tmp_path):
    flat = tmp_path / "flat.tif"
    tifffile.imwrite(flat, np.full((96, 96), 900, np.uint16))
    before = model_copy.read_bytes()
    with pytest.raises(MicrovaeError, match="flat.tif.*no noise to calibrate on"):
        calibrate(load_model(model_copy), [flat], samples=3)
    assert model_copy.read_bytes() == before


def test_a_model_without_posterior_spread_is_refused(tiny_deterministic_path, synth_data):
    with pytest.raises(MicrovaeError, match="no posterior spread"):
        calibrate(load_model(tiny_deterministic_path), _images(synth_data), samples=3)


def test_cli_dry_run_reports_and_stores_nothing(model_copy, synth_data, tmp_path, capsys):
    before = model_copy.read_bytes()
    out = tmp_path / "calibration.json"
    image = str(_images(synth_data)[0])
    args = ["calibrate", str(model_copy), image, "--samples", "3", "--dry-run", "--json", str(out)]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "before" in text and "after" in text and "dry run: nothing stored" in text
    assert model_copy.read_bytes() == before
    report = json.loads(out.read_text())
    assert len(report["before"]["slopes"]) == 3 and report["stored"] is False
    with pytest.raises(SystemExit):
        main(["calibrate", str(model_copy), image, "--samples", "1"])


def test_a_3d_model_calibrates_on_each_file_s_first_volume(tiny_3d_model_path, tmp_path):
    import microvae
    from microvae.synthetic import generate

    stack = generate(shape=(16, 64, 64), seed=7, z_step_um=0.2, pixel_size_um=0.05).image
    path = tmp_path / "stack.tif"
    microvae.write_image(path, np.stack([stack, stack]), axes="TZYX")
    model = load_model(tiny_3d_model_path)
    report = calibrate(model, [path], samples=3, store=False)
    assert report.images == ["stack.tif[0]"] and report.stored is None
    assert all(np.isfinite(c.slope) for c in report.before.curves)
    assert model.spread_scale == 1.0  # a dry run changes nothing


def test_a_bioimageio_package_is_refused_before_any_work(tmp_path):
    from microvae.config import ModelFileError, check_changeable, write_calibration

    package = tmp_path / "exported.zip"
    with zipfile.ZipFile(package, "w") as z:
        z.writestr("rdf.yaml", "type: model\n")
    for call in (lambda: check_changeable(package), lambda: write_calibration(package, {})):
        with pytest.raises(ModelFileError, match="calibrate the model.pt it was exported from"):
            call()
