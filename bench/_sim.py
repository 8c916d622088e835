"""The benchmarks' exchange: bfxd's Simulator in a process of its own, plus a control socket for the harness.

``python -m bench._sim --control PATH [--offers N] [--seed S] [--hb-interval S] [--credits N]
[--rate-limit COUNT/SECONDS]`` prints the simulator's URL on
its first stdout line, then serves until SIGTERM. The control socket speaks JSON lines (one request, one answer):

- ``{"op": "add_offers", "n": N}``: book N new offers the way the exchange announces them (a ``fon`` to every
  live connection), never overfilling a connection's outbox; answers ``{"ids": [...]}``.
- ``{"op": "push", "count": N, "mix": {"hb": a, "fou": b, "n": c}}``: push N exchange frames (heartbeats, offer
  updates, notifications) to every authenticated connection, with backpressure; answers the time it took.
- ``{"op": "stats"}``: live connections, frames received, active offers.
- ``{"op": "forget"}``: drop the record of received frames (the Simulator keeps them all for its tests).

The simulator logs at warning level only: it is the reference exchange here, not the subject.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import sys
import time
from functools import partial

import trio

from bfxd.logconfig import configure_logging
from bfxd.protocol import encode as wire
from bfxd.simulator import Simulator, SimulatorConfig
from bfxd.simulator.faults import RateLimit

API_KEY = "bench-key"  # as bench._harness
API_SECRET = "bench-secret"
_HIGH_WATER = 128  # frames queued for one connection before the pusher waits (the outbox holds 256)


def _outbox_used(sim: Simulator) -> int:
    used = 0
    for conn in list(sim._live.values()):  # bench-side instrumentation: private state
        used = max(used, conn._outbox.statistics().current_buffer_used)
    return used


async def _room(sim: Simulator) -> None:
    """Wait until every live connection's outbox is below the high-water mark."""
    while _outbox_used(sim) >= _HIGH_WATER:  # noqa: ASYNC110 - the simulator has no event for "drained"
        await trio.sleep(0.0005)


async def add_offers(sim: Simulator, n: int) -> list[int]:
    ids = []
    rng = random.Random(len(sim.account._offers))
    for i in range(n):
        if i % 64 == 0:
            await _room(sim)
        offer = sim.add_offer(symbol="fUSD", amount=round(rng.uniform(150, 5000), 2),
                              rate=round(rng.uniform(0.0001, 0.001), 6), period=rng.choice((2, 7, 30)))
        ids.append(offer.id)
    await trio.lowlevel.checkpoint()
    return ids


def _frames(sim: Simulator, count: int, mix: dict[str, int]) -> list[str]:
    """A repeating pattern of frames in the proportions of *mix* (the pattern, not all N, is built)."""
    offers = sim.account.active()[:50] or [sim.account.add_offer()]
    pattern: list[str] = []
    for kind, weight in mix.items():
        for i in range(weight):
            offer = offers[i % len(offers)]
            if kind == "hb":
                pattern.append(wire.heartbeat_frame(0))
            elif kind == "fou":
                pattern.append(wire.offer_frame("fou", offer))
            elif kind == "n":
                pattern.append(wire.notification_frame(mts=int(time.time() * 1000), type="fon-req",
                                                       status="SUCCESS", text="Submitting funding offer",
                                                       notify_info=offer.to_wire()))
            else:
                raise ValueError(f"unknown frame kind {kind!r}")
    random.Random(7).shuffle(pattern)
    return pattern


async def push(sim: Simulator, count: int, mix: dict[str, int]) -> float:
    pattern = _frames(sim, count, mix)
    started = time.perf_counter()
    conns = [c for c in sim._live.values() if c.authenticated]
    for i in range(count):
        if i % 32 == 0:
            await _room(sim)
        frame = pattern[i % len(pattern)]
        for conn in conns:
            conn.send(frame, chan=0)
    while _outbox_used(sim):  # noqa: ASYNC110 - as in _room
        await trio.sleep(0.001)
    return time.perf_counter() - started


async def _serve_control(sim: Simulator, path: str, *, task_status: trio.TaskStatus[None]) -> None:
    listener = trio.SocketListener(_bound_unix_socket(path))

    async def handle(stream: trio.SocketStream) -> None:
        buf = b""
        while True:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buf += chunk
            while b"\n" in buf:
                line, buf = buf.split(b"\n", 1)
                request = json.loads(line)
                op = request["op"]
                if op == "add_offers":
                    answer = {"ids": await add_offers(sim, int(request["n"]))}
                elif op == "push":
                    answer = {"seconds": await push(sim, int(request["count"]), request["mix"])}
                elif op == "stats":
                    answer = {"live": len(sim.live_connections), "received": len(sim.received),
                              "offers": len(sim.account._offers), "connections": sim.connection_count}
                elif op == "forget":
                    sim.received.clear()
                    answer = {}
                else:
                    answer = {"error": f"unknown op {op}"}
                await stream.send_all(json.dumps(answer).encode() + b"\n")

    await trio.serve_listeners(handle, [listener], task_status=task_status)


def _bound_unix_socket(path: str) -> trio.socket.SocketType:
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.bind(path)
    sock.listen(16)
    return trio.socket.from_stdlib_socket(sock)


async def main_async(sim: Simulator, control: str) -> None:
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(sim.serve)
            await nursery.start(partial(_serve_control, sim, control))
            print(url, flush=True)
            async for _ in signals:
                break
            nursery.cancel_scope.cancel()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--control", required=True)
    parser.add_argument("--offers", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--hb-interval", type=float, default=15.0)
    parser.add_argument("--credits", type=int, default=0)
    parser.add_argument("--rate-limit", type=RateLimit.parse, default=None, metavar="COUNT/SECONDS")
    args = parser.parse_args()
    configure_logging(fmt="json", level="warning", stream=sys.stderr)
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=args.offers, seed=args.seed,
                                    hb_interval=args.hb_interval, credits=args.credits,
                                    rate_limit=args.rate_limit))
    trio.run(main_async, sim, args.control)
    try:
        os.unlink(args.control)
    except OSError:
        pass
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
