"""The docs stay true: the site builds strictly, every module is on the architecture page, and
the README's examples run."""

from __future__ import annotations

import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from microvae.cli.main import main

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"


def _blocks(lang: str) -> list[str]:
    return re.findall(rf"```{lang}\n(.*?)```", README.read_text(), flags=re.S)


def test_the_docs_site_builds_strictly(tmp_path):
    mkdocs = shutil.which("mkdocs", path=str(Path(sys.executable).parent))
    if mkdocs is None:
        pytest.skip("mkdocs is not installed: pip install 'microvae[docs]'")
    p = subprocess.run(
        [mkdocs, "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert p.returncode == 0, p.stdout + p.stderr  # a broken link or reference fails
    assert (tmp_path / "site" / "api" / "index.html").read_text().count("process_stacks") > 1


def _architecture_sections() -> dict[str, str]:
    """The architecture page's module lists: folder ("" for the top level) -> its text."""
    page = (ROOT / "docs" / "architecture.md").read_text()
    sections = {}
    for part in re.split(r"^### ", page, flags=re.M)[1:]:
        head, _, body = part.partition("\n")
        m = re.match(r"`(\w+)/`", head)
        if m or head.startswith("Top level"):
            sections[m.group(1) if m else ""] = body
    return sections


def test_every_module_is_on_the_architecture_page_in_its_folder():
    sections = _architecture_sections()
    missing = []
    for path in sorted((ROOT / "microvae").rglob("*.py")):
        rel = path.relative_to(ROOT / "microvae")
        if rel.name == "__init__.py" and rel.parent != Path("."):
            continue
        folder = "" if rel.parent == Path(".") else rel.parts[0]
        if f"- `{rel.name}`:" not in sections.get(folder, ""):
            missing.append(str(rel))
    assert not missing, f"docs/architecture.md does not list: {missing}"
    listed = {
        (folder, name)
        for folder, body in sections.items()
        for name in re.findall(r"^- `(\w+\.py)`:", body, flags=re.M)
    }
    gone = [f"{f}/{n}" for f, n in listed if not (ROOT / "microvae" / f / n).is_file()]
    assert not gone, f"docs/architecture.md lists modules that do not exist: {gone}"


def test_the_readme_is_one_screen_then_links():
    lines = README.read_text().splitlines()
    assert len(lines) <= 200
    assert lines[3:5] == [
        "make demo    # set up .venv, train on synthetic mitochondria, write a side-by-side PNG "
        "(~2 min)",
        "make test    # set up .venv, then run the whole test suite (and build the docs, strictly)",
    ]
    for link in re.findall(r"\]\(((?:docs/)?[\w./-]+\.(?:md|png))\)", README.read_text()):
        assert (ROOT / link).is_file(), link


def test_the_readme_examples_run(tmp_path, monkeypatch, tiny_overrides, capsys):
    """The README's shell commands (the microvae ones) and Python example, run as written on
    small synthetic images, with training shortened to seconds (the tiny overrides)."""
    import microvae
    from microvae.synthetic import SynthParams, write_synthetic_set

    images = tmp_path / "my_images"
    write_synthetic_set(images, SynthParams(shape=(96, 96)), n=3, seed=0, progress=False)
    for gt in images.glob("*_gt.tif"):  # a user's folder holds the images alone
        gt.unlink()
    monkeypatch.chdir(tmp_path)
    commands = [
        shlex.split(line.split("#")[0])
        for block in _blocks("sh")
        for line in block.splitlines()
        if line.startswith("microvae ")
    ]
    assert [c[1] for c in commands] == ["train", "predict", "evaluate"]
    tiny = [a for s in tiny_overrides for a in ("--set", s)]
    for args in commands:
        extra = tiny if args[1] == "train" else ["--no-progress"]
        if args[1] == "evaluate":
            extra += ["--max-tiles", "16"]
        assert main(args[1:] + extra) == 0, args
    assert (tmp_path / "results" / "synth_000_recon.tif").is_file()
    assert (tmp_path / "evaluation" / "report.md").is_file()
    (python,) = _blocks("python")
    train = microvae.train
    monkeypatch.setattr(
        microvae,
        "train",
        lambda *a, **k: train(*a, **{**k, "overrides": tiny_overrides, "overwrite": True}),
        raising=False,
    )
    capsys.readouterr()
    exec(compile(python, "README.md", "exec"), {})
    assert "3 processed, 0 already complete (skipped), 0 failed" in capsys.readouterr().out
