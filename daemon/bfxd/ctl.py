"""bfxctl: the command-line client of bfxd.

Usage: ``bfxctl [-s SOCKET] [--json] [--timeout S] CMD``, CMD one of ``status``, ``offers [--symbol fUSD]``,
``cancel ID [ID ...]``, ``cancel-all [--symbol fUSD]``, ``watch``. It speaks the daemon's JSON Lines protocol
(interface.md) over a blocking AF_UNIX socket with the standard library only: it runs once per shell command,
so it must not pay for importing trio, attrs or structlog.

Exit codes (interface.md), and how each daemon answer maps onto them:

  0  every command succeeded (``status``: the exchange session is ``ready``)
  1  the exchange refused at least one request (error type ``exchange``); also ``bad_request``,
     ``unknown_op`` and any error type this client does not know (the request itself was wrong)
  2  usage error (argparse, or an offer id that is not a positive integer)
  3  daemon unreachable: socket missing, connection refused, permission denied (by the file system, or
     ``forbidden`` by the daemon's uid check), ``busy``, ``shutting_down``, or the connection closed before
     every answer arrived (for ``watch``: closed by the daemon at any time)
  4  timed out / outcome unknown: the client deadline passed (``--timeout``, default 15 s), the daemon
     answered ``timeout`` or ``not_active`` (the link dropped after the cancel was sent and the offer is gone:
     cancelled or executed, nobody knows), or its answer could not be read (not JSON, or a line over 1 MiB)
  5  daemon up but not connected/authenticated: ``not_ready``, or ``status`` with a state other than ``ready``

When answers differ (several cancels), the most severe wins, in the order 3 > 4 > 5 > 1 > 0: "is the daemon
there" hides everything else, and an unknown outcome matters more than a known refusal.
Ctrl-C ends ``watch`` with 0; during any other command it exits 130 (the shell's SIGINT convention), since the
outcome of what was sent is then unknown.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import socket
import sys
import time

DEFAULT_SOCKET = "/run/bfxd/bfxd.sock"
DEFAULT_TIMEOUT = 15.0  # a bit over the daemon's default 10 s request deadline, so its answer arrives first
FORWARD_GRACE = 1.0  # when --timeout is also the daemon's deadline, wait this much longer for its answer
MAX_LINE = 1 << 20
MAX_ID = 2**53 - 1  # the daemon's limit: ids must survive a round trip through JSON doubles
MAX_FORWARDED_TIMEOUT = 3600.0  # the daemon refuses a longer per-request timeout as bad_request

OK, REFUSED, USAGE, UNREACHABLE, TIMED_OUT, NOT_READY = 0, 1, 2, 3, 4, 5
SEVERITY = (UNREACHABLE, TIMED_OUT, NOT_READY, REFUSED, USAGE, OK)  # most severe first
ERROR_EXIT = {"exchange": REFUSED, "bad_request": REFUSED, "unknown_op": REFUSED, "timeout": TIMED_OUT,
              "not_active": TIMED_OUT, "not_ready": NOT_READY, "busy": UNREACHABLE, "forbidden": UNREACHABLE,
              "shutting_down": UNREACHABLE}


def worst(codes: list[int]) -> int:
    return min(codes, key=SEVERITY.index, default=OK)


class Failure(Exception):
    """The exchange with the daemon could not be completed; carries the exit code."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code


