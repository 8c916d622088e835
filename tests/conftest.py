"""Shared fixtures: structlog reset, short socket directories, the frame corpus."""

from __future__ import annotations

import json
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import structlog
import trio

FRAMES_DIR = Path(__file__).parent / "frames"


def load_frame_text(name: str) -> str:
    """One example frame from tests/frames (copied from the spec's frames/ folder), as wire text."""
    return (FRAMES_DIR / name).read_text().strip()


def load_frame(name: str) -> object:
    return json.loads(load_frame_text(name))


@pytest.fixture(autouse=True)
def _reset_structlog() -> Iterator[None]:
    # pytest-trio shares one context between fixtures and the test; start every test from a clean slate.
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()


@pytest.fixture
def socket_dir() -> Iterator[Path]:
    """A short private directory: AF_UNIX paths are limited to about 108 bytes, tmp_path can exceed that."""
    path = Path(tempfile.mkdtemp(prefix="bfxd-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


async def board_reaches(board: Any, predicate: Callable[[Any], bool], *, within: float = 30.0) -> None:
    """Wait until *predicate(board)* holds: bounded polling (the board's counters wake no one, by design).

    Works on the virtual clock too: each poll's sleep lets the autojump clock move on to the next event."""
    with trio.fail_after(within):
        while not predicate(board):  # noqa: ASYNC110 (polling is the point: nothing to wait on)
            await trio.sleep(0.005)
