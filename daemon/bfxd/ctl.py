"""bfxctl: the command-line client of bfxd, built on ``bfxd.client`` (one reader, one error mapping).

Usage: ``bfxctl [-s SOCKET] [--json] [--timeout S] CMD``; CMD one of ``status``, ``hello``, ``offers``,
``cancel``, ``cancel-all``, ``submit``, ``replace``, ``wallets``, ``credits``, ``loans``, ``watch``. Every
request carries an absolute ``deadline`` (now + ``--timeout``, default 10 s, the daemon's own default); the client
waits one second longer, so that the daemon's answer saying why arrives first. It runs once per shell command, so
it imports nothing but the standard library and ``bfxd.client`` (no trio, attrs or structlog).

Exit codes (README "bfxctl"), from the error type of the answer (``ERROR_EXIT``):

  0  every command succeeded (``status``: the exchange session is ``ready``)
  1  refused: ``exchange`` (the exchange said ERROR/FAILURE), ``bad_request``, ``unknown_op``, a protocol this
     bfxctl does not know (``protocol_mismatch``), and any error type it does not know
  2  usage error (argparse, an id that is not a positive integer, an amount that is not a number)
  3  daemon unreachable: no socket, refused, permission denied, ``forbidden``, ``busy``, ``shutting_down``, the
     connection closed before every answer arrived, and for ``watch`` any end (``watch_ended`` included)
  4  timed out / outcome unknown: ``timeout``, ``not_active``, ``not_confirmed``, the client's own deadline
     (``no_answer``), an unreadable answer (``bad_answer``)
  5  not sent, nothing happened: ``not_ready`` (no ready exchange session), ``not_sent`` (no turn under the
     exchange's input pace before the deadline); ``status`` in any state but ``ready``

When answers differ (several cancels), the most severe wins, in the order 3 > 4 > 5 > 1 > 0.
Ctrl-C ends ``watch`` with 0; during any other command it exits 130, since the outcome is then unknown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import sys
from decimal import Decimal, InvalidOperation

from bfxd import client as bfxd_client
from bfxd.client import BfxdError, Client
from bfxd.client.codec import DEFAULT_SOCKET, DEFAULT_TIMEOUT, show_id
from bfxd.ctl_format import credit_rows, describe, offer_rows, since, table, text, wallet_rows

__all__ = ["ERROR_EXIT", "describe", "main"]

MAX_ID = 2**53 - 1  # the daemon's limit: ids must survive a round trip through JSON doubles
MAX_TIMEOUT = 3600.0  # the daemon refuses a longer per-request timeout as bad_request
SYMBOL = re.compile(r"f[A-Za-z0-9:]{1,15}")

OK, REFUSED, USAGE, UNREACHABLE, TIMED_OUT, NOT_READY = 0, 1, 2, 3, 4, 5
SEVERITY = (UNREACHABLE, TIMED_OUT, NOT_READY, REFUSED, USAGE, OK)  # most severe first
ERROR_EXIT = {
    # the daemon's error types (client_wire, CONTRACT.md)
    "exchange": REFUSED, "bad_request": REFUSED, "unknown_op": REFUSED,
    "busy": UNREACHABLE, "forbidden": UNREACHABLE, "shutting_down": UNREACHABLE,
    "timeout": TIMED_OUT, "not_active": TIMED_OUT, "not_confirmed": TIMED_OUT,
    "not_ready": NOT_READY, "not_sent": NOT_READY,
    # the client's own (bfxd.client.errors)
    "unreachable": UNREACHABLE, "connection_lost": UNREACHABLE, "no_answer": TIMED_OUT, "bad_answer": TIMED_OUT,
    "protocol_mismatch": REFUSED,
}


def worst(codes: list[int]) -> int:
    return min(codes, key=SEVERITY.index, default=OK)


def exit_code(error: BaseException) -> int:
    return ERROR_EXIT.get(getattr(error, "type", ""), REFUSED)


def emit(args: argparse.Namespace, line: str, human: str | None) -> None:
    """The daemon's answer line as it came with --json; else the human text (if any) on stdout."""
    if args.json:
        if line:
            print(line, flush=True)
    elif human is not None:
        print(human, flush=True)


