"""Soak: the real ``bfxd run`` for minutes under steady traffic and periodic exchange faults; nothing may be lost.

``python -m bench.soak [--minutes 3] [--clients 4] [--rate 40] [--fault-every 5] [--seed 1] [--json PATH]``

- The exchange is bfxd's Simulator, in this process; the daemon is a child process (``bfxd run -c CONFIG``) with
  its config, socket and JSON log in a private temp dir.
- Traffic: N clients, each on its own connection, pipelining a few requests at a time at a steady total rate:
  cancels of offers the simulator keeps creating (one new offer per cancel), pings and statuses. Each request has
  a unique ref; an answer whose ref is not outstanding is a double answer; a request still unanswered well after
  its deadline (once traffic has stopped) is lost.
- Faults, one every ``--fault-every`` seconds, in a fixed cycle: abrupt drop, malformed frames, auth rejection,
  lost inputs, info 20051, maintenance start, maintenance end, nonce error, malformed frames, close frame, lost
  inputs. The cycle is laid out so that no 15 s window needs more than 4 new connections: the daemon's real
  connection guard (5 per 15 s, backoff.py) is never what holds a request back. A fault is survived when the
  session is ``ready`` again (after a new link, for the faults that cost one; on the same link for the others).
- Report: requests sent, final answers, lost, doubled, outcomes per op, faults injected and survived, reconnects,
  bad frames skipped, the daemon's RSS at the start, peak and end, and its exit code on SIGTERM. Exit status 1
  if anything was lost or answered twice, a fault was not survived, or the daemon died, stopped badly or logged
  a client handler error.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any, BinaryIO

import attrs
import psutil
import trio

from bfxd.logconfig import configure_logging
from bfxd.simulator import Simulator, SimulatorConfig

API_KEY = "soak-key"
API_SECRET = "soak-secret"
REQUEST_TIMEOUT_S = 5.0
RECOVERY_BOUND_S = 30.0  # a fault not followed by a ready session within this is not survived
DRAIN_BOUND_S = REQUEST_TIMEOUT_S + 15.0  # after the traffic stops, every request must be answered within this
WINDOW = 4  # requests one client keeps in flight
GARBAGE = ("{not json", "[]", "null", '"text"', '[0,"fon",[1,2]]', '[0,"n",["x"]]', '[0,"fos",{"a":1}]',
           '{"event":"nope"}', '{"event":"info","code":"x"}', "[0," * 50)
# (name, new connections it costs): the cycle keeps any 3-4 consecutive slots under the connection guard.
CYCLE = (("drop", 1), ("malformed", 0), ("auth_rejected", 2), ("lost_inputs", 0), ("restart_20051", 1),
         ("maintenance_start", 0), ("maintenance_end", 1), ("nonce_error", 2), ("malformed", 0),
         ("close_frame", 1), ("lost_inputs", 0))
RELINKING = {name for name, connections in CYCLE if connections}


@attrs.define
class Tally:
    sent: Counter[str] = attrs.Factory(Counter)  # by op
    outcomes: Counter[tuple[str, str]] = attrs.Factory(Counter)  # (op, outcome)
    doubled: int = 0
    unreadable: int = 0
    connections_lost: int = 0
    wrong: list[str] = attrs.Factory(list)  # answers that are no final answer at all, or a ping/status not ok

    @property
    def answers(self) -> int:
        return sum(self.outcomes.values())


@attrs.define
class FaultRecord:
    name: str
    at: float
    survived: bool | None = None
    detail: str = ""


# ---- the daemon, as a child process ---------------------------------------------------------------------


def write_config(work: Path, url: str) -> Path:
    path = work / "bfxd.toml"
    path.write_text(
        f'[exchange]\nurl = "{url}"\nheartbeat_timeout = 10.0\n'
        # The shipped pace (5 inputs/s) is below this traffic's cancel rate: the soak is of faults, not the pace.
        "inputs_per_second = 1000\ninput_burst = 10000\n"
        f'[socket]\npath = "{work / "bfxd.sock"}"\nmode = "0600"\n'
        f"[requests]\ntimeout = {REQUEST_TIMEOUT_S}\nshutdown_grace = 2.0\n"
        '[reconnect]\ninitial_delay = 0.2\nmax_delay = 2.0\n'
        '[log]\nformat = "json"\nlevel = "info"\n'
    )
    return path


def daemon_command() -> list[str]:
    script = Path(sys.executable).parent / "bfxd"
    return [str(script)] if script.exists() else [sys.executable, "-m", "bfxd"]


def daemon_env(notify_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BFXD_", "NOTIFY_SOCKET", "WATCHDOG_"))}
    env.update(BFXD_API_KEY=API_KEY, BFXD_API_SECRET=API_SECRET, NOTIFY_SOCKET=str(notify_path))
    return env


async def wait_notify(sock: trio.socket.SocketType, what: bytes) -> None:
    while what not in (await sock.recv(4096)).split(b"\n"):
        pass


# ---- the daemon's state, as a watch client sees it ------------------------------------------------------


class SessionWatch:
    """A ``watch`` client: every state change of the session (timestamped) and every offer id announced, and a
    way to wait on them. A watcher that falls behind is cut off by design; it then watches again."""

    def __init__(self, socket_path: Path) -> None:
        self.socket_path = socket_path
        self.history: list[tuple[float, str]] = []
        self.offers_seen: set[int] = set()
        self.cut_offs = 0
        self._changed = trio.Event()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        started = False
        while True:
            try:
                stream = await trio.open_unix_socket(str(self.socket_path))
            except OSError:
                if not started:
                    raise
                return  # the daemon is gone: stopping (or dead, which the exit code tells)
            async with stream:
                await stream.send_all(b'{"op":"watch","ref":"soak-watch"}\n')
                buffer = b""
                while chunk := await stream.receive_some(65536):
                    buffer += chunk
                    *lines, buffer = buffer.split(b"\n")
                    for line in lines:
                        self._event(json.loads(line))
                        if not started:
                            started = True
                            task_status.started()
            if not started:
                raise RuntimeError("the daemon closed the watch connection before answering it")

    def _event(self, item: dict[str, Any]) -> None:
        event = item.get("event")
        if event == "state":
            self.history.append((trio.current_time(), item["state"]))
        elif event == "offer":
            self.offers_seen.add(item["offer"]["id"])
        elif event == "watch_ended":
            self.cut_offs += 1
        self._changed.set()
        self._changed = trio.Event()

    def reached_since(self, state: str, since: float) -> bool:
        return any(at >= since and seen == state for at, seen in self.history)

    async def wait_for(self, predicate: Callable[[], bool]) -> bool:
        """True once *predicate* holds (checked after each event); False if it still does not after the bound."""
        with trio.move_on_after(RECOVERY_BOUND_S):
            while not predicate():
                await self._changed.wait()
            return True
        return False


async def status(socket_path: Path) -> dict[str, Any]:
    stream = await trio.open_unix_socket(str(socket_path))
    async with stream:
        await stream.send_all(b'{"op":"status","ref":"soak-status"}\n')
        buffer = b""
        while b"\n" not in buffer:
            chunk = await stream.receive_some(65536)
            if not chunk:
                raise ConnectionError("the daemon closed the status connection")
            buffer += chunk
    return json.loads(buffer.split(b"\n", 1)[0])["status"]


async def settled_status(socket_path: Path) -> dict[str, Any]:
    """The status once the router has forgotten requests that timed out (its sweep runs every second).

    The board has no event for the pending count, so this asks a few times within a bound."""
    with trio.move_on_after(5):
        while (current := await status(socket_path))["pending"]:  # noqa: ASYNC110 - no event to wait on
            await trio.sleep(0.2)
        return current
    return await status(socket_path)


# ---- traffic ---------------------------------------------------------------------------------------------


class TrafficClient:
    """One connection pipelining up to WINDOW requests; every answer is matched to its ref exactly once."""

    def __init__(self, name: str, socket_path: Path, sim: Simulator, tally: Tally, rng: random.Random) -> None:
        self.name, self.socket_path, self.sim, self.tally, self.rng = name, socket_path, sim, tally, rng
        self.outstanding: dict[str, tuple[str, float]] = {}  # ref → (op, sent at)
        self.window = trio.Semaphore(WINDOW)
        self.drained = trio.Event()
        self.stopping = False
        self._numbers = iter(range(1, 1 << 62))

    async def run(self, stop_sending: trio.Event, interval: float) -> None:
        stream = await trio.open_unix_socket(str(self.socket_path))
        async with stream, trio.open_nursery() as nursery:
            nursery.start_soon(self._read, stream)
            await self._send(stream, stop_sending, interval)
            self.stopping = True
            if not self.outstanding:
                self.drained.set()
            with trio.move_on_after(DRAIN_BOUND_S):
                await self.drained.wait()
            nursery.cancel_scope.cancel()

    async def _send(self, stream: trio.SocketStream, stop_sending: trio.Event, interval: float) -> None:
        next_at = trio.current_time()
        while not stop_sending.is_set():
            await self.window.acquire()
            roll = self.rng.random()
            ref = f"{self.name}-{next(self._numbers)}"
            if roll < 0.6:
                offer = self.sim.add_offer(symbol="fUSD", amount=round(self.rng.uniform(150, 500), 2),
                                           rate=0.0002, period=2)
                request: dict[str, Any] = {"op": "cancel", "id": offer.id, "ref": ref, "timeout": REQUEST_TIMEOUT_S}
            elif roll < 0.8:
                request = {"op": "ping", "ref": ref}
            else:
                request = {"op": "status", "ref": ref}
            self.outstanding[ref] = (request["op"], trio.current_time())
            self.tally.sent[request["op"]] += 1
            try:
                await stream.send_all(json.dumps(request).encode() + b"\n")
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                self.tally.connections_lost += 1
                return
            next_at += interval
            with trio.move_on_at(next_at):  # pacing the load, not waiting for anything
                await stop_sending.wait()

    async def _read(self, stream: trio.SocketStream) -> None:
        buffer = b""
        while True:
            try:
                chunk = await stream.receive_some(65536)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                chunk = b""
            if not chunk:
                self.tally.connections_lost += 1
                return
            buffer += chunk
            *lines, buffer = buffer.split(b"\n")
            for line in lines:
                self._answer(line)

    def _answer(self, line: bytes) -> None:
        try:
            answer = json.loads(line)
        except ValueError:
            self.tally.unreadable += 1
            return
        if not isinstance(answer, dict) or "ok" not in answer:
            self.tally.wrong.append(line[:200].decode("utf-8", "replace"))
            return
        ref = answer.get("ref")
        if ref not in self.outstanding:
            self.tally.doubled += 1
            self.tally.wrong.append(f"answer to a ref not outstanding: {line[:200]!r}")
            return
        op, _ = self.outstanding.pop(ref)
        outcome = "ok" if answer["ok"] else str(answer.get("error", {}).get("type"))
        if op in ("ping", "status") and outcome != "ok":
            self.tally.wrong.append(f"{op} not ok: {line[:200]!r}")
        self.tally.outcomes[(op, outcome)] += 1
        self.window.release()
        if self.stopping and not self.outstanding:
            self.drained.set()


# ---- faults ----------------------------------------------------------------------------------------------


async def inject(name: str, sim: Simulator) -> None:
    if name == "drop":
        await sim.drop(abrupt=True)
    elif name == "close_frame":
        await sim.drop(abrupt=False, code=1001, reason="soak")
    elif name == "restart_20051":
        await sim.send_info(20051)
    elif name == "maintenance_start":
        await sim.send_info(20060)
    elif name == "maintenance_end":
        await sim.send_info(20061)
    elif name == "lost_inputs":
        sim.lose_inputs(2)
    elif name == "auth_rejected":
        sim.reject_auth(1)
        await sim.drop(abrupt=True)
    elif name == "nonce_error":
        sim.nonce_error(1)
        await sim.drop(abrupt=True)
    elif name == "malformed":
        for text in GARBAGE:
            await sim.send_raw(text)
    else:
        raise ValueError(name)


async def run_faults(sim: Simulator, watch: SessionWatch, socket_path: Path, every: float, stop: trio.Event,
                     records: list[FaultRecord]) -> None:
    next_at = trio.current_time() + every
    for slot in range(1 << 30):
        with trio.move_on_at(next_at):  # the fault schedule, not a wait for something
            await stop.wait()
        if stop.is_set():
            return
        records.append(await inject_and_check(CYCLE[slot % len(CYCLE)][0], sim, watch, socket_path))
        next_at = max(next_at + every, trio.current_time())


async def inject_and_check(name: str, sim: Simulator, watch: SessionWatch, socket_path: Path) -> FaultRecord:
    """Inject one fault; it is survived once the session is back (on a new link if the fault costs one)."""
    before = await status(socket_path)
    record = FaultRecord(name, trio.current_time())
    await inject(name, sim)
    if name == "maintenance_start":
        record.survived = await watch.wait_for(lambda: watch.reached_since("maintenance", record.at))
    elif name in RELINKING:
        record.survived = await watch.wait_for(lambda: watch.reached_since("ready", record.at))
        after = await status(socket_path)
        if after["reconnects"] <= before["reconnects"]:
            record.survived, record.detail = False, "no new link"
    else:
        # the link must carry on: a fresh offer's announcement comes after the fault on the same link
        offer = sim.add_offer(symbol="fUSD", amount=150.0, rate=0.0002, period=2)
        seen = await watch.wait_for(lambda: offer.id in watch.offers_seen)
        after = await status(socket_path)
        record.survived = seen and after["state"] == "ready" and after["reconnects"] == before["reconnects"]
        if not record.survived:
            record.detail = f"state {after['state']}, reconnects {before['reconnects']} → {after['reconnects']}"
    return record


# ---- the run -----------------------------------------------------------------------------------------------


async def soak(args: argparse.Namespace, work: Path, daemon_log: BinaryIO) -> dict[str, Any]:
    rng = random.Random(args.seed)
    tally, records = Tally(), []
    sim = Simulator(SimulatorConfig(api_key=API_KEY, api_secret=API_SECRET, offers=10, seed=args.seed))
    notify_path = work / "notify.sock"
    notify = trio.socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    await notify.bind(str(notify_path))
    result: dict[str, Any] = {}
    async with trio.open_nursery() as nursery:
        url = await nursery.start(sim.serve)
        config = write_config(work, url)
        socket_path = work / "bfxd.sock"
        process = await trio.lowlevel.open_process([*daemon_command(), "run", "-c", str(config)],
                                                   stdout=daemon_log, stderr=subprocess.STDOUT,
                                                   env=daemon_env(notify_path))
        ps = psutil.Process(process.pid)
        try:
            with trio.fail_after(30):
                await wait_notify(notify, b"READY=1")
            watch = SessionWatch(socket_path)
            await nursery.start(watch.run)
            with trio.fail_after(30):
                while (await status(socket_path))["state"] != "ready":
                    await watch.wait_for(lambda: watch.reached_since("ready", 0.0))
            rss = {"start_mb": ps.memory_info().rss / 1e6}
            peak = rss["start_mb"]
            started = trio.current_time()
            stop_sending, stop_faults = trio.Event(), trio.Event()
            clients = [TrafficClient(f"c{i}", socket_path, sim, tally, random.Random(rng.random()))
                       for i in range(args.clients)]
            interval = args.clients / args.rate
            async with trio.open_nursery() as traffic:
                for client in clients:
                    traffic.start_soon(client.run, stop_sending, interval)
                traffic.start_soon(run_faults, sim, watch, socket_path, args.fault_every, stop_faults, records)
                end_at = started + args.minutes * 60
                while trio.current_time() < end_at:
                    with trio.move_on_at(min(end_at, trio.current_time() + 5)):  # RSS sample every 5 s
                        await trio.sleep_forever()
                    peak = max(peak, ps.memory_info().rss / 1e6)
                    if process.returncode is not None:
                        break
                stop_faults.set()
                stop_sending.set()
            final = await settled_status(socket_path)
            rss["end_mb"] = ps.memory_info().rss / 1e6
            rss["peak_mb"] = max(peak, rss["end_mb"])
            lost = sum(len(c.outstanding) for c in clients)
            result = {"duration_s": round(trio.current_time() - started, 1), "final_status": final, "rss": rss,
                      "lost": lost, "lost_refs": [ref for c in clients for ref in list(c.outstanding)[:5]],
                      "watch_cut_offs": watch.cut_offs}
        finally:
            if process.returncode is None:
                process.send_signal(signal.SIGTERM)
            with trio.move_on_after(30):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            nursery.cancel_scope.cancel()
    notify.close()
    result.update(exit_code=process.returncode, tally=tally, faults=records)
    return result


def daemon_log_stats(path: Path) -> dict[str, int]:
    counts: Counter[str] = Counter()
    for line in path.read_bytes().splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            counts["unreadable lines"] += 1
            continue
        name = entry.get("event", "")
        if name in ("client.error", "exchange.bad_frame", "exchange.rate_guard", "exchange.disconnected",
                    "exchange.auth_failed", "cancel.resend", "cancel.settled_by_snapshot", "frame.dropped"):
            counts[name] += 1
        if entry.get("level") in ("error", "critical") and name != "exchange.auth_failed":
            counts["other errors"] += 1
    return dict(counts)


def render(result: dict[str, Any], logs: dict[str, int], args: argparse.Namespace) -> tuple[str, list[str]]:
    tally: Tally = result["tally"]
    faults: list[FaultRecord] = result["faults"]
    problems: list[str] = []
    sent = sum(tally.sent.values())
    if result["lost"]:
        problems.append(f"{result['lost']} requests lost (e.g. {result['lost_refs']})")
    if tally.doubled:
        problems.append(f"{tally.doubled} answers to requests already answered")
    if tally.answers + result["lost"] != sent:
        problems.append(f"answers {tally.answers} + lost {result['lost']} != sent {sent}")
    if tally.unreadable or tally.wrong:
        problems.append(f"{tally.unreadable} unreadable lines, {len(tally.wrong)} wrong: {tally.wrong[:3]}")
    if tally.connections_lost:
        problems.append(f"{tally.connections_lost} client connections lost")
    failed = [f for f in faults if not f.survived]
    if failed:
        problems.append("faults not survived: " + ", ".join(f"{f.name} at {f.at:.0f} ({f.detail})" for f in failed))
    if result["exit_code"] != 0:
        problems.append(f"bfxd exited {result['exit_code']} on SIGTERM")
    if logs.get("client.error") or logs.get("other errors"):
        problems.append(f"daemon logged errors: {logs}")
    final = result["final_status"]
    if final["state"] != "ready" or final["pending"] != 0:
        problems.append(f"final status {final['state']} with {final['pending']} pending")
    by_fault: dict[str, list[FaultRecord]] = {}
    for record in faults:
        by_fault.setdefault(record.name, []).append(record)
    ops = sorted({op for op, _ in tally.outcomes} | set(tally.sent))
    rss = result["rss"]
    lines = [
        f"soak: {result['duration_s']:.0f} s, {args.clients} clients at {args.rate:g} req/s, a fault every "
        f"{args.fault_every:g} s",
        f"requests sent {sent}, final answers {tally.answers}, lost {result['lost']}, doubled {tally.doubled}",
        *(f"  {op:<7} sent {tally.sent[op]:>6}: " + ", ".join(
            f"{outcome} {n}" for (o, outcome), n in sorted(tally.outcomes.items()) if o == op) for op in ops),
        f"faults injected {len(faults)}, survived {sum(1 for f in faults if f.survived)}: " + ", ".join(
            f"{name} {sum(1 for f in recs if f.survived)}/{len(recs)}" for name, recs in sorted(by_fault.items())),
        f"daemon: reconnects {final['reconnects']}, state {final['state']}, pending {final['pending']}, "
        f"offers {final['offers']}; log: " + ", ".join(f"{k} {v}" for k, v in sorted(logs.items())),
        f"daemon RSS: start {rss['start_mb']:.1f} MB, end {rss['end_mb']:.1f} MB "
        f"({rss['end_mb'] - rss['start_mb']:+.1f} MB), peak {rss['peak_mb']:.1f} MB; exit {result['exit_code']} "
        f"on SIGTERM",
        "result: " + ("OK, nothing lost" if not problems else "FAILED: " + "; ".join(problems)),
    ]
    return "\n".join(lines), problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__.split("\n", 1)[0])
    parser.add_argument("--minutes", type=float, default=3.0, help="how long the traffic runs (default 3)")
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--rate", type=float, default=40.0, help="requests per second, all clients together")
    parser.add_argument("--fault-every", type=float, default=5.0, help="seconds between faults (default 5)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--json", type=Path, help="also write the report as JSON here")
    parser.add_argument("--keep", action="store_true", help="keep the work dir (config, socket, daemon log)")
    args = parser.parse_args(argv)
    if args.fault_every < 3.0:
        parser.error("--fault-every below 3 s would need more connections than the exchange allows (5 per 15 s)")
    work = Path(tempfile.mkdtemp(prefix="bfxd-soak-"))
    with open(work / "simulator.log", "w") as sim_log, open(work / "bfxd.log", "wb") as daemon_log:
        configure_logging(fmt="json", level="warning", stream=sim_log)  # this process logs the simulator only
        started = time.monotonic()
        result = trio.run(soak, args, work, daemon_log)
    logs = daemon_log_stats(work / "bfxd.log")
    text, problems = render(result, logs, args)
    print(text)
    if args.json:
        tally: Tally = result["tally"]
        args.json.write_text(json.dumps({
            **{k: v for k, v in result.items() if k not in ("tally", "faults")},
            "sent": dict(tally.sent), "outcomes": {f"{op}:{o}": n for (op, o), n in tally.outcomes.items()},
            "doubled": tally.doubled, "faults": [attrs.asdict(f) for f in result["faults"]], "daemon_log": logs,
            "wall_s": round(time.monotonic() - started, 1), "problems": problems}, indent=2))
    if args.keep or problems:
        print(f"work dir kept: {work}")
    else:
        shutil.rmtree(work, ignore_errors=True)
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
