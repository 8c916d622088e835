"""A fast exchange stub for the benchmarks: answers ``foc``/``fon`` from prepared bytes, so the floor measures
the transport, not the simulator.

``python -m bench._stub --control PATH [--offers N] [--hb-interval S]`` prints its URL on the first stdout line
and serves until SIGTERM, as ``bench._sim`` does, with the same control ops (``add_offers``, ``stats``,
``forget``) so the harness drives both alike.

It is a real WebSocket server (wsproto handles the handshake and unmasks client frames) on one thread and one
``selectors`` loop, and speaks what bfxd and the other benchmark clients need: the ``info`` greeting, auth
(any key and signature is accepted), snapshots ``ws fos fcs fls`` after auth, ``[0,"hb"]``, ``ping`` → ``pong``,
``conf`` → its ack, ``foc`` → ``n`` foc-req SUCCESS + ``foc``, ``fon`` → ``n`` fon-req SUCCESS + ``fon``.

What is prepared: for every offer, the WebSocket frames of its cancel answer are built (JSON and framing) when
the offer is booked; a ``foc`` is answered by reading its id with a string search and writing those bytes. A
``fon`` is answered from a template built the first time that exact frame text is seen (the benchmarks send the
same few), with the new id put in by ``str.replace``. The hot path does no JSON work.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import selectors
import signal
import socket
import struct
import sys
import time
from decimal import Decimal

import attrs
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Ping, Request, TextMessage

from bfxd.protocol import FundingOffer
from bfxd.protocol import encode as wire

_MTS = 1795636514417  # one fixed time for every prepared frame: the stub does not keep a clock per offer
_ID_TOKEN = "987654321987654"  # stands for the new offer's id in a fon template (never a real id)
_CANCEL_TEXT = "Submitted for cancellation; waiting for confirmation (ID: {id})."


def ws_frame(text: str) -> bytes:
    """One unmasked server text frame (RFC 6455 5.2), built by hand so prepared answers skip wsproto."""
    payload = text.encode()
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return struct.pack("!BBH", 0x81, 126, n) + payload
    return struct.pack("!BBQ", 0x81, 127, n) + payload


def offer_id_of_cancel(text: str) -> int | None:
    """The id in ``[0,"foc",null,{"id":ID}]`` (spaces allowed), by string search; None if not found."""
    start = text.find('"id":')
    end = text.find("}", start)
    if start < 0 or end < 0:
        return None
    try:
        return int(text[start + 5:end])
    except ValueError:
        return None


class Book:
    """The stub's offers and their prepared answers."""

    def __init__(self) -> None:
        self._ids = itertools.count(60_000_001)
        self.active: dict[int, FundingOffer] = {}
        self.cancel_answers: dict[int, tuple[bytes, bytes]] = {}  # id → (foc-req n, foc update), framed
        self._fon_templates: dict[str, _Template | None] = {}

    def add(self, amount: float = 500.0, rate: float = 0.0005, period: int = 2) -> FundingOffer:
        offer = FundingOffer(id=next(self._ids), symbol="fUSD", mts_created=_MTS, mts_updated=_MTS, amount=amount,
                             amount_orig=amount, type="LIMIT", flags=0, status="ACTIVE", rate=rate, period=period,
                             notify=False, hidden=False, renew=False)
        assert offer.id is not None
        self.active[offer.id] = offer
        note, update = _cancel_texts(offer)
        self.cancel_answers[offer.id] = (ws_frame(note), ws_frame(update))
        return offer

    def cancel(self, offer_id: int) -> tuple[bytes, bytes | None]:
        """(the notification for the requester, the update for everyone); an unknown id gets an ERROR only."""
        answer = self.cancel_answers.pop(offer_id, None)
        if answer is None or self.active.pop(offer_id, None) is None:
            blank = [offer_id, *[None] * 20]
            return ws_frame(wire.notification_frame(mts=_MTS, type="foc-req", status="ERROR",
                                                    text="Offer not found", notify_info=blank)), None
        return answer

    def submit(self, text: str) -> tuple[bytes, bytes | None]:
        """A fon, answered from the template of its exact text (built once, the first time it is seen)."""
        if text not in self._fon_templates:
            self._fon_templates[text] = _Template.of(text)
        template = self._fon_templates[text]
        if template is None:
            return ws_frame(wire.notification_frame(mts=_MTS, type="fon-req", status="ERROR",
                                                    text="Invalid offer", notify_info=[None] * 21)), None
        offer_id = next(self._ids)
        ident = str(offer_id)
        note, update, cancel_note, cancel_update = (t.replace(_ID_TOKEN, ident) for t in template.texts)
        self.active[offer_id] = attrs.evolve(template.offer, id=offer_id)
        self.cancel_answers[offer_id] = (ws_frame(cancel_note), ws_frame(cancel_update))
        return ws_frame(note), ws_frame(update)


