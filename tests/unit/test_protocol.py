"""Protocol v1: round trips of every frame and every validation error code."""

from __future__ import annotations

import json

import pytest

from tuitalk import protocol as p
from tuitalk.errors import LocalProtocolError, RemoteProtocolError

CLIENT_FRAMES: list[p.ClientFrame] = [
    p.Hello(),
    p.Hello(token="abc.def", name="Ünïcode näme", rooms={"lobby": p.Cursor("e1", 5)}),
    p.Join(room="lobby"),
    p.Join(room="r-2_x", since=p.Cursor("ep0ch", 0)),
    p.Leave(room="lobby"),
    p.Say(room="lobby", id="abcdefgh", text="hello \x1b[2J world"),
    p.Say(room="lobby", id="ABC_def-123", text="waves", kind="me"),
    p.Nick(name="alice"),
    p.HistoryRequest(room="lobby"),
    p.HistoryRequest(room="lobby", before=100, limit=500),
    p.Ping(),
]

MSG = p.Msg(room="lobby", epoch="e1", seq=3, id="abcdefgh", user="u1", name="alice",
            kind="text", text="hi ✓", ts=1_700_000_000_000)

SERVER_FRAMES: list[p.ServerFrame] = [
    p.Welcome(token="t.s", user="u1", name="alice", backend="backend-1"),
    p.Joined(room="lobby", epoch="e1", head=7, members=(p.Member("u1", "alice"),), resumed=True,
             top=9),
    p.Left(room="lobby"),
    p.Ack(id="abcdefgh", room="lobby", epoch="e1", seq=3, replicas=1),
    MSG,
    p.History(room="lobby", messages=(MSG,), more=True),
    p.Pong(),
    p.ErrorFrame(code="bad_room", detail="nope", ref="x"),
    p.Reset(room="lobby", reason="epoch"),
]


@pytest.mark.parametrize("frame", CLIENT_FRAMES, ids=lambda f: type(f).__name__)
def test_client_round_trip(frame: p.ClientFrame) -> None:
    wire = p.encode(frame)
    assert p.decode_client(wire) == frame
    assert json.loads(wire)["t"] == frame.T


@pytest.mark.parametrize("frame", SERVER_FRAMES, ids=lambda f: type(f).__name__)
def test_server_round_trip(frame: p.ServerFrame) -> None:
    assert p.decode_server(p.encode(frame)) == frame


def test_encoding_is_compact_and_keeps_unicode() -> None:
    wire = p.encode(p.Say(room="lobby", id="abcdefgh", text="héllo"))
    assert " " not in wire.replace("héllo", "")
    assert "héllo" in wire


def code_of(data: str | bytes) -> str:
    with pytest.raises(RemoteProtocolError) as info:
        p.decode_client(data)
    return info.value.code


@pytest.mark.parametrize(
    ("data", "code"),
    [
        ("{not json", p.ErrorCode.BAD_JSON),
        ("[1,2]", p.ErrorCode.BAD_JSON),
        ('"str"', p.ErrorCode.BAD_JSON),
        ("{}", p.ErrorCode.BAD_FRAME),
        ('{"t": 5}', p.ErrorCode.BAD_FRAME),
        ('{"t": "explode"}', p.ErrorCode.UNKNOWN_TYPE),
        ('{"t": "welcome", "token": "x"}', p.ErrorCode.UNKNOWN_TYPE),  # wrong direction
        (b'{"t": "ping"}', p.ErrorCode.BINARY_FRAME),
        ('{"t":"ping","pad":"' + "x" * p.MAX_FRAME_BYTES + '"}', p.ErrorCode.TOO_LARGE),
        ('{"t": "hello", "v": 2}', p.ErrorCode.BAD_VERSION),
        ('{"t": "hello"}', p.ErrorCode.BAD_FRAME),
        ('{"t": "hello", "v": true}', p.ErrorCode.BAD_FRAME),
        ('{"t": "hello", "v": 1, "rooms": []}', p.ErrorCode.BAD_FRAME),
        ('{"t": "hello", "v": 1, "rooms": {"Bad Room": {"epoch": "e", "seq": 1}}}',
         p.ErrorCode.BAD_ROOM),
        ('{"t": "hello", "v": 1, "rooms": {"ok": {"epoch": "e", "seq": -1}}}',
         p.ErrorCode.BAD_CURSOR),
        ('{"t": "hello", "v": 1, "rooms": {"ok": {"epoch": "e e", "seq": 1}}}',
         p.ErrorCode.BAD_CURSOR),
        ('{"t": "hello", "v": 1, "rooms": {"ok": 5}}', p.ErrorCode.BAD_CURSOR),
        ('{"t": "hello", "v": 1, "token": ""}', p.ErrorCode.BAD_FRAME),
        ('{"t": "hello", "v": 1, "name": "a\\u202eb"}', p.ErrorCode.BAD_NAME),
        ('{"t": "join"}', p.ErrorCode.BAD_ROOM),
        ('{"t": "join", "room": "UPPER"}', p.ErrorCode.BAD_ROOM),
        ('{"t": "join", "room": "-lead"}', p.ErrorCode.BAD_ROOM),
        ('{"t": "join", "room": "' + "a" * 33 + '"}', p.ErrorCode.BAD_ROOM),
        ('{"t": "join", "room": "ok", "since": "x"}', p.ErrorCode.BAD_CURSOR),
        ('{"t": "leave", "room": 7}', p.ErrorCode.BAD_ROOM),
        ('{"t": "say", "room": "ok", "id": "short", "text": "x"}', p.ErrorCode.BAD_ID),
        ('{"t": "say", "room": "ok", "id": "abcdefgh!", "text": "x"}', p.ErrorCode.BAD_ID),
        ('{"t": "say", "room": "ok", "id": "abcdefgh", "text": ""}', p.ErrorCode.BAD_TEXT),
        ('{"t": "say", "room": "ok", "id": "abcdefgh", "text": "   "}', p.ErrorCode.BAD_TEXT),
        ('{"t": "say", "room": "ok", "id": "abcdefgh", "text": 5}', p.ErrorCode.BAD_TEXT),
        ('{"t": "say", "room": "ok", "id": "abcdefgh", "text": "' + "x" * 4001 + '"}',
         p.ErrorCode.BAD_TEXT),
        ('{"t": "say", "room": "ok", "id": "abcdefgh", "text": "x", "kind": "join"}',
         p.ErrorCode.BAD_FRAME),
        ('{"t": "nick", "name": ""}', p.ErrorCode.BAD_NAME),
        ('{"t": "nick", "name": "' + "n" * 33 + '"}', p.ErrorCode.BAD_NAME),
        ('{"t": "nick", "name": "zero\\u200bwidth"}', p.ErrorCode.BAD_NAME),
        ('{"t": "nick", "name": "ctl\\u0007"}', p.ErrorCode.BAD_NAME),
        ('{"t": "nick", "name": "c1\\u009b"}', p.ErrorCode.BAD_NAME),
        ('{"t": "nick", "name": "tab\\tname"}', p.ErrorCode.BAD_NAME),
        ('{"t": "nick", "name": "two  spaces"}', p.ErrorCode.BAD_NAME),
        ('{"t": "nick", "name": ["list"]}', p.ErrorCode.BAD_NAME),
        ('{"t": "history", "room": "ok", "limit": 0}', p.ErrorCode.BAD_FRAME),
        ('{"t": "history", "room": "ok", "limit": 501}', p.ErrorCode.BAD_FRAME),
        ('{"t": "history", "room": "ok", "before": "x"}', p.ErrorCode.BAD_FRAME),
    ],
)
def test_validation_errors(data: str | bytes, code: str) -> None:
    assert code_of(data) == code


