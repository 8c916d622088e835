"""One client connection: its state machine, the auth check, channel 0 streams and heartbeats.

The rules, per connection (the shared account, nonces and fault switches belong to the Simulator)::

    accepted --info {"platform":{"status":1, or 0 in maintenance}}--> OPEN --auth OK--> AUTHENTICATED --> CLOSED
    OPEN --auth FAILED--> OPEN (may retry);  AUTHENTICATED --auth again--> FAILED "auth: dup"

- Any state: ping → pong (same cid); conf → conf ack (flag SEQ_ALL turns on sequence numbers, numbering.py);
  subscribe/unsubscribe → a public channel that carries only
  heartbeats (the simulator has no market); an unreadable frame → error 10000.
- OPEN: an input ``[0, …]`` → error 10100 "auth: invalid".
- Auth OK → snapshots ``ps ws os fos fcs fls`` (the order the exchange uses, filtered by the auth ``filter``); then
  channel 0 carries account changes (offers, credits, loans, wallets), and ``[0,"hb"]`` whenever it was silent
  for ``hb_interval``.
- AUTHENTICATED: ``foc``/``fon`` answered with ``n`` to this connection, then the ``foc``/``fon`` update to every
  authenticated connection; ``calc`` answered with one ``wu`` per funding wallet asked for (its available balance
  filled in), to this connection. During maintenance, inputs get error 11000.
- CLOSED: the client left, ``drop()``, the rate limit, or a client too slow to read its frames.

Tasks (one nursery per connection): the reader records each frame when it arrives; the worker answers each in order at
arrival + ``answer_delay``; the writer is the only task that writes to the WebSocket, draining a bounded outbox; the
heartbeat task watches channel silence. ``send()`` never blocks, so the simulator can push from any task.
"""

from __future__ import annotations

import itertools
import json
import math
import uuid
from typing import Any, Protocol

import attrs
import structlog
import trio
import trio_websocket

from bfxd.errors import RemoteProtocolError
from bfxd.protocol import (
    MAX_CALC_REQUESTS,
    AuthRequest,
    CalcInput,
    CancelOfferInput,
    ClientEvent,
    ConfRequest,
    NewOfferInput,
    PingEvent,
    decode_client_frame,
    encode,
)
from bfxd.protocol.decode import load_json
from bfxd.simulator import texts
from bfxd.simulator.account import Account, Change, OfferRejected, wall_clock_ms
from bfxd.simulator.auth import CAPS, auth_problem, snapshot_frames
from bfxd.simulator.config import Received, SimulatorConfig
from bfxd.simulator.faults import Faults, RateWindow
from bfxd.simulator.numbering import FrameKind, Numbering

log = structlog.get_logger()

# Frames queued for one client. Its own answers may fill half of it, then the worker waits for the writer (so a
# client that pipelines inputs faster than it reads is slowed down through TCP, not cut off). Frames pushed from
# elsewhere (other connections' book changes, faults) use the other half; a client that leaves it all unread is
# cut off, as the exchange would, rather than buffered without bound.
OUTBOX_SIZE = 1024
# Frames read but not yet answered (they wait here during answer_delay). Full: the reader waits, which is TCP
# backpressure on the client.
INBOX_SIZE = 64
CLOSE_GRACE_S = 2.0  # how long a polite close waits for the client's close frame before the TCP stream is cut


@attrs.frozen
class _Close:
    """An outbox item: close the WebSocket with this code once the frames queued before it are written."""

    code: int
    reason: str


class Host(Protocol):
    """What a connection needs from the Simulator that runs it (the Simulator is one; tests may pass another)."""

    config: SimulatorConfig
    faults: Faults
    account: Account
    server_id: str

    def record(self, conn_id: int, text: str, event: ClientEvent | None) -> Received: ...
    def nonce_admissible(self, api_key: str, nonce: int) -> bool: ...
    def note_authenticated(self, api_key: str, nonce: int) -> None: ...
    def publish(self, change: Change) -> None: ...


def _blank_offer(offer_id: int | None = None) -> list[Any]:
    """NOTIFY_INFO of an ERROR: an offer array of nulls, with the id when there is one."""
    return [offer_id, *[None] * 20]


