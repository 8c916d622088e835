"""Fuzzing the daemon from both sides with hypothesis: its clients, and the exchange.

Clients send arbitrary bytes, arbitrary JSON and near-valid requests (valid requests, mutated), pipelined, to the
real Unix socket of one in-process daemon per test function (every example reuses it). After every example:

- every ``\\n``-terminated line got exactly one final answer (a line with ``ok``), the partial line at the end got
  none, and every line the daemon wrote is a JSON object; event lines come only after a ``watch``;
- where the line is valid JSON, the answers echo the refs the lines carried, and a line the protocol refuses is
  answered with the protocol's own verdict (``parse_request`` is the oracle);
- a fresh client's ``ping`` and ``status`` are answered, the daemon is still running, and no client handler met
  an unexpected exception (``client.error``).

The exchange (the simulator, ``send_raw``) sends random JSON values, random text and mutated real frames; after
every example a cancel still gets its SUCCESS, every undecodable frame was logged and skipped, and the session
is still ``ready`` on the link it started with: a bad frame never costs the link.

Hypothesis is synchronous, so it runs in a worker thread (``trio.to_thread``) and talks to the daemon through
blocking sockets, while the daemon and the simulator run in the test's trio loop (simulator calls and board
reads go through ``trio.from_thread``). ``BFXD_FUZZ_EXAMPLES`` sets the examples per test (``make fuzz``: 5000).
"""

from __future__ import annotations

import json
import os
import socket
from collections import Counter
from collections.abc import AsyncIterator, Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.conftest import FRAMES_DIR
from tests.integration.helpers import API_KEY, API_SECRET, GUARD_S, fast_link, test_config, test_credentials

from bfxd.actors.session import SessionBoard
from bfxd.daemon import run_daemon
from bfxd.errors import RemoteProtocolError
from bfxd.protocol import (
    AuthFailed,
    AuthOk,
    Info,
    MaintenanceEnded,
    MaintenanceStarted,
    ServerRestarting,
    client_requests,
    client_wire,
    decode_exchange_frame,
)
from bfxd.simulator import Simulator, SimulatorConfig
from conftest import board_reaches

EXAMPLES = int(os.environ.get("BFXD_FUZZ_EXAMPLES", "50"))
FUZZ_SETTINGS = settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
# pyproject's 120 s per test is for the default run; `make fuzz` runs thousands of examples per test.
pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(120 + EXAMPLES * 0.2)]

ERROR_TYPES = set(client_wire.ERROR_TYPES)
# What a well-formed request may end with, beyond ok: the exchange refusing (an unknown id), or a deadline so
# short it passes before the session answers.
OUTCOMES = {"cancel": {client_wire.EXCHANGE, client_wire.NOT_READY, client_wire.TIMEOUT, client_wire.NOT_ACTIVE},
            "cancel_all": {client_wire.EXCHANGE, client_wire.NOT_READY, client_wire.TIMEOUT, client_wire.NOT_ACTIVE}}


# ---- the daemon under fuzz ----------------------------------------------------------------------------------


class EventCounter:
    """A structlog processor that counts events by name and keeps nothing else (thousands of examples)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()
        self.errors: list[dict[str, Any]] = []

    def __call__(self, _logger: object, method: str, event_dict: dict[str, Any]) -> dict[str, Any]:
        name = str(event_dict.get("event"))
        self.counts[name] += 1
        if name in ("client.error", "simulator.connection_crashed") or method in ("error", "exception", "critical"):
            self.errors.append({k: str(v)[:500] for k, v in event_dict.items()})
        raise structlog.DropEvent


@attrs.define
class Target:
    """The daemon under fuzz, as seen from the hypothesis thread."""

    sim: Simulator
    board: SessionBoard
    stopped: trio.Event
    socket_path: Path
    events: EventCounter

    def look(self) -> dict[str, Any]:
        """The daemon's health, read in the trio thread."""

        def read() -> dict[str, Any]:
            snap = self.board.snapshot()
            return {"running": not self.stopped.is_set(), "state": snap.state, "reconnects": snap.reconnects,
                    "errors": list(self.events.errors), "bad_frames": self.events.counts["exchange.bad_frame"]}

        return trio.from_thread.run_sync(read)

    def assert_healthy(self) -> None:
        health = self.look()
        assert health["running"], "the daemon stopped"
        assert health["errors"] == [], health["errors"]
        with Client(self.socket_path) as client:
            assert client.request({"op": "ping", "ref": "p"}) == {"ok": True, "op": "ping", "ref": "p"}
            status = client.request({"op": "status", "ref": "s"})
        assert status["ok"] is True and status["ref"] == "s" and status["status"]["state"] == "ready", status


