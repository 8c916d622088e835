"""Encoding: the client frames bfxd sends, byte for byte, and the simulator's frames back through the decoders."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from bfxd.errors import LocalProtocolError
from bfxd.protocol.decode import decode_client_frame, decode_exchange_frame
from bfxd.protocol.encode import (
    DEFAULT_AUTH_FILTER,
    account_frame,
    auth_failed_frame,
    auth_frame,
    auth_ok_frame,
    auth_signature,
    cancel_offer_frame,
    conf_ack_frame,
    error_frame,
    heartbeat_frame,
    info_code_frame,
    info_frame,
    new_offer_frame,
    notification_frame,
    offer_frame,
    offers_snapshot_frame,
    ping_frame,
    pong_frame,
)
from bfxd.protocol.events import (
    AuthFailed,
    AuthOk,
    AuthRequest,
    CancelOfferInput,
    ConfAck,
    ErrorEvent,
    Heartbeat,
    Ignored,
    Info,
    InfoMessage,
    MaintenanceEnded,
    MaintenanceStarted,
    NewOfferInput,
    Notification,
    OfferCancel,
    OfferNew,
    OffersSnapshot,
    OfferUpdate,
    PingEvent,
    Pong,
    ServerRestarting,
)
from bfxd.secret import Secret
from conftest import load_frame, load_frame_text

from .expected import ERROR_INFO_OFFER, USD_ACTIVE, UST_ACTIVE, UST_CANCELED, UST_PARTIAL

API_KEY = "the-api-key"
API_SECRET = "the-api-secret"
NONCE = 1_700_000_000_000_000
# Computed once by another route:
#   printf 'AUTH1700000000000000' | openssl dgst -sha384 -hmac 'the-api-secret'
KNOWN_SIGNATURE = (
    "86d9338da59ba4b7702d9796002b08c85cf8d1ed5c754f888078e6c0b8af654b5784c35eadfa9c1b98c8e1c02e7b02e6"
)


def _auth(**kwargs: object) -> dict[str, object]:
    return json.loads(auth_frame(Secret(API_KEY), Secret(API_SECRET), NONCE, **kwargs))  # type: ignore[arg-type]


class TestAuthFrame:
    def test_exact_fields(self) -> None:
        """The default auth frame holds exactly the documented fields, with the nonce as a string."""
        assert _auth() == {
            "event": "auth",
            "apiKey": "the-api-key",
            "authSig": KNOWN_SIGNATURE,
            "authNonce": "1700000000000000",
            "authPayload": "AUTH1700000000000000",
            "filter": ["funding", "wallet", "notify"],
        }

    def test_signature_matches_an_independent_hmac(self) -> None:
        """authSig is the lowercase hex HMAC-SHA384 of authPayload keyed with the secret."""
        frame = _auth()
        expected = hmac.new(API_SECRET.encode(), f"AUTH{NONCE}".encode(), hashlib.sha384).hexdigest()
        assert frame["authSig"] == expected
        assert frame["authSig"] == KNOWN_SIGNATURE

    def test_payload_is_auth_plus_nonce(self) -> None:
        """authPayload is "AUTH" followed by authNonce, for any nonce."""
        frame = json.loads(auth_frame(Secret("k"), Secret("s"), 42))
        assert frame["authNonce"] == "42"
        assert frame["authPayload"] == "AUTH42"
        assert frame["authSig"] == hmac.new(b"s", b"AUTH42", hashlib.sha384).hexdigest()

    @pytest.mark.parametrize(
        ("secret", "payload"),
        [("s", "AUTH1"), ("ünïcode-sécret", "AUTH9007199254740991"), ("", "AUTH5")],
    )
    def test_auth_signature(self, secret: str, payload: str) -> None:
        """auth_signature equals hmac/hashlib computed directly (UTF-8 key and message)."""
        expected = hmac.new(secret.encode("utf-8"), payload.encode("utf-8"), hashlib.sha384).hexdigest()
        signature = auth_signature(Secret(secret), payload)
        assert signature == expected
        assert len(signature) == 96
        assert signature == signature.lower()

    def test_no_dms_unless_asked(self) -> None:
        """The dead-man switch is absent by default and present only when asked for."""
        assert "dms" not in _auth()
        assert _auth(dms=4)["dms"] == 4

    def test_filter_can_be_changed_or_dropped(self) -> None:
        """A custom filter is sent as given; filter=None sends no filter at all."""
        assert _auth(filter=["funding-fUSD"])["filter"] == ["funding-fUSD"]
        assert "filter" not in _auth(filter=None)

    def test_default_filter_is_funding_wallet_and_notify(self) -> None:
        """The default auth filter is exactly funding (offers, credits, loans), wallet (ws/wu) and notify."""
        assert DEFAULT_AUTH_FILTER == ("funding", "wallet", "notify")

    def test_frame_is_compact_and_secret_free(self) -> None:
        """The text has no spaces and never contains the API secret itself."""
        text = auth_frame(Secret(API_KEY), Secret(API_SECRET), NONCE)
        assert " " not in text
        assert API_SECRET not in text

    @pytest.mark.parametrize("nonce", [1, 2**53 - 1])
    def test_nonce_bounds_accepted(self, nonce: int) -> None:
        """Nonces from 1 to 2**53 - 1 are accepted."""
        assert _nonce_of(auth_frame(Secret("k"), Secret("s"), nonce)) == str(nonce)

    @pytest.mark.parametrize("nonce", [0, -1, 2**53, 10**30, True, 1.5, "1"])
    def test_bad_nonce_is_a_local_error(self, nonce: object) -> None:
        """A nonce outside [1, 2**53 - 1], or not an int, is our bug: LocalProtocolError."""
        with pytest.raises(LocalProtocolError) as info:
            auth_frame(Secret("k"), Secret(API_SECRET), nonce)  # type: ignore[arg-type]
        assert API_SECRET not in str(info.value)

    def test_round_trip_through_the_simulator_decoder(self) -> None:
        """The auth frame decodes on the simulator side to the request it describes."""
        event = decode_client_frame(auth_frame(Secret(API_KEY), Secret(API_SECRET), NONCE, dms=4))
        assert event == AuthRequest(
            api_key="the-api-key", signature=KNOWN_SIGNATURE, nonce="1700000000000000",
            payload="AUTH1700000000000000", filter=("funding", "wallet", "notify"), dms=4,
        )


def _nonce_of(text: str) -> object:
    return json.loads(text)["authNonce"]


class TestInputs:
    def test_ping_with_cid(self) -> None:
        """The ping frame carries the cid and matches the corpus ping."""
        text = ping_frame(1234)
        assert text == '{"event":"ping","cid":1234}'
        assert json.loads(text) == load_frame("ping.json")
        assert decode_client_frame(text) == PingEvent(cid=1234)

    def test_cancel_offer_frame_exact(self) -> None:
        """The foc input is exactly [0,"foc",null,{"id":ID}], the id a JSON integer, as in input-foc.json."""
        text = cancel_offer_frame(41238934)
        assert text == '[0,"foc",null,{"id":41238934}]'
        assert json.loads(text) == load_frame("input-foc.json")
        assert text == load_frame_text("input-foc.json").replace(" ", "")
        assert decode_client_frame(text) == CancelOfferInput(offer_id=41238934)

    @pytest.mark.parametrize("offer_id", [0, -1, True, False, 1.0, "5", None])
    def test_cancel_offer_bad_id_is_a_local_error(self, offer_id: object) -> None:
        """An id that is not a positive integer is our bug: LocalProtocolError."""
        with pytest.raises(LocalProtocolError):
            cancel_offer_frame(offer_id)  # type: ignore[arg-type]

    def test_new_offer_frame_exact(self) -> None:
        """The fon input carries amount and rate as strings, in the documented shape."""
        text = new_offer_frame(type="LIMIT", symbol="fUSD", amount="50.0", rate="0.0002", period=2)
        assert text == (
            '[0,"fon",null,{"type":"LIMIT","symbol":"fUSD","amount":"50.0","rate":"0.0002","period":2,"flags":0}]'
        )
        assert decode_client_frame(text) == NewOfferInput(
            type="LIMIT", symbol="fUSD", amount="50.0", rate="0.0002", period=2, flags=0
        )


# ---- server side (the simulator) round-trips through the daemon's decoder -----------------------------

ROUND_TRIPS = [
    (info_frame(server_id="srv-1"), Info(version=2, server_id="srv-1", platform_status=1)),
    (
        info_frame(server_id="srv-2", platform_status=0, version=3),
        Info(version=3, server_id="srv-2", platform_status=0),
    ),
    (info_code_frame(20051, "Stopping"), ServerRestarting(message="Stopping")),
    (info_code_frame(20060, "Maintenance"), MaintenanceStarted(message="Maintenance")),
    (info_code_frame(20061, "Back"), MaintenanceEnded(message="Back")),
    (info_code_frame(20000, "Other"), InfoMessage(code=20000, message="Other")),
    (auth_ok_frame(user_id=7, auth_id="aid"), AuthOk(user_id=7, auth_id="aid")),
    (auth_failed_frame(10114, "nonce: small"), AuthFailed(code=10114, message="nonce: small")),
    (error_frame(10000, "Unknown event"), ErrorEvent(code=10000, message="Unknown event")),
    (conf_ack_frame(32768), ConfAck(status="OK", flags=32768)),
    (pong_frame(1234, 1511545528111), Pong(cid=1234, ts=1511545528111)),
    (heartbeat_frame(), Heartbeat(chan_id=0)),
    (heartbeat_frame(17), Heartbeat(chan_id=17)),
    (account_frame("ps", [["tBTCUSD", "ACTIVE", 1.0]]), Ignored(chan_id=0, kind="ps")),
    (offers_snapshot_frame([]), OffersSnapshot(offers=())),
    (offers_snapshot_frame([UST_ACTIVE, USD_ACTIVE]), OffersSnapshot(offers=(UST_ACTIVE, USD_ACTIVE))),
    (offers_snapshot_frame([USD_ACTIVE], bool_as_int=False), OffersSnapshot(offers=(USD_ACTIVE,))),
    (offer_frame("fon", USD_ACTIVE), OfferNew(offer=USD_ACTIVE)),
    (offer_frame("fou", UST_PARTIAL, bool_as_int=False), OfferUpdate(offer=UST_PARTIAL)),
    (offer_frame("foc", UST_CANCELED), OfferCancel(offer=UST_CANCELED)),
    (
        notification_frame(mts=5, type="foc-req", status="SUCCESS", text="Submitted", notify_info=UST_ACTIVE.to_wire()),
        Notification(mts=5, type="foc-req", message_id=None, notify_info=None, code=None, status="SUCCESS",
                     text="Submitted", offer=UST_ACTIVE),
    ),
    (
        notification_frame(mts=6, type="foc-req", status="ERROR", text="Offer not found",
                           notify_info=ERROR_INFO_OFFER.to_wire(), code=10001, message_id=3),
        Notification(mts=6, type="foc-req", message_id=3, notify_info=None, code=10001, status="ERROR",
                     text="Offer not found", offer=ERROR_INFO_OFFER),
    ),
]


@pytest.mark.parametrize(("text", "expected"), ROUND_TRIPS)
def test_server_frames_round_trip(text: str, expected: object) -> None:
    """Every simulator frame decodes on the daemon side to the event it was built from."""
    event = decode_exchange_frame(text)
    assert type(event) is type(expected)
    assert event == expected


def test_auth_ok_caps_round_trip() -> None:
    """The caps object survives the auth answer."""
    event = decode_exchange_frame(auth_ok_frame(user_id=1, auth_id="a", caps={"funding": {"read": 1}}))
    assert isinstance(event, AuthOk)
    assert event.caps == {"funding": {"read": 1}}


def test_server_frames_have_the_corpus_shape() -> None:
    """Simulator frames have the same JSON shape as the corpus frames they imitate."""
    assert json.loads(pong_frame(1234, 1511545528111)) == load_frame("pong.json")
    assert json.loads(heartbeat_frame()) == load_frame("hb.json")
    assert json.loads(auth_failed_frame(10114, "nonce: small")) == load_frame("auth-failed-nonce.json")
    assert json.loads(error_frame(10000, "Unknown event")) == load_frame("error-event.json")
    assert json.loads(offer_frame("foc", UST_CANCELED)) == load_frame("foc-canceled.json")
    assert json.loads(offers_snapshot_frame([UST_ACTIVE, USD_ACTIVE], bool_as_int=True))[2][0] == (
        load_frame("fos-snapshot.json")[2][0]  # type: ignore[index]
    )


def test_offer_frame_bool_encodings() -> None:
    """bool_as_int picks 0/1 or true/false for the three boolean fields."""
    as_int = json.loads(offer_frame("fon", USD_ACTIVE))[2]
    as_bool = json.loads(offer_frame("fon", USD_ACTIVE, bool_as_int=False))[2]
    assert (as_int[16], as_int[17], as_int[19]) == (0, 1, 1)
    assert all(type(as_int[i]) is int for i in (16, 17, 19))
    assert (as_bool[16], as_bool[17], as_bool[19]) == (False, True, True)


@pytest.mark.parametrize("kind", ["fos", "n", "foc-req", ""])
def test_offer_frame_rejects_other_kinds(kind: str) -> None:
    """offer_frame only builds fon, fou and foc; anything else is our bug."""
    with pytest.raises(LocalProtocolError):
        offer_frame(kind, UST_ACTIVE)
