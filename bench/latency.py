"""1. Latency of one cancel round trip, beside the floor and the official client, in the same run.

- daemon: a blocking client sends ``{"op":"cancel",...}`` to ``bfxd run`` and waits for the answer line
  (client → daemon → simulator → daemon → client), one cancel at a time.
- floor: the same cancel frame and its notification over one direct WebSocket to the simulator, plus one
  Unix-socket JSON line round trip to an echo process (bench._floor); no daemon.
- official client: bitfinex-api-py's ``inputs.cancel_funding_offer`` to its ``foc-req-notification``, in a
  process of its own (bench._official), against the same simulator.

The three are interleaved in rounds (daemon, floor, official, daemon, ...) so that background load on the
machine weighs on all three alike. All three are connected to the same simulator throughout.
"""

from __future__ import annotations

import json
import subprocess
import time

from bench._floor import FloorClient
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


def run(work: Workdir, *, quick: bool = False) -> dict:
    rounds, per_round = (4, 150) if quick else (10, 400)
    sim = Sim(work)
    daemon = Daemon(work, sim.url)
    echo_path = work.new("echo.sock")
    echo = spawn([PYTHON, "-m", "bench._floor", "echo", str(echo_path)], stdout=subprocess.PIPE, env=child_env(),
                 cwd=ROOT)
    official = spawn([PYTHON, "-m", "bench._official", sim.url, API_KEY, API_SECRET], stdin=subprocess.PIPE,
                     stdout=subprocess.PIPE, env=child_env(), cwd=ROOT, text=True)
    try:
        assert echo.stdout is not None and official.stdout is not None and official.stdin is not None
        echo.stdout.readline()
        daemon.wait_session()
        if official.stdout.readline().strip() != "READY":
            raise RuntimeError("the official client did not authenticate")
        floor = FloorClient(sim.url, str(echo_path), API_KEY, API_SECRET)
        client = LineClient(daemon.socket_path)
        samples: dict[str, list[int]] = {"daemon": [], "floor": [], "official": []}
        ref = 0
        for _ in range(rounds):
            ids = sim.add_offers(3 * per_round)
            daemon.wait_offers(sim.offer_count())
            mine, floors, officials = ids[:per_round], ids[per_round:2 * per_round], ids[2 * per_round:]
            for offer_id in mine:
                ref += 1
                line = b'{"op":"cancel","id":%d,"ref":%d}\n' % (offer_id, ref)
                started = time.perf_counter_ns()
                client.send(line)
                answer = json.loads(client.read_line())
                samples["daemon"].append(time.perf_counter_ns() - started)
                if not answer.get("ok"):
                    raise RuntimeError(f"bfxd cancel failed: {answer}")
            for offer_id in floors:
                ref += 1
                samples["floor"].append(floor.cancel(offer_id, ref))
            official.stdin.write("RUN " + " ".join(map(str, officials)) + "\n")
            official.stdin.flush()
            result = official.stdout.readline()
            if not result.startswith("RESULT "):
                raise RuntimeError(f"official client failed: {result!r}")
            samples["official"] += json.loads(result[7:])
        floor.close()
        client.close()
        official.stdin.write("QUIT\n")
        official.stdin.flush()
        d50, f50, o50 = (_us(samples[k], 50) for k in ("daemon", "floor", "official"))
        return {
            "daemon_p50_us": d50,
            "daemon_p99_us": _us(samples["daemon"], 99),
            "floor_p50_us": f50,
            "floor_p99_us": _us(samples["floor"], 99),
            "official_client_p50_us": o50,
            "official_client_p99_us": _us(samples["official"], 99),
            "daemon_over_floor": round(d50 / f50, 2),
            "daemon_over_official_client": round(d50 / o50, 2),
            "cancels_each": len(samples["daemon"]),
        }
    finally:
        stop_process(official, timeout=5)
        echo.kill()
        echo.wait()
        daemon.stop()
        sim.stop()

