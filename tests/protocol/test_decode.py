"""Decoding: every frame of the corpus to exactly one typed event, and every unusable frame to RemoteProtocolError."""

from __future__ import annotations

import json
import traceback

import pytest

from bfxd.errors import RemoteProtocolError, excerpt
from bfxd.protocol.decode import decode_client_frame, decode_exchange_frame, decode_exchange_message
from bfxd.protocol.events import (
    AuthFailed,
    AuthOk,
    AuthRequest,
    CalcInput,
    CancelOfferInput,
    ConfAck,
    ConfRequest,
    CreditClose,
    CreditNew,
    CreditsSnapshot,
    CreditUpdate,
    ErrorEvent,
    Heartbeat,
    Ignored,
    Info,
    InfoMessage,
    LoanClose,
    LoanNew,
    LoansSnapshot,
    LoanUpdate,
    MaintenanceEnded,
    MaintenanceStarted,
    NewOfferInput,
    Notification,
    OfferCancel,
    OfferNew,
    OffersSnapshot,
    OfferUpdate,
    OtherInput,
    PingEvent,
    Pong,
    ServerRestarting,
    WalletsSnapshot,
    WalletUpdate,
)
from bfxd.protocol.funding import FundingLoan
from bfxd.protocol.offer import FundingOffer
from bfxd.protocol.wallet import Wallet
from conftest import FRAMES_DIR, load_frame, load_frame_text

from .expected import (
    BTC_LOAN_NEW,
    CREDIT_DOCS,
    CREDIT_FCC,
    CREDIT_FCN,
    CREDIT_FCU,
    ERROR_INFO_OFFER,
    LOAN_FLC,
    LOAN_FLS,
    LOAN_FLU,
    USD_ACTIVE,
    UST_ACTIVE,
    UST_CANCELED,
    UST_EXECUTED,
    UST_PARTIAL,
)

# ---- the corpus ----------------------------------------------------------------------------------------

EXCHANGE_FRAMES = {
    "auth-failed-nonce.json": AuthFailed(code=10114, message="nonce: small"),
    "auth-failed.json": AuthFailed(code=10100, message="apikey: invalid"),
    "auth-ok.json": AuthOk(user_id=1234567, auth_id="a26236f1-ef44-4671-be32-197ce190348f"),
    "bu-ignored.json": Ignored(chan_id=0, kind="bu"),
    "error-event.json": ErrorEvent(code=10000, message="Unknown event"),
    "fcs-ignored.json": CreditsSnapshot(credits=()),  # named when bfxd ignored credits
    "fcs-docs-example.json": CreditsSnapshot(credits=(CREDIT_DOCS,)),
    "fcs-bad-rows.json": CreditsSnapshot(credits=(CREDIT_DOCS,), skipped=(
        "row 1: funding credit field 3 should be an integer, got not a time",
        "row 2: funding credit field 0 should be a positive integer, got no id",
    )),
    "fcn.json": CreditNew(credit=CREDIT_FCN),
    "fcu.json": CreditUpdate(credit=CREDIT_FCU),
    "fcc.json": CreditClose(credit=CREDIT_FCC),
    "fls-snapshot.json": LoansSnapshot(loans=(LOAN_FLS,)),
    "fln.json": LoanNew(loan=BTC_LOAN_NEW),
    "flu.json": LoanUpdate(loan=LOAN_FLU),
    "flc.json": LoanClose(loan=LOAN_FLC),
    "seq-fcn.json": CreditNew(credit=CREDIT_FCN),
    "seq-hb.json": Heartbeat(chan_id=0),
    "conf-seq-ok.json": ConfAck(status="OK", flags=65536),
    "foc-canceled.json": OfferCancel(offer=UST_CANCELED),
    "foc-executed.json": OfferCancel(offer=UST_EXECUTED),
    "fon.json": OfferNew(offer=USD_ACTIVE),
    "fos-empty.json": OffersSnapshot(offers=()),
    "fos-snapshot.json": OffersSnapshot(offers=(UST_ACTIVE, USD_ACTIVE)),
    "fou-partial.json": OfferUpdate(offer=UST_PARTIAL),
    "hb.json": Heartbeat(chan_id=0),
    "info-20051.json": ServerRestarting(message="Stopping. Please try to reconnect"),
    "info-20060.json": MaintenanceStarted(message="Entering in Maintenance mode. Please try to reconnect"),
    "info-20061.json": MaintenanceEnded(
        message="Maintenance ended. You can resume normal activity. "
        "It is advised to unsubscribe/subscribe again all channels."
    ),
    "info-connect.json": Info(version=2, server_id="5b73a436-19ca-4a15-8160-9069bdd7f181", platform_status=1),
    "n-foc-req-error.json": Notification(
        mts=1575294375000, type="foc-req", message_id=None, notify_info=None, code=None, status="ERROR",
        text="Offer not found", offer=ERROR_INFO_OFFER,
    ),
    "n-foc-req-success.json": Notification(
        mts=1575294374000, type="foc-req", message_id=None, notify_info=None, code=None, status="SUCCESS",
        text="Submitted for cancellation; waiting for confirmation (ID: 41238934).", offer=UST_ACTIVE,
    ),
    "n-fon-req-success.json": Notification(
        mts=1575293960000, type="fon-req", message_id=None, notify_info=None, code=None, status="SUCCESS",
        text="Submitting funding offer of 1000.5 USD at 0.0200 for 30 days.", offer=USD_ACTIVE,
    ),
    "pong.json": Pong(cid=1234, ts=1511545528111),
    "ws-snapshot-ignored.json": WalletsSnapshot(wallets=(  # named when bfxd ignored wallets
        Wallet(type="funding", currency="USD", balance=1000.5, unsettled_interest=0, available=None),)),
    "ws-docs-example.json": WalletsSnapshot(wallets=(
        Wallet(type="exchange", currency="SAN", balance=19.76, unsettled_interest=0, available=None),)),
    "ws-funding.json": WalletsSnapshot(wallets=(
        Wallet(type="funding", currency="USD", balance=1000.5, unsettled_interest=0.25, available=None),
        Wallet(type="funding", currency="BTC", balance=0.5, unsettled_interest=0, available=None),
        Wallet(type="exchange", currency="USD", balance=20, unsettled_interest=0, available=None),
    )),
    "wu-docs-example.json": WalletUpdate(wallet=Wallet(
        type="exchange", currency="BTC", balance=1.61169184, unsettled_interest=0, available=None)),
    "wu-calc-answer.json": WalletUpdate(wallet=Wallet(
        type="funding", currency="USD", balance=1000.5, unsettled_interest=0.25, available=250.5)),
}
# seq-n-fon-req.json decodes as n-fon-req-success.json does: the trailing sequence number is not read.
EXCHANGE_FRAMES["seq-n-fon-req.json"] = EXCHANGE_FRAMES["n-fon-req-success.json"]

