"""One cell of the fault matrix (see test_fault_matrix.py): its own simulator, relay, in-process daemon and client.

``run_cell`` starts them (relaxed connection guard, heartbeat timeout 1 s, auth timeout 1 s), runs a scenario on the
``Cell``, and ends with ``Cell.finish``. A scenario sends the requests under test with ``cancel`` and checks them
with ``expect(ref)`` and ``expect_focs()`` against its ``Expect``, the cell's entry in the table; ``finish`` fails
the cell if any part of that entry went unchecked.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import structlog
import trio
from tests.integration.fault_requests import Asked
from tests.integration.helpers import (
    API_KEY,
    API_SECRET,
    GUARD_S,
    LineClient,
    fast_link,
    test_config,
    test_credentials,
)
from tests.integration.relay import Network
from tests.logwatch import LogWatch

from bfxd.actors.session import SessionBoard
from bfxd.daemon import run_daemon
from bfxd.protocol import NewOfferInput
from bfxd.simulator import Simulator, SimulatorConfig
from conftest import board_reaches

LONG_S = 8.0  # deadline of a request expected to succeed: only a hang guard, never reached
SHORT_S = 0.3  # deadline of the request that must expire while the session is held
LOST_S = 0.5  # deadline of a request whose frame is lost: it must end `timeout` at this deadline
DELAY_S = 0.3  # answer delay that stays inside the deadline (and inside half the heartbeat timeout)
LATE_S = 1.0  # answer delay beyond LOST_S: the answer comes after the `timeout`
HEARTBEAT_S = 1.0
AUTH_TIMEOUT_S = 1.0

# Frames the exchange should never send; each must be logged and skipped, never cost the link.
GARBAGE = ("{not json", "[]", '"str"', "null", "1e999", '[0,"fon",[1,2]]', '[0,"n",["x"]]', '[0,"fos",{"a":1}]',
           '[0,"foc",[]]', '{"event":"nope"}', '{"event":"info","code":"x"}')

OK = "ok"  # the table's word for {"ok": true, "status": "SUCCESS"}; any other expected answer is an error type
OK_SNAPSHOT = "ok/snapshot"  # ok, the new offer found in the fresh snapshot after the link dropped before its answer
TIMEOUT = "timeout"
NOT_CONFIRMED = "not_confirmed"
SHORT_WORDS = {NOT_CONFIRMED: "nc"}  # how the tables abbreviate an answer, to stay narrow


@attrs.frozen
class Expect:
    """One cell of the table: the final answers of the requests under test, in the order they were sent, and how
    many input frames of theirs (foc, fon) reach the exchange."""

    answers: tuple[str, ...]
    frames: int | None  # None: the count is free (a race the cell cannot fix), and not checked
    note: int | None = attrs.field(default=None, eq=False)  # its footnote under the docstring's table
    any_order: bool = False  # the answers are these, but which request gets which is free (inputs sent at once)
    # An answer may be "a|b": either fits (a race the cell cannot settle)

    def render(self) -> str:
        note = "" if self.note is None else f" ({self.note})"
        shown = ["|".join(SHORT_WORDS.get(w, w) for w in a.split("|")) for a in self.answers]
        words = f"{len(shown)}x {shown[0]}" if len(shown) > 1 and len(set(shown)) == 1 else ", ".join(shown)
        frames = "any" if self.frames is None else self.frames
        return f"{{{words}}} [{frames}]{note}" if self.any_order else f"{words} [{frames}]{note}"


def ok(frames: int, note: int | None = None) -> Expect:
    return Expect((OK,), frames, note)


def timeout(frames: int, note: int | None = None) -> Expect:
    return Expect((TIMEOUT,), frames, note)


def not_confirmed(frames: int, note: int | None = None) -> Expect:
    return Expect((NOT_CONFIRMED,), frames, note)


def table_text(faults: Sequence[str], states: Sequence[str], cell: Callable[[str, str], Expect], *,
               headings: Mapping[str, str] | None = None, footer: str = "") -> str:
    """A matrix of expectations as a docstring shows it (indented four spaces): one line per fault, one column per
    state (headed by its name, or by *headings*), ``cell(fault, state)`` in each, then *footer*."""
    def line(*columns: str) -> str:
        return (f"{columns[0]:<15}" + "".join(f"{c:<21}" for c in columns[1:])).rstrip()

    rows = [line("fault", *((headings or {}).get(s, s) for s in states))]
    rows += [line(f, *(cell(f, s).render() for s in states)) for f in faults]
    if footer:
        rows += ["", footer]
    return "\n".join("    " + row if row else "" for row in rows)


def answer_as_written(answer: dict[str, Any]) -> str:
    """A final answer in the table's words: ``ok`` for a SUCCESS, the error type for an error."""
    if answer.get("ok") is True and answer.get("status") == "SUCCESS":
        return OK
    if answer.get("ok") is True and answer.get("confirmed_by") == "snapshot":
        return OK_SNAPSHOT
    if answer.get("ok") is False and isinstance(answer.get("error"), dict):
        return str(answer["error"].get("type"))
    return repr(answer)  # neither: equal to no expected answer


