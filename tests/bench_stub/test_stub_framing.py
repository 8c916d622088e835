"""The benchmark stub's prepared answers (bench/_stub.py): hand-built frames a WebSocket client reads as sent,
and answers bfxd's decoder accepts for the right offer."""

from __future__ import annotations

import json

import pytest
from bench._stub import Book, offer_id_of_cancel, ws_frame
from wsproto import ConnectionType, WSConnection
from wsproto.events import AcceptConnection, Request, TextMessage

from bfxd.protocol import cancel_offer_frame, decode_exchange_frame, new_offer_frame


def _open_client() -> WSConnection:
    client, server = WSConnection(ConnectionType.CLIENT), WSConnection(ConnectionType.SERVER)
    server.receive_data(client.send(Request(host="127.0.0.1", target="/ws/2")))
    assert isinstance(next(server.events()), Request)
    client.receive_data(server.send(AcceptConnection()))
    assert isinstance(next(client.events()), AcceptConnection)
    return client


def _texts(client: WSConnection, data: bytes) -> list[str]:
    client.receive_data(data)
    return [e.data for e in client.events() if isinstance(e, TextMessage) and e.message_finished]


@pytest.mark.parametrize("size", [0, 1, 125, 126, 127, 65535, 65536, 70000])
def test_frames_of_every_length_class_read_back_as_sent(size: int) -> None:
    text = "é" * (size // 2) + "x" * (size % 2)  # multi-byte: the length is counted in bytes
    assert _texts(_open_client(), ws_frame(text)) == [text]


def test_two_frames_in_one_write_read_back_in_order() -> None:
    assert _texts(_open_client(), ws_frame("[0,\"hb\"]") + ws_frame("a" * 200)) == ["[0,\"hb\"]", "a" * 200]


@pytest.mark.parametrize("text, expected", [
    (cancel_offer_frame(41474387), 41474387),
    ('[0, "foc", null, {"id": 123}]', 123),  # bitfinex-api-py's spacing
    ('[0,"foc",null,{}]', None),
    ('[0,"foc",null,{"id":"x"}]', None),
])
def test_the_cancelled_id_is_read_without_json(text: str, expected: int | None) -> None:
    assert offer_id_of_cancel(text) == expected


def _decoded(data: bytes) -> list:
    return [decode_exchange_frame(t) for t in _texts(_open_client(), data)]


def test_a_cancel_is_answered_once_from_its_prepared_frames() -> None:
    book = Book()
    offer = book.add()
    note, update = book.cancel(offer.id)
    assert update is not None
    (answer,) = _decoded(note)
    assert (answer.type, answer.status, answer.offer_id) == ("foc-req", "SUCCESS", offer.id)
    (gone,) = _decoded(update)
    assert (gone.offer.id, gone.offer.status) == (offer.id, "CANCELED")
    again, nothing = book.cancel(offer.id)
    assert nothing is None and _decoded(again)[0].status == "ERROR"


def test_a_submit_gets_its_own_fields_and_a_new_id_each_time() -> None:
    book = Book()
    frame = new_offer_frame(type="LIMIT", symbol="fUSD", amount="200.50", rate="0.0005", period=2)
    ids = []
    for _ in range(2):
        note, update = book.submit(frame)
        (answer,) = _decoded(note)
        assert (answer.type, answer.status) == ("fon-req", "SUCCESS")
        offer = answer.offer
        assert (offer.symbol, offer.period, offer.type) == ("fUSD", 2, "LIMIT")
        assert json.loads(note[4:].decode())[2][4][4] == 200.50  # amount echoed as the request wrote it
        ids.append(offer.id)
    assert ids[0] != ids[1] and all(i in book.active for i in ids)
    note, update = book.cancel(ids[0])  # a submitted offer can be cancelled like a booked one
    assert update is not None and _decoded(note)[0].offer_id == ids[0]
