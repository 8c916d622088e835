"""The fault matrix: every simulator fault crossed with every state a request can be in when it strikes.

Each cell runs its own simulator, a test-owned TCP relay standing for the network between daemon and exchange,
and an in-process daemon (``run_daemon``, relaxed connection guard, heartbeat timeout 1 s, auth timeout 1 s),
and talks to the daemon only through its Unix socket. Every cell checks the same four things:

1. each request got exactly one final answer, and it is the one in the table below;
2. the ``foc`` frames the exchange saw are the ones the daemon had to send (no lost resend, no extra one);
3. nothing else follows: after the session has recovered, a ``ping`` on the same connection is answered and no
   line precedes its answer, and the audit log holds exactly one ``command.completed`` per request;
4. the daemon ends ``ready`` with nothing pending, and stops cleanly (a daemon that does not drain fails the cell).

States, made exact (``a`` is the request the cell is about):

- ``waiting``: ``a`` is pending in the daemon with no ready session when the fault strikes. The session is held
  by exchange maintenance (info 20060, released by 20061), except for the stall, which holds it by itself. A
  second request with a short deadline expires during the hold: it is answered ``not_ready`` and its frame is
  never sent, not even once the session is back.
- ``about_to_send``: the daemon has written ``a``'s frame (``frame.sent`` is logged) but the network holds it, so
  the exchange has not received it, when the fault strikes. The relay then either lets it through (faults that
  keep the link) or loses it with the link (faults that end it).
- ``sent``: the exchange has received ``a``'s frame and will not answer it on this link (it lost it, or, for the
  delay and malformed-frame faults, delays its answer) when the fault strikes.
- ``answered``: ``a`` has its answer when the fault strikes; ``b``, sent afterwards, is the one under test, and
  ``a`` must be neither sent again nor answered again.

Expected final answer of the request under test (``ok`` = ``{"ok": true, "status": "SUCCESS"}``); the number in
brackets is how many ``foc`` frames for that offer reach the exchange::

    fault          waiting           about_to_send     sent               answered (b)
    drop_abrupt    ok [1]            ok [1]            ok [2]             ok [1]
    drop_close     ok [1]            ok [1]            ok [2]             ok [1]
    restart_20051  ok [1]            ok [1]            ok [2]             ok [1]
    maintenance    ok [1]            ok [2] (1)        ok [2]             ok [1] (held, then sent)
    stall          ok [1]            ok [2]            ok [2]             ok [1]
    delay          ok [1]            ok [1]            timeout [1] (2)    ok [1]
    lose_inputs    timeout [1]       timeout [1]       timeout [1] (3)    timeout [1]
    auth_rejected  ok [1]            ok [1] (4)        ok [2] (4)         ok [1] (4)
    nonce_error    ok [1]            ok [1] (4)        ok [2] (4)         ok [1] (4)
    malformed      ok [1]            ok [1]            ok [1] (5)         ok [1] (5)
    rate_limit     ok, ok [3] (6)    ok, ok [3] (6)    ok x3 (6)          ok [2] (6)

    waiting, every fault: the short request → not_ready [0].

(1) The held frame reaches the exchange during maintenance and is refused (error 11000, which names no request);
    after 20061 the relink puts it in doubt, the fresh snapshot still lists the offer, and it is sent again.
(2) The answer is delayed past the deadline: ``timeout``; when the late answer arrives it goes nowhere.
(3) And a retry of the same offer right after the timeout sends a fresh frame and succeeds [2 in all].
(4) Auth faults act on the next auth, so the link is replaced to reach them: ``about_to_send`` loses the held
    frame with the link (the relay cuts it), ``sent``/``answered`` drop the link at the exchange.
(5) Including well-formed but unsolicited notifications (for the answered offer, for unknown ids): nothing
    reaches a client that did not ask.
(6) A limit of one input per connection: the input over it is refused (error 10001) and the link closed (1008);
    every request still ends ``ok``: the refused frame is in doubt, the snapshot lists its offer, it is resent.
    Brackets count frames for all the cell's offers together (the order of two cancels sent at once is free).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import attrs
import pytest
import structlog
import trio
from tests.integration.helpers import (
    API_KEY,
    API_SECRET,
    GUARD_S,
    LineClient,
    fast_link,
    test_config,
    test_credentials,
)
from tests.logwatch import LogWatch

from bfxd.actors.session import SessionBoard
from bfxd.daemon import run_daemon
from bfxd.protocol import CancelOfferInput, encode
from bfxd.simulator import Simulator, SimulatorConfig
from conftest import board_reaches

FAULTS = ("drop_abrupt", "drop_close", "restart_20051", "maintenance", "stall", "delay", "lose_inputs",
          "auth_rejected", "nonce_error", "malformed", "rate_limit")
STATES = ("waiting", "about_to_send", "sent", "answered")

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

OK = "ok"


# ---- the network: a relay the test can hold and cut ------------------------------------------------------


@attrs.define(eq=False)
class _Link:
    scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    to_exchange: trio.Event = attrs.Factory(trio.Event)  # set: bytes flow that way
    to_daemon: trio.Event = attrs.Factory(trio.Event)

    def __attrs_post_init__(self) -> None:
        self.to_exchange.set()
        self.to_daemon.set()


class Network:
    """A TCP relay between the daemon and the simulator. ``hold()`` stops the bytes of the live links towards the
    exchange (the daemon's writes still succeed: the frame is on the wire, not at the exchange); ``blackhole()``
    stops both ways (a dead path with the TCP connections still open); ``release()`` lets everything through;
    ``cut()`` ends the live links at once, losing what they hold. A link ends as a whole when either side closes."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.url = ""
        self._links: set[_Link] = set()

    async def serve(self, *, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, self._relay, 0, host="127.0.0.1"))
            self.url = f"ws://127.0.0.1:{listeners[0].socket.getsockname()[1]}/ws/2"
            task_status.started(self.url)

    def hold(self) -> None:
        for link in self._links:
            if link.to_exchange.is_set():
                link.to_exchange = trio.Event()

    def blackhole(self) -> None:
        self.hold()
        for link in self._links:
            if link.to_daemon.is_set():
                link.to_daemon = trio.Event()

    def release(self) -> None:
        for link in self._links:
            link.to_exchange.set()
            link.to_daemon.set()

    def cut(self) -> None:
        for link in list(self._links):
            link.scope.cancel()

    async def _relay(self, daemon_side: trio.SocketStream) -> None:
        async with daemon_side:
            try:
                exchange_side = await trio.open_tcp_stream("127.0.0.1", self.target_port)
            except OSError:
                return
            link = _Link()
            self._links.add(link)
            try:
                async with exchange_side:
                    with link.scope:
                        async with trio.open_nursery() as pumps:
                            pumps.start_soon(self._pump, daemon_side, exchange_side, link, "to_exchange")
                            pumps.start_soon(self._pump, exchange_side, daemon_side, link, "to_daemon")
            finally:
                self._links.discard(link)

    @staticmethod
    async def _pump(source: trio.SocketStream, sink: trio.SocketStream, link: _Link, direction: str) -> None:
        try:
            while chunk := await source.receive_some(65536):
                await getattr(link, direction).wait()
                await sink.send_all(chunk)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        link.scope.cancel()  # one side ended: so does the link, both ways


