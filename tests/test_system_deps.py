"""`.ci/system-deps`, which `make test` and CI call for the napari tests' system packages:
one line saying what to install when it cannot, an error only when CI requires them."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "system-deps"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _run(tmp_path: Path, packages: list[str], *args: str) -> subprocess.CompletedProcess:
    listing = tmp_path / "packages.txt"
    listing.write_text("# a comment\n\n" + "".join(f"{p}\n" for p in packages))
    env = os.environ | {"SYSTEM_DEPS_LIST": str(listing)}
    return subprocess.run(
        ["bash", str(SCRIPT), "--check", *args], capture_output=True, text=True, env=env
    )


def test_a_missing_package_is_one_line_and_the_tests_go_on(tmp_path):
    done = _run(tmp_path, ["no-such-package-microvae"])
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    assert "apt-get install no-such-package-microvae" in lines[0]
    assert "the other tests run" in lines[0]


def test_ci_requires_every_package(tmp_path):
    done = _run(tmp_path, ["no-such-package-microvae"], "--require")
    assert done.returncode == 1
    assert "error:" in done.stderr and "no-such-package-microvae" in done.stderr


def test_nothing_missing_says_nothing(tmp_path):
    done = _run(tmp_path, [])
    assert done.returncode == 0 and done.stdout == "" and done.stderr == ""


def test_bad_arguments_and_list(tmp_path):
    assert _run(tmp_path, [], "--bogus").returncode == 2
    env = os.environ | {"SYSTEM_DEPS_LIST": str(tmp_path / "absent.txt")}
    done = subprocess.run(["bash", str(SCRIPT)], capture_output=True, text=True, env=env)
    assert done.returncode == 1 and "absent.txt" in done.stderr