@attrs.define(eq=False)
class Connection:
    """One client's connection (the rules are at the top of this module). Created and run by the Simulator."""

    id: int
    ws: trio_websocket.WebSocketConnection
    stream: trio.abc.Stream
    sim: Host
    authenticated: bool = False
    filter: tuple[str, ...] | None = None
    channels: dict[int, float] = attrs.Factory(dict)  # channel id → time of its last frame (for heartbeats)
    public: dict[int, str] = attrs.Factory(dict)  # subscribed public channels: id → name
    finished: trio.Event = attrs.Factory(trio.Event)
    numbering: Numbering = attrs.Factory(Numbering)
    _chan_ids: itertools.count[int] = attrs.Factory(lambda: itertools.count(1))
    _channels_changed: trio.Event = attrs.Factory(trio.Event)
    _rate: RateWindow = attrs.Factory(RateWindow)
    _scope: trio.CancelScope = attrs.Factory(trio.CancelScope)
    _drained: trio.Event = attrs.Factory(trio.Event)  # set by the writer when the outbox is at most half full
    _outbox: trio.MemorySendChannel[str | _Close] = attrs.field(init=False)
    _outbox_out: trio.MemoryReceiveChannel[str | _Close] = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._outbox, self._outbox_out = trio.open_memory_channel[str | _Close](OUTBOX_SIZE)

    # ---- lifetime ----------------------------------------------------------------------------------------

    async def run(self) -> None:
        """Serve the client until it leaves or is dropped."""
        inbox, inbox_out = trio.open_memory_channel["Received"](INBOX_SIZE)
        try:
            with self._scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._write)
                    nursery.start_soon(self._work, inbox_out)
                    nursery.start_soon(self._heartbeat)
                    self.send(encode.info_frame(server_id=self.sim.server_id,
                                              platform_status=0 if self.sim.faults.maintenance else 1))
                    await self._read(inbox)
                    nursery.cancel_scope.cancel(reason="client connection closed")
        finally:
            self._outbox.close()  # later pushes (a broadcast racing the end) are dropped, not queued
            self._outbox_out.close()
            self.finished.set()

    async def close(self, *, abrupt: bool, code: int = 1000, reason: str = "") -> None:
        """Close now. *abrupt*: end the TCP stream with no WebSocket close frame (the client sees 1006)."""
        if abrupt:
            await self.stream.aclose()
        else:
            with trio.move_on_after(CLOSE_GRACE_S):
                await self.ws.aclose(code, reason)
        with trio.move_on_after(CLOSE_GRACE_S):
            await self.finished.wait()
        self._scope.cancel(reason="dropped")

    def send(self, frame: str, *, chan: int | None = None, kind: FrameKind | None = None) -> None:
        """Queue one frame for the client (never blocks); *chan* marks channel traffic for heartbeats, *kind* says
        how the frame is numbered once the client turned sequence numbers on (None: never)."""
        if chan is not None and chan in self.channels:
            self.channels[chan] = trio.current_time()
        if kind is not None and self.numbering.enabled:
            frame = self.numbering.number(frame, kind)
            if kind == "update" and self.sim.faults.take_sequence_skip():
                log.info("simulator.sequence_skipped", conn_id=self.id, public=self.numbering.public,
                         auth=self.numbering.auth)
                return  # numbered, then lost: the client sees the gap
        try:
            self._outbox.send_nowait(frame)
        except trio.WouldBlock:
            log.warning("simulator.client_lagging", conn_id=self.id, queued=OUTBOX_SIZE)
            self._scope.cancel(reason="client does not read its frames")
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass  # the connection is ending; nothing more reaches it

    def wants(self, group: str, detail: str | None = None) -> bool:
        """Whether the auth ``filter`` lets *group* (e.g. funding) through, optionally for *detail* (fUSD)."""
        if self.filter is None:
            return True
        return any(f == group or (f.startswith(group + "-") and (detail is None or f == f"{group}-{detail}"))
                   for f in self.filter)

    def push_change(self, change: Change) -> None:
        if self.authenticated and change.wanted(self.wants):
            self.send(change.frame(), chan=0, kind="update")

    # ---- tasks -------------------------------------------------------------------------------------------

    async def _read(self, inbox: trio.MemorySendChannel[Received]) -> None:
        async with inbox:
            while True:
                try:
                    message = await self.ws.get_message()
                except trio_websocket.ConnectionClosed:
                    return
                try:
                    event = decode_client_frame(message)
                except RemoteProtocolError:
                    event = None
                text = message if isinstance(message, str) else message.decode("utf-8", "replace")
                await inbox.send(self.sim.record(self.id, text, event))

    async def _work(self, inbox: trio.MemoryReceiveChannel[Received]) -> None:
        async for received in inbox:
            await trio.sleep_until(received.at + self.sim.faults.answer_delay)
            while self._outbox.statistics().current_buffer_used > OUTBOX_SIZE // 2:
                self._drained = trio.Event()
                await self._drained.wait()
            if not self.sim.faults.stalled:  # a stalled exchange answers nothing, ever
                self._answer(received)

    async def _write(self) -> None:
        async for item in self._outbox_out:
            if self._outbox_out.statistics().current_buffer_used <= OUTBOX_SIZE // 2:
                self._drained.set()
            if isinstance(item, _Close):
                with trio.move_on_after(CLOSE_GRACE_S):
                    await self.ws.aclose(item.code, item.reason)
                self._scope.cancel(reason=item.reason)
                return
            if self.sim.faults.stalled:
                continue
            try:
                await self.ws.send_message(item)
            except trio_websocket.ConnectionClosed:
                return

    async def _heartbeat(self) -> None:
        interval = self.sim.config.hb_interval
        while True:
            due = min((last + interval for last in self.channels.values()), default=math.inf)
            with trio.move_on_at(due):
                await self._channels_changed.wait()  # a new channel may be due sooner
                continue
            now = trio.current_time()
            for chan, last in list(self.channels.items()):
                if last + interval <= now:
                    self.send(encode.heartbeat_frame(chan), chan=chan, kind="heartbeat")

    def _open_channel(self, chan: int) -> None:
        self.channels[chan] = trio.current_time()
        self._channels_changed.set()
        self._channels_changed = trio.Event()

    # ---- answers -----------------------------------------------------------------------------------------

    def _answer(self, received: Received) -> None:
        event = received.event
        if isinstance(event, PingEvent):
            self.send(encode.pong_frame(event.cid, wall_clock_ms()))
        elif isinstance(event, ConfRequest):
            self.numbering.configure(event.flags)
            self.send(encode.conf_ack_frame(event.flags))
        elif isinstance(event, AuthRequest):
            self._authenticate(event)
        elif event is None:
            self._answer_other(received.text)
        elif not self.authenticated:
            self.send(encode.error_frame(*texts.NOT_AUTHENTICATED))
        else:
            self._input(event, received.at)

    def _answer_other(self, text: str) -> None:
        """Frames outside bfxd's protocol core: public-channel (un)subscriptions, malformed auth, garbage."""
        try:
            msg = load_json(text, quote=False)
        except RemoteProtocolError:
            msg = None
        if not isinstance(msg, dict):
            msg = {}
        name, channel, chan = msg.get("event"), msg.get("channel"), msg.get("chanId")
        if name == "subscribe" and isinstance(channel, str) and channel in texts.PUBLIC_CHANNELS:
            chan = next(self._chan_ids)
            self.public[chan] = channel
            self.send(json.dumps({**msg, "event": "subscribed", "chanId": chan}))
            self._open_channel(chan)
        elif name == "subscribe":
            self.send(encode.error_frame(*texts.UNKNOWN_CHANNEL))
        elif name == "unsubscribe" and isinstance(chan, int) and chan in self.public:
            del self.public[chan], self.channels[chan]
            self.send(json.dumps({"event": "unsubscribed", "status": "OK", "chanId": chan}))
        elif name == "unsubscribe":
            self.send(encode.error_frame(*texts.NOT_SUBSCRIBED))
        elif name == "auth":
            self.send(encode.auth_failed_frame(*texts.AUTH_BAD_PAYLOAD))
        else:
            self.send(encode.error_frame(*texts.UNKNOWN_EVENT))

    def _authenticate(self, request: AuthRequest) -> None:
        sim = self.sim
        problem = auth_problem(request, config=sim.config, faults=sim.faults, authenticated=self.authenticated,
                               nonce_ok=sim.nonce_admissible)
        if problem is not None:
            log.info("simulator.auth_failed", conn_id=self.id, code=problem[0], reason=problem[1])
            self.send(encode.auth_failed_frame(*problem))
            return
        self.authenticated, self.filter = True, request.filter
        sim.note_authenticated(request.api_key, int(request.nonce))
        log.info("simulator.auth_ok", conn_id=self.id)
        self.send(encode.auth_ok_frame(user_id=sim.config.user_id, auth_id=str(uuid.uuid4()), caps=CAPS))
        self._open_channel(0)
        for frame in snapshot_frames(sim.account, self.wants):
            self.send(frame, chan=0, kind="snapshot")

    def _input(self, event: Any, arrived: float) -> None:
        faults = self.sim.faults
        if isinstance(event, CalcInput) and not faults.maintenance:
            # calc has a limit of its own (8 calculations a second, 30 a batch): the input faults count the inputs
            # that are answered (foc, fon), so a daemon's automatic calc never takes a test's lost or limited input.
            self._calc(event)
            return
        if faults.take_input_loss():
            log.info("simulator.input_lost", conn_id=self.id)
            return
        if faults.rate_limit is not None and not self._rate.admit(arrived, faults.rate_limit):
            log.warning("simulator.rate_limited", conn_id=self.id)
            self.send(encode.error_frame(*texts.RATE_LIMITED))
            self._queue_close(*texts.RATE_LIMIT_CLOSE)
        elif faults.maintenance:
            self.send(encode.error_frame(*texts.NOT_READY))
        elif isinstance(event, CancelOfferInput):
            self._cancel(event.offer_id)
        elif isinstance(event, NewOfferInput):
            self._new_offer(event)
        elif isinstance(event, CalcInput):
            self._calc(event)
        else:
            log.info("simulator.input_ignored", conn_id=self.id, kind=getattr(event, "kind", None))

    def _queue_close(self, code: int, reason: str) -> None:
        try:
            self._outbox.send_nowait(_Close(code, reason))
        except (trio.WouldBlock, trio.BrokenResourceError, trio.ClosedResourceError):
            self._scope.cancel(reason=reason)

    def _notify(self, kind: str, status: str, text: str, info: list[Any]) -> None:
        if self.wants("notify"):
            self.send(encode.notification_frame(mts=wall_clock_ms(), type=kind, status=status, text=text,
                                              notify_info=info), chan=0, kind="answer")

    def _cancel(self, offer_id: int | None) -> None:
        log.info("simulator.input", conn_id=self.id, kind="foc", offer_id=offer_id)
        account = self.sim.account
        offer = account.get(offer_id) if offer_id is not None else None
        if offer_id is None or offer is None:
            self._notify("foc-req", "ERROR", texts.OFFER_NOT_FOUND if offer_id else texts.ID_INVALID,
                         _blank_offer(offer_id))
            return
        canceled = account.cancel(offer_id)
        assert canceled is not None
        pending = attrs.evolve(offer, mts_updated=canceled.mts_updated)  # as the docs' example: still ACTIVE
        self._notify("foc-req", "SUCCESS", texts.CANCEL_SUBMITTED.format(id=offer_id), pending.to_wire())
        self.sim.publish(Change("foc", canceled))

    def _new_offer(self, request: NewOfferInput) -> None:
        log.info("simulator.input", conn_id=self.id, kind="fon", symbol=request.symbol)
        try:
            offer = self.sim.account.new_offer(request)
        except OfferRejected as exc:
            self._notify("fon-req", "ERROR", exc.text, _blank_offer())
            return
        assert offer.symbol is not None and offer.amount is not None and offer.rate is not None
        text = texts.OFFER_SUBMITTED.format(amount=abs(offer.amount), currency=offer.symbol[1:],
                                            rate=offer.rate * 100, period=offer.period)
        self._notify("fon-req", "SUCCESS", text, offer.to_wire())
        self.sim.publish(Change("fon", offer))

    def _calc(self, request: CalcInput) -> None:
        """One ``wu`` per funding wallet asked for, to this connection; other calculations are not simulated."""
        log.info("simulator.input", conn_id=self.id, kind="calc", requests=len(request.requests))
        if len(request.requests) > MAX_CALC_REQUESTS:
            self.send(encode.error_frame(*texts.CALC_TOO_MANY))
            return
        for key in request.requests:
            prefix, _, currency = key.partition("wallet_funding_")
            change = self.sim.account.calculated_wallet(currency) if not prefix and currency else None
            if change is not None and change.wanted(self.wants):
                self.send(change.frame(), chan=0, kind="update")
