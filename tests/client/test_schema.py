"""The protocol's JSON Schema (bfxd/client/schema.json): valid 2020-12, shipped, and strict where it matters."""

from __future__ import annotations

import json

import jsonschema
import pytest
from tests.fake_daemon import CREDIT, HELLO, OFFER, STATUS, WALLET
from tests.jsonlines import check, loads

from bfxd.client import schema
from bfxd.client.codec import PROTOCOLS
from bfxd.protocol import client_requests

LOAN = {k: v for k, v in CREDIT.items() if k != "position_pair"}
ERROR = {"type": "exchange", "message": "refused", "status": "ERROR", "text": "Offer not found"}

VALID = {
    "request": [{"op": "ping"}, {"op": "status", "ref": "a", "deadline": 1764684000.25},
                {"op": "cancel", "id": 5, "timeout": 2}, {"op": "submit", "symbol": "fUSD", "amount": "100.5",
                                                          "rate": 0.0002, "period": 2, "type": "LIMIT", "flags": 0},
                {"op": "replace", "id": 5, "rate": "0.00025"}, {"op": "credits", "symbol": "fUSD"},
                {"op": "hello"}, {"op": "wallets"}, {"op": "loans"}, {"op": "metrics"}],
    "from_daemon": [
        {"ok": True, "op": "hello", "ref": 1, **HELLO}, {"ok": True, "op": "status", "status": STATUS},
        {"ok": True, "op": "offers", "offers": [OFFER]}, {"ok": True, "op": "wallets", "wallets": [WALLET]},
        {"ok": True, "op": "credits", "credits": [CREDIT]}, {"ok": True, "op": "loans", "loans": [LOAN]},
        {"ok": True, "op": "submit", "offer": OFFER, "status": "SUCCESS", "text": "ok"},
        {"ok": True, "op": "replace", "cancelled": OFFER, "offer": OFFER, "status": "SUCCESS", "text": "ok"},
        {"ok": False, "op": "replace", "cancelled": OFFER, "error": ERROR},
        {"ok": False, "op": None, "error": {"type": "busy", "message": "too many clients"}},
        {"ok": True, "op": "metrics", "text": "# HELP bfxd_up 1\n"},
        {"event": "wallet", "action": "snapshot", "wallet": WALLET},
        {"event": "credit", "action": "close", "credit": CREDIT}, {"event": "loan", "action": "new", "loan": LOAN},
        {"event": "watch_ended", "reason": "lagging"}],
}
INVALID = {
    "request": [{"op": "cancel"}, {"op": "cancel", "id": 0}, {"op": "cancel", "id": "5"},
                {"op": "submit", "symbol": "USD", "amount": 1, "rate": 1, "period": 2},
                {"op": "submit", "symbol": "fUSD", "amount": "1e5", "rate": 1, "period": 2},
                {"op": "status", "timeout": 0}, {"op": "frobnicate"}],
    "from_daemon": [{"ok": True, "op": "status"}, {"ok": True, "op": "offers", "offers": [{"id": 1}]},
                    {"ok": False, "op": "cancel", "error": {"type": "exchange"}},
                    {"ok": True, "op": "hello", "protocol": "1", "version": "x", "ops": [], "events": []},
                    {"event": "offer", "action": "explode", "offer": OFFER},
                    {"event": "state", "state": "ready"}, {"ok": "yes", "op": "ping"}],
}


def test_the_schema_is_valid_2020_12_and_names_its_protocol() -> None:
    document = schema()
    jsonschema.Draft202012Validator.check_schema(document)
    assert document["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert document["x-protocol"] == max(PROTOCOLS)


@pytest.mark.parametrize(("kind", "line"), [(k, line) for k, lines in VALID.items() for line in lines])
def test_valid_lines(kind: str, line: dict) -> None:
    check(json.loads(json.dumps(line)), kind)


@pytest.mark.parametrize(("kind", "line"), [(k, line) for k, lines in INVALID.items() for line in lines])
def test_invalid_lines_fail_naming_the_place(kind: str, line: dict) -> None:
    with pytest.raises(AssertionError, match="breaks the protocol schema"):
        check(line, kind)


def test_every_op_the_daemon_parses_has_a_request_and_an_answer() -> None:
    """Every op the daemon parses is described; so are the contract's (wallets, credits, loans)."""
    defs = schema()["$defs"]
    ops = set(client_requests.OP_NAMES) | {"wallets", "credits", "loans"}
    assert {f"request.{op}" for op in ops} <= set(defs) and {f"answer.{op}" for op in ops} <= set(defs)


def test_the_schema_ships_as_package_data() -> None:
    """schema() reads the file through importlib.resources, as an installed package would."""
    from importlib.resources import files

    assert files("bfxd.client").joinpath("schema.json").is_file()


def test_loads_checks_by_default() -> None:
    with pytest.raises(AssertionError):
        loads('{"ok": true, "op": "cancel", "offer": 5}')
