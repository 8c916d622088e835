"""``bfxd``: the daemon's command line. Loads configuration before the event loop exists and maps errors to
exit codes in one place: 0 clean stop, 78 configuration or credentials unusable, 1 anything unexpected."""

from __future__ import annotations

import argparse
import faulthandler
import json
import sys
from functools import partial

import structlog
import trio

from bfxd.config import Config, config_as_dict, load_config
from bfxd.credentials import Credentials, load_credentials
from bfxd.errors import ConfigError
from bfxd.logconfig import AuditSettings, batched_log_writes, configure_logging

EX_OK, EX_SOFTWARE, EX_CONFIG = 0, 1, 78

log = structlog.get_logger()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bfxd", description="One Bitfinex WebSocket session for many local clients.")
    sub = parser.add_subparsers(dest="command", required=True)

    def config_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", type=str, default=None, help="TOML file (default /etc/bfxd/bfxd.toml)")
        p.add_argument("--socket", dest="socket.path", help="override [socket] path")
        p.add_argument("--url", dest="exchange.url", help="override [exchange] url")
        p.add_argument("--log-format", dest="log.format", choices=("json", "console"), help="override [log] format")
        p.add_argument("--log-level", dest="log.level", help="override [log] level")

    config_flags(sub.add_parser("run", help="run the daemon in the foreground (systemd Type=notify)"))
    config_flags(sub.add_parser("check-config", help="validate config and credentials; print the effective config"))
    simulate = sub.add_parser("simulate", help="run the exchange simulator alone", add_help=False)
    simulate.add_argument("args", nargs=argparse.REMAINDER)
    demo = sub.add_parser("demo", help="simulator + daemon together, offline", add_help=False)
    demo.add_argument("args", nargs=argparse.REMAINDER)
    audit = sub.add_parser("audit", help="verify the audit trail's hash chain, or show a story from it",
                           add_help=False)
    audit.add_argument("args", nargs=argparse.REMAINDER)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, str]:
    keys = ("socket.path", "exchange.url", "log.format", "log.level")
    return {k: v for k in keys if (v := getattr(args, k, None)) is not None}


def load(args: argparse.Namespace) -> tuple[Config, Credentials]:
    """Configuration and credentials, synchronously, before any event loop: raises ConfigError."""
    from pathlib import Path

    config = load_config(Path(args.config) if args.config else None, overrides=_overrides(args))
    return config, load_credentials(config.exchange)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["simulate"]:  # the simulator parses its own flags
        from bfxd.simulator.command import simulate_main

        return simulate_main(argv[1:])
    if argv[:1] == ["demo"]:
        from bfxd.demo import demo_main

        return demo_main(argv[1:])
    if argv[:1] == ["audit"]:  # reads a log: no config, no credentials
        from bfxd.audit.command import audit_main

        return audit_main(argv[1:])
    args = _parser().parse_args(argv)
    if args.command == "check-config":
        return _check_config(args)
    return _run(args)


def _check_config(args: argparse.Namespace) -> int:
    try:
        config, credentials = load(args)
    except ConfigError as exc:
        print(f"bfxd: {exc}", file=sys.stderr)
        return EX_CONFIG
    effective = config_as_dict(config)
    effective["credentials"] = {
        "source": credentials.source,
        "api_key": f"fingerprint {credentials.api_key.fingerprint()}",
        "api_secret": "[redacted]",
    }
    print(json.dumps(effective, indent=2))
    return EX_OK


def _run(args: argparse.Namespace) -> int:
    from bfxd.systemd import Notifier, watchdog_period

    faulthandler.enable()  # a blocked loop killed by the watchdog's SIGABRT shows where it was stuck
    notifier = Notifier()
    period = watchdog_period()
    try:
        config, credentials = load(args)
    except ConfigError as exc:
        print(f"bfxd: {exc}", file=sys.stderr)
        notifier.status(f"config error: {exc}")
        return EX_CONFIG
    configure_logging(fmt=config.log.format, level=config.log.level,
                      audit=AuditSettings(config.log.anchor_file, config.log.checkpoint_interval), journal="auto")
    if credentials.source == "environment":
        log.warning("daemon.credentials_from_environment",
                    advice="for development only: use credential files (LoadCredential=) in production")
    exit_code = EX_OK
    try:
        trio.run(partial(_serve, config, credentials, notifier, period))
    except* ConfigError as group:  # found only once running, e.g. the socket directory is unusable
        message = str(group.exceptions[0])
        log.error("daemon.config_error", error=message)
        print(f"bfxd: {message}", file=sys.stderr)
        notifier.status(f"config error: {message}")
        exit_code = EX_CONFIG
    except* KeyboardInterrupt:
        pass  # a second Ctrl-C: forced quit
    except* Exception as group:
        log.critical("daemon.crashed", exc_info=group)
        exit_code = EX_SOFTWARE
    return exit_code


async def _serve(config: Config, credentials: Credentials, notifier, period) -> None:  # type: ignore[no-untyped-def]
    from bfxd.daemon import run_daemon
    from bfxd.signals import watch_signals

    stop = trio.Event()
    # stdout is journald's socket: one write (one wake-up of journald) per burst of work, not one per line
    with batched_log_writes():
        async with trio.open_nursery() as nursery:
            await nursery.start(watch_signals, stop)
            await run_daemon(config, credentials, stop=stop, notifier=notifier, watchdog_period=period)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    raise SystemExit(main())