CLIENT_FRAMES = {
    "auth-request.json": AuthRequest(
        api_key="API_KEY",
        signature="<hex hmac-sha384 of authPayload with the API secret>",
        nonce="1700000000000000",
        payload="AUTH1700000000000000",
        filter=("funding", "notify"),
        dms=None,
    ),
    "input-foc.json": CancelOfferInput(offer_id=41238934),
    "input-calc.json": CalcInput(requests=("wallet_funding_USD", "wallet_funding_BTC")),
    "input-conf-seq.json": ConfRequest(flags=65536),
    "ping.json": PingEvent(cid=1234),
}


def test_every_corpus_frame_has_an_expectation() -> None:
    """Each file in tests/frames appears in exactly one of the two tables, so a new frame cannot go untested."""
    on_disk = {p.name for p in FRAMES_DIR.glob("*.json")}
    assert not set(EXCHANGE_FRAMES) & set(CLIENT_FRAMES)
    assert on_disk == set(EXCHANGE_FRAMES) | set(CLIENT_FRAMES)


class TestCorpus:
    @pytest.mark.parametrize(("name", "expected"), sorted(EXCHANGE_FRAMES.items()))
    def test_exchange_frame(self, name: str, expected: object) -> None:
        """Each exchange-side frame decodes to exactly the expected event."""
        event = decode_exchange_frame(load_frame_text(name))
        assert type(event) is type(expected)
        assert event == expected

    @pytest.mark.parametrize(("name", "expected"), sorted(EXCHANGE_FRAMES.items()))
    def test_exchange_frame_as_bytes(self, name: str, expected: object) -> None:
        """The same frames given as UTF-8 bytes decode to the same events."""
        assert decode_exchange_frame(load_frame_text(name).encode()) == expected

    @pytest.mark.parametrize(("name", "expected"), sorted(EXCHANGE_FRAMES.items()))
    def test_exchange_message_already_parsed(self, name: str, expected: object) -> None:
        """decode_exchange_message gives the same event for the parsed JSON value."""
        assert decode_exchange_message(load_frame(name)) == expected

    @pytest.mark.parametrize(("name", "expected"), sorted(CLIENT_FRAMES.items()))
    def test_client_frame(self, name: str, expected: object) -> None:
        """Each client-side frame decodes (simulator side) to exactly the expected input event."""
        event = decode_client_frame(load_frame_text(name))
        assert type(event) is type(expected)
        assert event == expected

    def test_auth_ok_keeps_caps(self) -> None:
        """The auth answer's caps object is kept verbatim (it is excluded from equality)."""
        event = decode_exchange_frame(load_frame_text("auth-ok.json"))
        assert isinstance(event, AuthOk)
        assert event.caps == {
            "orders": {"read": 1, "write": 1},
            "funding": {"read": 1, "write": 1},
            "wallets": {"read": 1, "write": 0},
        }

    def test_error_notification_keeps_notify_info(self) -> None:
        """A notification keeps its raw NOTIFY_INFO (excluded from equality) next to the decoded offer."""
        event = decode_exchange_frame(load_frame_text("n-foc-req-error.json"))
        assert isinstance(event, Notification)
        assert event.notify_info == [41238999] + [None] * 20
        assert event.offer_id == 41238999
        assert not event.succeeded

    def test_success_notification_properties(self) -> None:
        """A SUCCESS notification reports success and the offer id of its NOTIFY_INFO."""
        event = decode_exchange_frame(load_frame_text("n-foc-req-success.json"))
        assert isinstance(event, Notification)
        assert event.succeeded
        assert event.offer_id == 41238934

    def test_nonce_failure_is_recognised(self) -> None:
        """Auth failure 10114 is a nonce error and 10100 is not."""
        nonce = decode_exchange_frame(load_frame_text("auth-failed-nonce.json"))
        invalid = decode_exchange_frame(load_frame_text("auth-failed.json"))
        assert isinstance(nonce, AuthFailed) and isinstance(invalid, AuthFailed)
        assert nonce.is_nonce_error
        assert not invalid.is_nonce_error

    def test_greeting_is_not_maintenance(self) -> None:
        """The greeting with platform status 1 does not mean maintenance."""
        event = decode_exchange_frame(load_frame_text("info-connect.json"))
        assert isinstance(event, Info)
        assert not event.in_maintenance

    def test_offer_numbers_keep_their_json_type(self) -> None:
        """Integers stay int and decimals stay float, as the exchange sent them."""
        event = decode_exchange_frame(load_frame_text("fos-snapshot.json"))
        assert isinstance(event, OffersSnapshot)
        ust, usd = event.offers
        assert type(ust.amount) is int and type(ust.rate) is float
        assert type(usd.amount) is float


