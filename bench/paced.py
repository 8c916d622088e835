"""The paced cancel-all: 1,000 offers against an exchange that allows 20 inputs a second.

The simulator limits every connection to 20 inputs in any 1 s (``--rate-limit 20/1``: beyond it, error 10001
and a closed connection, as the exchange does). bfxd runs with ``inputs_per_second = 18`` and ``input_burst =
1``, just under that limit. One client sends one ``cancel_all`` (with a timeout long enough for the pace) and
waits for its answer. Reported: the elapsed time, the time the pace alone takes (offers / pace), their ratio
(goal: at most 1.1), the answers in ``results`` and how many succeeded (goal: every offer), and the
disconnects during the run (``exchange.disconnected`` log lines, and ``status.reconnects``; goal: none).
"""

from __future__ import annotations

import json
import time

from bench._harness import Daemon, LineClient, Sim, Workdir

PACE = 18.0
LIMIT = "20/1"


def run(work: Workdir, *, quick: bool = False) -> dict:
    offers = 100 if quick else 1000
    sim = Sim(work, offers=offers, rate_limit=LIMIT)
    daemon = Daemon(work, sim.url, inputs_per_second=PACE, input_burst=1)
    try:
        status = daemon.wait_session()
        daemon.wait_offers(offers)
        reconnects0, disconnects0 = status["reconnects"], daemon.disconnects()
        ideal_s = offers / PACE
        with LineClient(daemon.socket_path, timeout=ideal_s * 3 + 60) as client:
            started = time.perf_counter()
            client.send(json.dumps({"op": "cancel_all", "timeout": round(ideal_s * 2 + 30), "ref": 1}).encode()
                        + b"\n")
            answer = json.loads(client.read_line())
            elapsed = time.perf_counter() - started
            status = client.request({"op": "status"})["status"]
        results = answer.get("results") or []
        return {
            "offers": offers,
            "inputs_per_second": PACE,
            "exchange_limit": LIMIT,
            "cancel_all_s": round(elapsed, 2),
            "ideal_s": round(ideal_s, 2),
            "cancel_all_over_ideal": round(elapsed / ideal_s, 3),
            "answers": len(results),
            "succeeded": sum(1 for r in results if r.get("ok")),
            "answer_ok": bool(answer.get("ok")),
            "first_error": None if answer.get("ok") else answer.get("error"),
            "disconnects": daemon.disconnects() - disconnects0,
            "reconnects": status["reconnects"] - reconnects0,
            "rate_limited_at_exchange": sim.log_path.read_bytes().count(b"simulator.rate_limited"),
        }
    finally:
        daemon.stop()
        sim.stop()