def fail(args: argparse.Namespace, error: BfxdError) -> int:
    """An error for the whole command: its answer line (--json) and a message on stderr; its exit code."""
    emit(args, error.line, None)
    print(f"bfxctl: {error}", file=sys.stderr)
    return exit_code(error)


def cmd_status(bfxd: Client, args: argparse.Namespace) -> int:
    # Untyped on purpose: the typed Status would load dataclasses, a third of bfxctl's start-up budget.
    answer, line = bfxd.call("status")
    fields = answer.get("status") if isinstance(answer.get("status"), dict) else {}
    rows = [[f"{k}:", since(v) if k == "since" else text(v) + (" s" if k.endswith("_s") and v is not None
                                                               else "")] for k, v in fields.items()]
    emit(args, line, table(rows) if rows else "")
    if fields.get("state") != "ready":
        print(f"bfxctl: exchange session not ready (state: {fields.get('state')})", file=sys.stderr)
        return NOT_READY
    return OK


def cmd_hello(bfxd: Client, args: argparse.Namespace) -> int:
    hello = bfxd.hello()
    rows = [["protocol:", text(hello.protocol) + (" (a daemon older than hello)" if hello.protocol == 0 else "")],
            ["version:", text(hello.version)], ["ops:", text(hello.ops)], ["events:", text(hello.events)]]
    emit(args, hello.line, table(rows))
    return OK


def cmd_offers(bfxd: Client, args: argparse.Namespace) -> int:
    offers = bfxd.offers(args.symbol)
    emit(args, offers.line, offer_rows(list(offers)) if offers else "no active offers")
    return OK


def cancel_line(result: bfxd_client.CancelResult) -> tuple[list[str], int]:
    """One row of cancel output and its exit code."""
    shown = show_id(result.id)
    if result.ok:
        return [shown, "cancelled", text(result.text)], OK
    error = result.error
    kind = getattr(error, "type", "error")
    if kind == "exchange":
        return [shown, f"refused ({error.status})", text(error.text)], REFUSED
    if kind in ("connection_lost", "no_answer"):
        return [shown, "unknown", "no answer; outcome unknown"], exit_code(error)
    verdict = {"timeout": "timed out", "not_ready": "not ready", "not_sent": "not sent",
               "not_active": "unknown"}.get(kind, f"failed ({kind})")
    return [shown, verdict, text(getattr(error, "message", None))], exit_code(error)


def cmd_cancel(bfxd: Client, args: argparse.Namespace) -> int:
    results = bfxd.cancel_many(args.ids)
    lines = [cancel_line(r) for r in results]  # in the user's order, not arrival order: easier to read and diff
    for result in results:
        emit(args, result.line, None)
    if not args.json:
        print(table([row for row, _ in lines]), flush=True)
    lost = next((r.error for r in results if getattr(r.error, "type", None) in ("connection_lost", "no_answer")),
                None)
    if lost is not None:
        print(f"bfxctl: {lost.message}", file=sys.stderr)
    return worst([code for _, code in lines])


def cmd_cancel_all(bfxd: Client, args: argparse.Namespace) -> int:
    results = bfxd.cancel_all(args.symbol)
    lines = [cancel_line(r) for r in results]
    emit(args, results.line, table([row for row, _ in lines]) if lines else "no active offers to cancel")
    return worst([code for _, code in lines])


def cmd_submit(bfxd: Client, args: argparse.Namespace) -> int:
    done = bfxd.submit(args.symbol, args.amount, args.rate, args.period, type=args.type, flags=args.flags)
    emit(args, done.line, f"{offer_rows([done.offer])}\n{text(done.status)}: {text(done.text)}")
    return OK


