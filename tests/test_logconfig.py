"""bfxd.logconfig: JSON lines (timestamp/level/event), redaction, no locals in tracebacks, stdlib bridge."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import structlog
import trio
from structlog.testing import capture_logs

from bfxd.logconfig import STDLIB_LOGGERS, batched_log_writes, configure_logging, redact_secrets
from bfxd.secret import Secret

SECRET_VALUE = "s3cretVALUExyz789"


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    """Each test gets pristine structlog and stdlib logger state back afterwards."""
    saved = {
        name: (list(lg.handlers), lg.level, lg.propagate)
        for name, lg in ((n, logging.getLogger(n)) for n in STDLIB_LOGGERS)
    }
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    yield
    structlog.reset_defaults()
    structlog.contextvars.clear_contextvars()
    for name, (handlers, level, propagate) in saved.items():
        logger = logging.getLogger(name)
        logger.handlers[:] = handlers
        logger.setLevel(level)
        logger.propagate = propagate


def json_lines(stream: io.StringIO) -> list[dict]:
    text = stream.getvalue()
    assert text.endswith("\n")
    return [json.loads(line) for line in text.splitlines()]


def configured(fmt: str = "json", level: str = "info") -> io.StringIO:
    stream = io.StringIO()
    configure_logging(fmt=fmt, level=level, stream=stream, cache=False)
    return stream


class TestJson:
    def test_one_object_per_line_with_timestamp_level_event(self) -> None:
        """Each event is one JSON object per line carrying a UTC ISO timestamp, level and event."""
        stream = configured()
        log = structlog.get_logger()
        log.info("daemon.ready", socket="/run/bfxd/bfxd.sock")
        log.warning("loop.lag", lag_s=1.5)
        first, second = json_lines(stream)
        assert first["event"] == "daemon.ready" and first["level"] == "info"
        assert first["socket"] == "/run/bfxd/bfxd.sock"
        assert second["level"] == "warning" and second["lag_s"] == 1.5
        stamp = datetime.fromisoformat(first["timestamp"].replace("Z", "+00:00"))
        assert stamp.utcoffset() == timedelta(0)
        assert abs(datetime.now(UTC) - stamp) < timedelta(minutes=5)

    def test_values_the_fast_encoder_refuses_still_render(self) -> None:
        """Integers beyond 64 bits (an exchange frame may carry one), non-string keys and odd objects render."""
        stream = configured()
        structlog.get_logger().info("offer.new", offer_id=2**70, by_id={7: "x"}, thing=object())
        (line,) = json_lines(stream)
        assert line["offer_id"] == 2**70
        assert line["by_id"] == {"7": "x"}
        assert line["thing"].startswith("<object object")

    def test_level_filters(self) -> None:
        """Events below the configured level are not written."""
        stream = configured(level="warning")
        structlog.get_logger().info("hidden")
        structlog.get_logger().error("shown")
        assert [line["event"] for line in json_lines(stream)] == ["shown"]

    def test_context_vars_are_merged(self) -> None:
        """Context bound with bound_contextvars appears on every line."""
        stream = configured()
        with structlog.contextvars.bound_contextvars(conn=7, ref="a"):
            structlog.get_logger().info("command.received")
        (line,) = json_lines(stream)
        assert (line["conn"], line["ref"]) == (7, "a")

    def test_unknown_format_is_refused(self) -> None:
        """A format other than json/console raises ValueError."""
        with pytest.raises(ValueError, match="xml"):
            configure_logging(fmt="xml", level="info", stream=io.StringIO(), cache=False)


class TestRedaction:
    def test_secrets_never_reach_the_json_output(self) -> None:
        """Secret values (bound, passed, nested, in context) and secret-named keys become "[redacted]"."""
        stream = configured()
        secret = Secret(SECRET_VALUE)
        log = structlog.get_logger().bind(key=secret)
        with structlog.contextvars.bound_contextvars(ctx_secret=secret):
            log.info(
                "auth.sent",
                api_secret=SECRET_VALUE,
                api_key=SECRET_VALUE,
                authSig=SECRET_VALUE,
                authPayload=SECRET_VALUE,
                signature=SECRET_VALUE,
                secret=SECRET_VALUE,
                nested={"frame": [secret], "signature": SECRET_VALUE},
                key_fp=secret.fingerprint(),
            )
        assert SECRET_VALUE not in stream.getvalue()
        (line,) = json_lines(stream)
        for name in (
            "key",
            "ctx_secret",
            "api_secret",
            "api_key",
            "authSig",
            "authPayload",
            "signature",
            "secret",
        ):
            assert line[name] == "[redacted]", name
        assert line["nested"] == {"frame": ["[redacted]"], "signature": "[redacted]"}
        assert line["key_fp"] == secret.fingerprint()  # the fingerprint is what logs may carry

    @pytest.mark.parametrize("depth", [0, 1, 2, 3])
    def test_a_secret_deep_in_plain_containers_is_found(self, depth: int) -> None:
        """The no-copy check must find a Secret or a secret-named key wherever the copying scrub finds one
        (containers are scanned four levels deep; a Secret is found at the fifth too)."""
        for leaf in ({"signature": SECRET_VALUE}, [Secret(SECRET_VALUE)], (1, Secret(SECRET_VALUE))):
            value: object = leaf
            for _ in range(depth):
                value = [1, "a", None, {"x": 1.5}, value]
            (line,) = [redact_secrets(None, "info", {"event": "e", "frame": value})]
            assert SECRET_VALUE not in repr(line), (depth, leaf)

    def test_plain_values_are_left_as_they_are(self) -> None:
        """Nothing to hide: the nested values are passed on as they are, not copied."""
        nested = {"offer": {"id": 1, "amount": 1.5, "rows": [[1, "fUSD", None, True]]}}
        event = redact_secrets(None, "info", {"event": "e", **nested})
        assert event["offer"] is nested["offer"]

    @pytest.mark.parametrize(("now", "expected"), [
        (1_796_000_000.0, "2026-11-30T00:53:20.000000Z"),
        (1_796_000_000.000001, "2026-11-30T00:53:20.000001Z"),
        (1_796_000_059.999999, "2026-11-30T00:54:19.999999Z")])
    def test_timestamps_keep_microseconds_across_seconds(self, now: float, expected: str,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
        """The date and time of day are formatted once a second; the microseconds every line."""
        stream = configured()
        for at in (now - 1.5, now):  # the second before, then the one asked: the cached prefix must move
            monkeypatch.setattr("bfxd.logconfig.time.time", lambda at=at: at)
            structlog.get_logger().info("tick")
        stamp = json_lines(stream)[-1]["timestamp"]
        assert stamp == expected
        assert datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() == pytest.approx(now, abs=1e-6)

    def test_redact_secrets_processor_under_capture_logs(self) -> None:
        """redact_secrets works inside capture_logs(processors=[...]), the pattern leak tests use."""
        with capture_logs(processors=[redact_secrets]) as logs:
            structlog.get_logger().info("x", api_secret=SECRET_VALUE, value=Secret(SECRET_VALUE), user_id=1)
        assert logs == [
            {
                "event": "x",
                "log_level": "info",
                "api_secret": "[redacted]",
                "value": "[redacted]",
                "user_id": 1,
            }
        ]

    def test_tracebacks_carry_no_locals(self) -> None:
        """A logged exception is structured data with frames but without frame locals (which hold secrets)."""
        stream = configured()

        def sign(secret_text: str) -> None:
            derived = secret_text[::-1]
            raise RuntimeError(f"signing failed ({len(derived)} bytes)")

        try:
            sign(SECRET_VALUE)
        except RuntimeError:
            structlog.get_logger().exception("auth.crashed")
        output = stream.getvalue()
        assert SECRET_VALUE not in output and SECRET_VALUE[::-1] not in output
        (line,) = json_lines(stream)
        (exc,) = line["exception"]
        assert exc["exc_type"] == "RuntimeError"
        assert [frame["name"] for frame in exc["frames"]][-1] == "sign"
        assert all("locals" not in frame for frame in exc["frames"])

    def test_console_format_redacts_and_hides_locals(self) -> None:
        """The console renderer is human text, with the same redaction and no locals in tracebacks."""
        stream = configured(fmt="console")

        def sign(secret_text: str) -> None:
            raise RuntimeError("boom")

        try:
            sign(SECRET_VALUE)
        except RuntimeError:
            structlog.get_logger().exception("auth.crashed", api_secret=SECRET_VALUE, key=Secret(SECRET_VALUE))
        output = stream.getvalue()
        assert "auth.crashed" in output and "RuntimeError: boom" in output
        assert SECRET_VALUE not in output
        assert not output.startswith("{")


class TestStdlibBridge:
    def test_trio_warnings_are_json_lines_on_the_same_stream(self) -> None:
        """trio/trio-websocket records at WARNING+ are rendered as JSON on the stream; INFO is dropped."""
        stream = configured()
        logging.getLogger("trio.serve_listeners").warning("accept returned %s", "EMFILE")
        logging.getLogger("trio-websocket").info("noise")
        logging.getLogger("trio-websocket").error("closed")
        first, second = json_lines(stream)
        assert first["event"] == "accept returned EMFILE"
        assert first["level"] == "warning" and first["logger"] == "trio.serve_listeners"
        assert "timestamp" in first
        assert second["event"] == "closed" and second["logger"] == "trio-websocket"

    def test_stdlib_exceptions_have_no_locals(self) -> None:
        """A stdlib exception record is rendered with structured frames and no locals."""
        stream = configured()

        def fail(secret_text: str) -> None:
            raise OSError("accept failed")

        try:
            fail(SECRET_VALUE)
        except OSError:
            logging.getLogger("trio.serve_listeners").exception("accept error")
        assert SECRET_VALUE not in stream.getvalue()
        (line,) = json_lines(stream)
        assert line["exception"][0]["exc_type"] == "OSError"

    def test_configuring_twice_does_not_stack_handlers(self) -> None:
        """A second configure_logging replaces the bridge: one record gives one line, on the new stream."""
        old = configured()
        new = configured()
        logging.getLogger("trio").warning("once")
        assert old.getvalue() == ""
        assert [line["event"] for line in json_lines(new)] == ["once"]


class TestBatchedWrites:
    """Inside batched_log_writes, lines wait for trio to have nothing to do, then go out in one write."""

    @staticmethod
    def setup(**options: float) -> tuple[io.StringIO, list[str]]:
        stream = io.StringIO()
        writes: list[str] = []
        original = stream.write

        def write(data: str) -> int:
            writes.append(data)
            return original(data)

        stream.write = write  # type: ignore[method-assign]
        configure_logging(fmt="json", level="info", stream=stream, cache=False)
        return stream, writes

    def test_lines_are_written_through_outside(self) -> None:
        stream, writes = self.setup()
        log = structlog.get_logger()
        log.info("one")
        log.info("two")
        assert [e["event"] for e in json_lines(stream)] == ["one", "two"]
        assert len(writes) == 2

    async def test_lines_wait_until_trio_waits_for_io(self) -> None:
        stream, writes = self.setup()
        log = structlog.get_logger()
        with batched_log_writes():
            log.info("one")
            log.info("two")
            logging.getLogger("trio").warning("from the stdlib")
            await trio.lowlevel.checkpoint()  # but no wait for I/O: still gathered
            assert writes == []
            await trio.sleep(0.001)  # trio sleeps in epoll: written first, in one write, in order
            assert [e["event"] for e in json_lines(stream)] == ["one", "two", "from the stdlib"]
            assert len(writes) == 1
            log.info("three")
        assert [e["event"] for e in json_lines(stream)][-1] == "three"  # written on the way out

    async def test_old_lines_are_written_under_load(self) -> None:
        """A loop that never sleeps still writes: lines older than max_delay go out at the next I/O check."""
        stream, _writes = self.setup()
        with batched_log_writes(max_delay=0.0):
            structlog.get_logger().info("busy")
            await trio.lowlevel.checkpoint()
            assert [e["event"] for e in json_lines(stream)] == ["busy"]

    async def test_a_full_batch_is_written_at_once(self) -> None:
        stream, _writes = self.setup()
        with batched_log_writes(max_bytes=10):
            structlog.get_logger().info("long enough to fill the batch")
            assert [e["event"] for e in json_lines(stream)] == ["long enough to fill the batch"]

    async def test_lines_are_written_when_the_run_fails(self) -> None:
        stream, _writes = self.setup()
        with pytest.raises(RuntimeError), batched_log_writes():
            structlog.get_logger().error("last words")
            raise RuntimeError("crash")
        assert [e["event"] for e in json_lines(stream)] == ["last words"]