class Connection:
    """One blocking connection: JSON lines out, JSON objects in, all within one deadline."""

    def __init__(self, path: str, timeout: float) -> None:
        self.path, self.deadline = path, time.monotonic() + timeout
        self.buf, self.scanned = bytearray(), 0  # scanned: bytes already searched for a newline
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            self._arm()
            self.sock.connect(path)
        except OSError as exc:
            self.sock.close()
            raise self._failure(exc) from None

    def _arm(self) -> None:
        # Re-armed before each blocking call: one deadline covers the whole exchange, not each recv.
        remaining = None if self.deadline is None else self.deadline - time.monotonic()
        if remaining is not None and remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)

    def _failure(self, exc: OSError) -> Failure:
        if isinstance(exc, TimeoutError):
            return Failure(TIMED_OUT, f"no answer from {self.path} before the deadline; outcome unknown")
        reason = {FileNotFoundError: "no such socket (is bfxd running?)",
                  ConnectionRefusedError: "connection refused (is bfxd running?)",
                  PermissionError: "permission denied"}.get(type(exc), exc.strerror or str(exc))
        return Failure(UNREACHABLE, f"daemon unreachable: {self.path}: {reason}")

    def send(self, *requests: dict) -> None:
        data = b"".join(json.dumps(r).encode() + b"\n" for r in requests)
        try:
            self._arm()
            self.sock.sendall(data)
        except OSError as exc:
            raise self._failure(exc) from None

    def receive(self) -> dict:
        """The next JSON object from the daemon; Failure(3) when it closed the connection."""
        while (end := self.buf.find(b"\n", self.scanned)) < 0:
            self.scanned = len(self.buf)
            if self.scanned > MAX_LINE:
                raise Failure(TIMED_OUT, f"bfxd sent a line over {MAX_LINE} bytes; outcome unknown")
            try:
                self._arm()
                chunk = self.sock.recv(65536)
            except OSError as exc:
                raise self._failure(exc) from None
            if not chunk:
                raise Failure(UNREACHABLE, "bfxd closed the connection")
            self.buf += chunk
        if end > MAX_LINE:
            raise Failure(TIMED_OUT, f"bfxd sent a line over {MAX_LINE} bytes; outcome unknown")
        line = bytes(self.buf[:end])
        del self.buf[: end + 1]
        self.scanned = 0
        try:
            obj = json.loads(line)
        except ValueError:
            obj = None
        if not isinstance(obj, dict):
            raise Failure(TIMED_OUT, "bfxd sent a line that is not a JSON object; outcome unknown")
        return obj

    def close(self) -> None:
        self.sock.close()


def request(conn: Connection, requests: list[dict]) -> tuple[dict[object, dict], Failure | None]:
    """Pipeline *requests*, then collect their final answers by ``ref`` in whatever order they come.

    Returns the answers received and, if not all arrived, why. An error answer without a known ref (``busy``
    is sent before any request is read) applies to every request still waiting.
    """
    waiting, answers, refused = {r["ref"] for r in requests}, {}, None
    try:
        conn.send(*requests)
    except Failure as failure:  # closed on us; it may have said why first (busy), so read that anyway
        refused = failure
    try:
        while waiting:
            answer = conn.receive()
            ref = answer.get("ref")
            if ref in waiting:
                waiting.discard(ref)
                answers[ref] = answer
            elif ref is None and answer.get("ok") is False:
                answers.update(dict.fromkeys(waiting, answer))
                return answers, None
            # anything else (an event line, a stray answer) is not ours: skip it
    except Failure as failure:
        return answers, refused or failure
    return answers, None


def error_of(answer: dict) -> dict:
    return answer["error"] if isinstance(answer.get("error"), dict) else {}


def error_code(answer: dict) -> int:
    return ERROR_EXIT.get(error_of(answer).get("type"), REFUSED)


def text(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float) and "e" in repr(value):  # 1e-05 reads badly in a rate column
        return f"{value:.12f}".rstrip("0").rstrip(".")
    return str(value)