@pytest.fixture
async def target(nursery: trio.Nursery, socket_dir: Path) -> AsyncIterator[Target]:
    events = EventCounter()
    with structlog.testing.capture_logs(processors=[events]):
        sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=5, seed=7))
        url = await nursery.start(sim.serve)
        config = test_config(url, socket_dir / "bfxd.sock", request_timeout=5.0)
        stop, stopped = trio.Event(), trio.Event()

        async def daemon(task_status: trio.TaskStatus[SessionBoard] = trio.TASK_STATUS_IGNORED) -> None:
            try:
                await run_daemon(config, test_credentials(), stop=stop, link=fast_link(url), task_status=task_status)
            finally:
                stopped.set()

        board = await nursery.start(daemon)
        with trio.fail_after(GUARD_S):
            await board_reaches(board, lambda b: b.state == "ready" and b.offers == len(sim.offers))
        yield Target(sim, board, stopped, config.socket.path, events)
        stop.set()  # a clean stop is part of the test: a daemon that does not drain fails it
        with trio.fail_after(GUARD_S):
            await stopped.wait()


async def in_thread(fn: Callable[[], None]) -> None:
    """Run a hypothesis test (synchronous) beside the daemon, which keeps serving in this trio run."""
    await trio.to_thread.run_sync(fn)


class Client:
    """A blocking client of the daemon's socket, for the hypothesis thread."""

    def __init__(self, path: Path) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(GUARD_S)  # a hang guard, never a wait
        self.sock.connect(str(path))
        self.buffer = b""

    def request(self, request: dict[str, Any]) -> dict[str, Any]:
        self.sock.sendall(json.dumps(request).encode() + b"\n")
        return self.receive()

    def receive(self) -> dict[str, Any]:
        while b"\n" not in self.buffer:
            chunk = self.sock.recv(65536)
            assert chunk, "the daemon closed the connection"
            self.buffer += chunk
        line, self.buffer = self.buffer.split(b"\n", 1)
        return json.loads(line)

    def converse(self, data: bytes) -> list[Any]:
        """Send *data*, close our side, and read every line until the daemon closes its side."""
        self.sock.sendall(data)
        self.sock.shutdown(socket.SHUT_WR)
        received = b""
        while chunk := self.sock.recv(65536):
            received += chunk
        assert received == b"" or received.endswith(b"\n"), received[-200:]
        return [json.loads(line) for line in received.split(b"\n")[:-1]]

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.sock.close()


# ---- strategies ---------------------------------------------------------------------------------------------

TEXT = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=30)
SCALARS = st.none() | st.booleans() | st.integers() | st.floats() | TEXT
JSON = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(TEXT, inner, max_size=4),
                    max_leaves=10)
OPS = ("ping", "status", "offers", "cancel", "cancel_all", "watch")
REFS = (st.text(max_size=8) | st.integers(-(2**53 - 1), 2**53 - 1) | st.sampled_from([2**53, -(2**53), 1.5, True, []])
        | st.text(min_size=250, max_size=260))
IDS = st.integers(1, 2**53 - 1) | st.integers(1, 10**9) | st.sampled_from([0, -1, 2**53, 5.0, "5", True, None])
TIMEOUTS = (st.floats(min_value=0.001, max_value=0.2) | st.floats(min_value=0.5, max_value=3600)
            | st.sampled_from([0, -1, 3600.5, 1e400, "1", True]) | st.floats())
SYMBOLS = st.sampled_from(["fUSD", "fBTC", "fUST", "USD", "f", "fUSD:x", "f" + "A" * 16, 3]) | TEXT


def _valid_request() -> st.SearchStrategy[dict[str, Any]]:
    ref = {"ref": REFS}
    return st.one_of(
        st.fixed_dictionaries({"op": st.just("ping")}, optional=ref),
        st.fixed_dictionaries({"op": st.just("status")}, optional=ref),
        st.fixed_dictionaries({"op": st.just("offers")}, optional={**ref, "symbol": SYMBOLS}),
        st.fixed_dictionaries({"op": st.just("cancel"), "id": IDS}, optional={**ref, "timeout": TIMEOUTS}),
        st.fixed_dictionaries({"op": st.just("cancel_all")}, optional={**ref, "symbol": SYMBOLS, "timeout": TIMEOUTS}),
        st.fixed_dictionaries({"op": st.just("watch")}, optional=ref),
    )