# ---- one cell -----------------------------------------------------------------------------------------------


@attrs.define
class Cell:
    sim: Simulator
    net: Network
    nursery: trio.Nursery  # for faults that take a while to return (a polite drop waits for the close)
    board: SessionBoard
    logs: LogWatch
    client: LineClient
    fault: str
    offers: list[int]
    answers: dict[str, dict[str, Any]] = attrs.Factory(dict)
    sent: list[str] = attrs.Factory(list)
    _sent_at: dict[str, float] = attrs.Factory(dict)

    def offer(self, index: int) -> int:
        return self.offers[index]

    async def cancel(self, ref: str, offer_id: int, deadline_s: float) -> None:
        """Send a cancel with its own deadline (not waiting for its answer)."""
        self.sent.append(ref)
        self._sent_at[ref] = trio.current_time()
        await self.client.send({"op": "cancel", "id": offer_id, "ref": ref, "timeout": deadline_s})

    async def answer(self, ref: str) -> dict[str, Any]:
        """The final answer to *ref*, reading (and keeping) the answers that come before it."""
        while ref not in self.answers:
            line = await self.client.receive()
            got = line.get("ref")
            assert got in self.sent, f"an answer nobody asked for: {line}"
            assert got not in self.answers, f"a second answer to {got}: {line} after {self.answers[got]}"
            self.answers[got] = line
        return self.answers[ref]

    async def expect(self, ref: str, outcome: str) -> dict[str, Any]:
        answer = await self.answer(ref)
        assert answer["op"] == "cancel"
        if outcome == OK:
            assert answer["ok"] is True and answer["status"] == "SUCCESS", str(answer)
        else:
            assert answer["ok"] is False and answer["error"]["type"] == outcome, str(answer)
        return answer

    def foc_frames(self, *offer_ids: int) -> int:
        return sum(1 for r in self.sim.received
                   if isinstance(r.event, CancelOfferInput) and r.event.offer_id in offer_ids)

    async def wait_foc(self, offer_id: int, count: int = 1) -> None:
        with trio.fail_after(GUARD_S):
            await self.sim.wait_received(
                lambda r: isinstance(r.event, CancelOfferInput) and r.event.offer_id == offer_id, count=count)

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
        """The session is back and quiet; nothing more comes for any request; the daemon says ready."""
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


