"""``bfxd audit verify|show``: the audit trail's command line (reads a log; needs no config, no daemon)."""

from __future__ import annotations

import argparse
from pathlib import Path

__all__ = ["audit_main"]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bfxd audit", description="Check and query bfxd's audit trail.")
    sub = parser.add_subparsers(dest="command", required=True)
    verify = sub.add_parser("verify", help="recompute the hash chain: OK (exit 0) or the first break (exit 1)",
                            description="Reads `journalctl -u bfxd -o cat` output or a log file.")
    verify.add_argument("source", nargs="?", default="-", metavar="FILE|-", help="the log (default: stdin)")
    verify.add_argument("--anchors", type=Path, metavar="FILE", help="the anchor file (log.anchor_file)")
    show = sub.add_parser("show", help="the story of an offer, a request or a client, in order",
                          description="Reads `journalctl -u bfxd -o cat` output or a log file.")
    show.add_argument("source", nargs="?", default="-", metavar="FILE|-", help="the log (default: stdin)")
    what = show.add_mutually_exclusive_group()
    what.add_argument("--offer", type=int, metavar="ID", help="everything about one offer id")
    what.add_argument("--request", metavar="ID", help="one request (request_id, e.g. 7.3)")
    what.add_argument("--client", type=int, metavar="UID|PID", help="the requests of a uid or a pid")
    show.add_argument("--since", metavar="TIME", help="ISO-8601 time (UTC unless it says otherwise)")
    show.add_argument("--until", metavar="TIME", help="ISO-8601 time (UTC unless it says otherwise)")
    show.add_argument("--json", action="store_true", help="print the matching log lines themselves")
    return parser


def audit_main(argv: list[str]) -> int:
    args = _parser().parse_args(argv)
    if args.command == "verify":
        from bfxd.audit.verify import verify_main

        return verify_main(args.source, args.anchors)
    from bfxd.audit.show import show_main

    return show_main(args)
