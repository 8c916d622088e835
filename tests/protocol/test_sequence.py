"""Sequence numbers: which frames carry them, the Node client's check (ws2.js _validateMessageSeq), and decoding
that does not notice them."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bfxd.errors import LocalProtocolError
from bfxd.protocol.decode import decode_exchange_frame, load_json
from bfxd.protocol.encode import (
    FLAG_SEQ_ALL,
    account_frame,
    heartbeat_frame,
    notification_frame,
    offer_frame,
    wallet_frame,
    with_sequence,
)
from bfxd.protocol.sequence import (
    NO_NUMBER,
    OK,
    SEQ_ALL,
    SequenceCheck,
    SequenceNumbers,
    SequenceVerdict,
    sequence_numbers,
)
from bfxd.protocol.wallet import Wallet
from conftest import load_frame, load_frame_text

from .expected import USD_ACTIVE

CREDIT = json.dumps(load_frame("fcn.json")[2])  # type: ignore[index]
REQ = '[1,"fon-req",null,null,null,null,"SUCCESS","ok"]'
INFO_N = '[1,"deposit",null,null,null,null,"INFO","funds"]'


def numbers(text: str) -> SequenceNumbers | None:
    return sequence_numbers(json.loads(text))


def test_seq_all_is_65536() -> None:
    """The conf flag for sequence numbers is 65536 (docs; ws2.js FLAGS.SEQ_ALL)."""
    assert SEQ_ALL == FLAG_SEQ_ALL == 65536


@pytest.mark.parametrize(("text", "expected"), [
    ('{"event":"info"}', None),
    ("[]", None),
    ('[0,"fcn",' + CREDIT + ",1042,87]", SequenceNumbers(1042, 87, False, False)),
    ('[0,"hb",1043]', SequenceNumbers(1043, None, False, False)),  # hb: public number last, no auth number
    ('[17,"hb",1044]', SequenceNumbers(1044, None, False, False)),
    ('[17,[[1,2,3]],1045]', SequenceNumbers(1045, None, False, False)),
    ('[0,"n",' + REQ + ",87]", SequenceNumbers(None, 87, True, True)),  # *-req: no public number
    ('[0,"n",' + INFO_N + ",1046,87]", SequenceNumbers(1046, 87, False, True)),
    ('[0,"fcn",' + CREDIT + "]", SequenceNumbers(None, None, False, False)),  # no numbers at all
    ('[0,"hb"]', SequenceNumbers(None, None, False, False)),
    ('[0,"fcn",' + CREDIT + ',"1042",87.5]', SequenceNumbers(None, 87.5, False, False)),
    ('[0,"fcn",' + CREDIT + ",true,false]", SequenceNumbers(None, None, False, False)),
    ("[0]", SequenceNumbers(None, 0, False, False)),  # ws2.js reads msg[-2] as undefined, msg[-1] as 0
    ('[0,"hb",' + "9" * 400 + "]", SequenceNumbers(int("9" * 400), None, False, False)),  # no float overflow
    ('[false,"x",5]', SequenceNumbers(5, None, False, False)),  # false is not channel 0
])
def test_which_frames_carry_which_numbers(text: str, expected: SequenceNumbers | None) -> None:
    """Public number: last element, or second to last on channel-0 non-hb frames, never on *-req answers; auth
    number: last element of channel-0 non-hb frames; anything not a finite number reads as absent."""
    assert numbers(text) == expected


def test_corpus_frames_with_numbers() -> None:
    """The example frames with sequence numbers read as documented."""
    assert sequence_numbers(load_frame("seq-fcn.json")) == SequenceNumbers(1042, 87, False, False)
    assert sequence_numbers(load_frame("seq-n-fon-req.json")) == SequenceNumbers(None, 87, True, True)
    assert sequence_numbers(load_frame("seq-hb.json")) == SequenceNumbers(1043, None, False, False)


# One connection's frames in order, with the verdict each gets (the Node client's rules, step by step).
STEPS: list[tuple[str, SequenceVerdict]] = [
    ('{"event":"auth","status":"OK"}', NO_NUMBER),
    ('[0,"ps",[],100,1]', OK),  # first public number: the start; its auth number is not looked at
    ('[0,"ws",[],101,2]', OK),  # first auth number checked: the start
    ('[0,"fos",[],102,3]', OK),
    ('[0,"hb",103]', OK),
    ('[0,"n",' + REQ + ",3]", OK),  # an input's answer repeats the auth number, has no public one
    ('[0,"n",' + INFO_N + ",104,3]", OK),  # any notification repeats it
    ('[0,"fon",[],105,4]', OK),
    ('[0,"fon",[]]', NO_NUMBER),  # a frame without numbers is accepted and changes nothing
    ('[0,"fou",[],107,5]', SequenceVerdict("gap", "public", 106, 107)),  # one frame lost in between
    ('[0,"fou",[],106,6]', SequenceVerdict("gap", "auth", 5, 6)),  # the auth number did not move on the gap
    # ...but the public one did: ws2.js stores it before it looks at the auth number.
    ('[0,"fou",[],107,4]', SequenceVerdict("gap", "auth", 5, 4)),  # repeated: "expected advancement"
    ('[0,"fou",[],108,5]', OK),
    ('[0,"n",' + REQ + ",6]", SequenceVerdict("gap", "auth", 5, 6)),  # a notification must not advance
    ('[0,"n",' + REQ + ",0]", OK),  # 0: still syncing
    ('[0,"n",' + REQ + "]", NO_NUMBER),
    ('[0,"foc",[],109,0]', OK),
    ('[17,"hb",111]', SequenceVerdict("gap", "public", 110, 111)),
]


def test_check_follows_the_node_client_step_by_step() -> None:
    """Fed in order, every frame gets the verdict ws2.js would give (a gap where it raises an error)."""
    check = SequenceCheck()
    for text, verdict in STEPS:
        assert check.feed(numbers(text)) == verdict, text


def test_notification_before_any_auth_number_is_a_gap() -> None:
    """As in ws2.js (last auth number starts at -1), a notification before any auth number counts as a gap."""
    check = SequenceCheck()
    assert check.feed(numbers('[0,"ps",[],1,1]')) == OK
    assert check.feed(numbers('[0,"n",' + REQ + ",1]")) == SequenceVerdict("gap", "auth", -1, 1)


def test_an_exchange_without_numbers_never_gaps() -> None:
    """Frames without numbers, any number of them, all pass unchecked."""
    check = SequenceCheck()
    for name in ("fos-snapshot.json", "fon.json", "hb.json", "n-foc-req-error.json", "wu-calc-answer.json"):
        for _ in range(3):
            assert check.feed(sequence_numbers(load_frame(name))) == NO_NUMBER
    assert check.feed(None) == NO_NUMBER
    assert (check.last_public, check.last_auth) == (None, None)


def test_verdict_descriptions() -> None:
    """describe() gives one log line; is_gap tells gaps apart."""
    gap = SequenceVerdict("gap", "auth", 5, 7)
    assert gap.is_gap and gap.describe() == "auth sequence: expected 5, got 7"
    assert not OK.is_gap and OK.describe() == "ok" and NO_NUMBER.describe() == "no-number"


NUMBERED_FRAMES: list[tuple[str, Any]] = [
    (with_sequence(offer_frame("fon", USD_ACTIVE), 5, 6), decode_exchange_frame(offer_frame("fon", USD_ACTIVE))),
    (with_sequence(heartbeat_frame(), 7), decode_exchange_frame(heartbeat_frame())),
    (with_sequence(heartbeat_frame(17), 8), decode_exchange_frame(heartbeat_frame(17))),
    (with_sequence(account_frame("fos", []), 1, 2), decode_exchange_frame(account_frame("fos", []))),
    (with_sequence(wallet_frame(Wallet("funding", "USD", 1)), 9, 10),
     decode_exchange_frame(wallet_frame(Wallet("funding", "USD", 1)))),
    (with_sequence(notification_frame(mts=1, type="fon-req", status="SUCCESS", text="t",
                                      notify_info=USD_ACTIVE.to_wire()), 6),
     decode_exchange_frame(notification_frame(mts=1, type="fon-req", status="SUCCESS", text="t",
                                              notify_info=USD_ACTIVE.to_wire()))),
]


@pytest.mark.parametrize(("text", "expected"), NUMBERED_FRAMES)
def test_numbers_do_not_change_decoding(text: str, expected: object) -> None:
    """A frame with sequence numbers appended decodes to the same event as without them."""
    assert decode_exchange_frame(text) == expected
    assert sequence_numbers(load_json(text)) is not None


def test_corpus_frame_with_numbers_decodes_like_without() -> None:
    """seq-n-fon-req.json decodes as n-fon-req-success.json does."""
    assert decode_exchange_frame(load_frame_text("seq-n-fon-req.json")) == decode_exchange_frame(
        load_frame_text("n-fon-req-success.json"))


def test_with_sequence_refuses_events() -> None:
    """Numbers go on array frames only; an event is our bug."""
    with pytest.raises(LocalProtocolError):
        with_sequence('{"event":"pong"}', 1)
    assert with_sequence('[0,"hb"]', 3) == '[0,"hb",3]'
