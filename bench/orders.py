"""Submit and replace round trips through bfxd, beside their floors, against the simulator and the stub.

- bfxd: a blocking client sends ``submit`` (a new 200 USD offer) and waits for its answer; then ``replace``s
  that offer (a new rate) and waits; then cancels the new one (untimed). One request at a time.
- floor: the same exchange frames over one direct WebSocket, no daemon: ``fon`` → its ``fon-req``; for a
  replace, ``foc`` → the offer's ``foc`` update (bfxd waits for the offer to leave the book before it
  submits again) → ``fon`` → ``fon-req``; each followed by one JSON line round trip to the echo process.
- Both exchanges at once (bench._sim, and the fast stub bench._stub), interleaved in rounds, one daemon each.

``*_added_us`` is bfxd's p50 minus the floor's p50: what the daemon adds to the transport.
"""

from __future__ import annotations

import json
import time

from bench._floor import WsClient, start_echo
from bench._harness import API_KEY, API_SECRET, Daemon, LineClient, Sim, Workdir
from bench.latency import summary

SUBMIT = {"op": "submit", "symbol": "fUSD", "amount": "200", "rate": "0.0005", "period": 2}
NEW_RATE = "0.0006"


class OrderFloor:
    """Submit and replace with no daemon: one WebSocket (funding + notify) and the echo process."""

    def __init__(self, url: str, echo_path: str) -> None:
        import socket

        from bfxd.protocol import cancel_offer_frame, new_offer_frame

        self._cancel_frame, self._new_frame = cancel_offer_frame, new_offer_frame
        self.ws = WsClient(url)
        self.ws.authenticate(API_KEY, API_SECRET, filter=("funding", "notify"))
        self.unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.unix.connect(echo_path)
        self.buf = b""

    def _wait(self, test) -> list:  # type: ignore[no-untyped-def]
        while True:
            msg = json.loads(self.ws.receive())
            if isinstance(msg, list) and len(msg) > 2 and test(msg):
                return msg

    def _submit(self, rate: str) -> int:
        self.ws.send(self._new_frame(type="LIMIT", symbol="fUSD", amount="200", rate=rate, period=2))
        msg = self._wait(lambda m: m[1] == "n" and m[2][1] == "fon-req")
        if msg[2][6] != "SUCCESS":
            raise RuntimeError(f"floor submit failed: {msg}")
        return int(msg[2][4][0])

    def _echo(self, ref: int) -> None:
        self.unix.sendall(json.dumps({"op": "submit", "id": ref, "ref": ref}).encode() + b"\n")
        while (end := self.buf.find(b"\n")) < 0:
            self.buf += self.unix.recv(65536)
        self.buf = self.buf[end + 1:]

    def submit(self, ref: int) -> tuple[int, int]:
        """(the new offer's id, ns)."""
        started = time.perf_counter_ns()
        offer_id = self._submit(SUBMIT["rate"])
        self._echo(ref)
        return offer_id, time.perf_counter_ns() - started

    def replace(self, offer_id: int, ref: int) -> tuple[int, int]:
        started = time.perf_counter_ns()
        self.ws.send(self._cancel_frame(offer_id))
        self._wait(lambda m: m[1] == "foc" and m[2][0] == offer_id)
        new_id = self._submit(NEW_RATE)
        self._echo(ref)
        return new_id, time.perf_counter_ns() - started

    def cancel(self, offer_id: int) -> None:
        self.ws.send(self._cancel_frame(offer_id))
        self._wait(lambda m: m[1] == "foc" and m[2][0] == offer_id)

    def close(self) -> None:
        self.ws.close()
        self.unix.close()


def _timed(client: LineClient, request: dict) -> tuple[dict, int]:
    line = json.dumps(request).encode() + b"\n"
    started = time.perf_counter_ns()
    client.send(line)
    answer = json.loads(client.read_line())
    elapsed = time.perf_counter_ns() - started
    if not answer.get("ok"):
        raise RuntimeError(f"bfxd {request['op']} failed: {answer}")
    return answer, elapsed


def _daemon_round(daemon: Daemon, n: int, samples: dict[str, list[int]], ref: int) -> None:
    client = LineClient(daemon.socket_path)
    submitted = []
    for i in range(n):
        answer, ns = _timed(client, {**SUBMIT, "ref": ref + i})
        samples["submit"].append(ns)
        submitted.append(answer["offer"]["id"])
    replaced = []
    for i, offer_id in enumerate(submitted):
        answer, ns = _timed(client, {"op": "replace", "id": offer_id, "rate": NEW_RATE, "ref": ref + n + i})
        samples["replace"].append(ns)
        replaced.append(answer["offer"]["id"])
    for offer_id in replaced:
        _timed(client, {"op": "cancel", "id": offer_id})
    client.close()


def _floor_round(floor: OrderFloor, n: int, samples: dict[str, list[int]], ref: int) -> None:
    submitted = []
    for i in range(n):
        offer_id, ns = floor.submit(ref + i)
        samples["submit_floor"].append(ns)
        submitted.append(offer_id)
    for i, offer_id in enumerate(submitted):
        new_id, ns = floor.replace(offer_id, ref + n + i)
        samples["replace_floor"].append(ns)
        floor.cancel(new_id)


def run(work: Workdir, *, quick: bool = False) -> dict:
    rounds, per_round = (3, 40) if quick else (8, 150)
    exchanges = {"sim": Sim(work), "stub": Sim(work, stub=True)}
    daemons = {name: Daemon(work, ex.url) for name, ex in exchanges.items()}
    echoes = {name: start_echo(work) for name in exchanges}  # the echo process serves one client at a time
    floors: dict[str, OrderFloor] = {}
    try:
        for daemon in daemons.values():
            daemon.wait_session()
        floors = {name: OrderFloor(ex.url, echoes[name][1]) for name, ex in exchanges.items()}
        samples = {name: {k: [] for k in ("submit", "replace", "submit_floor", "replace_floor")}
                   for name in exchanges}
        ref = 0
        for _ in range(rounds):
            for name in exchanges:
                _daemon_round(daemons[name], per_round, samples[name], ref)
                _floor_round(floors[name], per_round, samples[name], ref)
                ref += 2 * per_round
        out: dict = {"each": rounds * per_round}
        for name, by_kind in samples.items():
            suffix = "" if name == "sim" else "_stub"
            for op in ("submit", "replace"):
                mine, floor = summary(by_kind[op]), summary(by_kind[f"{op}_floor"])
                out[f"{op}_p50_us{suffix}"], out[f"{op}_p99_us{suffix}"] = mine
                out[f"{op}_floor_p50_us{suffix}"], out[f"{op}_floor_p99_us{suffix}"] = floor
                out[f"{op}_added_us{suffix}"] = round(mine[0] - floor[0], 1)
                out[f"{op}_over_floor{suffix}"] = round(mine[0] / floor[0], 2)
        return out
    finally:
        for floor in floors.values():
            floor.close()
        for echo, _ in echoes.values():
            echo.kill()
            echo.wait()
        for daemon in daemons.values():
            daemon.stop()
        for ex in exchanges.values():
            ex.stop()
