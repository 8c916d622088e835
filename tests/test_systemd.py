"""bfxd.systemd: sd_notify against a fake PID 1, watchdog environment rules, and the watchdog task."""

from __future__ import annotations

import os
import shutil
import socket
import struct
import tempfile
import time
from collections.abc import Iterator, Sequence
from functools import partial

import pytest
import structlog
import trio
import trio.testing
from structlog.testing import capture_logs

from bfxd.systemd import ActorProgress, Notifier, run_watchdog, watchdog_period

UCRED = struct.Struct("3i")  # struct ucred { pid_t pid; uid_t uid; gid_t gid; }


class FakePid1:
    """The receiving end of $NOTIFY_SOCKET, with SO_PASSCRED like systemd's."""

    def __init__(self, sock: socket.socket, env_value: str) -> None:
        self.sock = sock
        self.env_value = env_value

    def receive(self) -> tuple[str, tuple[int, int, int]]:
        """The next datagram and its sender's (pid, uid, gid); it must already be queued."""
        data, ancdata, _flags, _addr = self.sock.recvmsg(4096, socket.CMSG_SPACE(UCRED.size), socket.MSG_DONTWAIT)
        creds = [
            UCRED.unpack(cdata[: UCRED.size])
            for level, kind, cdata in ancdata
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS
        ]
        assert len(creds) == 1
        return data.decode(), creds[0]

    def assert_empty(self) -> None:
        with pytest.raises(BlockingIOError):
            self.sock.recv(4096, socket.MSG_DONTWAIT)


@pytest.fixture(params=["path", "abstract"])
def pid1(request: pytest.FixtureRequest) -> Iterator[FakePid1]:
    """A fake service manager socket: a filesystem path in a short temp dir, or an abstract name."""
    directory = tempfile.mkdtemp(prefix="bfxd-")  # AF_UNIX paths are short; tmp_path may be too long
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        if request.param == "path":
            address = os.path.join(directory, "notify")
            sock.bind(address)
            env_value = address
        else:
            name = f"bfxd-test-{os.getpid()}-{time.monotonic_ns()}"
            sock.bind("\0" + name)
            env_value = "@" + name
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        yield FakePid1(sock, env_value)
    finally:
        sock.close()
        shutil.rmtree(directory)


@pytest.fixture
def notifier(pid1: FakePid1) -> Iterator[Notifier]:
    with Notifier(env={"NOTIFY_SOCKET": pid1.env_value}) as n:
        yield n


class TestNotifier:
    @pytest.mark.parametrize(
        ("call", "payload"),
        [
            (lambda n: n.ready(), "READY=1"),
            (
                lambda n: n.ready("listening on /run/bfxd/bfxd.sock"),
                "READY=1\nSTATUS=listening on /run/bfxd/bfxd.sock",
            ),
            (lambda n: n.status("backoff 8 s\n(attempt 3)"), "STATUS=backoff 8 s (attempt 3)"),
            (lambda n: n.stopping(), "STOPPING=1"),
            (lambda n: n.watchdog(), "WATCHDOG=1"),
            (lambda n: n.watchdog_trigger(), "WATCHDOG=trigger"),
            (lambda n: n.send("X_BFXD=1", "STATUS=a"), "X_BFXD=1\nSTATUS=a"),
        ],
    )
    def test_exact_payloads_with_our_credentials(self, pid1: FakePid1, notifier: Notifier, call, payload) -> None:
        """Each call is one datagram with exactly the expected lines, sent by this process."""
        assert notifier.enabled
        assert call(notifier) is True
        data, (pid, uid, gid) = pid1.receive()
        assert data == payload
        assert (pid, uid, gid) == (os.getpid(), os.getuid(), os.getgid())
        pid1.assert_empty()

    def test_reloading_carries_monotonic_usec_in_the_same_datagram(self, pid1: FakePid1, notifier: Notifier) -> None:
        """RELOADING=1 and MONOTONIC_USEC (close to now) arrive in one datagram."""
        before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        assert notifier.reloading()
        after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        data, _creds = pid1.receive()
        first, second = data.split("\n")
        assert first == "RELOADING=1"
        assert second.startswith("MONOTONIC_USEC=")
        assert before <= int(second.removeprefix("MONOTONIC_USEC=")) <= after

    def test_notify_socket_is_removed_from_the_environment(self, pid1: FakePid1) -> None:
        """NOTIFY_SOCKET is popped so children do not inherit it."""
        env = {"NOTIFY_SOCKET": pid1.env_value, "OTHER": "x"}
        Notifier(env=env).close()
        assert env == {"OTHER": "x"}

    @pytest.mark.parametrize("value", [None, "", "vsock:2:1234", "relative/path"])
    def test_unsupervised_sends_nothing(self, value: str | None) -> None:
        """Without a usable NOTIFY_SOCKET the notifier is disabled and every send returns False."""
        env = {} if value is None else {"NOTIFY_SOCKET": value}
        notifier = Notifier(env=env)
        assert not notifier.enabled
        assert notifier.ready("x") is False
        assert notifier.watchdog() is False

    def test_dead_path_returns_false_without_raising(self) -> None:
        """A socket path nobody listens on makes send return False, never raise."""
        directory = tempfile.mkdtemp(prefix="bfxd-")
        try:
            with Notifier(env={"NOTIFY_SOCKET": os.path.join(directory, "gone")}) as notifier:
                assert notifier.enabled
                assert notifier.ready() is False
                assert notifier.status("x") is False
        finally:
            shutil.rmtree(directory)

    def test_full_queue_does_not_block(self, pid1: FakePid1, notifier: Notifier) -> None:
        """When PID 1 stops reading, sends start returning False instead of blocking."""
        results = [notifier.watchdog() for _ in range(10_000)]
        assert results[0] is True
        assert results[-1] is False

    def test_closed_notifier_is_disabled(self, pid1: FakePid1, notifier: Notifier) -> None:
        """After close() nothing is sent."""
        notifier.close()
        assert not notifier.enabled
        assert notifier.ready() is False
        pid1.assert_empty()


