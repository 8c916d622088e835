"""A small lending bot on bfxd.client: keep the funding wallet's balance lent out at one rate.

Each round it reads the funding wallet and the active offers, cancels the offers that are stale (older than
--stale-after seconds, or at another rate than --rate), reads the wallet again (the cancels free their amounts),
and offers what is available in chunks of --chunk (a last chunk smaller than --min-chunk stays in the wallet: the
exchange refuses offers under its minimum). It logs each thing it does, one line each, on stderr.

    bfxd demo                                    # in one terminal: prints the socket path
    BFXD_SOCKET=/tmp/bfxd-demo-.../bfxd.sock python examples/lending_bot.py --once

Exit codes: 0 the round(s) ran (refusals are logged, not fatal), 1 the daemon cannot do this (it is older than
submit and wallets, or refused us), 3 the daemon is unreachable.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from decimal import ROUND_DOWN, Decimal

from bfxd.client import BfxdError, Client, DaemonUnreachable, Offer

log = logging.getLogger("lending_bot")
NEEDS = {"wallets", "offers", "cancel", "submit"}
CENTS = Decimal("0.00000001")  # the exchange's amount precision


def stale(offer: Offer, args: argparse.Namespace, now_ms: int) -> str | None:
    """Why *offer* should go, or None to keep it."""
    if offer.rate != args.rate:
        return f"rate {offer.rate} is not {args.rate}"
    age_s = (now_ms - (offer.mts_created or now_ms)) / 1000
    if age_s > args.stale_after:
        return f"{age_s:.0f} s old"
    return None


def chunks(available: Decimal, size: Decimal, minimum: Decimal) -> list[Decimal]:
    """*available* in pieces of *size*; a remainder under *minimum* is left out."""
    pieces, left = [], available.quantize(CENTS, rounding=ROUND_DOWN)
    while left >= minimum:
        piece = min(size, left)
        pieces.append(piece)
        left -= piece
    return pieces


def available_balance(bfxd: Client, currency: str) -> Decimal:
    wallet = next((w for w in bfxd.wallets() if w.type == "funding" and w.currency == currency), None)
    if wallet is None or wallet.available is None:
        return Decimal(0)  # no funding wallet yet, or the exchange has not computed it: nothing to lend
    return wallet.available


def one_round(bfxd: Client, args: argparse.Namespace) -> None:
    currency = args.symbol[1:]
    offers = bfxd.offers(args.symbol)
    log.info("round: %s available %s, %d active offers", currency, available_balance(bfxd, currency), len(offers))
    now_ms = int(time.time() * 1000)
    going = {o.id: why for o in offers if (why := stale(o, args, now_ms))}
    for result in bfxd.cancel_many(going):
        outcome = "cancelled" if result.ok else f"not cancelled ({result.error})"
        log.info("cancel %s (%s): %s", result.id, going[result.id], outcome)
    available = available_balance(bfxd, currency)
    for amount in chunks(available, args.chunk, args.min_chunk):
        try:
            placed = bfxd.submit(args.symbol, amount, args.rate, args.period)
        except BfxdError as error:  # not_sent / not_confirmed: nothing placed, the next round tries again
            log.warning("submit %s %s at %s for %d days: %s", args.symbol, amount, args.rate, args.period, error)
            continue
        log.info("submit %s %s at %s for %d days: offer %s", args.symbol, amount, args.rate, args.period,
                 placed.offer.id)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-s", "--socket", help="bfxd's socket (default: $BFXD_SOCKET, else /run/bfxd/bfxd.sock)")
    parser.add_argument("--symbol", default="fUSD")
    parser.add_argument("--rate", type=Decimal, default=Decimal("0.0002"), help="daily rate (default 0.0002)")
    parser.add_argument("--period", type=int, default=2, help="days (default 2)")
    parser.add_argument("--chunk", type=Decimal, default=Decimal(500), help="amount per offer (default 500)")
    parser.add_argument("--min-chunk", type=Decimal, default=Decimal(150), help="smallest offer (default 150)")
    parser.add_argument("--stale-after", type=float, default=600.0, help="seconds before an offer is renewed")
    parser.add_argument("--interval", type=float, default=60.0, help="seconds between rounds")
    parser.add_argument("--once", action="store_true", help="one round, then exit")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stderr)
    try:
        with Client(args.socket) as bfxd:
            hello = bfxd.hello()
            if missing := NEEDS - hello.ops:
                log.error("bfxd %s (protocol %d) does not serve %s: upgrade the daemon", hello.version or "?",
                          hello.protocol, ", ".join(sorted(missing)))
                return 1
            while True:
                one_round(bfxd, args)
                if args.once:
                    return 0
                time.sleep(args.interval)
    except DaemonUnreachable as error:
        log.error("%s", error)
        return 3
    except BfxdError as error:
        log.error("%s", error)
        return 1
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
