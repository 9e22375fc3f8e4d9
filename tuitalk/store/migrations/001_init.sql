-- TuiTalk archive schema v1.
-- The archive is written only from the Redis room streams (by any backend's archiver),
-- idempotently: a message is identified by (room, epoch, seq).

CREATE TABLE IF NOT EXISTS users (
    id          text PRIMARY KEY,
    name        text NOT NULL,
    token_hash  text,                       -- sha256 of the token secret; never the token
    created_at  timestamptz NOT NULL DEFAULT now(),
    last_seen   timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS rooms (
    name        text PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS messages (
    room        text   NOT NULL,
    epoch       text   NOT NULL,
    seq         bigint NOT NULL,
    msg_id      text   NOT NULL,
    user_id     text   NOT NULL,
    name        text   NOT NULL,
    kind        text   NOT NULL,
    body        text   NOT NULL,
    ts_ms       bigint NOT NULL,
    archived_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (room, epoch, seq)
);
CREATE INDEX IF NOT EXISTS messages_room_seq ON messages (room, seq DESC);

-- Which rooms each user is in, as the room events say (join/leave). event_seq is the seq
-- of the latest event applied, so that archiving events out of order (two archivers
-- overlapping) can never let an older event undo a newer one.
CREATE TABLE IF NOT EXISTS memberships (
    user_id     text    NOT NULL,
    room        text    NOT NULL,
    present     boolean NOT NULL,
    event_seq   bigint  NOT NULL,
    PRIMARY KEY (user_id, room)
);