@st.composite
def near_valid_lines(draw: st.DrawFn) -> bytes:
    """One request line: a valid request with a few of its fields removed, retyped or joined by strangers, and
    sometimes a byte or two of the line itself changed."""
    request = draw(_valid_request())
    for _ in range(draw(st.integers(0, 3))):
        action = draw(st.sampled_from(["drop", "retype", "add", "op"]))
        if action == "drop" and request:
            request.pop(draw(st.sampled_from(sorted(request))))
        elif action == "retype" and request:
            request[draw(st.sampled_from(sorted(request)))] = draw(JSON)
        elif action == "add":
            request[draw(TEXT)] = draw(JSON)
        elif action == "op":
            request["op"] = draw(st.sampled_from(OPS) | TEXT)
    line = json.dumps(request, ensure_ascii=draw(st.booleans())).encode("utf-8", "surrogatepass")
    if draw(st.integers(0, 4)) == 0 and line:  # a byte-level slip: the line may stop being JSON at all
        at = draw(st.integers(0, len(line) - 1))
        line = line[:at] + draw(st.binary(max_size=2)).replace(b"\n", b"") + line[at + 1:]
    return line


def _lines(lines: st.SearchStrategy[bytes], max_lines: int = 24) -> st.SearchStrategy[bytes]:
    """Lines joined by newlines; the last one may be left without its newline (it is then no request)."""
    return st.builds(lambda items, tail: b"".join(line + b"\n" for line in items) + tail,
                     st.lists(lines, max_size=max_lines), st.sampled_from([b""]) | st.binary(max_size=40))


ARBITRARY_BYTES = st.binary(max_size=2048) | _lines(st.binary(max_size=120))
ARBITRARY_JSON = _lines(JSON.map(lambda value: json.dumps(value).encode()))
NEAR_VALID = _lines(near_valid_lines())


# ---- checking one client example ----------------------------------------------------------------------------


def _verdict(line: bytes) -> tuple[object, str | None, str | None]:
    """(ref the answer must echo, op, error type the protocol itself gives or None if it accepts the line)."""
    try:
        request = client_requests.parse_request(line)
    except client_wire.RequestRejected as exc:
        return exc.ref, exc.op, exc.error_type
    return request.ref, request.op, None


def check_client_example(target: Target, data: bytes) -> None:
    lines = data.split(b"\n")[:-1]  # the bytes after the last newline are not a line
    assert all(len(line) <= client_wire.MAX_LINE for line in lines)
    with Client(target.socket_path) as client:
        written = client.converse(data)
    assert all(isinstance(item, dict) for item in written), written
    finals = [item for item in written if "ok" in item]
    events = [item for item in written if "ok" not in item]
    assert len(finals) == len(lines), (len(finals), len(lines), written[:5])
    verdicts = [_verdict(line) for line in lines]
    if events:
        assert any(op == "watch" and error is None for _, op, error in verdicts), events[:3]
        assert all(isinstance(item.get("event"), str) for item in events), events[:3]
    for answer in finals:
        assert answer["ok"] in (True, False) and "op" in answer, answer
        if answer["ok"] is False:
            assert answer["error"]["type"] in ERROR_TYPES and isinstance(answer["error"]["message"], str), answer
    # The refs answered are the refs asked, as a multiset (answers come in any order).
    assert Counter(_key(a.get("ref")) for a in finals) == Counter(_key(ref) for ref, _, _ in verdicts)
    # Where a ref is unique, the answer is the one the protocol calls for.
    by_ref: dict[str, list[dict[str, Any]]] = {}
    for answer in finals:
        by_ref.setdefault(_key(answer.get("ref")), []).append(answer)
    for ref, op, error in verdicts:
        if ref is None or len(by_ref[_key(ref)]) != 1:
            continue
        answer = by_ref[_key(ref)][0]
        if error is not None:
            assert answer["ok"] is False and answer["error"]["type"] == error, (answer, error)
        elif op in OUTCOMES and answer["ok"] is False:
            assert answer["error"]["type"] in OUTCOMES[op], answer
        else:
            assert answer["ok"] is True and answer["op"] == op, answer
    target.assert_healthy()


def _key(ref: object) -> str:
    return json.dumps(ref)  # 1 and "1" are different refs; JSON tells them apart


@pytest.mark.parametrize("strategy", [ARBITRARY_BYTES, ARBITRARY_JSON, NEAR_VALID],
                         ids=["arbitrary_bytes", "arbitrary_json", "near_valid"])