def test_deep_nesting_is_bad_json_not_a_crash() -> None:
    assert code_of("[" * 100_000 + "]" * 100_000) in {p.ErrorCode.BAD_JSON, p.ErrorCode.TOO_LARGE}
    assert code_of('{"t":"ping","x":' + "[" * 10_000 + "]" * 10_000 + "}") == p.ErrorCode.BAD_JSON


def test_text_limit_counts_characters_not_bytes() -> None:
    frame = p.decode_client(json.dumps({"t": "say", "room": "r", "id": "abcdefgh",
                                        "text": "😀" * 4000}))
    assert isinstance(frame, p.Say)
    assert len(frame.text) == 4000


def test_names_are_nfc_normalised_and_trimmed() -> None:
    decomposed = "Zoe\u0301"  # e + combining acute
    assert p.normalize_name("  " + decomposed + " ") == "Zoé"
    assert len(p.normalize_name("x" * 32)) == 32


def test_encode_refuses_invalid_frames() -> None:
    with pytest.raises(LocalProtocolError):
        p.encode(p.Say(room="Bad", id="abcdefgh", text="x"))
    with pytest.raises(LocalProtocolError):
        p.encode(p.Say(room="ok", id="abc", text="x"))
    with pytest.raises(LocalProtocolError):
        p.encode(p.Nick(name=""))
    with pytest.raises(LocalProtocolError):
        p.encode(p.Join(room=""))


@pytest.mark.parametrize(
    "data",
    [
        '{"t": "msg", "room": "r", "epoch": "e", "seq": 0, "id": "x", "user": "u", "name": "n",'
        ' "kind": "text", "text": "x", "ts": 1}',
        '{"t": "msg", "room": "r", "epoch": "e", "seq": 1, "id": "x", "user": "u", "name": "n",'
        ' "kind": "evil", "text": "x", "ts": 1}',
        '{"t": "history", "room": "r", "messages": [1], "more": false}',
        '{"t": "history", "room": "r", "messages": [], "more": "yes"}',
        '{"t": "joined", "room": "r", "epoch": "e", "head": 1, "members": [5]}',
        '{"t": "joined", "room": "r", "epoch": "e", "head": 1, "members": {}}',
    ],
)
def test_server_frame_validation(data: str) -> None:
    with pytest.raises(RemoteProtocolError):
        p.decode_server(data)


def test_too_deep_counts_real_nesting_only() -> None:
    assert p.too_deep("[" * 33 + "]" * 33)
    assert not p.too_deep("[" * 32 + "]" * 32)
    assert not p.too_deep('{"t":"msg","text":"' + "[{" * 1000 + '"}')
    assert not p.too_deep('{"text":"\\"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[["}')
    assert p.too_deep('{"a":"x",' + '"b":[' * 40 + "]" * 40 + "}")


def test_lone_surrogates_are_refused_in_text_and_names() -> None:
    assert code_of('{"t": "say", "room": "r", "id": "abcdefgh", "text": "a\\ud800b"}') == \
        p.ErrorCode.BAD_TEXT
    assert code_of('{"t": "nick", "name": "a\\udfffb"}') == p.ErrorCode.BAD_NAME
    with pytest.raises(LocalProtocolError):
        p.encode(p.Say(room="r", id="abcdefgh", text="x\ud800"))
