"""The plugin's tests: the shared tiny models (the repository's conftest.py), and a skip, or
a failure on CI, where there is no display for Qt."""

from __future__ import annotations

import os
from pathlib import Path

import pytest


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    """Skip a Qt test, saying what to install, before Qt aborts the whole run for want of a
    display (`make test` installs the packages where it can, and says so where it cannot);
    CI sets MICROVAE_REQUIRE_DISPLAY=1, which makes this a failure instead."""
    if "qapp" in item.fixturenames and not os.environ.get("DISPLAY"):
        why = (
            "no X display for napari's Qt viewer: pytest-xvfb starts one when Xvfb is "
            "installed (Debian: .ci/system-deps installs .ci/packages.txt), or set DISPLAY"
        )
        if os.environ.get("MICROVAE_REQUIRE_DISPLAY") == "1":
            pytest.fail(why, pytrace=False)
        pytest.skip(why)


@pytest.fixture
def errors(monkeypatch) -> list[str]:
    """Error notifications the widgets show, captured."""
    from napari_microvae import _reconstruct_widget, _widget_base

    seen: list[str] = []
    for module in (_reconstruct_widget, _widget_base):
        monkeypatch.setattr(module, "show_error", seen.append)
    return seen


@pytest.fixture(scope="session")
def model_path(tiny_model_path) -> Path:
    """The shared tiny ladder model (the repository's conftest.py)."""
    return tiny_model_path


@pytest.fixture(scope="session")
def deterministic_path(tiny_deterministic_path) -> Path:
    return tiny_deterministic_path


@pytest.fixture(scope="session")
def model3d_path(tiny_3d_model_path) -> Path:
    """The shared tiny 3D ladder (the repository's conftest.py)."""
    return tiny_3d_model_path


@pytest.fixture(scope="session", autouse=True)
def _models_before_viewers(tiny_model_path, tiny_deterministic_path, model3d_path) -> None:
    """Train the shared tiny models before any viewer opens, whatever tests are chosen:
    training imports Lightning, which pulls in triton, whose LLVM crashes (SIGSEGV) once
    Mesa's software OpenGL is loaded in the process."""