def _cancel_texts(offer: FundingOffer) -> tuple[str, str]:
    note = wire.notification_frame(mts=_MTS, type="foc-req", status="SUCCESS",
                                   text=_CANCEL_TEXT.format(id=offer.id), notify_info=offer.to_wire())
    return note, wire.offer_frame("foc", attrs.evolve(offer, status="CANCELED"))


@attrs.frozen
class _Template:
    """A fon's answers with a placeholder id: fon-req, fon, and the later cancel's foc-req and foc."""

    offer: FundingOffer
    texts: tuple[str, str, str, str]

    @classmethod
    def of(cls, text: str) -> _Template | None:
        try:
            request = json.loads(text)[3]
            amount, rate = Decimal(request["amount"]), Decimal(request["rate"])
            offer = FundingOffer(id=int(_ID_TOKEN), symbol=request["symbol"], mts_created=_MTS, mts_updated=_MTS,
                                 amount=amount, amount_orig=amount, type=request.get("type", "LIMIT"),
                                 flags=request.get("flags", 0), status="ACTIVE", rate=rate,
                                 period=request["period"], notify=False, hidden=False, renew=False)
        except (ValueError, KeyError, IndexError, TypeError, ArithmeticError):
            return None
        note = wire.notification_frame(mts=_MTS, type="fon-req", status="SUCCESS", text="Submitting funding offer",
                                       notify_info=offer.to_wire())
        return cls(offer, (note, wire.offer_frame("fon", offer), *_cancel_texts(offer)))


class Client:
    """One WebSocket connection."""

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.ws = WSConnection(ConnectionType.SERVER)
        self.out = bytearray()
        self.open = False
        self.authenticated = False
        self.updates = True  # False when the auth filter asked for notifications only
        self.closing = False
        self.partial: list[str] = []


