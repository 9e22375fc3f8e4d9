"""Wire protocol v1: the one schema shared by the server, both clients and the test users.

Frames are JSON text frames, one object per frame, tagged by ``"t"``. Every frame type is a
frozen dataclass here; :func:`decode_client` and :func:`decode_server` are the only places
that turn wire text into frames, and :func:`encode` the only place that goes the other way.

Rules of this module:

1. Stdlib only. It runs unchanged in Pyodide (CPython 3.14 there, 3.11 here).
2. Decoding never lets anything but :class:`~tuitalk.errors.RemoteProtocolError` out, and the
   error carries a stable :class:`ErrorCode` that goes on the wire as is.
3. Encoding validates too, and raises :class:`~tuitalk.errors.LocalProtocolError`: an invalid
   frame built by our own code is a bug, not something to send.
4. Validation of user-visible strings (room names, display names, message text) lives here,
   so every component accepts exactly the same set.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any, ClassVar, Final, Literal, TypeAlias

from tuitalk.errors import LocalProtocolError, ProtocolError, RemoteProtocolError

__all__ = [
    "MAX_FRAME_BYTES",
    "MAX_HISTORY_LIMIT",
    "MAX_NAME_CHARS",
    "MAX_TEXT_CHARS",
    "PROTOCOL_VERSION",
    "Ack",
    "ClientFrame",
    "CloseCode",
    "Cursor",
    "ErrorCode",
    "ErrorFrame",
    "Hello",
    "History",
    "HistoryRequest",
    "Join",
    "Joined",
    "Leave",
    "Left",
    "Member",
    "Msg",
    "Nick",
    "Ping",
    "Pong",
    "Reset",
    "Say",
    "ServerFrame",
    "Welcome",
    "decode_client",
    "decode_server",
    "encode",
    "normalize_name",
    "too_deep",
    "validate_room",
    "validate_text",
]

PROTOCOL_VERSION: Final = 1

#: Largest text frame we parse. A 4,000-character message is at most 16,000 bytes of UTF-8,
#: but an ASCII-only JSON encoder writes a non-BMP character as a surrogate pair escape
#: (``\ud83d\ude00``, 12 bytes), so a valid message can reach 48,000 bytes; 64 KiB leaves
#: room for the envelope.
MAX_FRAME_BYTES: Final = 64 * 1024
#: Largest server frame a client parses (history pages are the big ones; the server keeps
#: each page under :data:`MAX_HISTORY_FRAME_BYTES`).
MAX_SERVER_FRAME_BYTES: Final = 1024 * 1024
MAX_HISTORY_FRAME_BYTES: Final = 512 * 1024
MAX_TEXT_CHARS: Final = 4000
MAX_NAME_CHARS: Final = 32
#: Largest page of history one request may ask for; bigger pages are refused, not truncated,
#: so a client never mistakes a short page for the end of history.
MAX_HISTORY_LIMIT: Final = 500
#: Most rooms a single hello may resume; also the per-user membership cap.
MAX_ROOMS: Final = 64

#: No valid frame nests deeper than 4 levels. Deeper JSON is refused before json.loads:
#: its C parser recurses once per level, and in Pyodide the browser's native stack
#: overflows before Python's recursion check, which kills the whole runtime.
MAX_JSON_DEPTH: Final = 32
ROOM_RE: Final = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
MSG_ID_RE: Final = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
EPOCH_RE: Final = re.compile(r"^[A-Za-z0-9_-]{1,40}$")
TOKEN_MAX_CHARS: Final = 200

Kind: TypeAlias = Literal["text", "me", "join", "leave", "nick"]
KINDS: Final[frozenset[str]] = frozenset({"text", "me", "join", "leave", "nick"})
SAY_KINDS: Final[frozenset[str]] = frozenset({"text", "me"})


class ErrorCode:
    """Stable error codes of ``error`` frames. Clients may switch on them; never rename one."""

    BAD_JSON: Final = "bad_json"  # not JSON, or not a JSON object
    BAD_FRAME: Final = "bad_frame"  # a field is missing or has the wrong type
    UNKNOWN_TYPE: Final = "unknown_type"  # "t" names no frame type of this direction
    TOO_LARGE: Final = "too_large"  # frame bigger than MAX_FRAME_BYTES
    BINARY_FRAME: Final = "binary_frame"  # protocol v1 is text frames only
    BAD_VERSION: Final = "bad_version"  # hello.v is not a version we speak
    BAD_ROOM: Final = "bad_room"  # room name does not match ROOM_RE
    BAD_NAME: Final = "bad_name"  # display name fails normalize_name
    BAD_TEXT: Final = "bad_text"  # message text empty or longer than MAX_TEXT_CHARS
    BAD_ID: Final = "bad_id"  # client message id does not match MSG_ID_RE
    BAD_CURSOR: Final = "bad_cursor"  # epoch/seq of a cursor malformed
    TOO_MANY_ROOMS: Final = "too_many_rooms"  # membership cap reached
    NO_HELLO: Final = "no_hello"  # any frame but hello before the welcome
    DUP_HELLO: Final = "dup_hello"  # a second hello on one connection
    NOT_MEMBER: Final = "not_member"  # say/history/leave in a room the user is not in
    RATE_LIMITED: Final = "rate_limited"  # token bucket empty; the frame was not processed
    UNAVAILABLE: Final = "unavailable"  # Redis cannot take the write now; resend later
    INTERNAL: Final = "internal"  # our bug; logged with the ref


class CloseCode:
    """WebSocket close codes the server uses, and what the client should do."""

    NORMAL: Final = 1000
    GOING_AWAY: Final = 1001
    POLICY_VIOLATION: Final = 1008  # persistent abuse (garbage floods); reconnect with backoff
    MESSAGE_TOO_BIG: Final = 1009  # frame past the transport cap (1 MiB), beyond MAX_FRAME_BYTES
    INTERNAL_ERROR: Final = 1011
    #: Graceful shutdown: reconnect at once, another backend takes over.
    SERVICE_RESTART: Final = 1012
    #: The backend could not serve the hello (Redis unavailable): reconnect with backoff.
    TRY_AGAIN_LATER: Final = 1013
    #: The per-connection ring buffer overflowed: the server never drops silently, it closes
    #: instead; the client reconnects at once and recovers by sequence number.
    SLOW_CONSUMER: Final = 4008
    #: Too many connections from one address (the cap is per X-Real-IP behind nginx).
    TOO_MANY_CONNECTIONS: Final = 4029
    #: Browser Origin not in the allowlist.
    ORIGIN_DENIED: Final = 4003


# ---------------------------------------------------------------------------------------------
# Value objects


@dataclass(frozen=True, slots=True)
class Cursor:
    """Position in a room: the last ``(epoch, seq)`` a client has shown."""

    epoch: str
    seq: int

    def to_wire(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seq": self.seq}


@dataclass(frozen=True, slots=True)
class Member:
    """A member of a room as the room list shows it."""

    user: str
    name: str

    def to_wire(self) -> dict[str, Any]:
        return {"user": self.user, "name": self.name}


# ---------------------------------------------------------------------------------------------
# Client -> server frames


@dataclass(frozen=True, slots=True)
class Hello:
    """First frame of every connection. ``rooms`` maps each room to the client's cursor."""

    T: ClassVar[str] = "hello"
    v: int = PROTOCOL_VERSION
    token: str | None = None
    name: str | None = None
    rooms: dict[str, Cursor] = field(default_factory=dict)

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.T, "v": self.v}
        if self.token is not None:
            out["token"] = self.token
        if self.name is not None:
            out["name"] = self.name
        out["rooms"] = {room: c.to_wire() for room, c in self.rooms.items()}
        return out


