"""The fault matrix: every simulator fault crossed with every state a request can be in when it strikes.

Each cell (``fault_cell.run_cell``) runs its own simulator, a test-owned TCP relay standing for the network between
daemon and exchange (``relay.Network``), and an in-process daemon, and talks to the daemon only through its Unix
socket. Every cell checks the same four things:

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

The table is ``EXPECTED`` written out (``test_the_docstring_table_is_the_data`` keeps the two equal), and the
scenarios assert against ``EXPECTED``, not against literals. A cell lists the final answers of its requests under
test in the order they were sent (``ok`` = ``{"ok": true, "status": "SUCCESS"}``, otherwise the error type) and,
in brackets, how many ``foc`` frames for their offers reach the exchange::

    fault          waiting              about_to_send        sent                 answered (b)
    drop_abrupt    ok [1]               ok [1]               ok [2]               ok [1]
    drop_close     ok [1]               ok [1]               ok [2]               ok [1]
    restart_20051  ok [1]               ok [1]               ok [2]               ok [1]
    maintenance    ok [1]               ok [2] (1)           ok [2]               ok [1] (7)
    stall          ok [1]               ok [2]               ok [2]               ok [1]
    delay          ok [1]               ok [1]               timeout [1] (2)      ok [1]
    lose_inputs    timeout [1]          timeout [1]          timeout, ok [2] (3)  timeout [1]
    auth_rejected  ok [1]               ok [1] (4)           ok [2] (4)           ok [1] (4)
    nonce_error    ok [1]               ok [1] (4)           ok [2] (4)           ok [1] (4)
    malformed      ok [1]               ok [1]               ok [1] (5)           ok [1] (5)
    rate_limit     ok, ok [3] (6)       ok, ok [3] (6)       ok, ok, ok [6] (6)   ok [2] (6)

    waiting, every fault: the short request -> not_ready [0].

(1) The held frame reaches the exchange during maintenance and is refused (error 11000, which names no request);
    after 20061 the relink puts it in doubt, the fresh snapshot still lists the offer, and it is sent again.
(2) The answer is delayed past the deadline: ``timeout``; when the late answer arrives it goes nowhere.
(3) The lost frame ends ``timeout``; a retry of the same offer right after it sends a fresh frame and succeeds.
(4) Auth faults act on the next auth, so the link is replaced to reach them: ``about_to_send`` loses the held
    frame with the link (the relay cuts it), ``sent``/``answered`` drop the link at the exchange.
(5) Including well-formed but unsolicited notifications (for the answered offer, for unknown ids): nothing
    reaches a client that did not ask.
(6) A limit of one input per connection: the input over it is refused (error 10001) and the link closed (1008);
    every request still ends ``ok``: the refused frame is in doubt, the snapshot lists its offer, it is resent
    (the order of two cancels sent at once is free, their count is not).
(7) ``b`` is held while the exchange is in maintenance (nothing is sent), then sent once it ends.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import trio
from tests.integration.fault_cell import (
    DELAY_S,
    LATE_S,
    LONG_S,
    LOST_S,
    OK,
    SHORT_S,
    TIMEOUT,
    Cell,
    Expect,
    ok,
    run_cell,
    table_text,
    timeout,
)

from bfxd.protocol import encode

FAULTS = ("drop_abrupt", "drop_close", "restart_20051", "maintenance", "stall", "delay", "lose_inputs",
          "auth_rejected", "nonce_error", "malformed", "rate_limit")
STATES = ("waiting", "about_to_send", "sent", "answered")

# ---- the table as data: one row per fault, a cell per state (STATES order), footnotes as in the docstring ------
ROWS: dict[str, tuple[Expect, Expect, Expect, Expect]] = {
    # fault           waiting                  about_to_send            sent                        answered (b)
    "drop_abrupt":   (ok(1),                   ok(1),                   ok(2),                      ok(1)),
    "drop_close":    (ok(1),                   ok(1),                   ok(2),                      ok(1)),
    "restart_20051": (ok(1),                   ok(1),                   ok(2),                      ok(1)),
    "maintenance":   (ok(1),                   ok(2, 1),                ok(2),                      ok(1, 7)),
    # (1) the held frame is refused in maintenance, then resent; (7) b waits for the maintenance to end
    "stall":         (ok(1),                   ok(2),                   ok(2),                      ok(1)),
    "delay":         (ok(1),                   ok(1),                   timeout(1, 2),              ok(1)),
    # (2) the answer comes after the deadline and goes nowhere
    "lose_inputs":   (timeout(1),              timeout(1),              Expect((TIMEOUT, OK), 2, 3), timeout(1)),
    # (3) the timed-out cancel retried at once: a fresh frame, and it succeeds
    "auth_rejected": (ok(1),                   ok(1, 4),                ok(2, 4),                   ok(1, 4)),
    "nonce_error":   (ok(1),                   ok(1, 4),                ok(2, 4),                   ok(1, 4)),
    # (4) the fault acts on the next auth: the link is replaced to reach it
    "malformed":     (ok(1),                   ok(1),                   ok(1, 5),                   ok(1, 5)),
    # (5) unsolicited but well-formed notifications too: nothing reaches a client that did not ask
    "rate_limit":    (Expect((OK, OK), 3, 6),  Expect((OK, OK), 3, 6),  Expect((OK, OK, OK), 6, 6), ok(2, 6)),
    # (6) one input per connection: the one over it is refused with the link, in doubt, and resent
}
EXPECTED: dict[tuple[str, str], Expect] = {
    (fault, state): cell for fault, row in ROWS.items() for state, cell in zip(STATES, row, strict=True)
}
WAITING_SHORT = Expect(("not_ready",), 0)  # the short request of every `waiting` cell: expired, never sent


def render_table() -> str:
    """``EXPECTED`` as the docstring shows it."""
    return table_text(FAULTS, STATES, lambda fault, state: EXPECTED[fault, state],
                      headings={"answered": "answered (b)"},
                      footer=f"waiting, every fault: the short request -> {WAITING_SHORT.render()}.")


# ---- the four states ----------------------------------------------------------------------------------------


async def waiting(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    a, short, b = cell.offer(0), cell.offer(1), cell.offer(2)
    if fault == "stall":
        await cell.stall_detected()  # no session can be had while the exchange is silent
    else:
        await cell.maintenance_on()
    await cell.cancel("short", short, SHORT_S, tested=False)
    await cell.cancel("a", a, LOST_S + 1.0 if fault == "lose_inputs" else LONG_S)
    if fault == "rate_limit":
        await cell.cancel("b", b, LONG_S)
    await cell.expect("short", *WAITING_SHORT.answers)
    # the fault strikes while the requests wait
    if fault in ("drop_abrupt", "drop_close", "restart_20051"):
        count = sim.authenticated_count
        await cell.relink_at_the_exchange(fault)
        await cell.wait_authenticated(count + 1)
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
    await cell.expect("a")
    if fault == "rate_limit":
        await cell.expect("b")
    cell.expect_focs()
    if fault == "delay":
        assert trio.current_time() - released >= 2 * DELAY_S  # the auth and the cancel were both delayed
    if fault == "auth_rejected":
        assert cell.logs.find("exchange.auth_failed")
    if fault == "nonce_error":
        assert cell.logs.find("exchange.auth_nonce_error")
    assert cell.foc_frames(short) == WAITING_SHORT.focs  # not_ready promised the frame never goes out, even now


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
    await cell.expect("a")
    if fault == "rate_limit":
        await cell.expect("b")
    cell.expect_focs()
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
        await cell.expect("a")
        await cell.logs.wait_for("notification.received", offer_id=a)  # the late answer came, and went nowhere
        assert a not in sim.offers  # the exchange did cancel it: `timeout` meant "outcome unknown"
        cell.expect_focs()
        return
    if fault == "malformed":
        sim.delay_answers(DELAY_S)
        await cell.cancel("a", a, LONG_S)
        await cell.wait_foc(a)
        unsolicited = encode.notification_frame(mts=1, type="foc-req", status="ERROR", text="not yours",
                                              notify_info=[cell.offer(4), *[None] * 20])
        await cell.send_garbage(unsolicited)
        await cell.expect("a")
        cell.expect_focs()
        assert cell.board.reconnects == reconnects
        return
    sim.lose_inputs(1)  # the exchange reads the frame and never answers it
    await cell.cancel("a", a, LOST_S if fault == "lose_inputs" else LONG_S)
    await cell.logs.wait_for("simulator.input_lost")  # read and dropped (not merely received) before the fault
    if fault == "lose_inputs":
        await cell.expect("a")
        assert a in sim.offers
        await cell.cancel("retry", a, LONG_S)  # retried at once: a fresh frame, not the lost one's wait
        await cell.expect("retry")
        cell.expect_focs()
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
    await cell.expect("a")
    if fault == "rate_limit":
        await cell.expect("b")
        await cell.expect("c")
    cell.expect_focs()  # lost with the link, sent again after the snapshot still listed it
    assert cell.board.reconnects > reconnects


async def answered(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    a, b = cell.offer(0), cell.offer(2)
    if fault == "rate_limit":
        sim.set_rate_limit(1, 60.0)
    await cell.cancel("a", a, LONG_S, tested=False)
    await cell.expect("a", OK)  # the state's premise: `a` has its answer before the fault
    reconnects, auths = cell.board.reconnects, sim.authenticated_count
    if fault in ("drop_abrupt", "drop_close", "restart_20051", "auth_rejected", "nonce_error"):
        await cell.relink_at_the_exchange(fault)
        await cell.wait_authenticated(auths + 1)
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
    await cell.expect("b")
    if fault == "delay":
        assert cell.took("b") >= DELAY_S
    cell.expect_focs()
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
    await run_cell(socket_dir, fault, SCENARIOS[state], EXPECTED[fault, state])


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
        await cell.expect("a")
        cell.expect_focs()

    await run_cell(socket_dir, "drop_abrupt", scenario, Expect(("not_active",), 1))


async def test_a_dead_link_is_given_up_before_its_close_handshake(socket_dir: Path) -> None:
    """Once the heartbeat declares the link dead, a cancel waits for the next session (``not_ready`` at a short
    deadline) even while the polite close still waits for a peer that cannot answer; it is never handed to the
    dead link and reported sent (``timeout``)."""

    async def scenario(cell: Cell) -> None:
        cell.net.blackhole()  # the path is dead, the TCP connections stay open: the close frame goes nowhere
        await cell.logs.wait_for("exchange.link_silent")
        await trio.testing.wait_all_tasks_blocked()  # the daemon has finished reacting: it awaits the close answer
        await cell.cancel("short", cell.offer(1), SHORT_S, tested=False)
        await cell.expect("short", "not_ready")
        assert not cell.logs.find("exchange.disconnected")  # still inside the close handshake's timeout
        cell.net.cut()
        await cell.cancel("a", cell.offer(0), LONG_S)
        await cell.expect("a")
        cell.expect_focs()  # sent once, on the next link
        assert cell.foc_frames(cell.offer(1)) == 0

    await run_cell(socket_dir, "stall", scenario, Expect((OK,), 1))


def test_the_matrix_is_complete() -> None:
    """Every fault has an expected outcome and a cell in every state, and every cell expects an answer."""
    assert set(EXPECTED) == {(fault, state) for fault in FAULTS for state in STATES}
    assert list(ROWS) == list(FAULTS)  # the table's rows are in the parameters' order
    assert set(SCENARIOS) == set(STATES)
    assert all(cell.answers and cell.focs >= 0 for cell in EXPECTED.values())


def test_the_docstring_table_is_the_data() -> None:
    """The docstring's table is EXPECTED rendered, and its footnotes are the ones the cells cite."""
    doc = __doc__ or ""
    assert render_table() in doc, "the docstring's table differs from EXPECTED; it should read:\n" + render_table()
    cited = {cell.note for cell in EXPECTED.values() if cell.note is not None}
    assert {int(n) for n in re.findall(r"^\((\d+)\) ", doc, re.MULTILINE)} == cited