async def test_clients_sending_anything_get_one_answer_per_line(
        target: Target, strategy: st.SearchStrategy[bytes]) -> None:
    """Whatever clients send, every line gets exactly one final answer, the protocol's verdict when it refuses the
    line, and the daemon keeps serving everyone."""

    @FUZZ_SETTINGS
    @given(data=strategy)
    def fuzz(data: bytes) -> None:
        check_client_example(target, data)

    await in_thread(fuzz)


# ---- the exchange's side ------------------------------------------------------------------------------------

REAL_FRAMES = sorted(path.read_text().strip() for path in FRAMES_DIR.glob("*.json"))
_CONTROL = (AuthOk, AuthFailed, ServerRestarting, MaintenanceStarted, MaintenanceEnded)


def _decodes_to(text: str) -> object | None:
    try:
        return decode_exchange_frame(text)
    except RemoteProtocolError:
        return None


def _not_control(text: str) -> bool:
    """Frames with a defined effect on the link are not "bad frames": auth answers, info 20051/20060/20061, a
    greeting in maintenance."""
    event = _decodes_to(text)
    return not (isinstance(event, _CONTROL) or (isinstance(event, Info) and event.in_maintenance))


@st.composite
def mutated_frames(draw: st.DrawFn) -> str:
    text = draw(st.sampled_from(REAL_FRAMES))
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        action = draw(st.sampled_from(["cut", "delete", "insert", "replace"]))
        if action == "cut":
            text = text[:at]
        elif action == "delete":
            text = text[:at] + text[at + 1:]
        elif action == "insert":
            text = text[:at] + draw(TEXT) + text[at:]
        else:
            text = text[:at] + draw(TEXT) + text[at + 1:]
    return text


EXCHANGE_FRAMES = st.lists((JSON.map(json.dumps) | TEXT | mutated_frames()).filter(_not_control),
                           min_size=1, max_size=8)


async def test_exchange_sending_garbage_never_costs_the_link(target: Target) -> None:
    """Random and malformed frames from the exchange are skipped: a cancel sent afterwards still gets its SUCCESS,
    and the session stays ready on its first link."""
    sim = target.sim

    @FUZZ_SETTINGS
    @given(frames=EXCHANGE_FRAMES)
    def fuzz(frames: list[str]) -> None:
        before = target.look()["bad_frames"]
        with Client(target.socket_path) as watcher:
            assert watcher.request({"op": "watch", "ref": "w"})["ok"] is True
            for text in frames:
                trio.from_thread.run(sim.send_raw, text)
            offer = trio.from_thread.run_sync(partial(sim.add_offer, amount=150.0))
            # The new offer is announced after the frames, on the same link: once the daemon reports it, every
            # frame before it has been read (so none can be taken for the answer to the cancel below).
            while not ((event := watcher.receive()).get("event") == "offer" and event["offer"]["id"] == offer.id):
                pass
        health = target.look()
        assert health["bad_frames"] - before == sum(1 for text in frames if _decodes_to(text) is None)
        with Client(target.socket_path) as client:
            answer = client.request({"op": "cancel", "id": offer.id, "ref": "check", "timeout": GUARD_S})
        assert answer["ok"] is True and answer["status"] == "SUCCESS" and answer["id"] == offer.id, answer
        health = target.look()
        assert health["state"] == "ready" and health["reconnects"] == 0, health
        target.assert_healthy()

    await in_thread(fuzz)


# ---- regressions the fuzzer found ---------------------------------------------------------------------------


async def test_a_watch_from_a_client_that_closed_its_side_is_still_answered(target: Target) -> None:
    """A client that sends ``watch`` and at once shuts down its sending side (``echo '{"op":"watch"}' | socat``)
    still reads the watch's final answer; the watch then ends with the client, and the connection closes."""
    for attempt in range(20):  # the client's end and the watch's start race inside the daemon: try it often
        stream = await trio.open_unix_socket(str(target.socket_path))
        async with stream:
            await stream.send_all(b'{"op":"watch","ref":%d}\n' % attempt)
            await stream.send_eof()
            received = b""
            with trio.fail_after(GUARD_S):
                while chunk := await stream.receive_some(65536):
                    received += chunk
        answers = [json.loads(line) for line in received.splitlines()]
        finals = [a for a in answers if "ok" in a]
        assert finals == [{"ok": True, "op": "watch", "ref": attempt}], (attempt, answers)