# ---- more exchange frames: branches the corpus does not reach --------------------------------------

OFFER_ROW = (
    '[7,"fUSD",1,2,50,50,"LIMIT",null,null,0,"ACTIVE",null,null,null,0.0001,2,0,1,null,1,null]'
)
OFFER_7 = FundingOffer(
    id=7, symbol="fUSD", mts_created=1, mts_updated=2, amount=50, amount_orig=50, type="LIMIT", flags=0,
    status="ACTIVE", rate=0.0001, period=2, notify=False, hidden=True, renew=True,
)

MORE_EXCHANGE_CASES = [
    ('{"event":"info","version":2}', Info(version=2, server_id=None, platform_status=None)),
    ('{"event":"info","version":2,"platform":{"status":0}}', Info(version=2, server_id=None, platform_status=0)),
    ('{"event":"info","version":2,"platform":{}}', Info(version=2, server_id=None, platform_status=None)),
    ('{"event":"info","code":20000,"msg":"something"}', InfoMessage(code=20000, message="something")),
    ('{"event":"info","code":20051}', ServerRestarting(message="")),
    ('{"event":"conf","status":"OK","flags":65536}', ConfAck(status="OK", flags=65536)),
    ('{"event":"conf"}', ConfAck(status=None, flags=None)),
    ('{"event":"auth","status":"OK"}', AuthOk(user_id=None, auth_id=None)),
    ('{"event":"auth","status":"FAILED"}', AuthFailed(code=None, message="")),
    ('{"event":"error"}', ErrorEvent(code=None, message="")),
    ('{"event":"pong"}', Pong(cid=None, ts=None)),
    ('{"event":"subscribed","channel":"book","chanId":5}', Ignored(chan_id=-1, kind="subscribed")),
    ('{"event":"unsubscribed","chanId":5}', Ignored(chan_id=-1, kind="unsubscribed")),
    ('[17,"hb"]', Heartbeat(chan_id=17)),
    ('[17,[[1,2,3]]]', Ignored(chan_id=17, kind="data")),
    ('[17,"te",[1,2]]', Ignored(chan_id=17, kind="te")),
    ('[0,"ps",[1]]', Ignored(chan_id=0, kind="ps")),
    ('[0,"ws",[]]', WalletsSnapshot(wallets=())),
    ('[0,"fls",[]]', LoansSnapshot(loans=())),
    ('[0,"ws",[["funding","USD",5],["funding"],7]]', WalletsSnapshot(
        wallets=(Wallet(type="funding", currency="USD", balance=5),),
        skipped=("row 1: wallet lacks its type or currency: ['funding']", "row 2: wallet should be an array, got 7"))),
    ('[0,"fls",[[1,"fUSD",1,null,null,5,0,"ACTIVE"],[2,"fUSD",1,null,null,"5",0,"ACTIVE"]]]', LoansSnapshot(
        loans=(FundingLoan(id=1, symbol="fUSD", status="ACTIVE", side=1, amount=5, flags=0),),
        skipped=("row 1: funding loan field 5 should be a number, got 5",))),
    ('[0,"os"]', Ignored(chan_id=0, kind="os")),
    (f"[0,\"fon\",{OFFER_ROW}]", OfferNew(offer=OFFER_7)),
    # Arrays may grow: extra trailing fields on the frame, the offer and the notification are ignored.
    (f"[0,\"fou\",{OFFER_ROW[:-1]},\"new\",42],99]", OfferUpdate(offer=OFFER_7)),
    (f"[0,\"n\",[5,\"fon-req\",null,null,{OFFER_ROW},null,\"SUCCESS\",\"ok\",\"extra\"]]",
     Notification(mts=5, type="fon-req", message_id=None, notify_info=None, code=None, status="SUCCESS",
                  text="ok", offer=OFFER_7)),
    # Other notification types carry no offer, whatever their NOTIFY_INFO.
    ('[0,"n",[5,"on-req",null,null,[1,2,3],null,"SUCCESS","order"]]',
     Notification(mts=5, type="on-req", message_id=None, notify_info=None, code=None, status="SUCCESS",
                  text="order", offer=None)),
    ('[0,"n",[null,"uca",7,null,null,10001,null,null]]',
     Notification(mts=None, type="uca", message_id=7, notify_info=None, code=10001, status=None, text=None)),
    # An offer notification whose NOTIFY_INFO is not an array, or an unusable one, keeps the notification.
    ('[0,"n",[5,"foc-req",null,null,null,null,"ERROR","Offer not found"]]',
     Notification(mts=5, type="foc-req", message_id=None, notify_info=None, code=None, status="ERROR",
                  text="Offer not found", offer=None)),
    ('[0,"n",[5,"foc-req",null,null,["x"],null,"ERROR","bad"]]',
     Notification(mts=5, type="foc-req", message_id=None, notify_info=None, code=None, status="ERROR",
                  text="bad", offer=None)),
]


