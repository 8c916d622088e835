"""``bfxd demo``: the simulator and the daemon together, offline, in one command.

Credentials are generated, the socket lives in a private temporary directory, and the daemon's JSON log goes
to a file there, so the terminal shows only what a user types and reads. ``--walkthrough`` runs a scripted
tour with the real ``bfxctl`` (status, offers, cancel, cancel of an unknown id, watch, cancel-all), shows the
audit trail of one cancel from the log, and exits 0; without it the demo serves until Ctrl-C.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shlex
import shutil
import sys
import tempfile
from functools import partial
from pathlib import Path
from typing import TextIO

import trio

from bfxd import ctl
from bfxd.actors.session import SessionBoard
from bfxd.config import Config, ExchangeConfig, LogConfig, ReconnectConfig, RequestsConfig, SocketConfig
from bfxd.credentials import Credentials
from bfxd.logconfig import configure_logging
from bfxd.secret import Secret
from bfxd.simulator import Simulator, SimulatorConfig

READY_WITHIN_S = 15.0
UNKNOWN_ID = 999_999_999


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bfxd demo",
        description="The exchange simulator and the daemon together, offline, in one command: credentials are "
                    "generated, and the socket and the JSON log live in a private temporary directory.")
    parser.add_argument("--walkthrough", action="store_true", help="run a scripted tour, then exit")
    parser.add_argument("--offers", type=int, default=8, help="funding offers on the simulated account")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory (socket, log) at exit")
    parser.add_argument("--scenario-interval", type=float, default=20.0,
                        help="seconds between simulated executions / new offers (interactive mode)")
    return parser


def demo_main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    workdir = Path(tempfile.mkdtemp(prefix="bfxd-demo-"))  # mode 0700: private to this user
    log_path = workdir / "bfxd.log"
    try:
        with log_path.open("w") as log_file:
            configure_logging(fmt="json", level="info", stream=log_file)
            return trio.run(partial(_demo, args, workdir, log_path))
    except KeyboardInterrupt:
        return 0
    finally:
        if args.keep:
            print(f"kept {workdir}", file=sys.stderr)
        else:
            shutil.rmtree(workdir, ignore_errors=True)


async def _demo(args: argparse.Namespace, workdir: Path, log_path: Path) -> int:
    from bfxd.daemon import run_daemon
    from bfxd.signals import watch_signals

    key, secret = f"demo-{secrets.token_hex(8)}", secrets.token_hex(24)
    sim = Simulator(SimulatorConfig(api_key=key, api_secret=secret, offers=args.offers, seed=args.seed,
                                    scenario_interval=None if args.walkthrough else args.scenario_interval))
    socket_path = workdir / "bfxd.sock"
    stop = trio.Event()
    async with trio.open_nursery() as simulator:
        url = await simulator.start(partial(sim.serve, host="127.0.0.1", port=0))
        config = Config(
            exchange=ExchangeConfig(url=url),
            socket=SocketConfig(path=socket_path, mode=0o600),
            requests=RequestsConfig(timeout=5.0),
            reconnect=ReconnectConfig(initial_delay=0.5, max_delay=5.0),
            log=LogConfig(format="json"),
        )
        credentials = Credentials(api_key=Secret(key), api_secret=Secret(secret), source="files")
        # From the start: Ctrl-C, SIGTERM and a closed terminal (SIGHUP) all stop the demo cleanly, so its
        # temporary directory goes (signals.py: without a reload hook, SIGHUP stops).
        await simulator.start(watch_signals, stop)
        async with trio.open_nursery() as daemon:
            board: SessionBoard = await daemon.start(partial(run_daemon, config, credentials, stop=stop))
            with trio.fail_after(READY_WITHIN_S):
                await board.wait_ready()
            _say(f"bfxd is up against the simulator at {url}\n"
                 f"  socket: {socket_path}\n  log:    {log_path} (JSON lines, the audit trail)\n")
            if args.walkthrough:
                async with trio.open_nursery() as tour:  # a signal cuts the tour short
                    tour.start_soon(_cancel_on, stop, tour.cancel_scope)
                    await _walkthrough(sim, socket_path, log_path)
                    tour.cancel_scope.cancel()
            else:
                bfxctl = bfxctl_command()
                _say("Try, in another terminal:\n"
                     f"  export BFXD_SOCKET={socket_path}\n"
                     f"  {bfxctl} status\n  {bfxctl} offers\n  {bfxctl} watch\n"
                     f"  {bfxctl} cancel <ID>\n  {bfxctl} cancel-all --symbol fUSD\n"
                     f"  tail -f {log_path}\n\nCtrl-C stops the demo.\n")
                await stop.wait()
            stop.set()  # the daemon drains and returns by itself
        simulator.cancel_scope.cancel()  # the simulator serves until cancelled
    return 0


async def _cancel_on(event: trio.Event, scope: trio.CancelScope) -> None:
    await event.wait()
    scope.cancel()


def bfxctl_command() -> str:
    """How to run bfxctl from another terminal: the script next to this interpreter, else the one on PATH,
    else the module (as the full interpreter path, which works from any directory)."""
    beside = Path(sys.executable).with_name("bfxctl")
    if beside.is_file() and os.access(beside, os.X_OK):
        return shlex.quote(str(beside))
    on_path = shutil.which("bfxctl")
    if on_path is not None:
        return shlex.quote(on_path)
    return f"{shlex.quote(sys.executable)} -m bfxd.ctl"


def _say(text: str, stream: TextIO = sys.stdout) -> None:
    print(text, file=stream, flush=True)


async def _bfxctl(socket_path: Path, *argv: str) -> int:
    _say(f"$ bfxctl {' '.join(argv)}")
    code = await trio.to_thread.run_sync(ctl.main, ["-s", str(socket_path), *argv])
    _say(f"(exit {code})\n")
    return code


async def _walkthrough(sim: Simulator, socket_path: Path, log_path: Path) -> None:
    offer_ids = sorted(sim.offers)
    first, second = offer_ids[0], offer_ids[1]
    _say("== 1. status: the session as the daemon sees it")
    await _bfxctl(socket_path, "status")
    _say("== 2. offers: the live book of the account's funding offers")
    await _bfxctl(socket_path, "offers")
    _say(f"== 3. cancel offer {first}: one foc frame, the exchange's foc-req notification routed back")
    await _bfxctl(socket_path, "cancel", str(first))
    _say(f"== 4. cancel an unknown id ({UNKNOWN_ID}): the exchange's ERROR comes back with its text (exit 1)")
    await _bfxctl(socket_path, "cancel", str(UNKNOWN_ID))
    _say(f"== 5. watch: events while offer {second} is cancelled and another one executes")
    await _watch_tour(sim, socket_path, second)
    _say("== 6. cancel-all: one foc per active offer, sent together, one result each")
    await _bfxctl(socket_path, "cancel-all")
    _say(f"== 7. the audit trail of the cancel of {first}, from the log")
    _show_audit(log_path, first)
    _say("Walkthrough complete.")


async def _watch_tour(sim: Simulator, socket_path: Path, cancel_id: int) -> None:
    stream = await trio.open_unix_socket(str(socket_path))
    async with stream:
        await stream.send_all(b'{"op":"watch","ref":"tour"}\n')
        lines = _lines(stream)
        with trio.fail_after(READY_WITHIN_S):
            await lines.__anext__()  # the watch's ok answer
            await _bfxctl(socket_path, "--json", "cancel", str(cancel_id))
            execute = next(i for i in sorted(sim.offers) if i != cancel_id)
            await sim.execute_offer(execute)
            seen = 0
            async for event in lines:
                _say("  watch: " + ctl.describe(event))
                seen += event.get("event") == "offer" and event.get("action") == "cancel"
                if seen >= 2:  # the cancelled and the executed offer have both left the book
                    break
    _say("")


async def _lines(stream: trio.SocketStream):  # type: ignore[no-untyped-def]
    buffer = b""
    while True:
        while b"\n" not in buffer:
            chunk = await stream.receive_some(65536)
            if not chunk:
                return
            buffer += chunk
        line, buffer = buffer.split(b"\n", 1)
        yield json.loads(line)


def _show_audit(log_path: Path, offer_id: int) -> None:
    records = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    request_id = next((r.get("request_id") for r in records
                       if r.get("event") == "command.received" and r.get("offer_id") == offer_id), None)
    _say(f"  jq 'select(.request_id == \"{request_id}\" or ((.request_ids // []) | index(\"{request_id}\")))' "
         f"{log_path}")
    for record in records:
        if record.get("request_id") == request_id or request_id in (record.get("request_ids") or []):
            keep = {k: record[k] for k in ("timestamp", "event", "op", "offer_id", "peer_uid", "peer_pid", "kind",
                                          "status", "text", "outcome", "latency_ms") if k in record}
            _say("  " + json.dumps(keep))
    _say("")