@dataclass(frozen=True, slots=True)
class Join:
    """Join a room. With ``since``, also (re)start delivery from that cursor."""

    T: ClassVar[str] = "join"
    room: str
    since: Cursor | None = None

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.T, "room": self.room}
        if self.since is not None:
            out["since"] = self.since.to_wire()
        return out


@dataclass(frozen=True, slots=True)
class Leave:
    T: ClassVar[str] = "leave"
    room: str

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "room": self.room}


@dataclass(frozen=True, slots=True)
class Say:
    """Send a message. ``id`` is the client's idempotency key: a resend reuses it."""

    T: ClassVar[str] = "say"
    room: str
    id: str
    text: str
    kind: Literal["text", "me"] = "text"

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.T, "room": self.room, "id": self.id, "text": self.text}
        if self.kind != "text":
            out["kind"] = self.kind
        return out


@dataclass(frozen=True, slots=True)
class Nick:
    T: ClassVar[str] = "nick"
    name: str

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "name": self.name}


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """Ask for up to ``limit`` messages with ``seq < before`` (newest page when None)."""

    T: ClassVar[str] = "history"
    room: str
    before: int | None = None
    limit: int = 100

    def to_wire(self) -> dict[str, Any]:
        out: dict[str, Any] = {"t": self.T, "room": self.room, "limit": self.limit}
        if self.before is not None:
            out["before"] = self.before
        return out