class Stub:
    def __init__(self, offers: int, hb_interval: float) -> None:
        self.book = Book()
        for _ in range(offers):
            self.book.add()
        self.hb_interval = hb_interval
        self.sel = selectors.DefaultSelector()
        self.clients: dict[socket.socket, Client] = {}
        self.connections = 0

    # ---- writing ----

    def send(self, client: Client, data: bytes) -> None:
        if client.out:
            client.out += data
            return
        try:
            sent = client.sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            self.drop(client)
            return
        if sent < len(data):
            client.out += data[sent:]
            self.sel.modify(client.sock, selectors.EVENT_READ | selectors.EVENT_WRITE, client)

    def flush(self, client: Client) -> None:
        try:
            sent = client.sock.send(client.out)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            self.drop(client)
            return
        del client.out[:sent]
        if not client.out:
            if client.closing:
                self.drop(client)
                return
            self.sel.modify(client.sock, selectors.EVENT_READ, client)

    def broadcast(self, data: bytes) -> None:
        for client in list(self.clients.values()):
            if client.authenticated and client.updates:
                self.send(client, data)

    def drop(self, client: Client) -> None:
        if self.clients.pop(client.sock, None) is not None:
            self.sel.unregister(client.sock)
            client.sock.close()

    # ---- reading ----

    def on_readable(self, client: Client) -> None:
        try:
            data = client.sock.recv(262144)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self.drop(client)
            return
        client.ws.receive_data(data)
        for event in client.ws.events():
            if isinstance(event, TextMessage):
                client.partial.append(event.data)
                if event.message_finished:
                    text = "".join(client.partial)
                    client.partial.clear()
                    self.on_message(client, text)
            elif isinstance(event, Request):
                self.send(client, client.ws.send(AcceptConnection()))
                client.open = True
                self.send(client, ws_frame(wire.info_frame(server_id="bench-stub")))
            elif isinstance(event, Ping):
                self.send(client, client.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                self.send(client, client.ws.send(event.response()))
                client.closing = True
                if not client.out:
                    self.drop(client)
                return

    def on_message(self, client: Client, text: str) -> None:
        head = text[:12].replace(" ", "")  # bfxd writes compact JSON, bitfinex-api-py puts spaces in
        if head.startswith('[0,"foc"'):
            offer_id = offer_id_of_cancel(text)
            note, update = self.book.cancel(offer_id if offer_id is not None else 0)
            self.send(client, note)
            if update is not None:
                self.broadcast(update)
        elif head.startswith('[0,"fon"'):
            note, update = self.book.submit(text)
            self.send(client, note)
            if update is not None:
                self.broadcast(update)
        elif text.startswith("{"):
            self.on_event(client, json.loads(text))  # auth, ping, conf: rare, off the measured path

    def on_event(self, client: Client, msg: dict) -> None:
        name = msg.get("event")
        if name == "auth" and not client.authenticated:
            client.authenticated = True
            filters = msg.get("filter") or []
            client.updates = not filters or any(f.startswith(("funding", "wallet")) for f in filters)
            frames = [wire.auth_ok_frame(user_id=1234567, auth_id="bench-stub-auth")]
            if client.updates:
                frames += [wire.account_frame("ws", []), wire.offers_snapshot_frame(self.book.active.values()),
                           wire.account_frame("fcs", []), wire.account_frame("fls", [])]
            self.send(client, b"".join(ws_frame(f) for f in frames))
        elif name == "ping":
            self.send(client, ws_frame(wire.pong_frame(msg.get("cid"), int(time.time() * 1000))))
        elif name == "conf":
            self.send(client, ws_frame(wire.conf_ack_frame(int(msg.get("flags") or 0))))

    # ---- control ----

    def control(self, request: dict) -> dict:
        op = request.get("op")
        if op == "add_offers":
            ids = []
            for _ in range(int(request["n"])):
                offer = self.book.add()
                ids.append(offer.id)
                self.broadcast(ws_frame(wire.offer_frame("fon", offer)))
            return {"ids": ids}
        if op == "stats":
            return {"live": len(self.clients), "offers": len(self.book.active), "connections": self.connections}
        if op == "forget":
            return {}
        return {"error": f"unknown op {op}"}

    def serve(self, listener: socket.socket, control: socket.socket) -> None:
        self.sel.register(listener, selectors.EVENT_READ, "listener")
        self.sel.register(control, selectors.EVENT_READ, "control")
        controls: dict[socket.socket, bytes] = {}
        next_hb = time.monotonic() + self.hb_interval
        hb = ws_frame(wire.heartbeat_frame(0))
        while True:
            for key, mask in self.sel.select(max(0.0, next_hb - time.monotonic())):
                tag = key.data
                if tag == "listener":
                    sock, _ = listener.accept()
                    sock.setblocking(False)
                    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                    self.connections += 1
                    client = Client(sock)
                    self.clients[sock] = client
                    self.sel.register(sock, selectors.EVENT_READ, client)
                elif tag == "control":
                    sock, _ = control.accept()
                    controls[sock] = b""
                    self.sel.register(sock, selectors.EVENT_READ, "ctl")
                elif tag == "ctl":
                    sock = key.fileobj
                    assert isinstance(sock, socket.socket)
                    chunk = sock.recv(65536)
                    if not chunk:
                        self.sel.unregister(sock)
                        sock.close()
                        del controls[sock]
                        continue
                    buf = controls[sock] + chunk
                    while b"\n" in buf:
                        line, buf = buf.split(b"\n", 1)
                        sock.sendall(json.dumps(self.control(json.loads(line))).encode() + b"\n")
                    controls[sock] = buf
                else:
                    if mask & selectors.EVENT_WRITE:
                        self.flush(tag)
                    if mask & selectors.EVENT_READ and tag.sock in self.clients:
                        self.on_readable(tag)
            if time.monotonic() >= next_hb:
                next_hb = time.monotonic() + self.hb_interval
                self.broadcast_hb(hb)

    def broadcast_hb(self, hb: bytes) -> None:
        for client in list(self.clients.values()):
            if client.authenticated:
                self.send(client, hb)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", required=True)
    parser.add_argument("--offers", type=int, default=5)
    parser.add_argument("--hb-interval", type=float, default=5.0)
    args, _ = parser.parse_known_args()  # the simulator's other options (seed, credits, …) mean nothing here
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    listener.setblocking(False)
    control = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    control.bind(args.control)
    control.listen(16)
    stub = Stub(args.offers, args.hb_interval)
    print(f"ws://127.0.0.1:{listener.getsockname()[1]}/ws/2", flush=True)
    try:
        stub.serve(listener, control)
    finally:
        try:
            os.unlink(args.control)
        except OSError:
            pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