@pytest.mark.parametrize(("text", "expected"), MORE_EXCHANGE_CASES)
def test_more_exchange_frames(text: str, expected: object) -> None:
    """Frames beyond the corpus decode to the expected event."""
    event = decode_exchange_frame(text)
    assert type(event) is type(expected)
    assert event == expected


def test_maintenance_start_by_code_alone() -> None:
    """A maintenance-start info is recognised by its code alone and reports no greeting fields."""
    assert decode_exchange_frame('{"event":"info","code":20060,"msg":"m"}') == MaintenanceStarted(message="m")


def test_maintenance_greeting() -> None:
    """A greeting with platform status 0 reports maintenance."""
    event = decode_exchange_frame('{"event":"info","version":2,"platform":{"status":0}}')
    assert isinstance(event, Info)
    assert event.in_maintenance


def test_nonce_failure_recognised_by_text() -> None:
    """An auth failure mentioning the nonce counts as a nonce error even without code 10114."""
    event = decode_exchange_frame('{"event":"auth","status":"FAILED","msg":"Nonce: small"}')
    assert isinstance(event, AuthFailed)
    assert event.is_nonce_error


def test_auth_ok_without_caps_object() -> None:
    """Caps that are not an object become an empty dict."""
    event = decode_exchange_frame('{"event":"auth","status":"OK","caps":[1]}')
    assert isinstance(event, AuthOk)
    assert event.caps == {}


def test_notification_without_offer_has_no_offer_id() -> None:
    """A notification without a decoded offer reports offer_id None."""
    event = decode_exchange_frame('[0,"n",[5,"foc-req",null,null,null,null,"ERROR","x"]]')
    assert isinstance(event, Notification)
    assert event.offer_id is None