@dataclass(frozen=True, slots=True)
class Ping:
    T: ClassVar[str] = "ping"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T}


ClientFrame: TypeAlias = Hello | Join | Leave | Say | Nick | HistoryRequest | Ping


# ---------------------------------------------------------------------------------------------
# Server -> client frames


@dataclass(frozen=True, slots=True)
class Welcome:
    T: ClassVar[str] = "welcome"
    token: str
    user: str
    name: str
    backend: str

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "token": self.token,
            "user": self.user,
            "name": self.name,
            "backend": self.backend,
        }


@dataclass(frozen=True, slots=True)
class Joined:
    """The user is a member of ``room``; ``head`` is the newest seq at the time.

    ``resumed`` says the server will now replay everything after the client's cursor before
    live messages; when False the client starts at ``head`` and loads history on demand.
    ``top`` is the newest committed seq when the server attached the client: messages up to
    it are a replay (recovery), later ones are live.
    """

    T: ClassVar[str] = "joined"
    room: str
    epoch: str
    head: int
    members: tuple[Member, ...] = ()
    resumed: bool = False
    top: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "room": self.room,
            "epoch": self.epoch,
            "head": self.head,
            "members": [m.to_wire() for m in self.members],
            "resumed": self.resumed,
            "top": max(self.top, self.head),
        }


@dataclass(frozen=True, slots=True)
class Left:
    T: ClassVar[str] = "left"
    room: str

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "room": self.room}


@dataclass(frozen=True, slots=True)
class Ack:
    """The message with client id ``id`` is sequenced at ``(epoch, seq)``.

    ``replicas`` is how many Redis replicas confirmed the write before the ack (``WAIT``);
    0 means the shard had no replica to confirm it.
    """

    T: ClassVar[str] = "ack"
    id: str
    room: str
    epoch: str
    seq: int
    replicas: int = 0

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "id": self.id,
            "room": self.room,
            "epoch": self.epoch,
            "seq": self.seq,
            "replicas": self.replicas,
        }


@dataclass(frozen=True, slots=True)
class Msg:
    """A sequenced room message. Membership and name changes are messages too (``kind``)."""

    T: ClassVar[str] = "msg"
    room: str
    epoch: str
    seq: int
    id: str
    user: str
    name: str
    kind: Kind
    text: str
    ts: int  # milliseconds since the Unix epoch, from the sequencing Redis node's clock

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "room": self.room,
            "epoch": self.epoch,
            "seq": self.seq,
            "id": self.id,
            "user": self.user,
            "name": self.name,
            "kind": self.kind,
            "text": self.text,
            "ts": self.ts,
        }


@dataclass(frozen=True, slots=True)
class History:
    """A page of history, oldest first. ``more`` is True when older messages exist."""

    T: ClassVar[str] = "history"
    room: str
    messages: tuple[Msg, ...]
    more: bool

    def to_wire(self) -> dict[str, Any]:
        return {
            "t": self.T,
            "room": self.room,
            "messages": [m.to_wire() for m in self.messages],
            "more": self.more,
        }


@dataclass(frozen=True, slots=True)
class Pong:
    T: ClassVar[str] = "pong"

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T}


@dataclass(frozen=True, slots=True)
class ErrorFrame:
    """``ref`` names what the error is about: the client message id, the room, or ``""``."""

    T: ClassVar[str] = "error"
    code: str
    detail: str
    ref: str = ""

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "code": self.code, "detail": self.detail, "ref": self.ref}


@dataclass(frozen=True, slots=True)
class Reset:
    """The client's cursor for ``room`` cannot be continued: reload the room from ``joined``."""

    T: ClassVar[str] = "reset"
    room: str
    reason: str

    def to_wire(self) -> dict[str, Any]:
        return {"t": self.T, "room": self.room, "reason": self.reason}


ServerFrame: TypeAlias = (
    Welcome | Joined | Left | Ack | Msg | History | Pong | ErrorFrame | Reset
)
Frame: TypeAlias = ClientFrame | ServerFrame


# ---------------------------------------------------------------------------------------------
# Field validation (shared by decoding, encoding and the server)


