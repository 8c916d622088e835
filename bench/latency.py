"""1. Latency of one cancel round trip, beside the floor and the official client, in the same run.

- daemon: a blocking client sends ``{"op":"cancel",...}`` to ``bfxd run`` and waits for the answer line
  (client → daemon → simulator → daemon → client), one cancel at a time.
- floor: the same cancel frame and its notification over one direct WebSocket to the simulator, plus one
  Unix-socket JSON line round trip to an echo process (bench._floor); no daemon.
- official client: bitfinex-api-py's ``inputs.cancel_funding_offer`` to its ``foc-req-notification``, in a
  process of its own (bench._official), against the same simulator.

The three are interleaved in rounds (daemon, floor, official, daemon, ...) so that background load on the
machine weighs on all three alike. All three are connected to the same simulator throughout.

The same again against the fast exchange stub (bench._stub: answers from prepared bytes, so the floor is the
transport), one daemon per exchange, the two exchanges' rounds interleaved: figures with ``_stub``. The
daemon's share is ``daemon_added_us`` = bfxd's p50 - the floor's p50 (goal: at most 150 µs against the stub).
"""

from __future__ import annotations

import json
import subprocess
import time

from bench._floor import FloorClient, start_echo
from bench._harness import (
    API_KEY,
    API_SECRET,
    PYTHON,
    ROOT,
    Daemon,
    LineClient,
    Sim,
    Workdir,
    child_env,
    percentile,
    spawn,
    stop_process,
)


def _us(values_ns: list[int], p: float) -> float:
    return round(percentile(values_ns, p) / 1000, 1)


def summary(values_ns: list[int]) -> tuple[float, float]:
    """(p50, p99) in µs."""
    return _us(values_ns, 50), _us(values_ns, 99)


class Exchange:
    """One exchange (the simulator or the stub) with its three clients: bfxd, the floor, the official client."""

    def __init__(self, work: Workdir, *, stub: bool) -> None:
        self.echo, self.echo_path = start_echo(work)  # one each: the echo process serves one client at a time
        self.sim = Sim(work, stub=stub)
        self.daemon = Daemon(work, self.sim.url)
        self.official = spawn([PYTHON, "-m", "bench._official", self.sim.url, API_KEY, API_SECRET],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=child_env(), cwd=ROOT, text=True)
        self.samples: dict[str, list[int]] = {"daemon": [], "floor": [], "official": []}
        self.floor: FloorClient | None = None
        self.client: LineClient | None = None

    def connect(self) -> None:
        assert self.official.stdout is not None
        self.daemon.wait_session()
        if self.official.stdout.readline().strip() != "READY":
            raise RuntimeError(f"the official client did not authenticate ({self.sim.name})")
        self.floor = FloorClient(self.sim.url, self.echo_path, API_KEY, API_SECRET)
        self.client = LineClient(self.daemon.socket_path)

    def round(self, per_round: int, ref: int) -> int:
        """One round of *per_round* cancels for each client, in turn; returns the next ref."""
        assert self.client is not None and self.floor is not None
        assert self.official.stdin is not None and self.official.stdout is not None
        ids = self.sim.add_offers(3 * per_round)
        self.daemon.wait_offers(self.sim.offer_count())
        mine, floors, officials = ids[:per_round], ids[per_round:2 * per_round], ids[2 * per_round:]
        for offer_id in mine:
            ref += 1
            line = b'{"op":"cancel","id":%d,"ref":%d}\n' % (offer_id, ref)
            started = time.perf_counter_ns()
            self.client.send(line)
            answer = json.loads(self.client.read_line())
            self.samples["daemon"].append(time.perf_counter_ns() - started)
            if not answer.get("ok"):
                raise RuntimeError(f"bfxd cancel failed ({self.sim.name}): {answer}")
        for offer_id in floors:
            ref += 1
            self.samples["floor"].append(self.floor.cancel(offer_id, ref))
        self.official.stdin.write("RUN " + " ".join(map(str, officials)) + "\n")
        self.official.stdin.flush()
        result = self.official.stdout.readline()
        if not result.startswith("RESULT "):
            raise RuntimeError(f"official client failed ({self.sim.name}): {result!r}")
        self.samples["official"] += json.loads(result[7:])
        return ref

    def figures(self, suffix: str) -> dict:
        (d50, d99), (f50, f99), (o50, o99) = (summary(self.samples[k]) for k in ("daemon", "floor", "official"))
        return {
            f"daemon_p50_us{suffix}": d50, f"daemon_p99_us{suffix}": d99,
            f"floor_p50_us{suffix}": f50, f"floor_p99_us{suffix}": f99,
            f"official_client_p50_us{suffix}": o50, f"official_client_p99_us{suffix}": o99,
            f"daemon_over_floor{suffix}": round(d50 / f50, 2),
            f"daemon_over_official_client{suffix}": round(d50 / o50, 2),
            f"daemon_added_us{suffix}": round(d50 - f50, 1),
        }

    def close(self) -> None:
        if self.official.stdin is not None and self.official.poll() is None:
            try:
                self.official.stdin.write("QUIT\n")
                self.official.stdin.flush()
            except OSError:
                pass
        stop_process(self.official, timeout=5)
        for part in (self.floor, self.client):
            if part is not None:
                part.close()
        self.daemon.stop()
        self.sim.stop()
        self.echo.kill()
        self.echo.wait()


def run(work: Workdir, *, quick: bool = False) -> dict:
    rounds, per_round = (4, 100) if quick else (10, 300)
    exchanges: list[Exchange] = []
    try:
        exchanges = [Exchange(work, stub=False), Exchange(work, stub=True)]
        for exchange in exchanges:
            exchange.connect()
        ref = 0
        for _ in range(rounds):
            for exchange in exchanges:  # sim, then stub, each round: load weighs on both alike
                ref = exchange.round(per_round, ref)
        sim, stub = exchanges
        return {**sim.figures(""), **stub.figures("_stub"), "cancels_each": len(sim.samples["daemon"])}
    finally:
        for exchange in exchanges:
            exchange.close()