def cmd_replace(bfxd: Client, args: argparse.Namespace) -> int:
    try:
        done = bfxd.replace(args.id, rate=args.rate, amount=args.amount, period=args.period)
    except BfxdError as error:
        if error.cancelled is not None:
            print(f"bfxctl: offer {show_id(error.cancelled.id)} was cancelled, but its replacement failed",
                  file=sys.stderr)
        raise
    human = (f"cancelled {show_id(done.cancelled.id)}, placed {show_id(done.offer.id)}\n"
             f"{offer_rows([done.cancelled, done.offer])}\n{text(done.status)}: {text(done.text)}")
    emit(args, done.line, human)
    return OK


def cmd_wallets(bfxd: Client, args: argparse.Namespace) -> int:
    wallets = bfxd.wallets()
    emit(args, wallets.line, wallet_rows(list(wallets)) if wallets else "no wallets")
    return OK


def cmd_credits(bfxd: Client, args: argparse.Namespace) -> int:
    credits = bfxd.credits(args.symbol)
    emit(args, credits.line, credit_rows(list(credits), pair=True) if credits else "no active credits")
    return OK


def cmd_loans(bfxd: Client, args: argparse.Namespace) -> int:
    loans = bfxd.loans(args.symbol)
    emit(args, loans.line, credit_rows(list(loans), pair=False) if loans else "no active loans")
    return OK


def cmd_watch(bfxd: Client, args: argparse.Namespace) -> int:
    with bfxd.watch() as events:
        emit(args, events.line, None)
        if not args.json:
            print("bfxctl: watching bfxd events; Ctrl-C to stop", file=sys.stderr)
        for event in events:
            emit(args, event.line, describe(json.loads(event.line, parse_float=Decimal)))
            if isinstance(event, bfxd_client.WatchEnded):
                print(f"bfxctl: the daemon ended the watch ({text(event.reason)})", file=sys.stderr)
                return UNREACHABLE
    return UNREACHABLE  # not reached: a watch ends with watch_ended or an error


COMMANDS = {"status": cmd_status, "hello": cmd_hello, "offers": cmd_offers, "cancel": cmd_cancel,
            "cancel-all": cmd_cancel_all, "submit": cmd_submit, "replace": cmd_replace, "wallets": cmd_wallets,
            "credits": cmd_credits, "loans": cmd_loans, "watch": cmd_watch}


# --- the command line ----------------------------------------------------------------------------------------

def positive_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"offer id must be a positive integer, not the string {show_id(value)}")
    return int(value)


