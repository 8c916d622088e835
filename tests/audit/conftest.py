"""Logs written by the real sink with the audit trail on, for verify and show to read."""

from __future__ import annotations

import io
import logging
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import structlog

from bfxd.logconfig import STDLIB_LOGGERS, AuditSettings, close_audit_trail, configure_logging


@pytest.fixture(autouse=True)
def restore_stdlib_loggers() -> Iterator[None]:
    saved = {name: (list(lg.handlers), lg.level, lg.propagate)
             for name, lg in ((n, logging.getLogger(n)) for n in STDLIB_LOGGERS)}
    yield
    close_audit_trail()
    structlog.reset_defaults()
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


Run = Callable[..., None]


@pytest.fixture
def audit_log(tmp_path: Path) -> tuple[io.StringIO, Path, Callable[[Callable[[], None]], None]]:
    """(stream, anchor file, run): ``run(body)`` is one daemon start: a fresh run of the trail on the same stream
    and anchor file, *body* logging into it, then the exit (``audit.closed``)."""
    stream = io.StringIO()
    anchors = tmp_path / "anchors.jsonl"

    def run(body: Callable[[], None], *, anchor: bool = True, close: bool = True, interval: float = 300.0) -> None:
        configure_logging(fmt="json", level="info", stream=stream, cache=False,
                          audit=AuditSettings(anchor_file=anchors if anchor else None, checkpoint_interval=interval))
        body()
        if close:
            close_audit_trail()

    return stream, anchors, run


def some_work(n: int = 5) -> Callable[[], None]:
    def body() -> None:
        log = structlog.get_logger()
        for i in range(n):
            log.info("command.received", request_id=f"1.{i}", op="cancel", offer_id=1000 + i)
        logging.getLogger("trio").warning("from the stdlib bridge")
        log.warning("exchange.disconnected", reason="test")

    return body
