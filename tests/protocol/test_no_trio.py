"""The protocol core stays sans-I/O: no Trio, no sockets, no clock, no randomness, no logging."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

import bfxd.protocol

PROTOCOL_DIR = Path(bfxd.protocol.__file__).parent
MODULES = sorted(PROTOCOL_DIR.glob("*.py"))

# What the core must never import (style.md §3.2/§3.3): I/O, clocks, randomness, logging.
FORBIDDEN = frozenset({
    "trio", "trio_websocket", "asyncio", "socket", "time", "datetime", "random", "secrets", "logging",
    "structlog",
})
# What it may import from bfxd itself: the leaf modules and its own package.
ALLOWED_BFXD = ("bfxd.errors", "bfxd.secret", "bfxd.protocol")


def imported_modules(source: str, package: str = "bfxd.protocol") -> set[str]:
    """The absolute names of the modules a source file of *package* imports, relative imports resolved."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names.add(".".join([*base, node.module] if node.module else base))
            else:
                names.add(node.module or "")
    return names


def test_importing_the_core_does_not_import_trio() -> None:
    """A fresh interpreter importing bfxd.protocol has no trio in sys.modules."""
    result = subprocess.run(
        [sys.executable, "-c", "import bfxd.protocol, sys; assert 'trio' not in sys.modules"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_the_subprocess_check_can_fail() -> None:
    """The same check fails when trio is imported, so a pass above means something."""
    result = subprocess.run(
        [sys.executable, "-c", "import trio, sys; assert 'trio' not in sys.modules"],
        capture_output=True,
        timeout=60,
    )
    assert result.returncode != 0


def test_all_modules_are_scanned() -> None:
    """The scan sees every module of the package."""
    names = {p.stem for p in MODULES}
    assert {"__init__", "offer", "events", "decode", "encode", "nonce", "book", "client_wire"} <= names


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_no_forbidden_imports(path: Path) -> None:
    """No protocol module imports Trio, sockets, a clock, randomness or logging."""
    top_level = {name.split(".")[0] for name in imported_modules(path.read_text())}
    assert not top_level & FORBIDDEN


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.name)
def test_bfxd_imports_stay_in_the_core(path: Path) -> None:
    """Protocol modules import from bfxd only errors, secret and the protocol package itself."""
    ours = {n for n in imported_modules(path.read_text()) if n.split(".")[0] == "bfxd"}
    assert {n for n in ours if not n.startswith(ALLOWED_BFXD)} == set()


@pytest.mark.parametrize(
    ("source", "found"),
    [
        ("import trio", {"trio"}),
        ("import time as t", {"time"}),
        ("from logging import getLogger", {"logging"}),
        ("def f():\n    import random\n", {"random"}),
        ("from structlog.stdlib import get_logger", {"structlog.stdlib"}),
        ("from . import offer", {"bfxd.protocol"}),
        ("from .offer import FundingOffer", {"bfxd.protocol.offer"}),
        ("from ..actors import account", {"bfxd.actors"}),
    ],
)
def test_import_scanner_finds_imports(source: str, found: set[str]) -> None:
    """The scanner sees plain, aliased, from- and nested imports, so the checks above can fail."""
    assert imported_modules(source) == found