BAD_EXCHANGE_FRAMES = [
    pytest.param("{not json", id="not-json"),
    pytest.param("", id="empty"),
    pytest.param("NaN", id="nan"),
    pytest.param('[0,"hb",NaN]', id="nan-inside"),
    pytest.param('[0,"hb",Infinity]', id="infinity"),
    pytest.param('[0,"hb",-Infinity]', id="minus-infinity"),
    pytest.param('[0,"hb",1e999]', id="float-overflow"),
    pytest.param('"hb"', id="string"),
    pytest.param("42", id="number"),
    pytest.param("null", id="null"),
    pytest.param("[]", id="empty-array"),
    pytest.param("[0]", id="one-element"),
    pytest.param('["0","hb"]', id="string-channel"),
    pytest.param('[true,"hb"]', id="boolean-channel"),
    pytest.param('[0.0,"hb"]', id="float-channel"),
    pytest.param("{}", id="no-event"),
    pytest.param('{"event":5}', id="event-not-string"),
    pytest.param('{"event":"nope"}', id="unknown-event"),
    pytest.param('{"event":"auth","status":"MAYBE"}', id="auth-unknown-status"),
    pytest.param('{"event":"auth"}', id="auth-no-status"),
    pytest.param('{"event":"auth","status":"OK","userId":"1"}', id="auth-user-id-string"),
    pytest.param('{"event":"auth","status":"FAILED","msg":5}', id="auth-msg-number"),
    pytest.param('{"event":"auth","status":"FAILED","code":true}', id="auth-code-boolean"),
    pytest.param('{"event":"info","code":"20051"}', id="info-code-string"),
    pytest.param('{"event":"info","code":20051.0}', id="info-code-float"),
    pytest.param('{"event":"info","platform":5}', id="info-platform-number"),
    pytest.param('{"event":"info","platform":{"status":"1"}}', id="info-status-string"),
    pytest.param('{"event":"info","version":"2"}', id="info-version-string"),
    pytest.param('{"event":"info","serverId":5}', id="info-server-id-number"),
    pytest.param('{"event":"error","code":1.5}', id="error-code-float"),
    pytest.param('{"event":"pong","cid":"x"}', id="pong-cid-string"),
    pytest.param('{"event":"conf","flags":"x"}', id="conf-flags-string"),
    pytest.param('[0,["fos"],[]]', id="account-kind-not-string"),
    pytest.param('[0,"fos"]', id="fos-no-payload"),
    pytest.param('[0,"fon"]', id="fon-no-payload"),
    pytest.param('[0,"n"]', id="n-no-payload"),
    pytest.param('[0,"fos",{}]', id="fos-payload-object"),
    pytest.param('[0,"fos",[[1]]]', id="fos-row-too-short"),
    pytest.param('[0,"fos",[5]]', id="fos-row-not-array"),
    pytest.param('[0,"fon",null]', id="fon-null"),
    pytest.param('[0,"fou",[0,"fUSD",1,1,1,1,"LIMIT",null,null,0,"ACTIVE"]]', id="fou-id-zero"),
    pytest.param('[0,"foc","x"]', id="foc-string"),
    # fon/fou/foc decode strictly: id, symbol and status are required (only notifications are lenient).
    pytest.param('[0,"fon",[5,null,1,1,1,1,"LIMIT",null,null,0,"ACTIVE"]]', id="fon-no-symbol"),
    pytest.param('[0,"fou",[5,"fUSD",1,1,1,1,"LIMIT",null,null,0,null]]', id="fou-no-status"),
    pytest.param('[0,"fou",[5]]', id="fou-id-only"),
    pytest.param('[0,"foc",[null,"fUSD",1,1,1,1,"LIMIT",null,null,0,"CANCELED"]]', id="foc-no-id"),
    pytest.param('[0,"foc",[1,"fUSD",1,1,1,1,"LIMIT",null,null,0,null]]', id="foc-no-status"),
    pytest.param('[0,"n","x"]', id="n-string"),
    pytest.param('[0,"n",[1,"x",null,null,null,null,"SUCCESS"]]', id="n-seven-fields"),
    pytest.param('[0,"n",[1,5,null,null,null,null,"SUCCESS","t"]]', id="n-type-number"),
    pytest.param('[0,"n",["1","x",null,null,null,null,"SUCCESS","t"]]', id="n-mts-string"),
    pytest.param('[0,"n",[1.5,"x",null,null,null,null,"SUCCESS","t"]]', id="n-mts-float"),
    pytest.param('[0,"n",[1,"x",null,null,null,"10","SUCCESS","t"]]', id="n-code-string"),
    pytest.param('[0,"n",[1,"x",null,null,null,null,5,"t"]]', id="n-status-number"),
    pytest.param('[0,"n",[1,"x",null,null,null,null,"SUCCESS",5]]', id="n-text-number"),
    # Wallets, credits and loans: a snapshot that is not a list loses the frame; one row frames decode strictly.
    pytest.param('[0,"ws",{}]', id="ws-payload-object"),
    pytest.param('[0,"fcs",null]', id="fcs-payload-null"),
    pytest.param('[0,"fls","x"]', id="fls-payload-string"),
    pytest.param('[0,"wu",null]', id="wu-null"),
    pytest.param('[0,"wu",[null,"USD",1]]', id="wu-no-type"),
    pytest.param('[0,"wu",["funding",5,1]]', id="wu-currency-number"),
    pytest.param('[0,"wu",["funding","USD","1"]]', id="wu-balance-string"),
    pytest.param('[0,"wu",["funding","USD",1,0,true]]', id="wu-available-boolean"),
    pytest.param('[0,"fcn",[1]]', id="fcn-id-only"),
    pytest.param('[0,"fcu",[1,"fUSD",1,1,1,1,0,null]]', id="fcu-no-status"),
    pytest.param('[0,"fcc",[0,"fUSD",1,1,1,1,0,"CLOSED"]]', id="fcc-id-zero"),
    pytest.param('[0,"fcn",[1,"fUSD",1,1,1,1,0,"ACTIVE",null,null,null,1,2,1,1,0,0,null,0,null,0,5]]',
                 id="fcn-position-pair-number"),
    pytest.param('[0,"fln",[1,"fUSD",true,1,1,1,0,"ACTIVE"]]', id="fln-side-boolean"),
    pytest.param('[0,"flu",[1,"fUSD",1,1,1,1,[0],"ACTIVE"]]', id="flu-flags-array"),
    pytest.param('[0,"flc",[1,"fUSD",1,1,1,1,0,"CLOSED",null,null,null,1,2,1,1,2]]', id="flc-notify-two"),
    pytest.param('[0,"fln",[1,"fUSD",1,1,1,1,0,"ACTIVE",7]]', id="fln-rate-type-number"),
    pytest.param('[0,"fln",{}]', id="fln-object"),
]


