"""``bfxd simulate`` (also ``python -m bfxd.simulator``): the exchange simulator on its own.

Prints its URL (``ws://HOST:PORT/ws/2``) on a line of its own once it listens, then logs with structlog; stops
cleanly on SIGINT or SIGTERM (exit 0). Exit 2 for a usage error, 1 when it cannot listen or crashes.
"""

from __future__ import annotations

import argparse
import signal
import sys
from functools import partial

import structlog
import trio

from bfxd.logconfig import configure_logging
from bfxd.simulator.faults import RateLimit
from bfxd.simulator.simulator import Simulator, SimulatorConfig

log = structlog.get_logger()


def _non_negative_int(text: str) -> int:
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative: {value}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number of seconds: {text}")
    return value


def _rate_limit(text: str) -> RateLimit:
    try:
        return RateLimit.parse(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def build_parser() -> argparse.ArgumentParser:
    defaults = SimulatorConfig()
    parser = argparse.ArgumentParser(
        prog="bfxd simulate",
        description="A local Bitfinex WebSocket v2 server (funding offers, credits, loans, wallets, auth, heartbeats, "
                    "sequence numbers) with fault injection.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=_non_negative_int, default=0, help="port; 0 picks a free one (default)")
    parser.add_argument("--api-key", default=defaults.api_key, help="the API key clients must use")
    parser.add_argument("--api-secret", default=defaults.api_secret,
                        help="the API secret clients sign with (a test value: it shows in `ps`)")
    parser.add_argument("--offers", type=_non_negative_int, default=defaults.offers,
                        help="active funding offers at start (default: %(default)s)")
    parser.add_argument("--credits", type=_non_negative_int, default=defaults.credits,
                        help="open funding credits at start (default: %(default)s)")
    parser.add_argument("--loans", type=_non_negative_int, default=defaults.loans,
                        help="open funding loans at start (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=defaults.seed, help="seed for offers, ids and the scenario")
    parser.add_argument("--user-id", type=int, default=defaults.user_id, help=argparse.SUPPRESS)
    parser.add_argument("--hb-interval", type=_positive_float, default=defaults.hb_interval,
                        help="seconds of channel silence before a heartbeat (default: %(default)s)")
    parser.add_argument("--scenario-interval", type=_positive_float, metavar="SECONDS",
                        help="make offers execute and new ones appear, one step every SECONDS (default: off)")
    faults = parser.add_argument_group("faults")
    faults.add_argument("--rate-limit", type=_rate_limit, metavar="COUNT/SECONDS",
                        help="at most COUNT inputs per connection per SECONDS; beyond: error, then disconnect")
    faults.add_argument("--answer-delay", type=float, default=0.0, metavar="SECONDS",
                        help="answer every frame this long after it arrived")
    faults.add_argument("--reject-auth", type=_non_negative_int, default=0, metavar="N",
                        help="fail the first N auth attempts (10100 apikey: invalid)")
    faults.add_argument("--lose-inputs", type=_non_negative_int, default=0, metavar="N",
                        help="silently drop the first N inputs (foc/fon)")
    faults.add_argument("--skip-sequence", type=_non_negative_int, default=0, metavar="N",
                        help="on connections with sequence numbers on, lose the first N account updates (a gap)")
    faults.add_argument("--drop-every", type=_positive_float, metavar="SECONDS",
                        help="cut every connection (TCP close, no close frame) every SECONDS")
    logs = parser.add_argument_group("logging")
    logs.add_argument("--log-format", choices=("console", "json"), default="console")
    logs.add_argument("--log-level", choices=("debug", "info", "warning", "error"), default="info")
    return parser


async def _drop_periodically(sim: Simulator, period: float) -> None:
    start = trio.current_time()
    for step in range(1, sys.maxsize):
        await trio.sleep_until(start + step * period)  # a fixed schedule, not drifting with the drops' duration
        await sim.drop(abrupt=True)


async def run_simulator(sim: Simulator, *, host: str, port: int, drop_every: float | None = None) -> None:
    """Serve until SIGINT or SIGTERM; print the URL line first."""
    # The receiver is installed before the URL is printed, so a signal sent as soon as it appears is caught.
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async with trio.open_nursery() as nursery:
            url = await nursery.start(partial(sim.serve, host=host, port=port))
            print(url, flush=True)
            log.info("simulator.listening", url=url, offers=len(sim.offers), seed=sim.config.seed)
            if drop_every is not None:
                nursery.start_soon(_drop_periodically, sim, drop_every)
            async for signum in signals:
                log.info("simulator.stopping", signal=signal.Signals(signum).name)
                break
            nursery.cancel_scope.cancel(reason="signal")


def simulate_main(argv: list[str] | None = None) -> int:
    """Entry point for ``bfxd simulate``; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(fmt=args.log_format, level=args.log_level)
    if args.answer_delay < 0:
        parser.error("--answer-delay must not be negative")
    config = SimulatorConfig(
        api_key=args.api_key, api_secret=args.api_secret, offers=args.offers, credits=args.credits,
        loans=args.loans, seed=args.seed,
        hb_interval=args.hb_interval, user_id=args.user_id, scenario_interval=args.scenario_interval,
        rate_limit=args.rate_limit,
    )
    sim = Simulator(config)
    sim.delay_answers(args.answer_delay)
    sim.reject_auth(args.reject_auth)
    sim.lose_inputs(args.lose_inputs)
    sim.skip_sequence(args.skip_sequence)
    exit_code = 0
    try:
        trio.run(partial(run_simulator, sim, host=args.host, port=args.port, drop_every=args.drop_every))
    except* OSError as group:  # cannot listen: address in use, not ours, …
        print(f"bfxd simulate: cannot listen on {args.host}:{args.port}: {group.exceptions[0]}", file=sys.stderr)
        exit_code = 1
    return exit_code