# Characters a display name may never contain. Unicode category Cf ("format") covers the
# bidi embeddings/overrides/isolates (U+202A..U+202E, U+2066..U+2069), LRM/RLM, zero-width
# space/joiners (U+200B..U+200D), the BOM (U+FEFF) and soft hyphen; Cc covers C0/C1
# controls; Zl/Zp are line/paragraph separators; Co/Cs/Cn are private use, surrogates and
# unassigned code points, which render unpredictably.
_FORBIDDEN_NAME_CATEGORIES: Final = frozenset({"Cc", "Cf", "Zl", "Zp", "Co", "Cs", "Cn"})
_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def validate_room(room: object, *, remote: bool = True) -> str:
    """Return ``room`` if it is a valid room name, else raise with code ``bad_room``."""
    if not isinstance(room, str) or not ROOM_RE.match(room):
        raise _err(remote, ErrorCode.BAD_ROOM, "room must match ^[a-z0-9][a-z0-9_-]{0,31}$")
    return room


def normalize_name(name: object, *, remote: bool = True) -> str:
    """Return the NFC form of a display name, trimmed, or raise with code ``bad_name``.

    A valid name is 1-32 characters after NFC and trimming, with no control, format
    (bidi override, zero-width), separator, private-use or unassigned character, and no
    whitespace other than single spaces.
    """
    if not isinstance(name, str):
        raise _err(remote, ErrorCode.BAD_NAME, "name must be a string")
    norm = unicodedata.normalize("NFC", name).strip()
    if not 1 <= len(norm) <= MAX_NAME_CHARS:
        raise _err(remote, ErrorCode.BAD_NAME, f"name must be 1-{MAX_NAME_CHARS} characters")
    for ch in norm:
        if unicodedata.category(ch) in _FORBIDDEN_NAME_CATEGORIES:
            raise _err(remote, ErrorCode.BAD_NAME, f"name contains U+{ord(ch):04X}")
        if ch.isspace() and ch != " ":
            raise _err(remote, ErrorCode.BAD_NAME, f"name contains whitespace U+{ord(ch):04X}")
    if "  " in norm:
        raise _err(remote, ErrorCode.BAD_NAME, "name contains repeated spaces")
    return norm


def validate_text(text: object, *, remote: bool = True) -> str:
    """Return message text if it has 1..MAX_TEXT_CHARS characters, else raise ``bad_text``.

    Text is not rewritten on the wire: every client renders it through
    :mod:`tuitalk.sanitize`, which neutralises control and escape sequences.
    """
    if not isinstance(text, str) or not 1 <= len(text) <= MAX_TEXT_CHARS:
        raise _err(remote, ErrorCode.BAD_TEXT, f"text must be 1-{MAX_TEXT_CHARS} characters")
    if not text.strip():
        raise _err(remote, ErrorCode.BAD_TEXT, "text must not be blank")
    if _SURROGATE.search(text):
        # Lone surrogates cannot be encoded as UTF-8: refuse them here, not at send time.
        raise _err(remote, ErrorCode.BAD_TEXT, "text contains a lone surrogate")
    return text


def _err(remote: bool, code: str, detail: str) -> ProtocolError:
    return RemoteProtocolError(code, detail) if remote else LocalProtocolError(code, detail)


# ---------------------------------------------------------------------------------------------
# Decoding helpers: every one raises RemoteProtocolError with a stable code.


def _str(obj: dict[str, Any], key: str, *, optional: bool = False) -> Any:
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, f"missing field {key!r}")
    value = obj[key]
    if not isinstance(value, str):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, f"field {key!r} must be a string")
    return value


def _int(obj: dict[str, Any], key: str, *, optional: bool = False, lo: int = 0) -> Any:
    if key not in obj or obj[key] is None:
        if optional:
            return None
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, f"missing field {key!r}")
    value = obj[key]
    # bool is an int subclass in Python; JSON true must not pass as 1.
    if not isinstance(value, int) or isinstance(value, bool) or value < lo or value >= 2**53:
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, f"field {key!r} must be an integer")
    return value


def _cursor(value: Any) -> Cursor:
    if not isinstance(value, dict):
        raise RemoteProtocolError(ErrorCode.BAD_CURSOR, "cursor must be an object")
    epoch = value.get("epoch")
    seq = value.get("seq")
    if not isinstance(epoch, str) or not EPOCH_RE.match(epoch):
        raise RemoteProtocolError(ErrorCode.BAD_CURSOR, "cursor epoch malformed")
    if not isinstance(seq, int) or isinstance(seq, bool) or not 0 <= seq < 2**53:
        raise RemoteProtocolError(ErrorCode.BAD_CURSOR, "cursor seq malformed")
    return Cursor(epoch, seq)