@pytest.mark.parametrize("text", BAD_EXCHANGE_FRAMES)
def test_unusable_exchange_frame_is_a_remote_error(text: str) -> None:
    """An unusable frame raises RemoteProtocolError and nothing else."""
    with pytest.raises(RemoteProtocolError):
        decode_exchange_frame(text)


@pytest.mark.parametrize(
    "data",
    [b"\xff", b'[0,"hb","\xff"]', '[0,"hb"]'.encode("utf-16"), b'[0,"hb","\xed\xa0\x80"]'],
    ids=["invalid-byte", "invalid-in-string", "utf-16", "utf-8-encoded-surrogate"],
)
def test_bytes_that_are_not_utf8_are_a_remote_error(data: bytes) -> None:
    """Bytes that are not strict UTF-8 (UTF-16 included) raise RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError):
        decode_exchange_frame(data)


def test_deep_nesting_is_a_remote_error() -> None:
    """A frame nested deeper than the parser allows raises RemoteProtocolError, not RecursionError."""
    with pytest.raises(RemoteProtocolError):
        decode_exchange_frame("[" * 100_000 + "]" * 100_000)


@pytest.mark.parametrize("value", [None, 5, 1.5, ["[0,\"hb\"]"]])
def test_non_text_is_a_remote_error(value: object) -> None:
    """A value that is neither str nor bytes raises RemoteProtocolError."""
    with pytest.raises(RemoteProtocolError, match="not text"):
        decode_exchange_frame(value)  # type: ignore[arg-type]


def test_error_message_is_an_excerpt() -> None:
    """The error for a huge unusable frame quotes a short excerpt, not the whole frame."""
    text = '"' + "x" * 10_000 + '"'
    with pytest.raises(RemoteProtocolError) as info:
        decode_exchange_frame(text)
    assert len(str(info.value)) < 200


@pytest.mark.parametrize(
    "value", [None, "hb", 5, [], [0], {"event": None}, ["0", "hb"]], ids=repr
)
def test_unusable_parsed_message_is_a_remote_error(value: object) -> None:
    """decode_exchange_message raises RemoteProtocolError for an unusable parsed value."""
    with pytest.raises(RemoteProtocolError):
        decode_exchange_message(value)


# ---- client → exchange (the simulator's side) ---------------------------------------------------------

CLIENT_CASES = [
    ('{"event":"ping"}', PingEvent(cid=None)),
    ('{"event":"ping","cid":"abc"}', PingEvent(cid="abc")),
    ('{"event":"conf","flags":65536}', ConfRequest(flags=65536)),
    ('{"event":"conf"}', ConfRequest(flags=0)),
    ('[0,"foc",null,{"id":5}]', CancelOfferInput(offer_id=5)),
    ('[0,"foc",null,{"id":5},"extra"]', CancelOfferInput(offer_id=5)),
    ('[0,"foc",null,{}]', CancelOfferInput(offer_id=None)),
    ('[0,"foc",null,{"id":"5"}]', CancelOfferInput(offer_id=None)),
    ('[0,"foc",null,{"id":true}]', CancelOfferInput(offer_id=None)),
    ('[0,"foc",null,{"id":5.0}]', CancelOfferInput(offer_id=None)),
    ('[0,"foc",null,null]', CancelOfferInput(offer_id=None)),
    (
        '[0,"fon",null,{"type":"LIMIT","symbol":"fUSD","amount":"50.0","rate":"0.0002","period":2,"flags":0}]',
        NewOfferInput(type="LIMIT", symbol="fUSD", amount="50.0", rate="0.0002", period=2, flags=0),
    ),
    (
        '[0,"fon",null,{"type":"LIMIT","symbol":"fUSD","amount":"50.0","rate":"0.0002","period":2}]',
        NewOfferInput(type="LIMIT", symbol="fUSD", amount="50.0", rate="0.0002", period=2, flags=0),
    ),
    (
        '{"event":"auth","apiKey":"K","authSig":"S","authNonce":1700000000000000,"authPayload":"P","dms":4}',
        AuthRequest(api_key="K", signature="S", nonce="1700000000000000", payload="P", filter=None, dms=4),
    ),
    (
        '{"event":"auth","apiKey":"K","authSig":"S","authNonce":"1","authPayload":"AUTH1","filter":[]}',
        AuthRequest(api_key="K", signature="S", nonce="1", payload="AUTH1", filter=(), dms=None),
    ),
    ('[0,"calc",null,[]]', CalcInput(requests=())),
    ('[0,"calc",null,[["margin_base"],["balance"]]]', CalcInput(requests=("margin_base", "balance"))),
]


@pytest.mark.parametrize(("text", "expected"), CLIENT_CASES)
def test_client_frames(text: str, expected: object) -> None:
    """Client frames beyond the corpus decode to the expected input event."""
    event = decode_client_frame(text)
    assert type(event) is type(expected)
    assert event == expected


def test_auth_request_signature_differs_in_equality() -> None:
    """Two auth requests differing only in signature are not equal (the signature is compared)."""
    a = decode_client_frame('{"event":"auth","apiKey":"K","authSig":"S1","authNonce":"1","authPayload":"P"}')
    b = decode_client_frame('{"event":"auth","apiKey":"K","authSig":"S2","authNonce":"1","authPayload":"P"}')
    assert a != b


def test_other_input_keeps_kind_and_payload() -> None:
    """An input this core does not model keeps its kind and its payload."""
    event = decode_client_frame('[0,"oc",null,{"id":99}]')
    assert event == OtherInput(kind="oc", payload=None)
    assert isinstance(event, OtherInput)
    assert event.payload == {"id": 99}


BAD_CLIENT_FRAMES = [
    pytest.param("{", id="not-json"),
    pytest.param("5", id="number"),
    pytest.param("[]", id="empty-array"),
    pytest.param('[0,"foc",null]', id="three-elements"),
    pytest.param('[1,"foc",null,{"id":1}]', id="channel-1"),
    pytest.param('[false,"foc",null,{"id":1}]', id="channel-false"),
    pytest.param('[0.0,"foc",null,{"id":1}]', id="channel-float"),
    pytest.param('[0,5,null,{"id":1}]', id="kind-number"),
    pytest.param("{}", id="no-event"),
    pytest.param('{"event":"subscribe","channel":"book"}', id="unknown-event"),
    pytest.param('{"event":"conf","flags":"x"}', id="conf-flags-string"),
    pytest.param('[0,"fon",null,"x"]', id="fon-payload-string"),
    pytest.param('[0,"fon",null,{"type":"LIMIT","symbol":"fUSD","amount":"1","period":2}]', id="fon-no-rate"),
    pytest.param(
        '[0,"fon",null,{"type":"LIMIT","symbol":"fUSD","amount":"1","rate":"1","period":"x"}]', id="fon-period-text"
    ),
    pytest.param(
        '[0,"fon",null,{"type":"LIMIT","symbol":"fUSD","amount":"1","rate":"1","period":[2]}]', id="fon-period-list"
    ),
    pytest.param('{"event":"auth","authSig":"S","authNonce":"1","authPayload":"P"}', id="auth-no-key"),
    pytest.param('{"event":"auth","apiKey":"K","authSig":5,"authNonce":"1","authPayload":"P"}', id="auth-sig-number"),
    pytest.param('{"event":"auth","apiKey":"K","authSig":"S","authNonce":[1],"authPayload":"P"}', id="auth-nonce-list"),
    pytest.param('{"event":"auth","apiKey":"K","authSig":"S","authNonce":"1"}', id="auth-no-payload"),
    pytest.param(
        '{"event":"auth","apiKey":"K","authSig":"S","authNonce":"1","authPayload":"P","filter":"funding"}',
        id="auth-filter-string",
    ),
    pytest.param(
        '{"event":"auth","apiKey":"K","authSig":"S","authNonce":"1","authPayload":"P","filter":[1]}',
        id="auth-filter-number",
    ),
    pytest.param(
        '{"event":"auth","apiKey":"K","authSig":"S","authNonce":"1","authPayload":"P","dms":"4"}',
        id="auth-dms-string",
    ),
    pytest.param('[0,"calc",null,{}]', id="calc-object"),
    pytest.param('[0,"calc",null,["wallet_funding_USD"]]', id="calc-flat-strings"),
    pytest.param('[0,"calc",null,[["a","b"]]]', id="calc-two-keys-in-one"),
    pytest.param('[0,"calc",null,[[5]]]', id="calc-key-number"),
]


@pytest.mark.parametrize("text", BAD_CLIENT_FRAMES)
def test_unusable_client_frame_is_a_remote_error(text: str) -> None:
    """An unusable client frame raises RemoteProtocolError and nothing else."""
    with pytest.raises(RemoteProtocolError):
        decode_client_frame(text)


# ---- secrets never reach an error message ---------------------------------------------------------------

SIGNATURE = "5f3c" * 24  # 96 hex characters, shaped like a real HMAC-SHA384 signature


def _auth_text(**overrides: object) -> str:
    frame: dict[str, object] = {
        "event": "auth",
        "apiKey": "K",
        "authSig": SIGNATURE,
        "authNonce": "1700000000000000",
        "authPayload": "AUTH1700000000000000",
        "filter": ["funding", "notify"],
    }
    frame.update(overrides)
    return json.dumps(frame)


LEAKY_AUTH_FRAMES = [
    pytest.param(_auth_text()[:-1], id="truncated"),
    pytest.param(_auth_text()[:-1] + ",}", id="trailing-comma"),
    pytest.param(_auth_text().replace('"K"', "'K'"), id="single-quotes"),
    pytest.param(_auth_text()[:-1] + ',"x":NaN}', id="nan"),
    pytest.param(_auth_text()[:-1] + ',"x":1e999}', id="float-overflow"),
    pytest.param(_auth_text() + "garbage", id="trailing-garbage"),
    pytest.param(_auth_text(apiKey=None), id="no-key"),
    pytest.param(_auth_text(authNonce=[1]), id="nonce-list"),
    pytest.param(_auth_text(authNonce=None), id="nonce-missing"),
    pytest.param(_auth_text(authPayload=5), id="payload-number"),
    pytest.param(_auth_text(filter="funding"), id="filter-string"),
    pytest.param(_auth_text(filter=["funding", 5]), id="filter-mixed"),
    pytest.param(_auth_text(dms="4"), id="dms-string"),
]


class TestSecretsStayOut:
    @pytest.mark.parametrize("text", LEAKY_AUTH_FRAMES)
    def test_broken_auth_frame_does_not_echo_the_signature(self, text: str) -> None:
        """Neither the message, the repr nor the printed traceback of the error contains the signature."""
        with pytest.raises(RemoteProtocolError) as info:
            decode_client_frame(text)
        printed = "".join(traceback.format_exception(info.value))
        assert SIGNATURE not in str(info.value)
        assert SIGNATURE not in repr(info.value)
        assert SIGNATURE[:16] not in printed

    def test_broken_auth_bytes_do_not_echo_the_signature(self) -> None:
        """Bytes that are not UTF-8 around a signature give an error without it."""
        data = _auth_text().encode()[:-1] + b"\xff}"
        with pytest.raises(RemoteProtocolError) as info:
            decode_client_frame(data)
        assert SIGNATURE[:16] not in "".join(traceback.format_exception(info.value))

    def test_an_excerpt_would_reveal_the_signature(self) -> None:
        """The leak checks can fail: the usual 80-character excerpt of these frames reaches into the signature."""
        assert SIGNATURE[:16] in excerpt(_auth_text())

    def test_auth_request_repr_hides_the_signature(self) -> None:
        """A decoded auth request's repr does not show its signature."""
        event = decode_client_frame(_auth_text())
        assert isinstance(event, AuthRequest)
        assert event.signature == SIGNATURE
        assert SIGNATURE not in repr(event)
