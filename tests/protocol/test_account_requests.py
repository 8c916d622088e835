"""Parsing the account-book requests: wallets (refresh), credits and loans (symbol), with their deadlines."""

from __future__ import annotations

import pytest

from bfxd.protocol.client_requests import CreditsRequest, LoansRequest, WalletsRequest, parse_request
from bfxd.protocol.client_wire import BAD_REQUEST, RequestRejected


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('{"op":"wallets"}', WalletsRequest()),
        ('{"op":"wallets","refresh":true,"ref":"w"}', WalletsRequest(ref="w", refresh=True)),
        ('{"op":"wallets","refresh":false,"timeout":2}', WalletsRequest(timeout=2.0)),
        ('{"op":"credits"}', CreditsRequest()),
        ('{"op":"credits","symbol":"fUSD","deadline":1800000000}', CreditsRequest(symbol="fUSD",
                                                                                 deadline=1800000000.0)),
        ('{"op":"loans","symbol":"fBTC","ref":7}', LoansRequest(ref=7, symbol="fBTC")),
        ('{"op":"loans","symbol":null}', LoansRequest()),
    ],
)
def test_account_requests(line: str, expected: object) -> None:
    assert parse_request(line) == expected


@pytest.mark.parametrize(
    ("line", "says"),
    [
        ('{"op":"wallets","refresh":1}', "'refresh' must be true or false"),
        ('{"op":"wallets","refresh":"yes"}', "'refresh' must be true or false"),
        ('{"op":"credits","symbol":"tBTCUSD"}', "'symbol' must be a funding symbol"),
        ('{"op":"loans","symbol":5}', "'symbol' must be a funding symbol"),
        ('{"op":"loans","timeout":0}', "'timeout' must be a number of seconds"),
    ],
)
def test_bad_account_requests_are_refused_with_op_and_ref(line: str, says: str) -> None:
    with pytest.raises(RequestRejected) as caught:
        parse_request(line)
    assert caught.value.error_type == BAD_REQUEST and says in caught.value.message
    assert caught.value.op in ("wallets", "credits", "loans")