async def run_cell(socket_dir: Path, fault: str, scenario: Callable[[Cell], Awaitable[None]]) -> Cell:
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
                cell = Cell(sim, net, nursery, board, logs, client, fault, sorted(sim.offers))
                await scenario(cell)
                await cell.finish()
            stop.set()
            with trio.fail_after(GUARD_S):
                await stopped.wait()
            nursery.cancel_scope.cancel()
    return cell


# ---- the four states ----------------------------------------------------------------------------------------


async def waiting(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    a, short, b = cell.offer(0), cell.offer(1), cell.offer(2)
    if fault == "stall":
        await cell.stall_detected()  # no session can be had while the exchange is silent
    else:
        await cell.maintenance_on()
    await cell.cancel("short", short, SHORT_S)
    await cell.cancel("a", a, LOST_S + 1.0 if fault == "lose_inputs" else LONG_S)
    if fault == "rate_limit":
        await cell.cancel("b", b, LONG_S)
    await cell.expect("short", "not_ready")
    # the fault strikes while the requests wait
    if fault in ("drop_abrupt", "drop_close", "restart_20051"):
        count = sim.authenticated_count
        await cell.relink_at_the_exchange(fault)
        with trio.fail_after(GUARD_S):
            await sim.wait_authenticated(count + 1)
        await cell.wait_state("maintenance")  # a new link, still in maintenance: still waiting
    elif fault == "delay":
        sim.delay_answers(DELAY_S)
    elif fault == "lose_inputs":
        sim.lose_inputs(1)
    elif fault == "auth_rejected":
        sim.reject_auth(1)
    elif fault == "nonce_error":
        sim.nonce_error(1)
    elif fault == "malformed":
        await cell.send_garbage()
    elif fault == "rate_limit":
        sim.set_rate_limit(1, 60.0)
    assert cell.foc_frames(a, b, short) == 0  # nothing was sent while waiting
    released = trio.current_time()
    if fault == "stall":
        sim.stall(False)
    else:
        await cell.maintenance_off()
    if fault == "rate_limit":
        await cell.expect("a", OK)
        await cell.expect("b", OK)
        assert cell.foc_frames(a, b) == 3
    else:
        await cell.expect("a", "timeout" if fault == "lose_inputs" else OK)
        assert cell.foc_frames(a) == 1
    if fault == "delay":
        assert trio.current_time() - released >= 2 * DELAY_S  # the auth and the cancel were both delayed
    if fault == "auth_rejected":
        assert cell.logs.find("exchange.auth_failed")
    if fault == "nonce_error":
        assert cell.logs.find("exchange.auth_nonce_error")
    assert cell.foc_frames(short) == 0  # not_ready promised the frame would never go out, even now


async def about_to_send(cell: Cell) -> None:
    fault, sim, net = cell.fault, cell.sim, cell.net
    a, b = cell.offer(0), cell.offer(2)
    net.hold()
    await cell.cancel("a", a, LOST_S if fault == "lose_inputs" else LONG_S)
    if fault == "rate_limit":
        await cell.cancel("b", b, LONG_S)
        await cell.logs.wait_for("frame.sent", kind="foc", offer_id=b)
    await cell.logs.wait_for("frame.sent", kind="foc", offer_id=a)
    assert cell.foc_frames(a, b) == 0  # written by the daemon, held by the network
    reconnects = cell.board.reconnects
    if fault == "drop_abrupt":
        await sim.drop(abrupt=True)  # the relay's link ends with the exchange's side: the held frame is lost
    elif fault == "drop_close":
        await cell.relink_at_the_exchange(fault)
        await cell.logs.wait_for("exchange.disconnected")
        net.cut()  # the daemon's close answer and the held frame are lost with the link
    elif fault == "restart_20051":
        await sim.send_info(20051)
        await cell.logs.wait_for("exchange.restarting")
        net.cut()
    elif fault == "maintenance":
        await cell.maintenance_on()
        net.release()  # the frame reaches an exchange in maintenance: refused with error 11000
        await cell.logs.wait_for("exchange.error", code=11000)
        await cell.maintenance_off()
    elif fault == "stall":
        sim.stall()
        net.release()
        await cell.wait_foc(a)  # received by a silent exchange: never answered
        await cell.logs.wait_for("exchange.link_silent")
        sim.stall(False)
    elif fault == "delay":
        sim.delay_answers(DELAY_S)
    elif fault == "lose_inputs":
        sim.lose_inputs(1)
    elif fault in ("auth_rejected", "nonce_error"):
        if fault == "auth_rejected":
            sim.reject_auth(1)
        else:
            sim.nonce_error(1)
        net.cut()  # the link is lost with the held frame; the next auth meets the fault
    elif fault == "malformed":
        await cell.send_garbage()
    elif fault == "rate_limit":
        sim.set_rate_limit(1, 60.0)
    released = trio.current_time()
    net.release()
    if fault == "rate_limit":
        await cell.expect("a", OK)
        await cell.expect("b", OK)
        assert cell.foc_frames(a, b) == 3
    else:
        await cell.expect("a", "timeout" if fault == "lose_inputs" else OK)
        assert cell.foc_frames(a) == (2 if fault in ("maintenance", "stall") else 1)
    if fault == "delay":
        assert trio.current_time() - released >= DELAY_S
    if fault in ("delay", "lose_inputs", "malformed"):
        assert cell.board.reconnects == reconnects  # these faults never cost the link
    else:
        assert cell.board.reconnects > reconnects


async def sent(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    a, b, c = cell.offer(0), cell.offer(2), cell.offer(3)
    reconnects = cell.board.reconnects
    if fault == "delay":
        sim.delay_answers(LATE_S)
        await cell.cancel("a", a, LOST_S)
        await cell.wait_foc(a)
        await cell.expect("a", "timeout")
        await cell.logs.wait_for("notification.received", offer_id=a)  # the late answer came, and went nowhere
        assert a not in sim.offers  # the exchange did cancel it: `timeout` meant "outcome unknown"
        assert cell.foc_frames(a) == 1
        return
    if fault == "malformed":
        sim.delay_answers(DELAY_S)
        await cell.cancel("a", a, LONG_S)
        await cell.wait_foc(a)
        unsolicited = encode.notification_frame(mts=1, type="foc-req", status="ERROR", text="not yours",
                                              notify_info=[cell.offer(4), *[None] * 20])
        await cell.send_garbage(unsolicited)
        await cell.expect("a", OK)
        assert cell.foc_frames(a) == 1 and cell.board.reconnects == reconnects
        return
    sim.lose_inputs(1)  # the exchange reads the frame and never answers it
    await cell.cancel("a", a, LOST_S if fault == "lose_inputs" else LONG_S)
    await cell.logs.wait_for("simulator.input_lost")  # read and dropped (not merely received) before the fault
    if fault == "lose_inputs":
        await cell.expect("a", "timeout")
        assert a in sim.offers
        await cell.cancel("retry", a, LONG_S)  # retried at once: a fresh frame, not the lost one's wait
        await cell.expect("retry", OK)
        assert cell.foc_frames(a) == 2
        return
    if fault in ("drop_abrupt", "drop_close", "restart_20051", "auth_rejected", "nonce_error"):
        await cell.relink_at_the_exchange(fault)
    elif fault == "maintenance":
        await cell.maintenance_on()
        await cell.maintenance_off()
    elif fault == "stall":
        await cell.stall_detected()
        sim.stall(False)
    elif fault == "rate_limit":
        sim.set_rate_limit(1, 60.0)
        await cell.cancel("b", b, LONG_S)
        await cell.cancel("c", c, LONG_S)
    await cell.expect("a", OK)
    if fault == "rate_limit":
        await cell.expect("b", OK)
        await cell.expect("c", OK)
    else:
        assert cell.foc_frames(a) == 2  # lost with the link, sent again after the snapshot still listed it
    assert cell.board.reconnects > reconnects


async def answered(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    a, b = cell.offer(0), cell.offer(2)
    if fault == "rate_limit":
        sim.set_rate_limit(1, 60.0)
    await cell.cancel("a", a, LONG_S)
    await cell.expect("a", OK)
    reconnects, auths = cell.board.reconnects, sim.authenticated_count
    if fault in ("drop_abrupt", "drop_close", "restart_20051", "auth_rejected", "nonce_error"):
        await cell.relink_at_the_exchange(fault)
        with trio.fail_after(GUARD_S):
            await sim.wait_authenticated(auths + 1)
        await cell.wait_state("ready")
    elif fault == "maintenance":
        await cell.maintenance_on()
    elif fault == "stall":
        await cell.stall_detected()
    elif fault == "delay":
        sim.delay_answers(DELAY_S)
    elif fault == "lose_inputs":
        sim.lose_inputs(1)
    elif fault == "malformed":
        # well-formed, unsolicited: a second answer to `a`, and an answer for an offer nobody cancels
        again = encode.notification_frame(mts=1, type="foc-req", status="SUCCESS", text="again",
                                        notify_info=[a, *[None] * 20])
        stranger = encode.notification_frame(mts=1, type="foc-req", status="SUCCESS", text="stranger",
                                           notify_info=[cell.offer(4), *[None] * 20])
        await cell.send_garbage(again, stranger)
        await cell.logs.wait_for("notification.received", text="stranger")
    await cell.cancel("b", b, LOST_S if fault == "lose_inputs" else LONG_S)
    if fault == "maintenance":
        await cell.wait_pending(1)
        assert cell.foc_frames(b) == 0  # held
        await cell.maintenance_off()
    elif fault == "stall":
        await cell.wait_pending(1)
        sim.stall(False)
    await cell.expect("b", "timeout" if fault == "lose_inputs" else OK)
    if fault == "delay":
        assert cell.took("b") >= DELAY_S
    assert cell.foc_frames(b) == (2 if fault == "rate_limit" else 1)
    assert cell.foc_frames(a) == 1  # the answered cancel is never sent again, whatever happened after
    if fault in ("delay", "lose_inputs", "malformed"):
        assert cell.board.reconnects == reconnects
    else:
        assert cell.board.reconnects > reconnects


SCENARIOS = {"waiting": waiting, "about_to_send": about_to_send, "sent": sent, "answered": answered}


@pytest.mark.parametrize("state", STATES)
@pytest.mark.parametrize("fault", FAULTS)
async def test_fault_matrix(socket_dir: Path, fault: str, state: str) -> None:
    """Under each fault, in each state, every request gets exactly one final answer, the one in the table, and
    the daemon ends ready."""
    await run_cell(socket_dir, fault, SCENARIOS[state])


async def test_answer_lost_with_the_link_and_the_offer_gone_is_not_active(socket_dir: Path) -> None:
    """A frame sent, the offer executed at the exchange, the link lost before any answer: the fresh snapshot
    settles the request `not_active` (once), and no frame is sent again."""

    async def scenario(cell: Cell) -> None:
        a = cell.offer(0)
        cell.sim.lose_inputs(1)
        await cell.cancel("a", a, LONG_S)
        await cell.wait_foc(a)
        await cell.sim.execute_offer(a)
        await cell.sim.drop(abrupt=True)
        await cell.expect("a", "not_active")
        assert cell.foc_frames(a) == 1

    await run_cell(socket_dir, "drop_abrupt", scenario)


async def test_a_dead_link_is_given_up_before_its_close_handshake(socket_dir: Path) -> None:
    """Once the heartbeat declares the link dead, a cancel waits for the next session (``not_ready`` at a short
    deadline) even while the polite close still waits for a peer that cannot answer; it is never handed to the
    dead link and reported sent (``timeout``)."""

    async def scenario(cell: Cell) -> None:
        cell.net.blackhole()  # the path is dead, the TCP connections stay open: the close frame goes nowhere
        await cell.logs.wait_for("exchange.link_silent")
        await trio.testing.wait_all_tasks_blocked()  # the daemon has finished reacting: it awaits the close answer
        await cell.cancel("short", cell.offer(1), SHORT_S)
        await cell.expect("short", "not_ready")
        assert not cell.logs.find("exchange.disconnected")  # still inside the close handshake's timeout
        cell.net.cut()
        await cell.cancel("a", cell.offer(0), LONG_S)
        await cell.expect("a", OK)
        assert cell.foc_frames(cell.offer(1)) == 0

    await run_cell(socket_dir, "stall", scenario)


def test_the_matrix_is_complete() -> None:
    """Every fault has a cell in every state (the docstring's table and the parameters agree)."""
    table = [line.split() for line in (__doc__ or "").splitlines() if line.startswith("    ") and "[" in line
             and line.split()[0] in FAULTS]
    assert [row[0] for row in table] == list(FAULTS)
    assert set(SCENARIOS) == set(STATES)
    assert all(len(row) >= 5 for row in table)
