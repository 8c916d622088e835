"""4. Memory: the daemon's RSS idle, with 10,000 offers and 1,000 idle clients, and its growth over 1M frames.

RSS is the daemon process's resident set (psutil), read after the daemon has settled.
- idle: a fresh daemon with an authenticated session and the simulator's default five offers, no client.
- 10k offers: a fresh daemon against a simulator holding 10,000 offers (one ``fos`` snapshot of 10,000).
- + 1k clients: then 1,000 clients connect and stay idle (each sends one ``ping`` first, so the daemon has
  served it).
- 10k offers + 10k credits (+ 1k clients): the same with a fresh daemon against a simulator that also holds
  10,000 open funding credits (``--credits``: one ``fcs`` snapshot of 10,000).
- growth over 1M frames (a fresh daemon, 100 offers): the simulator pushes exchange frames through the
  running daemon (the mix below: heartbeats, ``fou`` updates of offers on the book, ``fon-req`` notifications)
  in batches, each followed by a sentinel ``fon`` the daemon must have read before the next; growth = RSS
  after 1M frames minus RSS after a warm-up batch (first-use allocations are not growth).
"""

from __future__ import annotations

import time

from bench._harness import Daemon, LineClient, Sim, Workdir

MIX = {"hb": 6, "fou": 3, "n": 1}  # per 10 frames
IDLE_CLIENTS = 1000
FRAMES_BUDGET_S = 330.0  # a safety net for `make bench`'s ten minutes on a loaded machine: stop pushing early


def _settled_rss(daemon: Daemon, pause: float = 1.0) -> float:
    time.sleep(pause)
    return round(daemon.rss_mb(), 1)


def _push(sim: Sim, daemon: Daemon, count: int) -> None:
    sim.control("push", count=count, mix=MIX)
    sim.add_offers(1)  # the sentinel: behind every pushed frame on the same connection
    daemon.wait_offers(sim.offer_count(), timeout=600)


def _idle_clients(daemon: Daemon) -> list[LineClient]:
    """IDLE_CLIENTS connections, each served one ping, then left idle."""
    clients = []
    for _ in range(IDLE_CLIENTS):
        client = LineClient(daemon.socket_path)
        client.send(b'{"op":"ping"}\n')
        clients.append(client)
    for client in clients:
        if b'"ok":true' not in client.read_line():
            raise RuntimeError("an idle client was refused")
    return clients


def _credits_held(sim: Sim, daemon: Daemon) -> int | None:
    """Make sure bfxd has read the credits snapshot, and return how many credits it holds (None: this daemon
    has no ``credits`` op). The snapshots come in the order fos, fcs, fls on one link; a new offer (fon) sent
    after them is the sentinel: once the book holds it, the fcs before it has been read."""
    sim.add_offers(1)
    daemon.wait_offers(sim.offer_count())
    with LineClient(daemon.socket_path) as client:
        answer = client.request({"op": "credits"})
    return len(answer["credits"]) if answer.get("ok") else None


def run(work: Workdir, *, quick: bool = False) -> dict:
    frames, batch = (100_000, 25_000) if quick else (1_000_000, 100_000)
    out: dict = {}
    sim = Sim(work)
    daemon = Daemon(work, sim.url)
    try:
        daemon.wait_session()
        out["rss_mb_idle"] = _settled_rss(daemon, 2.0)
    finally:
        daemon.stop()
        sim.stop()

    sim = Sim(work, offers=10_000)
    daemon = Daemon(work, sim.url)
    clients: list[LineClient] = []
    try:
        daemon.wait_session()
        daemon.wait_offers(10_000)
        out["rss_mb_10k_offers"] = _settled_rss(daemon)
        clients = _idle_clients(daemon)
        out["rss_mb_10k_offers_1k_clients"] = _settled_rss(daemon)
    finally:
        for client in clients:
            client.close()
        daemon.stop()
        sim.stop()

    # 10,000 offers and 10,000 credits (the simulator opens the credits at start), then the 1,000 clients.
    sim = Sim(work, offers=10_000, credits=10_000)
    daemon = Daemon(work, sim.url)
    clients = []
    try:
        daemon.wait_session()
        daemon.wait_offers(10_000)
        out["credits_held"] = _credits_held(sim, daemon)
        out["rss_mb_10k_offers_10k_credits"] = _settled_rss(daemon)
        clients = _idle_clients(daemon)
        out["rss_mb_10k_offers_10k_credits_1k_clients"] = _settled_rss(daemon)
    finally:
        for client in clients:
            client.close()
        daemon.stop()
        sim.stop()

    # A fresh pair for the frames, so memory the 1,000 clients leave behind is not taken for shrinkage.
    sim = Sim(work, offers=100)
    daemon = Daemon(work, sim.url)
    try:
        daemon.wait_session()
        _push(sim, daemon, batch)  # warm-up
        before = _settled_rss(daemon)
        cpu0, started, pushed = daemon.cpu_s(), time.perf_counter(), 0
        series = []
        while pushed < frames and time.perf_counter() - started < FRAMES_BUDGET_S:
            _push(sim, daemon, batch)
            pushed += batch
            series.append(round(daemon.rss_mb(), 1))
        wall = time.perf_counter() - started
        cpu = daemon.cpu_s() - cpu0
        after = _settled_rss(daemon)
        out.update({
            "rss_mb_before_frames": before,
            "rss_mb_after_frames": after,
            "growth_mb_1m_frames": round(after - before, 2),  # over `frames` frames: see that figure
            "rss_mb_series": series,
            "frames": pushed,
            "frames_per_s": round(pushed / wall),
            "daemon_cpu_us_per_frame": round(cpu / pushed * 1e6, 1),
        })
        return out
    finally:
        daemon.stop()
        sim.stop()
