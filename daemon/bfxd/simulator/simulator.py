"""The Simulator: a local Bitfinex WebSocket v2 server (``ws://HOST:PORT/ws/2``) with fault injection.

Many connections, each with its own auth state (``server.py``); one shared account (``account.py``); fault switches
(``faults.py``) that tests flip through the methods below and that act on live connections at once. Every frame a
client sends is recorded (``received``), and tests wait on the record with ``wait_received`` instead of sleeping.

Use it from trio: ``url = await nursery.start(sim.serve)``; every method must be called from that trio run.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from functools import partial
from typing import Any

import structlog
import trio
import trio_websocket

from bfxd.protocol import MAX_NONCE, ClientEvent, FundingCredit, FundingLoan, FundingOffer, encode
from bfxd.simulator import texts
from bfxd.simulator.account import Account, Change
from bfxd.simulator.config import Received, SimulatorConfig
from bfxd.simulator.faults import Faults, RateLimit
from bfxd.simulator.server import Connection

log = structlog.get_logger()

PATH = "/ws/2"
HANDSHAKE_TIMEOUT_S = 10.0  # a client that opens TCP and never finishes the WebSocket handshake is let go
TEARDOWN_CLOSE_S = 0.25  # how long a closing connection waits for the client's close frame
MAX_MESSAGE_BYTES = 64 * 1024  # inputs are small; a larger message closes the connection with 1009


class Simulator:
    """A Bitfinex-compatible WebSocket server for tests, the demo and users' bots."""

    def __init__(self, config: SimulatorConfig | None = None) -> None:
        self.config = config or SimulatorConfig()
        self.account = Account.generate(self.config.offers, seed=self.config.seed, credits=self.config.credits,
                                        loans=self.config.loans)
        self.faults = Faults(rate_limit=self.config.rate_limit)
        self.server_id = str(uuid.UUID(int=random.Random(self.config.seed).getrandbits(128), version=4))
        self.received: list[Received] = []
        self.connection_count = 0  # connections accepted in total
        self.authenticated_count = 0  # successful auths in total
        self._live: dict[int, Connection] = {}
        self._nonces: dict[str, int] = {}  # API key → last nonce accepted
        self._changed = trio.Event()  # set (and replaced) whenever `received` or the counters change
        self._url: str | None = None

    # ---- state -------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        if self._url is None:
            raise RuntimeError("the simulator is not serving yet: start it with `await nursery.start(sim.serve)`")
        return self._url

    @property
    def offers(self) -> dict[int, FundingOffer]:
        """The active offers of the shared account, by id."""
        return self.account.offers

    @property
    def live_connections(self) -> list[int]:
        return sorted(self._live)

    def add_offer(self, **fields: Any) -> FundingOffer:
        """Book an ACTIVE offer (fields as ``Account.add_offer``) and announce it (``fon``) to live clients."""
        offer = self.account.add_offer(**fields)
        self.publish(Change("fon", offer))
        return offer

    @property
    def credits(self) -> dict[int, FundingCredit]:
        """The open funding credits, by id (a copy)."""
        return dict(self.account.ledger.credits)

    @property
    def loans(self) -> dict[int, FundingLoan]:
        """The open funding loans, by id (a copy)."""
        return dict(self.account.ledger.loans)

    async def execute_offer(self, offer_id: int, *, amount: float | None = None) -> None:
        """Execute an offer, fully (``foc`` "EXECUTED at …") or by *amount* (``fou`` "PARTIALLY FILLED at …");
        the executed part becomes a credit or loan (``fcn``/``fln``) and its wallet is announced (``wu``).
        Raises KeyError if it is not active."""
        self.publish_all(self.account.execute(offer_id, amount))
        await trio.lowlevel.checkpoint()

    async def close_funding(self, item_id: int) -> None:
        """End a credit or loan (``fcc``/``flc``, then ``wu``). Raises KeyError if neither is open."""
        self.publish_all(self.account.ledger.close(item_id))
        await trio.lowlevel.checkpoint()

    async def wait_received(self, predicate: Callable[[Received], bool], *, count: int = 1) -> list[Received]:
        """Wait until *count* received frames (from the start of the record) match *predicate*; return the first
        *count* of them."""
        while True:
            matched = [r for r in self.received if predicate(r)]
            if len(matched) >= count:
                return matched[:count]
            await self._changed.wait()

    async def wait_authenticated(self, count: int = 1) -> None:
        """Wait until *count* successful auths have happened in total (e.g. after reconnects)."""
        while self.authenticated_count < count:
            await self._changed.wait()

    # ---- faults ------------------------------------------------------------------------------------------

    async def drop(self, *, abrupt: bool = True, code: int = 1001, reason: str = "") -> None:
        """Close every live connection: *abrupt* ends the TCP stream with no close frame, else a close frame with
        *code* and *reason*. Returns when they are gone."""
        log.info("simulator.fault", fault="drop", abrupt=abrupt, code=None if abrupt else code,
                 connections=len(self._live))
        async with trio.open_nursery() as nursery:
            for conn in list(self._live.values()):
                nursery.start_soon(partial(conn.close, abrupt=abrupt, code=code, reason=reason))

    async def send_info(self, code: int) -> None:
        """Send ``{"event":"info","code":…}`` to every live connection. 20060 enters maintenance (new connections
        see platform status 0, inputs get error 11000, the scenario pauses); 20061 leaves it."""
        if code == texts.INFO_MAINTENANCE_START:
            self.faults.maintenance = True
        elif code == texts.INFO_MAINTENANCE_END:
            self.faults.maintenance = False
        log.info("simulator.fault", fault="info", code=code)
        frame = encode.info_code_frame(code, texts.INFO_TEXTS.get(code, "Info message"))
        for conn in list(self._live.values()):
            conn.send(frame)
        await trio.lowlevel.checkpoint()

    def stall(self, on: bool = True) -> None:
        """Keep TCP open but send nothing (no heartbeats either) and answer nothing; frames are still recorded."""
        log.info("simulator.fault", fault="stall", on=on)
        self.faults.stalled = on

    def delay_answers(self, seconds: float) -> None:
        """Answer each frame *seconds* after it arrived (0: at once)."""
        if seconds < 0:
            raise ValueError(f"delay must not be negative, got {seconds}")
        self.faults.answer_delay = seconds

    def lose_inputs(self, n: int) -> None:
        """Read and silently drop the next *n* inputs (``foc``/``fon``/…, not auth or ping)."""
        self.faults.lose_inputs(n)

    def reject_auth(self, n: int = 1, *, code: int = 10100, message: str = "apikey: invalid") -> None:
        """Fail the next *n* auth attempts with this code and message, whatever the credentials."""
        self.faults.fail_auth(n, code, message)

    def nonce_error(self, n: int = 1) -> None:
        """Fail the next *n* auth attempts with the nonce error (10114 "nonce: small")."""
        self.faults.nonce_errors(n)

    async def send_raw(self, text: str) -> None:
        """Send *text* verbatim (e.g. a malformed frame) to every authenticated live connection."""
        for conn in list(self._live.values()):
            if conn.authenticated:
                conn.send(text, chan=0)
        await trio.lowlevel.checkpoint()

    push = send_raw  # same thing, named for well-formed frames (e.g. a hand-made fou)

    def skip_sequence(self, n: int = 1) -> None:
        """On connections that turned sequence numbers on, number the next *n* account updates and never send
        them: the client sees a gap, as if the frames were lost."""
        self.faults.skip_sequence(n)

    def set_rate_limit(self, max_inputs: int, per_seconds: float) -> None:
        """Allow *max_inputs* inputs per connection per *per_seconds*; beyond: error, then the connection closes."""
        self.faults.rate_limit = RateLimit(max_inputs=max_inputs, per_seconds=per_seconds)

    # ---- used by the connections (server.py) -------------------------------------------------------------

    def record(self, conn_id: int, text: str, event: ClientEvent | None) -> Received:
        received = Received(conn_id=conn_id, text=text, event=event, at=trio.current_time())
        self.received.append(received)
        cap = self.config.max_recorded
        if cap is not None and len(self.received) > 2 * cap:  # trimmed in batches: amortised O(1) per frame
            del self.received[:-cap]
        self._bump()
        return received

    def nonce_admissible(self, api_key: str, nonce: int) -> bool:
        return self._nonces.get(api_key, 0) < nonce <= MAX_NONCE

    def note_authenticated(self, api_key: str, nonce: int) -> None:
        self._nonces[api_key] = nonce
        self.authenticated_count += 1
        self._bump()

    def publish(self, change: Change) -> None:
        """Announce a change of the account to every authenticated connection that wants it."""
        for conn in list(self._live.values()):
            conn.push_change(change)

    def publish_all(self, changes: list[Change]) -> None:
        for change in changes:
            self.publish(change)

    def _bump(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    # ---- serving -----------------------------------------------------------------------------------------

    async def serve(
        self, *, host: str = "127.0.0.1", port: int = 0, task_status: trio.TaskStatus[str] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Listen on *host*:*port* (0: any free port); ``task_status.started(url)``; serve until cancelled."""
        async with trio.open_nursery() as nursery:
            listeners = await nursery.start(partial(trio.serve_tcp, self._handle_stream, port, host=host))
            address, bound_port = listeners[0].socket.getsockname()[:2]
            self._url = f"ws://{f'[{address}]' if ':' in address else address}:{bound_port}{PATH}"
            if self.config.scenario_interval is not None:
                nursery.start_soon(self._run_scenario, self.config.scenario_interval)
            task_status.started(self._url)

    async def _handle_stream(self, stream: trio.SocketStream) -> None:
        # One client must not take the server down (style 3.10): log what escaped and let it go.
        try:
            await self._serve_stream(stream)
        except Exception:
            log.exception("simulator.connection_crashed")

    async def _serve_stream(self, stream: trio.SocketStream) -> None:
        async with trio.open_nursery() as nursery:  # trio-websocket's reader task for this stream lives here
            request = None
            with trio.move_on_after(HANDSHAKE_TIMEOUT_S):
                candidate = await trio_websocket.wrap_server_stream(nursery, stream,
                                                                    max_message_size=MAX_MESSAGE_BYTES)
                if candidate.path == PATH:
                    request = candidate
                else:
                    await candidate.reject(404)
            if request is None:  # wrong path, or no handshake in time
                nursery.cancel_scope.cancel()
                await stream.aclose()
                return
            ws = await request.accept()
            self.connection_count += 1
            conn = Connection(id=self.connection_count, ws=ws, stream=stream, sim=self)
            self._live[conn.id] = conn
            self._bump()
            remote = request.remote
            peer = f"{remote.address}:{remote.port}" if isinstance(remote, trio_websocket.Endpoint) else remote
            log.info("simulator.connected", conn_id=conn.id, peer=peer)
            try:
                await conn.run()
            finally:
                del self._live[conn.id]
                log.info("simulator.disconnected", conn_id=conn.id, close=repr(ws.closed))
                # Shielded so a cancelled simulator still says goodbye; briefly, because a peer that is being torn
                # down with it (a test's nursery) never answers, and every test would pay the full grace.
                with trio.move_on_after(TEARDOWN_CLOSE_S, shield=True):
                    await ws.aclose()
                nursery.cancel_scope.cancel()

    async def _run_scenario(self, interval: float) -> None:
        next_step = trio.current_time()
        while True:
            next_step += interval
            await trio.sleep_until(next_step)
            if self.faults.maintenance:
                continue  # the exchange is resyncing: nothing executes
            changes = self.account.scenario_step()
            offer = changes[0].offer
            log.info("simulator.scenario", kind=changes[0].kind, offer_id=offer.id, status=offer.status,
                     opened=[c.kind for c in changes[1:]])
            self.publish_all(changes)
