"""The latency floor: what one cancel costs with no daemon in the path.

Two legs, timed together, from one blocking client:
- the cancel frame bfxd sends (``cancel_offer_frame``) and its ``foc-req`` notification, over one direct
  WebSocket to the simulator, framed by wsproto (as bfxd's own link, wslink.py, is), no event loop;
- one JSON line round trip over a Unix socket to an echo server in a process of its own, which parses the
  request line and answers a line shaped like bfxd's cancel answer (same fields, same size).

``python -m bench._floor echo PATH`` runs the echo server (blocking, one client at a time).
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from typing import Any
from urllib.parse import urlsplit

from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, CloseConnection, Message, Ping, Request, TextMessage

from bfxd.protocol import cancel_offer_frame
from bfxd.protocol.encode import auth_frame
from bfxd.secret import Secret

_ANSWER_OFFER = {"id": 0, "symbol": "fUSD", "mts_created": 1795636514417, "mts_updated": 1795636514417,
                 "amount": 1234.56, "amount_orig": 1234.56, "type": "LIMIT", "flags": 0, "status": "ACTIVE",
                 "rate": 0.000512, "period": 7, "notify": False, "hidden": False, "renew": False}


class WsClient:
    """A minimal blocking WebSocket client: wsproto framing on a plain socket."""

    def __init__(self, url: str, *, timeout: float = 30.0) -> None:
        parts = urlsplit(url)
        self.sock = socket.create_connection((parts.hostname, parts.port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.ws = WSConnection(ConnectionType.CLIENT)
        self.sock.sendall(self.ws.send(Request(host=f"{parts.hostname}:{parts.port}", target=parts.path)))
        self._messages: list[str] = []
        self._partial: list[str] = []
        self._accepted = False
        while not self._accepted:
            self._pump()

    def _pump(self) -> None:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionError("simulator closed the connection")
        self.ws.receive_data(data)
        for event in self.ws.events():
            if isinstance(event, AcceptConnection):
                self._accepted = True
            elif isinstance(event, Message):
                self._partial.append(event.data if isinstance(event, TextMessage) else event.data.decode())
                if event.message_finished:
                    self._messages.append("".join(self._partial))
                    self._partial.clear()
            elif isinstance(event, Ping):
                self.sock.sendall(self.ws.send(event.response()))
            elif isinstance(event, CloseConnection):
                raise ConnectionError(f"simulator closed: {event.code}")

    def send(self, text: str) -> None:
        self.sock.sendall(self.ws.send(TextMessage(data=text)))

    def receive(self) -> str:
        while not self._messages:
            self._pump()
        return self._messages.pop(0)

    def authenticate(self, api_key: str, api_secret: str, *, filter: tuple[str, ...]) -> None:
        nonce = time.time_ns() // 1000
        self.send(auth_frame(Secret(api_key), Secret(api_secret), nonce, filter=filter))
        while True:
            msg = json.loads(self.receive())
            if isinstance(msg, dict) and msg.get("event") == "auth":
                if msg.get("status") != "OK":
                    raise RuntimeError(f"auth failed: {msg}")
                return

    def close(self) -> None:
        self.sock.close()


class FloorClient:
    """One floor cancel: the WebSocket leg, then the Unix-socket JSON line leg."""

    def __init__(self, url: str, echo_path: str, api_key: str, api_secret: str) -> None:
        self.ws = WsClient(url)
        # Notifications only: the sim then sends this connection exactly what bfxd needs to answer (the n).
        self.ws.authenticate(api_key, api_secret, filter=("notify",))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.connect(echo_path)
        self.buf = b""

    def cancel(self, offer_id: int, ref: int) -> int:
        """One floor round trip; returns its duration in ns."""
        started = time.perf_counter_ns()
        self.ws.send(cancel_offer_frame(offer_id))
        while True:
            msg = json.loads(self.ws.receive())
            if isinstance(msg, list) and len(msg) > 2 and msg[1] == "n" and msg[2][1] == "foc-req":
                break
        self.unix.sendall(json.dumps({"op": "cancel", "id": offer_id, "ref": ref}).encode() + b"\n")
        while (end := self.buf.find(b"\n")) < 0:
            self.buf += self.unix.recv(65536)
        line, self.buf = self.buf[:end], self.buf[end + 1:]
        answer = json.loads(line)
        elapsed = time.perf_counter_ns() - started
        if msg[2][6] != "SUCCESS" or not answer["ok"]:
            raise RuntimeError(f"floor cancel of {offer_id} failed: {msg}")
        return elapsed

    def close(self) -> None:
        self.ws.close()
        self.unix.close()


def start_echo(work: Any) -> tuple[subprocess.Popen, str]:
    """An echo process (it serves one client at a time: one per floor client) and its socket path, once it
    listens."""
    from bench._harness import PYTHON, ROOT, child_env, spawn

    path = str(work.new("echo.sock"))
    proc = spawn([PYTHON, "-m", "bench._floor", "echo", path], stdout=subprocess.PIPE, env=child_env(), cwd=ROOT)
    assert proc.stdout is not None
    proc.stdout.readline()
    return proc, path


def echo_main(path: str) -> int:
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(path)
    server.listen(4)
    print("listening", flush=True)
    while True:
        conn, _ = server.accept()
        buf = b""
        with conn:
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                buf += chunk
                while (end := buf.find(b"\n")) >= 0:
                    line, buf = buf[:end], buf[end + 1:]
                    request = json.loads(line)
                    offer = {**_ANSWER_OFFER, "id": request["id"]}
                    answer = {"ok": True, "op": request["op"], "ref": request["ref"], "id": request["id"],
                              "status": "SUCCESS", "offer": offer,
                              "text": f"Submitted for cancellation; waiting for confirmation (ID: {request['id']})."}
                    conn.sendall(json.dumps(answer, separators=(",", ":")).encode() + b"\n")


if __name__ == "__main__":
    if sys.argv[1:2] == ["echo"]:
        raise SystemExit(echo_main(sys.argv[2]))
    raise SystemExit("usage: python -m bench._floor echo PATH")
