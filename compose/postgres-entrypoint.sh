#!/bin/sh
# PostgreSQL for TuiTalk, as the local launcher runs it (tuitalk/launcher/postgres.py): on the
# first start initdb (role tuitalk, trust auth, UTF8, C locale) and create database tuitalk;
# then become the server (PID 1) on 127.0.0.1:$TUITALK_PG_PORT, TCP only.
# TUITALK_PG_FAST=1 trades crash safety for speed (fsync off), as the test clusters do.
set -eu
port=${TUITALK_PG_PORT:?TUITALK_PG_PORT is not set}
case $port in ''|*[!0-9]*) echo "TUITALK_PG_PORT=$port is not a port" >&2; exit 2 ;; esac
bin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    "$bin/initdb" -D "$PGDATA" -U tuitalk --auth=trust -E UTF8 --locale=C --no-sync >/dev/null
    # Single-user mode: the database exists before the server accepts its first client,
    # so the backends never see a server without it.
    echo "CREATE DATABASE tuitalk" | "$bin/postgres" --single -D "$PGDATA" postgres >/dev/null
fi
set -- -c max_connections=200 -c log_min_messages=warning -c jit=off "$@"
if [ "${TUITALK_PG_FAST:-0}" = 1 ]; then
    set -- -c fsync=off -c synchronous_commit=off -c full_page_writes=off "$@"
fi
exec "$bin/postgres" -D "$PGDATA" -p "$port" -c listen_addresses=127.0.0.1 \
    -c unix_socket_directories= "$@"