@attrs.define
class Cell:
    sim: Simulator
    net: Network
    nursery: trio.Nursery  # for faults that take a while to return (a polite drop waits for the close)
    board: SessionBoard
    logs: LogWatch
    client: LineClient
    fault: str
    op: str  # what every request of the cell is: cancel, submit or replace
    expected: Expect  # what the requests under test must end with
    name: str  # "fault/state", for failure messages
    offers: list[int]
    answers: dict[str, dict[str, Any]] = attrs.Factory(dict)
    sent: list[str] = attrs.Factory(list)
    asked: dict[str, Asked] = attrs.Factory(dict)
    tested: list[str] = attrs.Factory(list)  # the requests under test, in the order sent
    checked: set[str] = attrs.Factory(set)  # requests under test whose answer has been checked against the table
    frames_checked: bool = False
    _sent_at: dict[str, float] = attrs.Factory(dict)

    def offer(self, index: int) -> int:
        return self.offers[index]

    async def ask(self, ref: str, slot: int, deadline_s: float, *, tested: bool = True) -> None:
        """Send the cell's op for *slot* with its own deadline (not waiting for its answer). A request under test
        (*tested*) is checked against the table; any other (a cell's premise or side request) against the outcome
        given to ``expect``."""
        self.sent.append(ref)
        self.asked[ref] = asked = Asked.make(self.op, slot, self.offers)
        if tested:
            self.tested.append(ref)
        self._sent_at[ref] = trio.current_time()
        await self.client.send({**asked.request(), "ref": ref, "timeout": deadline_s})

    async def answer(self, ref: str) -> dict[str, Any]:
        """The final answer to *ref*, reading (and keeping) the answers that come before it."""
        while ref not in self.answers:
            line = await self.client.receive()
            got = line.get("ref")
            assert got in self.sent, f"an answer nobody asked for: {line}"
            assert got not in self.answers, f"a second answer to {got}: {line} after {self.answers[got]}"
            self.answers[got] = line
        return self.answers[ref]

    async def expect(self, ref: str, outcome: str | None = None) -> dict[str, Any]:
        """Check *ref*'s final answer: a request under test against the table (its answer in sending order), any
        other against *outcome*."""
        answer = await self.answer(ref)
        assert answer["op"] == self.op, str(answer)
        if outcome is None:
            return self._expect_tested(ref, answer)
        assert answer_as_written(answer) == outcome, f"{self.name}: {ref} should end {outcome}, got {answer}"
        return answer

    def _expect_tested(self, ref: str, answer: dict[str, Any]) -> dict[str, Any]:
        expected, position = self.expected, self.tested.index(ref)
        assert position < len(expected.answers), (
            f"{self.name}: {ref} is request #{position + 1} under test, the table has {expected.render()}")
        self.checked.add(ref)
        if not expected.any_order:
            assert answer_as_written(answer) in expected.answers[position].split("|"), (
                f"{self.name}: {ref} should end {expected.answers[position]}, got {answer}")
            return answer
        assert answer_as_written(answer) in expected.answers, f"{self.name}: {ref} got {answer}, not in {expected}"
        if self.checked == set(self.tested) and len(self.tested) == len(expected.answers):
            got = sorted(answer_as_written(self.answers[r]) for r in self.tested)
            assert got == sorted(expected.answers), f"{self.name}: answers {got}, the table says {expected.render()}"
        return answer

    def expect_frames(self) -> None:
        """The input frames of the requests under test that reached the exchange: the table's count."""
        got = self.frames(*self.tested)
        assert self.expected.frames in (None, got), (
            f"{self.name}: {got} input frames reached the exchange, the table says {self.expected.render()}")
        self.frames_checked = True

    def frames(self, *refs: str) -> int:
        """Input frames the exchange received for these requests (refs never sent count nothing)."""
        asked = [self.asked[ref] for ref in refs if ref in self.asked]
        return sum(1 for r in self.sim.received if any(a.caused(r.event) for a in asked))

    def done_at_exchange(self, ref: str) -> bool:
        return self.asked[ref].done_at(self.sim)

    async def wait_input(self, ref: str) -> None:
        """Until the exchange has received the first input frame of *ref*."""
        with trio.fail_after(GUARD_S):
            await self.sim.wait_received(lambda r: self.asked[ref].caused(r.event))

    async def wait_frame_sent(self, ref: str) -> None:
        """Until the daemon has written the first input frame of *ref* (``frame.sent``)."""
        await self.logs.wait_for("frame.sent", **self.asked[ref].first_frame())

    async def wait_notes(self, text: str, count: int) -> None:
        """Until *count* notifications with *text* have been routed (to a requester, to no one, or unmatched)."""
        await self.logs.wait_until(lambda: sum(len(self.logs.find(event, text=text)) for event in (
            "notification.received", "notification.unmatched")) >= count, what=f"{count} notifications {text!r}")

    async def wait_authenticated(self, count: int) -> None:
        with trio.fail_after(GUARD_S):
            await self.sim.wait_authenticated(count)

    async def wait_state(self, state: str) -> None:
        with trio.fail_after(GUARD_S):
            await board_reaches(self.board, lambda board: board.state == state)

    async def wait_pending(self, count: int) -> None:
        with trio.fail_after(GUARD_S):
            await board_reaches(self.board, lambda board: board.pending == count)

    async def maintenance_on(self) -> None:
        await self.sim.send_info(20060)
        await self.wait_state("maintenance")

    async def maintenance_off(self) -> None:
        await self.sim.send_info(20061)

    async def relink_at_the_exchange(self, fault: str) -> None:
        """A fault that ends the link at the exchange's side (auth faults: a drop, then the next auth fails)."""
        if fault == "drop_close":
            self.nursery.start_soon(partial(self.sim.drop, abrupt=False, code=1001, reason="going away"))
        elif fault == "restart_20051":
            await self.sim.send_info(20051)
        else:
            if fault == "auth_rejected":
                self.sim.reject_auth(1)
            elif fault == "nonce_error":
                self.sim.nonce_error(1)
            await self.sim.drop(abrupt=True)

    async def stall_detected(self) -> None:
        """Stall the exchange and wait until the daemon has declared the link dead and given it up."""
        silent, down = len(self.logs.find("exchange.link_silent")), len(self.logs.find("exchange.disconnected"))
        self.sim.stall()
        await self.logs.wait_for("exchange.link_silent", count=silent + 1)
        await self.logs.wait_for("exchange.disconnected", count=down + 1)

    async def send_garbage(self, *extra: str) -> None:
        before = len(self.logs.find("exchange.bad_frame"))
        for text in (*GARBAGE, *extra):
            await self.sim.send_raw(text)
        await self.logs.wait_for("exchange.bad_frame", count=before + len(GARBAGE))

    def took(self, ref: str) -> float:
        return trio.current_time() - self._sent_at[ref]

    async def finish(self) -> None:
        """The scenario checked its whole cell of the table; the session is back and quiet; nothing more comes for
        any request; the daemon says ready."""
        assert len(self.tested) == len(self.expected.answers), (
            f"{self.name}: requests under test {self.tested}, the table has {self.expected.render()}")
        assert self.checked == set(self.tested) and self.frames_checked, f"{self.name}: part of its cell unchecked"
        self.sim.stall(False)
        self.sim.delay_answers(0)
        with trio.fail_after(GUARD_S):
            await board_reaches(self.board, lambda board: board.state == "ready" and board.pending == 0)
        for ref in self.sent:
            await self.answer(ref)
        # the connection is idle: the ping's answer is the next line, and nothing precedes it
        await self.client.send({"op": "ping", "ref": "idle"})
        assert await self.client.receive() == {"ok": True, "op": "ping", "ref": "idle"}
        status = await self.client.request({"op": "status", "ref": "status"})
        assert status["status"]["state"] == "ready" and status["status"]["pending"] == 0, status
        for ref in self.sent:
            assert len(self.logs.find("command.completed", ref=ref)) == 1, ref
        self.no_submit_twice()

    def no_submit_twice(self) -> None:
        """A submit is never resent: no request's fon reaches the exchange more often than it was asked for."""
        fons = [r.event for r in self.sim.received if isinstance(r.event, NewOfferInput)]
        for asked in {a for a in self.asked.values() if a.submits()}:
            times = sum(1 for a in self.asked.values() if a == asked)
            received = sum(1 for event in fons if asked.caused(event))
            assert received <= times, f"{self.name}: {asked} asked {times}x, its fon reached the exchange {received}x"