class TestWatchdogPeriod:
    @pytest.mark.parametrize(
        ("env", "expected"),
        [
            ({"WATCHDOG_USEC": "30000000"}, 15.0),
            ({"WATCHDOG_USEC": "200000", "WATCHDOG_PID": str(os.getpid())}, 0.1),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": str(os.getpid() + 1)}, None),
            ({"WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "nope"}, None),
            ({"WATCHDOG_USEC": "0"}, None),
            ({"WATCHDOG_USEC": "-5"}, None),
            ({"WATCHDOG_USEC": "soon"}, None),
            ({"WATCHDOG_PID": str(os.getpid())}, None),
            ({}, None),
        ],
    )
    def test_rules(self, env: dict[str, str], expected: float | None) -> None:
        """Half of WATCHDOG_USEC in seconds, only if WATCHDOG_PID is absent or ours; both variables popped."""
        env = dict(env, OTHER="x")
        assert watchdog_period(env) == expected
        assert env == {"OTHER": "x"}


class TestActorProgress:
    def test_stale_after_max_quiet(self) -> None:
        """An actor is stale once it has been quiet for longer than its max_quiet; a stamp refreshes it."""
        progress = ActorProgress()
        progress.register("connection", max_quiet=30, now=0)
        progress.register("router", max_quiet=5, now=0)
        assert progress.stale(5) == []
        assert progress.stale(5.5) == ["router"]
        progress.stamp("router", now=28)
        assert progress.stale(30) == []
        assert progress.stale(31) == ["connection"]
        assert progress.stale(33.5) == ["connection", "router"]

    def test_unregistered_names_are_ignored(self) -> None:
        """Stamping an unknown name does nothing; unregistering removes an actor from the check."""
        progress = ActorProgress()
        progress.stamp("ghost", now=0)
        progress.register("inbox", max_quiet=1, now=0)
        progress.unregister("inbox")
        progress.unregister("inbox")
        assert progress.stale(100) == []

    def test_older_stamp_does_not_move_time_back(self) -> None:
        """A late stamp with an older time keeps the newer one."""
        progress = ActorProgress()
        progress.register("a", max_quiet=10, now=20)
        progress.stamp("a", now=5)
        assert progress.stale(29) == []

    def test_max_quiet_must_be_positive(self) -> None:
        """Registering with max_quiet <= 0 is a bug and raises ValueError."""
        with pytest.raises(ValueError, match="max_quiet"):
            ActorProgress().register("a", max_quiet=0, now=0)


class RecordingNotifier(Notifier):
    """Records (time, fields) of every send instead of using a socket."""

    def __init__(self) -> None:
        super().__init__(env={})
        self.sent: list[tuple[float, tuple[str, ...]]] = []

    def send(self, *fields: str) -> bool:
        self.sent.append((trio.current_time(), fields))
        return True


@pytest.fixture(autouse=True)
def fresh_structlog() -> Iterator[None]:
    structlog.reset_defaults()
    yield
    structlog.reset_defaults()


class TestRunWatchdog:
    async def test_pings_every_period_while_healthy(self, nursery: trio.Nursery, autojump_clock) -> None:
        """A healthy probe gives WATCHDOG=1 at exactly start + n * period."""
        notifier = RecordingNotifier()

        async def healthy() -> Sequence[str]:
            await trio.sleep(0.2)  # a probe takes some time; the schedule must not drift by it
            return []

        start = trio.current_time()
        await nursery.start(partial(run_watchdog, notifier, period=15, probe=healthy))
        await trio.sleep(50)
        assert notifier.sent == [
            (start + 15.2, ("WATCHDOG=1",)),
            (start + 30.2, ("WATCHDOG=1",)),
            (start + 45.2, ("WATCHDOG=1",)),
        ]

    async def test_stale_actor_withholds_and_triggers_once(self, nursery: trio.Nursery, autojump_clock) -> None:
        """A stale actor stops the pings, logs watchdog.withheld, and sends WATCHDOG=trigger once."""
        notifier = RecordingNotifier()
        progress = ActorProgress()
        progress.register("router", max_quiet=20, now=trio.current_time())

        async def probe() -> Sequence[str]:
            return progress.stale(trio.current_time())

        start = trio.current_time()
        with capture_logs() as logs:
            await nursery.start(partial(run_watchdog, notifier, period=15, probe=probe))
            await trio.sleep(50)
        assert notifier.sent == [(start + 15, ("WATCHDOG=1",)), (start + 30, ("WATCHDOG=trigger",))]
        withheld = [entry for entry in logs if entry["event"] == "watchdog.withheld"]
        assert withheld == [
            {"event": "watchdog.withheld", "log_level": "error", "stale": ["router"]},
            {"event": "watchdog.withheld", "log_level": "error", "stale": ["router"]},
        ]

    async def test_recovery_resumes_pings(self, nursery: trio.Nursery, autojump_clock) -> None:
        """Once the probe is healthy again, pings resume (and a later failure triggers again)."""
        notifier = RecordingNotifier()
        answers = iter([[], ["router"], [], ["inbox"]])

        async def probe() -> Sequence[str]:
            return next(answers)

        await nursery.start(partial(run_watchdog, notifier, period=1, probe=probe))
        await trio.sleep(4.5)
        assert [fields for _t, fields in notifier.sent] == [
            ("WATCHDOG=1",),
            ("WATCHDOG=trigger",),
            ("WATCHDOG=1",),
            ("WATCHDOG=trigger",),
        ]

    async def test_hanging_probe_counts_as_stale(self, nursery: trio.Nursery, autojump_clock) -> None:
        """A probe that does not answer within min(1, period/2) is reported as stale ["probe"]."""
        notifier = RecordingNotifier()

        async def wedged() -> Sequence[str]:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        start = trio.current_time()
        with capture_logs() as logs:
            await nursery.start(partial(run_watchdog, notifier, period=15, probe=wedged))
            await trio.sleep(20)
        assert notifier.sent == [(start + 16, ("WATCHDOG=trigger",))]
        assert [e["stale"] for e in logs if e["event"] == "watchdog.withheld"] == [["probe"]]

    async def test_short_period_gives_the_probe_half_a_period(self, nursery: trio.Nursery, autojump_clock) -> None:
        """With period 0.5 s the probe budget is 0.25 s."""
        notifier = RecordingNotifier()

        async def wedged() -> Sequence[str]:
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        start = trio.current_time()
        await nursery.start(partial(run_watchdog, notifier, period=0.5, probe=wedged))
        await trio.sleep(0.8)
        assert notifier.sent == [(start + 0.75, ("WATCHDOG=trigger",))]

    async def test_blocked_loop_is_logged_and_missed_ticks_are_skipped(
        self, nursery: trio.Nursery, autojump_clock: trio.testing.MockClock
    ) -> None:
        """A tick that wakes late logs loop.lag, and the ticks it missed are not replayed in a burst."""
        notifier = RecordingNotifier()

        async def healthy() -> Sequence[str]:
            return []

        start = trio.current_time()
        with capture_logs() as logs:
            await nursery.start(partial(run_watchdog, notifier, period=15, probe=healthy))
            await trio.sleep(10)
            autojump_clock.jump(30)  # as if the loop had been blocked from t=10 to t=40
            await trio.sleep(10)  # until t=50
        assert notifier.sent == [(start + 40, ("WATCHDOG=1",)), (start + 45, ("WATCHDOG=1",))]
        assert [e for e in logs if e["event"] == "loop.lag"] == [
            {"event": "loop.lag", "log_level": "warning", "lag_s": 25.0, "period_s": 15}
        ]

    async def test_probe_errors_propagate(self, autojump_clock) -> None:
        """An exception from the probe is a bug: it ends the watchdog task with that exception."""

        async def broken() -> Sequence[str]:
            raise RuntimeError("router gone")

        with pytest.raises(RuntimeError, match="router gone"):
            await run_watchdog(RecordingNotifier(), period=1, probe=broken)

    @pytest.mark.parametrize("period", [0, -1, float("inf"), float("nan")])
    async def test_bad_period_is_refused(self, period: float) -> None:
        """A period that is not a positive finite number raises ValueError before anything runs."""

        async def healthy() -> Sequence[str]:
            return []

        with pytest.raises(ValueError, match="period"):
            await run_watchdog(RecordingNotifier(), period=period, probe=healthy)
