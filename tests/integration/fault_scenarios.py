"""The fault matrix's four states as scenarios: one function per state, each branching on the cell's fault.

A scenario brings its requests into the state, lets the fault strike, and checks the requests under test against
the cell's entry of the table (``Cell.expect``, ``Cell.expect_frames``); the state's own premises (the short
request of ``waiting``, the answered ``a`` of ``answered``) are checked against ``WAITING_SHORT`` and ``OK``. The
same scenarios serve every op: a request is named by its slot, and its frames are traced by ``fault_requests``.
"""

from __future__ import annotations

import trio
from tests.integration.fault_cell import DELAY_S, LATE_S, LONG_S, LOST_S, OK, SHORT_S, Cell, Expect

from bfxd.protocol import encode

WAITING_SHORT = Expect(("not_ready",), 0)  # the short request of every `waiting` cell: expired, never sent

# ---- the four states ----------------------------------------------------------------------------------------


A, SHORT, B, C, STRANGER = range(5)  # request slots: the offer a cancel names, or a submit's own fields


async def waiting(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    if fault == "stall":
        await cell.stall_detected()  # no session can be had while the exchange is silent
    else:
        await cell.maintenance_on()
    await cell.ask("short", SHORT, SHORT_S, tested=False)
    await cell.ask("a", A, LOST_S + 1.0 if fault == "lose_inputs" else LONG_S)
    if fault == "rate_limit":
        await cell.ask("b", B, LONG_S)
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
    assert cell.frames("a", "b", "short") == 0  # nothing was sent while waiting
    released = trio.current_time()
    if fault == "stall":
        sim.stall(False)
    else:
        await cell.maintenance_off()
    await cell.expect("a")
    if fault == "rate_limit":
        await cell.expect("b")
    cell.expect_frames()
    if fault == "delay":
        assert trio.current_time() - released >= 2 * DELAY_S  # the auth and the request were both delayed
    if fault == "auth_rejected":
        assert cell.logs.find("exchange.auth_failed")
    if fault == "nonce_error":
        assert cell.logs.find("exchange.auth_nonce_error")
    assert cell.frames("short") == WAITING_SHORT.frames  # not_ready promised the frame never goes out, even now


async def about_to_send(cell: Cell) -> None:
    fault, sim, net = cell.fault, cell.sim, cell.net
    net.hold()
    await cell.ask("a", A, LOST_S if fault == "lose_inputs" else LONG_S)
    if fault == "rate_limit":
        await cell.ask("b", B, LONG_S)
        await cell.wait_frame_sent("b")
    await cell.wait_frame_sent("a")
    assert cell.frames("a", "b") == 0  # written by the daemon, held by the network
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
        await cell.wait_input("a")  # received by a silent exchange: never answered
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
    cell.expect_frames()
    if fault == "delay":
        assert trio.current_time() - released >= DELAY_S
    if fault in ("delay", "lose_inputs", "malformed"):
        assert cell.board.reconnects == reconnects  # these faults never cost the link
    else:
        assert cell.board.reconnects > reconnects


def unsolicited(cell: Cell, status: str, text: str, offer_id: int) -> tuple[str, ...]:
    """Well-formed answers nobody asked for: a foc-req and an fon-req naming *offer_id* (with its fields while the
    exchange still lists it)."""
    offer = cell.sim.offers.get(offer_id)
    info = offer.to_wire() if offer is not None else [offer_id, *[None] * 20]
    return tuple(encode.notification_frame(mts=1, type=kind, status=status, text=text, notify_info=info)
                 for kind in ("foc-req", "fon-req"))


async def sent(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    reconnects = cell.board.reconnects
    if fault == "delay":
        sim.delay_answers(LATE_S)
        await cell.ask("a", A, LOST_S)
        await cell.wait_input("a")
        await cell.expect("a")
        await cell.logs.wait_for("notification.received", type=cell.asked["a"].answer_type)  # late, went nowhere
        assert cell.done_at_exchange("a")  # the exchange acted on it: `timeout` meant "outcome unknown"
        cell.expect_frames()
        return
    if fault == "malformed":
        sim.delay_answers(DELAY_S)
        await cell.ask("a", A, LONG_S)
        await cell.wait_input("a")
        await cell.send_garbage(*unsolicited(cell, "ERROR", "not yours", cell.offer(STRANGER)))
        await cell.expect("a")
        cell.expect_frames()
        assert cell.board.reconnects == reconnects
        return
    sim.lose_inputs(1)  # the exchange reads the frame and never answers it
    await cell.ask("a", A, LOST_S if fault == "lose_inputs" else LONG_S)
    await cell.logs.wait_for("simulator.input_lost")  # read and dropped (not merely received) before the fault
    if fault == "lose_inputs":
        await cell.expect("a")
        assert not cell.done_at_exchange("a")
        await cell.ask("retry", A, LONG_S)  # retried at once: a fresh frame, not the lost one's wait
        await cell.expect("retry")
        cell.expect_frames()
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
        await cell.ask("b", B, LONG_S)
        await cell.ask("c", C, LONG_S)
    await cell.expect("a")
    if fault == "rate_limit":
        await cell.expect("b")
        await cell.expect("c")
    cell.expect_frames()  # a cancel lost with the link is sent again if the snapshot still lists its offer
    assert cell.board.reconnects > reconnects


async def answered(cell: Cell) -> None:
    fault, sim = cell.fault, cell.sim
    if fault == "rate_limit":  # room for `a`'s inputs (a replace has two), none for `b`'s
        sim.set_rate_limit(1 if cell.op != "replace" else 2, 60.0)
    await cell.ask("a", A, LONG_S, tested=False)
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
        # well-formed, unsolicited: a second answer to `a`, and answers for what nobody asked
        again = (cell.answers["a"].get("offer") or {}).get("id") or cell.offer(A)
        await cell.send_garbage(*unsolicited(cell, "SUCCESS", "again", again),
                                *unsolicited(cell, "SUCCESS", "stranger", cell.offer(STRANGER)))
        await cell.wait_notes("stranger", 2)
    await cell.ask("b", B, LOST_S if fault == "lose_inputs" else LONG_S)
    if fault in ("maintenance", "stall"):
        await cell.logs.wait_for("command.received", ref="b")
        if cell.op != "replace":  # a replace waits for the session before it puts an input in flight
            await cell.wait_pending(1)
        assert cell.frames("b") == 0  # held
    if fault == "maintenance":
        await cell.maintenance_off()
    elif fault == "stall":
        sim.stall(False)
    await cell.expect("b")
    if fault == "delay":
        assert cell.took("b") >= DELAY_S
    cell.expect_frames()
    assert cell.frames("a") == cell.asked["a"].inputs  # the answered request is never sent again, whatever came after
    if fault in ("delay", "lose_inputs", "malformed"):
        assert cell.board.reconnects == reconnects
    else:
        assert cell.board.reconnects > reconnects


SCENARIOS = {"waiting": waiting, "about_to_send": about_to_send, "sent": sent, "answered": answered}