def _msg_id(value: Any) -> str:
    if not isinstance(value, str) or not MSG_ID_RE.match(value):
        raise RemoteProtocolError(ErrorCode.BAD_ID, "id must match ^[A-Za-z0-9_-]{8,64}$")
    return value


def _parse_hello(o: dict[str, Any]) -> Hello:
    v = _int(o, "v")
    if v != PROTOCOL_VERSION:
        raise RemoteProtocolError(ErrorCode.BAD_VERSION, f"protocol version {v} unsupported")
    token = _str(o, "token", optional=True)
    if token is not None and not 1 <= len(token) <= TOKEN_MAX_CHARS:
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "token malformed")
    name = o.get("name")
    name = None if name is None else normalize_name(name)
    rooms_raw = o.get("rooms", {})
    if rooms_raw is None:
        rooms_raw = {}
    if not isinstance(rooms_raw, dict):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "rooms must be an object")
    if len(rooms_raw) > MAX_ROOMS:
        raise RemoteProtocolError(ErrorCode.TOO_MANY_ROOMS, f"at most {MAX_ROOMS} rooms")
    rooms = {validate_room(r): _cursor(c) for r, c in rooms_raw.items()}
    return Hello(v=v, token=token, name=name, rooms=rooms)


def _parse_join(o: dict[str, Any]) -> Join:
    since = o.get("since")
    return Join(
        room=validate_room(o.get("room")), since=None if since is None else _cursor(since)
    )


def _parse_say(o: dict[str, Any]) -> Say:
    kind = o.get("kind", "text")
    if kind not in SAY_KINDS:
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "kind must be 'text' or 'me'")
    return Say(
        room=validate_room(o.get("room")),
        id=_msg_id(o.get("id")),
        text=validate_text(o.get("text")),
        kind=kind,
    )


def _parse_history_request(o: dict[str, Any]) -> HistoryRequest:
    limit = _int(o, "limit", optional=True, lo=1)
    if limit is None:
        limit = 100
    if limit > MAX_HISTORY_LIMIT:
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, f"limit must be <= {MAX_HISTORY_LIMIT}")
    return HistoryRequest(
        room=validate_room(o.get("room")), before=_int(o, "before", optional=True), limit=limit
    )


_CLIENT_PARSERS: Final[dict[str, Any]] = {
    "hello": _parse_hello,
    "join": _parse_join,
    "leave": lambda o: Leave(room=validate_room(o.get("room"))),
    "say": _parse_say,
    "nick": lambda o: Nick(name=normalize_name(o.get("name"))),
    "history": _parse_history_request,
    "ping": lambda o: Ping(),
}


def _members(value: Any) -> tuple[Member, ...]:
    if not isinstance(value, list):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "members must be a list")
    out = []
    for m in value:
        if not isinstance(m, dict):
            raise RemoteProtocolError(ErrorCode.BAD_FRAME, "member must be an object")
        out.append(Member(user=_str(m, "user"), name=_str(m, "name")))
    return tuple(out)


def _parse_msg(o: dict[str, Any]) -> Msg:
    kind = o.get("kind")
    if kind not in KINDS:
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "unknown message kind")
    return Msg(
        room=validate_room(o.get("room")),
        epoch=_str(o, "epoch"),
        seq=_int(o, "seq", lo=1),
        id=_str(o, "id"),
        user=_str(o, "user"),
        name=_str(o, "name"),
        kind=kind,
        text=_str(o, "text"),
        ts=_int(o, "ts"),
    )


def _parse_history(o: dict[str, Any]) -> History:
    raw = o.get("messages")
    if not isinstance(raw, list):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "messages must be a list")
    msgs = []
    for m in raw:
        if not isinstance(m, dict):
            raise RemoteProtocolError(ErrorCode.BAD_FRAME, "message must be an object")
        msgs.append(_parse_msg(m))
    more = o.get("more")
    if not isinstance(more, bool):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "more must be a boolean")
    return History(room=validate_room(o.get("room")), messages=tuple(msgs), more=more)


