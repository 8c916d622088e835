"""A property of submits under link loss: whatever is lost and when, no submit reaches the exchange twice, and a
submit's answer tells the truth about the exchange's book.

Each example is a run of steps against one fresh daemon (``fault_cell.run_cell``); a step sends one to three
submits, each with fields no other uses, and loses them one way: not at all, on the way to the exchange (the relay
holds the frames and is cut), at the exchange (it reads and drops them, then drops the link), or on the way back
(the exchange books the offers, the relay holds its answers and is cut). Whatever the mix:

- every submit gets one final answer, ``ok`` (from its answer or from the snapshot) or ``not_confirmed``;
- ``ok`` means the exchange lists an offer with its fields, ``not_confirmed`` that it lists none (a retry is safe);
- no submit's ``fon`` reaches the exchange more often than the client asked (``Cell.finish`` checks every cell).

``BFXD_FUZZ_EXAMPLES`` sets the examples (``make fuzz``: 5000; ``make test``: a handful).
"""

from __future__ import annotations

import os
import shutil
import tempfile
from functools import partial
from pathlib import Path

import pytest
import trio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.integration.fault_cell import (
    LONG_S,
    NOT_CONFIRMED,
    OK,
    OK_SNAPSHOT,
    Cell,
    Expect,
    answer_as_written,
    run_cell,
)

EXAMPLES = int(os.environ.get("BFXD_FUZZ_EXAMPLES", "6"))
LOSSES = ("none", "on_the_way", "at_the_exchange", "on_the_way_back")
STEPS = st.lists(st.tuples(st.sampled_from(LOSSES), st.integers(1, 3)), min_size=1, max_size=4)

pytestmark = [pytest.mark.fuzz, pytest.mark.timeout(120 + EXAMPLES * 10)]


def all_booked(cell: Cell, refs: list[str]) -> bool:
    return all(cell.done_at_exchange(ref) for ref in refs)


async def run_steps(cell: Cell, steps: list[tuple[str, int]]) -> None:
    slot = lost = 0
    for loss, count in steps:
        await cell.wait_state("ready")  # each step's hold meets the live link
        if loss == "on_the_way":
            cell.net.hold()
        elif loss == "on_the_way_back":
            cell.net.hold_answers()
        elif loss == "at_the_exchange":
            cell.sim.lose_inputs(count)
        refs = [f"s{n}" for n in range(slot, slot + count)]
        for n, ref in enumerate(refs, start=slot):
            await cell.ask(ref, n, LONG_S, tested=False)
        slot += count
        if loss == "on_the_way":
            for ref in refs:
                await cell.wait_frame_sent(ref)
            cell.net.cut()
        elif loss == "on_the_way_back":
            await cell.logs.wait_until(partial(all_booked, cell, refs), what="the bookings")
            cell.net.cut()
        elif loss == "at_the_exchange":
            lost += count
            await cell.logs.wait_for("simulator.input_lost", count=lost)
            await cell.sim.drop(abrupt=True)
        for ref in refs:
            answer = await cell.answer(ref)
            word = answer_as_written(answer)
            assert word in (OK, OK_SNAPSHOT, NOT_CONFIRMED), f"{steps}: {ref} got {answer}"
            assert cell.done_at_exchange(ref) == (word != NOT_CONFIRMED), f"{steps}: {ref} got {answer}, but the " \
                f"exchange {'lists' if cell.done_at_exchange(ref) else 'has no'} offer with its fields"
    cell.expect_frames()  # no request is under a table here: the count of none of them is 0


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(steps=STEPS)
def test_a_submit_is_never_sent_twice_and_its_answer_is_the_truth(steps: list[tuple[str, int]]) -> None:
    """However submits are lost (on the way, at the exchange, on the way back), each gets one answer that matches
    the exchange's book, and none reaches the exchange twice."""
    socket_dir = Path(tempfile.mkdtemp(prefix="bfxd-"))  # per example: a fixture would be shared by all of them

    async def scenario(cell: Cell) -> None:
        await run_steps(cell, steps)

    try:
        trio.run(partial(run_cell, socket_dir, "losses", scenario, Expect((), 0), op="submit"))
    finally:
        shutil.rmtree(socket_dir, ignore_errors=True)