def table(rows: list[list[str]], right: tuple[int, ...] = ()) -> str:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join("  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                               enumerate(zip(row, widths, strict=True))).rstrip() for row in rows)


def emit(args: argparse.Namespace, answer: dict, human: str | None) -> None:
    """One JSON document per answer with --json; else the human text (if any) on stdout."""
    if args.json:
        print(json.dumps(answer), flush=True)
    elif human is not None:
        print(human, flush=True)


def fail(args: argparse.Namespace, answer: dict) -> int:
    """An error answer for the whole request: print it (JSON) or say so on stderr; return its exit code."""
    emit(args, answer, None)
    error = error_of(answer)
    message = f"{error.get('type', 'error')}: {error.get('message', '')}"
    if error.get("text"):
        message += f" ({error.get('status', '')}: {error['text']})"
    print(f"bfxctl: {message}", file=sys.stderr)
    return error_code(answer)


def cmd_status(conn: Connection, args: argparse.Namespace) -> int:
    answer = single(conn, {"op": "status", "ref": 1})
    if not answer.get("ok"):
        return fail(args, answer)
    status = answer.get("status") if isinstance(answer.get("status"), dict) else {}
    emit(args, answer, table([[f"{k}:", text(v)] for k, v in status.items()]) if status else "")
    if status.get("state") != "ready":
        print(f"bfxctl: exchange session not ready (state: {status.get('state')})", file=sys.stderr)
        return NOT_READY
    return OK


def cmd_offers(conn: Connection, args: argparse.Namespace) -> int:
    answer = single(conn, with_symbol({"op": "offers", "ref": 1}, args))
    if not answer.get("ok"):
        return fail(args, answer)
    offers = answer.get("offers") or []
    rows = [["ID", "SYMBOL", "AMOUNT", "RATE", "PERIOD", "STATUS", "TYPE"]]
    rows += [[text(o.get(k)) for k in ("id", "symbol", "amount", "rate", "period", "status", "type")]
             for o in offers]
    emit(args, answer, table(rows, right=(2, 3, 4)) if offers else "no active offers")
    return OK


def cancel_line(offer_id: object, answer: dict | None) -> tuple[list[str], int]:
    """One row of cancel output and its exit code; *answer* None means no answer came."""
    if answer is None:
        return [text(offer_id), "unknown", "no answer; outcome unknown"], TIMED_OUT
    if answer.get("ok"):
        return [text(offer_id), "cancelled", text(answer.get("text"))], OK
    error = error_of(answer)
    kind = error.get("type")
    if kind == "exchange":
        return [text(offer_id), f"refused ({error.get('status')})", text(error.get("text"))], REFUSED
    verdict = {"timeout": "timed out", "not_ready": "not ready", "not_active": "unknown"}.get(
        kind, f"failed ({kind})")
    return [text(offer_id), verdict, text(error.get("message"))], error_code(answer)


def cmd_cancel(conn: Connection, args: argparse.Namespace) -> int:
    requests = [forward_timeout({"op": "cancel", "ref": n, "id": i}, args) for n, i in enumerate(args.ids, 1)]
    answers, failure = request(conn, requests)
    rows, codes = [], []
    for req in requests:  # in the user's order, not arrival order: easier to read and to diff
        answer = answers.get(req["ref"])
        if answer is not None:
            emit(args, answer, None)
        row, code = cancel_line(req["id"], answer)
        rows.append(row)
        codes.append(failure.code if answer is None and failure else code)
    if not args.json:
        print(table(rows), flush=True)
    if failure:
        print(f"bfxctl: {failure}", file=sys.stderr)
    return worst(codes)


def cmd_cancel_all(conn: Connection, args: argparse.Namespace) -> int:
    answer = single(conn, forward_timeout(with_symbol({"op": "cancel_all", "ref": 1}, args), args))
    results = answer.get("results")
    if not isinstance(results, list):  # a request-level error (not_ready, busy, ...)
        return fail(args, answer) if not answer.get("ok") else OK
    lines = [cancel_line(r.get("id"), r) for r in results]
    emit(args, answer, table([row for row, _ in lines]) if lines else "no active offers to cancel")
    code = worst([c for _, c in lines])
    if not answer.get("ok") and code == OK:  # the daemon says something failed; trust it
        code = fail(args, answer) if "error" in answer else REFUSED
    return code


def cmd_watch(conn: Connection, args: argparse.Namespace) -> int:
    answer = single(conn, {"op": "watch", "ref": 1})
    if not answer.get("ok"):
        return fail(args, answer)
    emit(args, answer, None)
    conn.deadline = None  # the deadline covered the subscription; events may be minutes apart
    if not args.json:
        print("bfxctl: watching bfxd events; Ctrl-C to stop", file=sys.stderr)
    while True:
        event = conn.receive()
        if "event" not in event and event.get("ok") is False:  # e.g. shutting_down
            return fail(args, event)
        emit(args, event, describe(event))


def describe(event: dict) -> str:
    kind, rest = event.get("event"), {k: v for k, v in event.items() if k != "event"}
    offer = rest.pop("offer", None)
    parts = [time.strftime("%H:%M:%S"), text(kind)]
    if kind == "offer":
        parts.append(text(rest.pop("action", None)))
    parts += [f"{k}={text(v)}" for k, v in rest.items() if not isinstance(v, dict | list)]
    if isinstance(offer, dict):
        parts.append(" ".join(f"{k}={text(offer.get(k))}" for k in ("id", "symbol", "amount", "rate",
                                                                     "period", "status")))
    return "  ".join(parts)


def single(conn: Connection, req: dict) -> dict:
    answers, failure = request(conn, [req])
    if failure:
        raise failure
    return answers[req["ref"]]


def with_symbol(req: dict, args: argparse.Namespace) -> dict:
    return {**req, "symbol": args.symbol} if args.symbol else req


def forward_timeout(req: dict, args: argparse.Namespace) -> dict:
    return {**req, "timeout": min(args.timeout, MAX_FORWARDED_TIMEOUT)} if args.timeout_given else req


def positive_id(value: str) -> int:
    if not (value.isascii() and value.isdigit()) or not 0 < int(value) <= MAX_ID:
        raise argparse.ArgumentTypeError(f"offer id must be a positive integer, not {value!r}")
    return int(value)


def seconds(value: str) -> float:
    number = float(value)  # a ValueError becomes argparse's "invalid seconds value" (exit 2)
    if not (math.isfinite(number) and number > 0):
        raise argparse.ArgumentTypeError(f"timeout must be a positive number of seconds, not {value!r}")
    return number


COMMANDS = {"status": cmd_status, "offers": cmd_offers, "cancel": cmd_cancel, "cancel-all": cmd_cancel_all,
            "watch": cmd_watch}


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
                        help="one JSON document per answer")
    common.add_argument("--timeout", type=seconds, metavar="S", default=argparse.SUPPRESS,
                        help=f"give up after S seconds (default {DEFAULT_TIMEOUT:g}); cancels send it along")
    parser = argparse.ArgumentParser(prog="bfxctl", parents=[common], description="Talk to the bfxd daemon.",
                                     epilog="exit: 0 ok, 1 refused by the exchange, 2 usage, 3 daemon "
                                     "unreachable, 4 timed out/outcome unknown, 5 exchange session not ready")
    parser.add_argument("--version", action=ShowVersion, nargs=0, help="print the version and exit")
    sub = parser.add_subparsers(dest="cmd", required=True, metavar="CMD")
    sub.add_parser("status", parents=[common], help="daemon and exchange session state")
    sub.add_parser("offers", parents=[common], help="list active funding offers").add_argument(
        "--symbol", help="only this symbol, e.g. fUSD")
    sub.add_parser("cancel", parents=[common], help="cancel offers by id").add_argument(
        "ids", nargs="+", type=positive_id, metavar="ID", help="offer id (positive integer)")
    sub.add_parser("cancel-all", parents=[common], help="cancel every active offer").add_argument(
        "--symbol", help="only this symbol, e.g. fUSD")
    sub.add_parser("watch", parents=[common], help="print events until Ctrl-C")
    args = parser.parse_args(argv)
    args.symbol = getattr(args, "symbol", None)
    args.json = getattr(args, "json", False)
    args.timeout_given = hasattr(args, "timeout")
    args.timeout = getattr(args, "timeout", DEFAULT_TIMEOUT)
    args.socket = getattr(args, "socket", None) or os.environ.get("BFXD_SOCKET") or DEFAULT_SOCKET
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    conn = None
    try:
        # A forwarded timeout is the daemon's deadline too: wait a little longer so that its answer (which
        # may say *why*, e.g. not_ready) arrives before we give up ourselves.
        conn = Connection(args.socket, args.timeout + (FORWARD_GRACE if args.timeout_given else 0.0))
        return COMMANDS[args.cmd](conn, args)
    except Failure as failure:
        print(f"bfxctl: {failure}", file=sys.stderr)
        return failure.code
    except KeyboardInterrupt:
        if args.cmd == "watch":
            return OK
        print("bfxctl: interrupted; the outcome of the request is unknown", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bfxctl watch | head`: the reader is gone, which is not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush stays quiet
        return OK
    finally:
        if conn is not None:
            conn.close()


if __name__ == "__main__":
    raise SystemExit(main())