_SERVER_PARSERS: Final[dict[str, Any]] = {
    "welcome": lambda o: Welcome(
        token=_str(o, "token"), user=_str(o, "user"), name=_str(o, "name"),
        backend=_str(o, "backend"),
    ),
    "joined": lambda o: Joined(
        room=validate_room(o.get("room")), epoch=_str(o, "epoch"), head=_int(o, "head"),
        members=_members(o.get("members", [])), resumed=bool(o.get("resumed", False)),
        top=_int(o, "top", optional=True) or 0,
    ),
    "left": lambda o: Left(room=validate_room(o.get("room"))),
    "ack": lambda o: Ack(
        id=_str(o, "id"), room=validate_room(o.get("room")), epoch=_str(o, "epoch"),
        seq=_int(o, "seq", lo=1), replicas=_int(o, "replicas", optional=True) or 0,
    ),
    "msg": _parse_msg,
    "history": _parse_history,
    "pong": lambda o: Pong(),
    "error": lambda o: ErrorFrame(
        code=_str(o, "code"), detail=_str(o, "detail"), ref=_str(o, "ref", optional=True) or "",
    ),
    "reset": lambda o: Reset(room=validate_room(o.get("room")), reason=_str(o, "reason")),
}


# A JSON string token as the grammar reads it: brackets inside strings do not nest.
_JSON_STRING: Final = re.compile(r'"(?:[^"\\]|\\.)*"')
_BRACKET: Final = re.compile(r"[\[\]{}]")


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """True if ``text``, read as JSON, opens more than ``limit`` nested arrays/objects."""
    if text.count("[") + text.count("{") <= limit:
        return False  # the common case, decided without a scan
    depth = 0
    for bracket in _BRACKET.findall(_JSON_STRING.sub("", text)):
        depth += 1 if bracket in "[{" else -1
        if depth > limit:
            return True
    return False


def _load(data: str | bytes, cap: int) -> dict[str, Any]:
    if isinstance(data, bytes | bytearray | memoryview):
        raise RemoteProtocolError(ErrorCode.BINARY_FRAME, "protocol v1 uses text frames only")
    if len(data) > cap or len(data.encode("utf-8", "surrogatepass")) > cap:
        raise RemoteProtocolError(ErrorCode.TOO_LARGE, f"frame exceeds {cap} bytes")
    if too_deep(data):
        raise RemoteProtocolError(ErrorCode.BAD_JSON, "frame nests too deeply")
    try:
        obj = json.loads(data)
    except (ValueError, RecursionError) as exc:
        raise RemoteProtocolError(ErrorCode.BAD_JSON, "frame is not valid JSON") from exc
    if not isinstance(obj, dict):
        raise RemoteProtocolError(ErrorCode.BAD_JSON, "frame must be a JSON object")
    return obj


def _decode(data: str | bytes, parsers: dict[str, Any], cap: int) -> Any:
    obj = _load(data, cap)
    tag = obj.get("t")
    if not isinstance(tag, str):
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "missing frame type 't'")
    parser = parsers.get(tag)
    if parser is None:
        raise RemoteProtocolError(ErrorCode.UNKNOWN_TYPE, f"unknown frame type {tag[:32]!r}")
    try:
        return parser(obj)
    except RemoteProtocolError:
        raise
    except (TypeError, ValueError, AttributeError, KeyError) as exc:
        # Defensive: any shape we did not foresee is still the peer's fault, never a crash.
        raise RemoteProtocolError(ErrorCode.BAD_FRAME, "malformed frame") from exc


def decode_client(data: str | bytes) -> ClientFrame:
    """Decode one client->server frame. Raises only :class:`RemoteProtocolError`."""
    frame: ClientFrame = _decode(data, _CLIENT_PARSERS, MAX_FRAME_BYTES)
    return frame


def decode_server(data: str | bytes) -> ServerFrame:
    """Decode one server->client frame. Raises only :class:`RemoteProtocolError`."""
    frame: ServerFrame = _decode(data, _SERVER_PARSERS, MAX_SERVER_FRAME_BYTES)
    return frame


def encode(frame: Frame) -> str:
    """Encode a frame as compact JSON text. Raises :class:`LocalProtocolError` when invalid."""
    if isinstance(frame, Say):
        validate_room(frame.room, remote=False)
        validate_text(frame.text, remote=False)
        if not MSG_ID_RE.match(frame.id):
            raise LocalProtocolError(ErrorCode.BAD_ID, "id must match ^[A-Za-z0-9_-]{8,64}$")
    elif isinstance(frame, Nick):
        normalize_name(frame.name, remote=False)
    elif isinstance(frame, Join | Leave | HistoryRequest):
        validate_room(frame.room, remote=False)
    return json.dumps(frame.to_wire(), separators=(",", ":"), ensure_ascii=False)
