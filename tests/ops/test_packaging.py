"""Packaging (issue 15 item 9): the sdist is complete (its tests run from it), the wheel carries the license
metadata, the classifiers and URLs, and the samples ``bfxd sample`` prints after a pip install.

Built offline with the test extra's ``build`` and ``setuptools`` (``--no-isolation``), from a copy of the source
tree, so nothing is written into the checkout.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
pytest.importorskip("build")
_IGNORE = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.egg-info", "build", "dist", ".pytest_cache",
                                 ".ruff_cache", ".hypothesis")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Path, Path, Path]]:
    """(sdist, wheel, unpacked sdist), built once for the module."""
    work = tmp_path_factory.mktemp("pkg")
    source = work / "source"
    shutil.copytree(REPO, source, ignore=_IGNORE, symlinks=True)
    result = subprocess.run([sys.executable, "-m", "build", "--no-isolation", "--outdir", str(work / "dist"),
                             str(source)], capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    (sdist,) = (work / "dist").glob("bfxd-*.tar.gz")
    (wheel,) = (work / "dist").glob("bfxd-*.whl")
    with tarfile.open(sdist) as archive:
        archive.extractall(work / "unpacked", filter="data")
    (unpacked,) = (work / "unpacked").iterdir()
    yield sdist, wheel, unpacked


def test_sdist_holds_everything_the_tests_need(built: tuple[Path, Path, Path]) -> None:
    _sdist, _wheel, unpacked = built
    for name in ("LICENSE", "README.md", "Makefile", "pyproject.toml", "config/bfxd.toml", "systemd/bfxd.service",
                 "systemd/bfxd@.service", "systemd/bfxd.socket", "systemd/bfxd.service.d/socket-activation.conf",
                 "tests/conftest.py", "tests/frames/hb.json", "bench/__main__.py"):
        assert (unpacked / name).is_file(), name
    for name in ("bfxd.toml", "bfxd.service", "bfxd@.socket"):  # samples are files, not links, in the sdist
        sample = unpacked / "daemon" / "bfxd" / "samples" / name
        assert sample.is_file() and not sample.is_symlink()


def test_tests_run_from_the_sdist(built: tuple[Path, Path, Path]) -> None:
    """A slice of the suite, run inside the unpacked sdist against its own code (not this checkout's)."""
    _sdist, _wheel, unpacked = built
    env = {**os.environ, "PYTHONPATH": str(unpacked / "daemon")}
    result = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests/test_config.py",
                             "tests/ops/test_metrics.py", "tests/test_systemd_units.py", "-k", "not exposure"],
                            cwd=unpacked, env=env, capture_output=True, text=True, timeout=300, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout
    probe = subprocess.run([sys.executable, "-c", "import bfxd; print(bfxd.__file__)"], cwd=unpacked, env=env,
                           capture_output=True, text=True, check=True)
    assert probe.stdout.startswith(str(unpacked))


def test_wheel_metadata(built: tuple[Path, Path, Path]) -> None:
    _sdist, wheel, _unpacked = built
    with zipfile.ZipFile(wheel) as archive:
        metadata = next(archive.read(n).decode() for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        names = archive.namelist()
    assert "License-Expression: MIT" in metadata
    assert "License-File: LICENSE" in metadata
    assert "Classifier: Framework :: Trio" in metadata
    assert "Project-URL: Bitfinex WebSocket API, https://docs.bitfinex.com/docs/ws-general" in metadata
    assert any(n.endswith(".dist-info/licenses/LICENSE") for n in names)


def test_samples_come_with_a_pip_install(built: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _sdist, wheel, _unpacked = built
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index", "--target",
                    str(target), str(wheel)], check=True, capture_output=True, timeout=120)
    env = {**os.environ, "PYTHONPATH": str(target)}
    for name, source in (("bfxd.toml", "config/bfxd.toml"), ("bfxd.service", "systemd/bfxd.service"),
                         ("bfxd@.socket", "systemd/bfxd@.socket")):
        result = subprocess.run([sys.executable, "-m", "bfxd", "sample", name], env=env, cwd=tmp_path,
                                capture_output=True, text=True, timeout=60, check=True)
        assert result.stdout == (REPO / source).read_text()


def test_make_demo_installs_the_package_alone(tmp_path: Path) -> None:
    """`make demo` into a fresh venv: the package without the test or bench extras."""
    if shutil.which("make") is None:
        pytest.skip("make not installed")
    result = subprocess.run(["make", "-n", "-B", f"VENV={tmp_path / 'venv'}", "demo"], cwd=REPO, capture_output=True,
                            text=True, timeout=60, check=True)
    installs = [line for line in result.stdout.splitlines() if "pip install" in line and "-e" in line]
    assert installs == [f"{tmp_path / 'venv'}/bin/python -m pip install --quiet -e ."]
