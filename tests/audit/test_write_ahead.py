"""Written ahead: an input frame's audit line is on stdout before the frame's bytes go to the exchange."""

from __future__ import annotations

import io
import json

import trio

from bfxd.actors.connection import _Connection
from bfxd.actors.messages import OutboundFrame
from bfxd.logconfig import AuditSettings, batched_log_writes, configure_logging
from bfxd.wslink import LinkClosed


class CountingStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: str) -> int:
        self.writes += 1
        return super().write(data)


class RecordingLink:
    """Notes, at each send, which frames' audit lines the log already holds."""

    def __init__(self, stream: CountingStream, fail: bool = False) -> None:
        self.stream, self.fail = stream, fail
        self.sends: list[tuple[tuple[str, ...], list[int], int]] = []

    async def send(self, *texts: str) -> None:
        logged = [json.loads(line).get("offer_id") for line in self.stream.getvalue().splitlines()
                  if '"frame.sent"' in line]
        self.sends.append((texts, logged, self.stream.writes))
        if self.fail:
            raise LinkClosed(1006, "")
        await trio.lowlevel.checkpoint()


async def run_writer(link: RecordingLink, frames: list[OutboundFrame]) -> list[object]:
    send, receive = trio.open_memory_channel[OutboundFrame](100)
    connection = _Connection.__new__(_Connection)  # only the writer's channel is needed
    connection.frames = receive
    ended: list[object] = []
    for frame in frames:
        send.send_nowait(frame)
    send.close()  # the writer drains what is queued, then ends (stopping)
    await connection._write(link, 1, ended.append)
    return ended


def foc(offer_id: int) -> OutboundFrame:
    return OutboundFrame(1, f'[0,"foc",null,{{"id":{offer_id}}}]', "foc", {"offer_id": offer_id,
                                                                          "request_ids": [f"1.{offer_id}"]})


async def test_the_audit_lines_of_a_batch_are_written_before_its_bytes_in_one_write() -> None:
    stream = CountingStream()
    configure_logging(fmt="json", level="info", stream=stream, cache=False, audit=AuditSettings())
    writes_before = stream.writes
    link = RecordingLink(stream)
    with batched_log_writes():  # as under `bfxd run`: without the write-ahead flush the lines would wait
        await run_writer(link, [foc(1), foc(2), foc(3)])
    ((texts, logged, writes),) = link.sends  # one batch, one send
    assert len(texts) == 3
    assert logged == [1, 2, 3]
    assert writes == writes_before + 1  # the three lines went out in one write


async def test_a_batch_the_link_refuses_is_logged_dropped_after_its_written_ahead_line() -> None:
    stream = CountingStream()
    configure_logging(fmt="json", level="info", stream=stream, cache=False, audit=AuditSettings())
    link = RecordingLink(stream, fail=True)
    with batched_log_writes():
        ended = await run_writer(link, [foc(7)])
    events = [(r["event"], r.get("offer_id")) for r in map(json.loads, stream.getvalue().splitlines())]
    assert events[-2:] == [("frame.sent", 7), ("frame.dropped", 7)]
    assert ended and "closed while sending" in ended[0].reason  # type: ignore[attr-defined]
