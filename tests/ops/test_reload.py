"""bfxd.reload and bfxd.signals: what a reload keeps and changes, and what SIGHUP does with and without a hook."""

from __future__ import annotations

import io
import os
import signal
from pathlib import Path

import attrs
import pytest
import structlog
import trio
from structlog.testing import capture_logs

from bfxd.config import Config, LogConfig, RequestsConfig, SocketConfig, load_config
from bfxd.errors import ConfigError
from bfxd.logconfig import configure_logging
from bfxd.reload import Reloader, changed_keys, follow_reloads, split_reload
from bfxd.signals import watch_signals
from bfxd.systemd import Notifier


def test_split_reload_keeps_what_only_a_restart_can_change() -> None:
    old = Config()
    new = Config(socket=SocketConfig(path=Path("/elsewhere.sock"), allowed_uids=(1000,)),
                 requests=RequestsConfig(timeout=3.0), log=LogConfig(format="console", level="debug"))
    effective, needs_restart = split_reload(old, new)
    assert needs_restart == ["socket.path", "log.format"]
    assert effective.socket == SocketConfig(allowed_uids=(1000,))  # path kept, uids taken
    assert effective.requests.timeout == 3.0
    assert effective.log == LogConfig(format="json", level="debug")
    assert changed_keys(old, effective) == ["socket.allowed_uids", "requests.timeout", "log.level"]


class Recorder:
    def __init__(self) -> None:
        self.sent: list[str] = []

    def __call__(self, *fields: str) -> bool:
        self.sent.append("\n".join(fields))
        return True


@pytest.fixture
def notifier(monkeypatch: pytest.MonkeyPatch) -> tuple[Notifier, Recorder]:
    recorder = Recorder()
    n = Notifier(env={})
    monkeypatch.setattr(n, "send", recorder)
    return n, recorder


def test_a_bad_file_is_refused_and_the_old_config_kept(notifier: tuple[Notifier, Recorder]) -> None:
    n, sent = notifier
    updates, reloads = trio.open_memory_channel[Config](4)

    def bad() -> Config:
        raise ConfigError("bfxd.toml: [exchange] heartbeat_timeout: expected …")

    reloader = Reloader(bad, Config(), n, updates)
    with capture_logs() as logs:
        reloader()
    assert sent.sent[0].startswith("RELOADING=1\nMONOTONIC_USEC=")
    assert sent.sent[1].startswith("READY=1\nSTATUS=reload refused: bfxd.toml: [exchange] heartbeat_timeout")
    assert [e["event"] for e in logs] == ["config.reloading", "config.reload_failed"]
    assert reloader.current == Config()
    with pytest.raises(trio.WouldBlock):
        reloads.receive_nowait()


def test_a_good_file_is_handed_over_and_the_level_applied(notifier: tuple[Notifier, Recorder], tmp_path: Path
                                                          ) -> None:
    n, sent = notifier
    path = tmp_path / "bfxd.toml"
    path.write_text('[log]\nlevel = "error"\n[requests]\ntimeout = 2.0\n')
    updates, reloads = trio.open_memory_channel[Config](4)
    stream = io.StringIO()
    configure_logging(fmt="json", level="info", stream=stream, cache=False)
    reloader = Reloader(lambda: load_config(path, env={}), Config(), n, updates)
    reloader()
    new = reloads.receive_nowait()
    assert (new.requests.timeout, new.log.level) == (2.0, "error")
    assert reloader.current == new
    assert sent.sent == [sent.sent[0]]  # RELOADING=1 only: READY=1 is the daemon's, once it has applied
    structlog.get_logger().warning("should.be.filtered")
    structlog.get_logger().error("should.pass")
    out = stream.getvalue()
    assert '"config.reloaded"' in out and "should.pass" in out and "should.be.filtered" not in out


async def test_follow_reloads_applies_then_says_ready(notifier: tuple[Notifier, Recorder]) -> None:
    n, sent = notifier
    updates, reloads = trio.open_memory_channel[Config](4)
    applied: list[Config] = []

    async def apply(config: Config) -> None:
        applied.append(config)

    new = attrs.evolve(Config(), requests=RequestsConfig(timeout=1.0))
    updates.send_nowait(new)
    updates.close()
    await follow_reloads(reloads, apply, n, lambda: "ready, 3 offers")
    assert applied == [new]
    assert sent.sent == ["READY=1\nSTATUS=ready, 3 offers"]


async def test_sighup_calls_the_hook_and_does_not_stop() -> None:
    stop, called = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(lambda task_status: watch_signals(stop, reload=called.set, task_status=task_status))
        os.kill(os.getpid(), signal.SIGHUP)
        with trio.fail_after(5):
            await called.wait()
        assert not stop.is_set()
        os.kill(os.getpid(), signal.SIGTERM)
        with trio.fail_after(5):
            await stop.wait()


async def test_sighup_without_a_hook_stops_cleanly() -> None:
    """bfxd demo: a closed terminal (SIGHUP) stops the demo like Ctrl-C, so its temporary files go."""
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        await nursery.start(watch_signals, stop)
        os.kill(os.getpid(), signal.SIGHUP)
        with trio.fail_after(5):
            await stop.wait()