def positive_int(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or int(value) <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, not the string {show_id(value)}")
    return int(value)


def flags(value: str) -> int:
    if not (value.isascii() and value.isdigit()):
        raise argparse.ArgumentTypeError(f"flags must be a non-negative integer, not the string {show_id(value)}")
    return int(value)


def decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        number = None
    if number is None or not number.is_finite():
        raise argparse.ArgumentTypeError(f"must be a decimal number, not the string {show_id(value)}")
    return number


def symbol(value: str) -> str:
    if not SYMBOL.fullmatch(value):
        raise argparse.ArgumentTypeError(f"must be a funding symbol such as fUSD, not the string {show_id(value)}")
    return value


def seconds(value: str) -> float:
    number = float(value)  # a ValueError becomes argparse's "invalid seconds value" (exit 2)
    if not (math.isfinite(number) and 0 < number <= MAX_TIMEOUT):
        raise argparse.ArgumentTypeError(f"timeout must be a number of seconds in (0, {MAX_TIMEOUT:g}], "
                                         f"not {show_id(value)}")
    return number


class ShowVersion(argparse.Action):
    """--version, looked up only when asked: importlib.metadata costs tens of ms on every call otherwise."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from bfxd import __version__

        print(f"bfxctl {__version__}")
        parser.exit()


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    # The global options are accepted after CMD too (`bfxctl offers --json`); SUPPRESS keeps the
    # subcommand's parser from overwriting a value given before CMD.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("-s", "--socket", default=argparse.SUPPRESS,
                        help=f"daemon socket (default: $BFXD_SOCKET, else {DEFAULT_SOCKET})")
    common.add_argument("--json", action="store_true", default=argparse.SUPPRESS,
                        help="print the daemon's answer lines (JSON) instead of tables")
    common.add_argument("--timeout", type=seconds, metavar="S", default=argparse.SUPPRESS,
                        help=f"the requests' deadline, sent with them (default {DEFAULT_TIMEOUT:g} s)")
    parser = argparse.ArgumentParser(prog="bfxctl", parents=[common], description="Talk to the bfxd daemon.",
                                     epilog="exit: 0 ok, 1 refused, 2 usage, 3 daemon unreachable, 4 timed "
                                     "out/outcome unknown, 5 not sent/exchange session not ready")
    parser.add_argument("--version", action=ShowVersion, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="CMD")
    sub.add_parser("status", parents=[common], help="daemon and exchange session state")
    sub.add_parser("hello", parents=[common], help="the daemon's protocol version, ops and events")
    for name, what in (("offers", "list active funding offers"), ("cancel-all", "cancel every active offer"),
                       ("credits", "list funding credits (money lent, in use)"),
                       ("loans", "list funding loans (money borrowed)")):
        sub.add_parser(name, parents=[common], help=what).add_argument(
            "--symbol", type=symbol, help="only this symbol, e.g. fUSD")
    sub.add_parser("wallets", parents=[common], help="wallet balances")
    sub.add_parser("cancel", parents=[common], help="cancel offers by id").add_argument(
        "ids", nargs="+", type=positive_id, metavar="ID", help="offer id (positive integer)")
    submit = sub.add_parser("submit", parents=[common], help="place a funding offer")
    submit.add_argument("symbol", type=symbol, metavar="SYMBOL", help="e.g. fUSD")
    submit.add_argument("amount", type=decimal, metavar="AMOUNT", help="positive to lend, negative to borrow")
    submit.add_argument("rate", type=decimal, metavar="RATE", help="daily rate, e.g. 0.0002")
    submit.add_argument("period", type=positive_int, metavar="PERIOD", help="days")
    submit.add_argument("--type", default="LIMIT", help="offer type (default LIMIT)")
    submit.add_argument("--flags", type=flags, default=0, metavar="N", help="offer flags (default 0)")
    replace = sub.add_parser("replace", parents=[common], help="cancel an offer and place its successor")
    replace.add_argument("id", type=positive_id, metavar="ID")
    replace.add_argument("--rate", type=decimal, metavar="R")
    replace.add_argument("--amount", type=decimal, metavar="A")
    replace.add_argument("--period", type=positive_int, metavar="P")
    sub.add_parser("watch", parents=[common], help="print events until Ctrl-C or the daemon ends the watch")
    args = parser.parse_args(argv)
    args.symbol = getattr(args, "symbol", None)
    args.json = getattr(args, "json", False)
    args.timeout = getattr(args, "timeout", DEFAULT_TIMEOUT)
    args.socket = getattr(args, "socket", None) or os.environ.get("BFXD_SOCKET") or DEFAULT_SOCKET
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    bfxd = Client(args.socket, timeout=args.timeout)
    try:
        return COMMANDS[args.cmd](bfxd, args)
    except BfxdError as error:
        return fail(args, error)
    except KeyboardInterrupt:
        if args.cmd == "watch":
            return OK
        print("bfxctl: interrupted; the outcome of the request is unknown", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bfxctl watch | head`: the reader is gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush stays quiet
        return OK
    finally:
        bfxd.close()


if __name__ == "__main__":
    raise SystemExit(main())
