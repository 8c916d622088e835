"""``bfxd``: the daemon's command line. Loads configuration before the event loop exists and maps errors to
exit codes in one place: 0 clean stop, 78 configuration or credentials unusable, 1 anything unexpected."""

from __future__ import annotations

import argparse
import faulthandler
import json
import os
import sys
from functools import partial
from pathlib import Path

import structlog
import trio

from bfxd.config import DEFAULT_CONFIG_PATH, Config, config_as_dict, config_warnings, load_config
from bfxd.credentials import Credentials, load_credentials
from bfxd.errors import ConfigError
from bfxd.logconfig import AuditSettings, batched_log_writes, configure_logging

EX_OK, EX_SOFTWARE, EX_CONFIG = 0, 1, 78

log = structlog.get_logger()


def _version() -> str:
    import bfxd

    return f"bfxd {bfxd.__version__}"


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bfxd", description="One Bitfinex WebSocket session for many local clients.")
    parser.add_argument("--version", action="version", version=_version())
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    def config_flags(p: argparse.ArgumentParser) -> None:
        p.add_argument("-c", "--config", type=str, default=None, help="TOML file (default /etc/bfxd/bfxd.toml)")
        p.add_argument("--socket", dest="socket.path", help="override [socket] path")
        p.add_argument("--url", dest="exchange.url", help="override [exchange] url")
        p.add_argument("--log-format", dest="log.format", choices=("json", "console"), help="override [log] format")
        p.add_argument("--log-level", dest="log.level", help="override [log] level")

    config_flags(sub.add_parser("run", help="run the daemon in the foreground (systemd Type=notify)"))
    check = sub.add_parser("check-config", help="validate config and credentials; print the effective config")
    config_flags(check)
    check.add_argument("--credentials-dir", metavar="DIR",
                       help="read api-key and api-secret from DIR, as the unit's LoadCredential= does "
                            "(e.g. /etc/bfxd, or /etc/bfxd/INSTANCE for bfxd@INSTANCE)")
    check.add_argument("--user", metavar="NAME",
                       help="also check that NAME (the unit's User=, e.g. bfxd) can read the config file (as root)")
    _add_sample_parser(sub)
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


def load_configuration(args: argparse.Namespace) -> Config:
    """The configuration the flags name (also what a SIGHUP reads again): raises ConfigError."""
    return load_config(Path(args.config) if args.config else None, overrides=_overrides(args))


def load(args: argparse.Namespace) -> tuple[Config, Credentials]:
    """Configuration and credentials, synchronously, before any event loop: raises ConfigError."""
    config = load_configuration(args)
    env: dict[str, str] | os._Environ[str] = os.environ
    if getattr(args, "credentials_dir", None):
        env = {**os.environ, "CREDENTIALS_DIRECTORY": args.credentials_dir}
    return config, load_credentials(config.exchange, env=env)


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
    parser = _parser()
    args = parser.parse_args(argv)
    if args.command is None:  # `bfxd` alone: say what it can do
        parser.print_help()
        return 2
    if args.command == "check-config":
        return _check_config(args)
    if args.command == "sample":
        return _sample(args)
    return _run(args)


def _add_sample_parser(sub) -> None:  # type: ignore[no-untyped-def]
    from bfxd.install_checks import SAMPLES

    sample = sub.add_parser("sample", help="print a shipped file: the example config or a systemd unit")
    sample.add_argument("name", choices=SAMPLES, help="which file")


def _sample(args: argparse.Namespace) -> int:
    from bfxd.install_checks import sample_text

    sys.stdout.write(sample_text(args.name))
    return EX_OK


_CREDENTIALS_HINT = (" (outside the service there is no $CREDENTIALS_DIRECTORY: pass --credentials-dir with the "
                     "directory the unit's LoadCredential= lines read, e.g. /etc/bfxd)")


def _check_config(args: argparse.Namespace) -> int:
    try:
        config, credentials = load(args)
        if args.user:
            from bfxd.install_checks import check_readable_by

            check_readable_by(Path(args.config) if args.config else DEFAULT_CONFIG_PATH, args.user)
    except ConfigError as exc:
        hint = _CREDENTIALS_HINT if str(exc).startswith("no API credentials") else ""
        print(f"bfxd: {exc}{hint}", file=sys.stderr)
        return EX_CONFIG
    for warning in config_warnings(config):
        print(f"bfxd: warning: {warning}", file=sys.stderr)
    effective = config_as_dict(config)
    effective["credentials"] = {
        "source": credentials.source,
        "api_key": f"fingerprint {credentials.api_key.fingerprint()}",
        "api_secret": "[redacted]",
    }
    print(json.dumps(effective, indent=2))
    return EX_OK


def _run(args: argparse.Namespace) -> int:
    from bfxd.signals import ignore_hangup_until_ready
    from bfxd.systemd import Notifier, watchdog_period
    from bfxd.unix_socket import inherited_listener

    ignore_hangup_until_ready()  # a SIGHUP while the config loads must not kill the daemon
    faulthandler.enable()  # a blocked loop killed by the watchdog's SIGABRT shows where it was stuck
    notifier = Notifier()
    period = watchdog_period()
    try:
        config, credentials = load(args)
        listener = inherited_listener()  # socket activation (bfxd.socket), or None
    except ConfigError as exc:
        print(f"bfxd: {exc}", file=sys.stderr)
        notifier.status(f"config error: {exc}")
        return EX_CONFIG
    configure_logging(fmt=config.log.format, level=config.log.level,
                      audit=AuditSettings(config.log.anchor_file, config.log.checkpoint_interval), journal="auto")
    for warning in config_warnings(config):
        log.warning("config.warning", warning=warning)
    if credentials.source == "environment":
        log.warning("daemon.credentials_from_environment",
                    advice="for development only: use credential files (LoadCredential=) in production")
    exit_code = EX_OK
    try:
        trio.run(partial(_serve, config, credentials, notifier, period, partial(load_configuration, args), listener))
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


async def _serve(config: Config, credentials: Credentials, notifier, period, reload_config, listener) -> None:  # type: ignore[no-untyped-def]
    from bfxd.daemon import run_daemon
    from bfxd.reload import UPDATE_BUFFER, Reloader
    from bfxd.signals import watch_signals

    stop = trio.Event()
    updates, reloads = trio.open_memory_channel[Config](UPDATE_BUFFER)
    reloader = Reloader(reload_config, config, notifier, updates)
    # stdout is journald's socket: one write (one wake-up of journald) per burst of work, not one per line
    with batched_log_writes():
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(watch_signals, stop, reload=reloader))
            await run_daemon(config, credentials, stop=stop, notifier=notifier, watchdog_period=period,
                             reloads=reloads, listener=listener)
            nursery.cancel_scope.cancel()


if __name__ == "__main__":
    raise SystemExit(main())