async def run_cell(socket_dir: Path, fault: str, scenario: Callable[[Cell], Awaitable[None]],
                   expected: Expect, *, op: str = "cancel") -> Cell:
    """Run *scenario* under *fault* on a fresh simulator, relay and daemon, then ``Cell.finish``; stop cleanly."""
    logs = LogWatch()
    with structlog.testing.capture_logs(processors=[logs]):
        sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=6, seed=3, hb_interval=0.2))
        async with trio.open_nursery() as nursery:
            sim_url = await nursery.start(sim.serve)
            net = Network(int(sim_url.rsplit(":", 1)[1].split("/")[0]))
            url = await nursery.start(net.serve)
            config = test_config(url, socket_dir / "bfxd.sock", heartbeat_timeout=HEARTBEAT_S)
            config = attrs.evolve(config, exchange=attrs.evolve(config.exchange, auth_timeout=AUTH_TIMEOUT_S))
            stop, stopped = trio.Event(), trio.Event()

            async def daemon(task_status: trio.TaskStatus[SessionBoard] = trio.TASK_STATUS_IGNORED) -> None:
                try:
                    await run_daemon(config, test_credentials(), stop=stop,
                                     link=fast_link(url, heartbeat_timeout=HEARTBEAT_S), task_status=task_status)
                finally:
                    stopped.set()

            board = await nursery.start(daemon)
            with trio.fail_after(GUARD_S):
                await board_reaches(board, lambda b: b.state == "ready" and b.offers == len(sim.offers))
            async with await LineClient.connect(config.socket.path) as client:
                cell = Cell(sim, net, nursery, board, logs, client, fault, op, expected,
                            f"{op}/{fault}/{getattr(scenario, '__name__', 'scenario')}", sorted(sim.offers))
                await scenario(cell)
                await cell.finish()
            stop.set()
            with trio.fail_after(GUARD_S):
                await stopped.wait()
            nursery.cancel_scope.cancel()
    return cell
