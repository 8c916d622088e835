"""The fault matrix: every simulator fault crossed with every state a request can be in when it strikes.

Each cell (``fault_cell.run_cell``) runs its own simulator, a test-owned TCP relay standing for the network between
daemon and exchange (``relay.Network``), and an in-process daemon, and talks to the daemon only through its Unix
socket. Every cell checks the same four things:

1. each request got exactly one final answer, and it is the one in the table below;
2. the input frames the exchange saw are the ones the daemon had to send (no lost resend, no extra one, and no
   submit twice);
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

``a`` and ``b`` are cancels, submits or replaces, as the table says. The tables are ``EXPECTED``
written out (``test_the_docstring_tables_are_the_data`` keeps them equal), and the scenarios assert against
``EXPECTED``, not against literals. A cell lists the final answers of its requests under test in the order they were
sent (``ok`` = ``{"ok": true, "status": "SUCCESS"}``, otherwise the error type; ``nc`` = ``not_confirmed``) and, in
brackets, how many input frames of theirs (``foc``, ``fon``) reach the exchange.

Cancels::

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
    rate_limit     2x ok [3] (6)        2x ok [3] (6)        3x ok [6] (6)        ok [2] (6)

    waiting, every fault: the short request -> not_ready [0].

Submits (a submit is never sent again: after a drop the fresh snapshot settles it, and no cell may see the exchange
receive one submit twice)::

    fault          waiting              about_to_send        sent                 answered (b)
    drop_abrupt    ok [1]               nc [0] (8)           nc [1] (8)           ok [1]
    drop_close     ok [1]               nc [0] (8)           nc [1] (8)           ok [1]
    restart_20051  ok [1]               nc [0] (8)           nc [1] (8)           ok [1]
    maintenance    ok [1]               nc [1] (8)           nc [1] (8)           ok [1] (7)
    stall          ok [1]               nc [1] (8)           nc [1] (8)           ok [1]
    delay          ok [1]               ok [1]               timeout [1] (2)      ok [1]
    lose_inputs    timeout [1]          timeout [1]          timeout, ok [2] (3)  timeout [1]
    auth_rejected  ok [1]               nc [0] (4)           nc [1] (4)           ok [1] (4)
    nonce_error    ok [1]               nc [0] (4)           nc [1] (4)           ok [1] (4)
    malformed      ok [1]               ok [1]               ok [1] (5)           ok [1] (5)
    rate_limit     {ok, nc} [2] (9)     ok, nc [2] (9)       nc, ok, nc [3] (9)   nc [1] (9)

    waiting, every fault: the short request -> not_ready [0].

Replaces (each a cancel, then a submit of the offer's fields with a new rate; a and b name offers)::

    fault          waiting              about_to_send        sent                 answered (b)
    drop_abrupt    ok [2]               ok [2]               ok [3]               ok [2]
    drop_close     ok [2]               ok [2]               ok [3]               ok [2]
    restart_20051  ok [2]               ok [2]               ok [3]               ok [2]
    maintenance    ok [2]               ok [3] (1)           ok [3]               ok [2] (7)
    stall          ok [2]               ok [3]               ok [3]               ok [2]
    delay          ok [2]               ok [2]               timeout [1] (2)      ok [2]
    lose_inputs    timeout [1]          timeout [1]          timeout, ok [3] (3)  timeout [1]
    auth_rejected  ok [2]               ok [2] (4)           ok [3] (4)           ok [2] (4)
    nonce_error    ok [2]               ok [2] (4)           ok [3] (4)           ok [2] (4)
    malformed      ok [2]               ok [2]               ok [2] (5)           ok [2] (5)
    rate_limit     2x ok|nc [any] (10)  2x ok|nc [any] (10)  3x ok|nc [any] (10)  ok [3] (10)

    waiting, every fault: the short request -> not_ready [0].

(1) The held frame reaches the exchange during maintenance and is refused (error 11000, which names no request);
    after 20061 the relink puts it in doubt, the fresh snapshot still lists the offer, and it is sent again.
(2) The answer is delayed past the deadline: ``timeout``; when the late answer arrives it goes nowhere, though the
    exchange did act on the frame.
(3) The lost frame ends ``timeout``; a retry of the same request right after it sends a fresh frame and succeeds.
(4) Auth faults act on the next auth, so the link is replaced to reach them: ``about_to_send`` loses the held
    frame with the link (the relay cuts it), ``sent``/``answered`` drop the link at the exchange.
(5) Including well-formed but unsolicited notifications (``foc-req`` and ``fon-req``, for the answered request, for
    an offer nobody asked about): nothing reaches a client that did not ask.
(6) A limit of one input per connection: the input over it is refused (error 10001) and the link closed (1008);
    every request still ends ``ok``: the refused frame is in doubt, the snapshot lists its offer, it is resent
    (the order of two cancels sent at once is free, their count is not).
(7) ``b`` is held while the exchange is in maintenance (nothing is sent), then sent once it ends.
(8) The frame went out and the link was lost before its answer (``about_to_send``: lost on the way, 0 frames;
    ``sent``: lost by the exchange; or refused in maintenance): in doubt, never resent, and the fresh snapshot
    has no new offer with its fields: ``not_confirmed``.
(9) As (6), but the submit over the limit is not resent: the snapshot has no such offer, ``not_confirmed``. In
    ``{braces}``: which of two submits released together is over the limit is free, the answers are these.

(10) A replace sends a cancel, then a submit: under the one-input limit its inputs and the other requests' race
     for the link's turn, and the outcome depends on which confirmation comes first. Each request still ends with
     one answer, ``ok`` or ``nc`` (a submit over the limit is not resent), and no fon reaches the exchange twice;
     the answered state's ``b``, alone on its links, is exact: its cancel refused with the link, resent, then its
     submit.

A submit whose answer alone is lost with the link, the exchange having booked its offer, ends ``ok`` with that
offer from the snapshot (``ok/snapshot``): ``test_answer_lost_with_the_link``, for each way to lose a link.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import trio
from tests.integration.fault_cell import (
    LONG_S,
    NOT_CONFIRMED,
    OK,
    OK_SNAPSHOT,
    SHORT_S,
    TIMEOUT,
    Cell,
    Expect,
    not_confirmed,
    ok,
    run_cell,
    table_text,
    timeout,
)
from tests.integration.fault_scenarios import SCENARIOS, SHORT, WAITING_SHORT, A

FAULTS = ("drop_abrupt", "drop_close", "restart_20051", "maintenance", "stall", "delay", "lose_inputs",
          "auth_rejected", "nonce_error", "malformed", "rate_limit")
STATES = ("waiting", "about_to_send", "sent", "answered")
OPS = ("cancel", "submit", "replace")

# ---- the tables as data: one row per fault, a cell per state (STATES order), footnotes as in the docstring ------

Row = tuple[Expect, Expect, Expect, Expect]
NC = NOT_CONFIRMED
OK_NC = f"{OK}|{NC}"
nc = not_confirmed

CANCEL_ROWS: dict[str, Row] = {
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


SUBMIT_ROWS: dict[str, Row] = {
    # fault           waiting                  about_to_send            sent                        answered (b)
    "drop_abrupt":   (ok(1),                   nc(0, 8),                nc(1, 8),                   ok(1)),
    "drop_close":    (ok(1),                   nc(0, 8),                nc(1, 8),                   ok(1)),
    "restart_20051": (ok(1),                   nc(0, 8),                nc(1, 8),                   ok(1)),
    "maintenance":   (ok(1),                   nc(1, 8),                nc(1, 8),                   ok(1, 7)),
    "stall":         (ok(1),                   nc(1, 8),                nc(1, 8),                   ok(1)),
    # (8) in doubt after the drop, never resent: the fresh snapshot has no such offer
    "delay":         (ok(1),                   ok(1),                   timeout(1, 2),              ok(1)),
    "lose_inputs":   (timeout(1),              timeout(1),              Expect((TIMEOUT, OK), 2, 3), timeout(1)),
    "auth_rejected": (ok(1),                   nc(0, 4),                nc(1, 4),                   ok(1, 4)),
    "nonce_error":   (ok(1),                   nc(0, 4),                nc(1, 4),                   ok(1, 4)),
    "malformed":     (ok(1),                   ok(1),                   ok(1, 5),                   ok(1, 5)),
    "rate_limit":    (Expect((OK, NC), 2, 9, True), Expect((OK, NC), 2, 9),  Expect((NC, OK, NC), 3, 9), nc(1, 9)),
    # (9) the submit over the limit is refused with the link: in doubt, not resent, not in the snapshot
}
REPLACE_ROWS: dict[str, Row] = {
    # fault           waiting                  about_to_send            sent                        answered (b)
    "drop_abrupt":   (ok(2),                   ok(2),                   ok(3),                      ok(2)),
    "drop_close":    (ok(2),                   ok(2),                   ok(3),                      ok(2)),
    "restart_20051": (ok(2),                   ok(2),                   ok(3),                      ok(2)),
    "maintenance":   (ok(2),                   ok(3, 1),                ok(3),                      ok(2, 7)),
    "stall":         (ok(2),                   ok(3),                   ok(3),                      ok(2)),
    "delay":         (ok(2),                   ok(2),                   timeout(1, 2),              ok(2)),
    "lose_inputs":   (timeout(1),              timeout(1),              Expect((TIMEOUT, OK), 3, 3), timeout(1)),
    "auth_rejected": (ok(2),                   ok(2, 4),                ok(3, 4),                   ok(2, 4)),
    "nonce_error":   (ok(2),                   ok(2, 4),                ok(3, 4),                   ok(2, 4)),
    "malformed":     (ok(2),                   ok(2),                   ok(2, 5),                   ok(2, 5)),
    "rate_limit":    (Expect((OK_NC,) * 2, None, 10), Expect((OK_NC,) * 2, None, 10),
                      Expect((OK_NC,) * 3, None, 10), ok(3, 10)),
    # (10) their cancels and submits race for the one input a link allows: each ends ok or nc, no fon twice
}
ROWS: dict[str, dict[str, Row]] = {"cancel": CANCEL_ROWS, "submit": SUBMIT_ROWS, "replace": REPLACE_ROWS}
EXPECTED: dict[tuple[str, str, str], Expect] = {
    (op, fault, state): cell
    for op, rows in ROWS.items() for fault, row in rows.items() for state, cell in zip(STATES, row, strict=True)
}


# The answer alone lost with the link, the exchange having acted: the snapshot settles it (test_answer_lost_...).
ANSWER_LOST = {"cancel": Expect(("not_active",), 1), "submit": Expect((OK_SNAPSHOT,), 1),
               "replace": Expect(("not_active",), 1)}  # a replace whose cancel is settled so submits nothing
LOSSES = ("cut", "drop_abrupt", "silence", "auth_rejected", "nonce_error")


def matrix_cells() -> list[Any]:
    return [pytest.param(op, fault, state, id=f"{op}-{fault}-{state}")
            for op in OPS for fault in FAULTS for state in STATES]


def render_table(op: str) -> str:
    """The rows of *op* as the docstring shows them."""
    return table_text(FAULTS, STATES, lambda fault, state: EXPECTED[op, fault, state],
                      headings={"answered": "answered (b)"},
                      footer=f"waiting, every fault: the short request -> {WAITING_SHORT.render()}.")


@pytest.mark.parametrize(("op", "fault", "state"), matrix_cells())
async def test_fault_matrix(socket_dir: Path, op: str, fault: str, state: str) -> None:
    """Under each fault, in each state, every request gets exactly one final answer, the one in the table, no
    submit reaches the exchange twice, and the daemon ends ready."""
    await run_cell(socket_dir, fault, SCENARIOS[state], EXPECTED[op, fault, state], op=op)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("op", OPS)
async def test_answer_lost_with_the_link(socket_dir: Path, op: str, loss: str) -> None:
    """The exchange acts on the frame, its answer is lost with the link: the fresh snapshot settles the request
    (a cancel: ``not_active``, the offer is gone; a submit: ``ok`` with the new offer) and nothing is sent again."""

    async def scenario(cell: Cell) -> None:
        cell.net.hold_answers()  # what the exchange says from now on stays on the wire
        await cell.ask("a", A, LONG_S)
        await cell.logs.wait_for("simulator.input", kind=cell.asked["a"].first_frame()["kind"])
        assert cell.done_at_exchange("a")  # the exchange acted on it, and answered into the held link
        if loss == "auth_rejected":
            cell.sim.reject_auth(1)
        elif loss == "nonce_error":
            cell.sim.nonce_error(1)
        if loss == "drop_abrupt":
            await cell.sim.drop(abrupt=True)
        elif loss != "silence":  # silence: the held heartbeats make the daemon give the link up by itself
            cell.net.cut()
        answer = await cell.expect("a")
        cell.expect_frames()
        if op == "submit":
            assert answer["offer"]["id"] in cell.sim.offers

    await run_cell(socket_dir, loss, scenario, ANSWER_LOST[op], op=op)


async def test_a_replace_that_succeeds_keeps_its_client(socket_dir: Path) -> None:
    """With no fault at all, a replace ends ok with the new offer, logs one command.completed, and its client's
    connection stays open (``Cell.finish``: a ping on it is answered)."""

    async def scenario(cell: Cell) -> None:
        await cell.ask("a", A, LONG_S)
        answer = await cell.expect("a")
        assert answer["cancelled"]["id"] == cell.offer(A) and answer["offer"]["id"] in cell.sim.offers
        cell.expect_frames()

    await run_cell(socket_dir, "none", scenario, Expect((OK,), 2), op="replace")


async def test_answer_lost_with_the_link_and_the_offer_gone_is_not_active(socket_dir: Path) -> None:
    """A frame sent, the offer executed at the exchange, the link lost before any answer: the fresh snapshot
    settles the request `not_active` (once), and no frame is sent again."""

    async def scenario(cell: Cell) -> None:
        cell.sim.lose_inputs(1)
        await cell.ask("a", A, LONG_S)
        await cell.wait_input("a")
        await cell.sim.execute_offer(cell.offer(A))
        await cell.sim.drop(abrupt=True)
        await cell.expect("a")
        cell.expect_frames()

    await run_cell(socket_dir, "drop_abrupt", scenario, Expect(("not_active",), 1))


async def test_a_dead_link_is_given_up_before_its_close_handshake(socket_dir: Path) -> None:
    """Once the heartbeat declares the link dead, a cancel waits for the next session (``not_ready`` at a short
    deadline) even while the polite close still waits for a peer that cannot answer; it is never handed to the
    dead link and reported sent (``timeout``)."""

    async def scenario(cell: Cell) -> None:
        cell.net.blackhole()  # the path is dead, the TCP connections stay open: the close frame goes nowhere
        await cell.logs.wait_for("exchange.link_silent")
        await trio.testing.wait_all_tasks_blocked()  # the daemon has finished reacting: it awaits the close answer
        await cell.ask("short", SHORT, SHORT_S, tested=False)
        await cell.expect("short", "not_ready")
        assert not cell.logs.find("exchange.disconnected")  # still inside the close handshake's timeout
        cell.net.cut()
        await cell.ask("a", A, LONG_S)
        await cell.expect("a")
        cell.expect_frames()  # sent once, on the next link
        assert cell.frames("short") == 0

    await run_cell(socket_dir, "stall", scenario, Expect((OK,), 1))


def test_the_matrix_is_complete() -> None:
    """Every op has an expected outcome for every fault in every state, and every cell expects an answer."""
    assert set(EXPECTED) == {(op, fault, state) for op in OPS for fault in FAULTS for state in STATES}
    assert all(list(rows) == list(FAULTS) for rows in ROWS.values())  # rows in the parameters' order
    assert set(SCENARIOS) == set(STATES)
    assert all(cell.answers and (cell.frames is None or cell.frames >= 0) for cell in EXPECTED.values())


def test_the_docstring_tables_are_the_data() -> None:
    """The docstring's tables are EXPECTED rendered, and its footnotes are the ones the cells cite."""
    doc = __doc__ or ""
    for op in OPS:
        table = render_table(op)
        assert table in doc, f"the docstring's {op} table differs from EXPECTED; it should read:\n{table}"
    cited = {cell.note for cell in EXPECTED.values() if cell.note is not None}
    assert {int(n) for n in re.findall(r"^\((\d+)\) ", doc, re.MULTILINE)} == cited
