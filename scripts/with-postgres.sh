#!/usr/bin/env bash
# Run a command against a throwaway PostgreSQL server:
#   scripts/with-postgres.sh <command> [args...]
# Starts a server in a temporary data directory on a free loopback port, as
# an unprivileged user (PostgreSQL refuses to run as root), exports
# DATABASE_URL for the command, then stops the server and removes the data.
# A DATABASE_URL already set in the environment is used as is instead.
set -euo pipefail

if [ -n "${DATABASE_URL:-}" ]; then
  exec "$@"
fi

find_pg_bin() {
  if command -v initdb >/dev/null 2>&1 && command -v pg_ctl >/dev/null 2>&1; then
    dirname "$(command -v pg_ctl)"
    return
  fi
  for dir in /usr/lib/postgresql/*/bin; do
    if [ -x "$dir/initdb" ]; then echo "$dir"; return; fi
  done
  return 1
}

if ! PG_BIN=$(find_pg_bin); then
  cat >&2 <<'MSG'
PostgreSQL server binaries (initdb, pg_ctl) were not found.
Install them, for example on Debian/Ubuntu:
    sudo apt-get install postgresql
or set DATABASE_URL=postgres://user:password@host:port/dbname to use a server you run.
MSG
  exit 3
fi

PY=${PYTHON:-.venv/bin/python}
PORT=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
PGTMP=$(mktemp -d "${TMPDIR:-/tmp}/madoguchi-pg.XXXXXX")
PGDATA="$PGTMP/data"
PGSOCK="$PGTMP/sock"
mkdir -p "$PGSOCK"

as_pg() { "$@"; }
if [ "$(id -u)" = "0" ]; then
  # Root: run the server as an unprivileged system user.
  PGUSER_OS=postgres
  id "$PGUSER_OS" >/dev/null 2>&1 || PGUSER_OS=nobody
  chown -R "$PGUSER_OS" "$PGTMP"
  chmod 755 "$PGTMP"
  as_pg() { runuser -u "$PGUSER_OS" -- "$@"; }
fi

cleanup() {
  as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -m immediate stop >/dev/null 2>&1 || true
  rm -rf "$PGTMP"
}
trap cleanup EXIT INT TERM

as_pg "$PG_BIN/initdb" -D "$PGDATA" -U madoguchi --auth=trust -E UTF8 --locale=C.UTF-8 \
  >"$PGTMP/initdb.log" 2>&1 || { cat "$PGTMP/initdb.log" >&2; exit 1; }
# Throwaway data: durability off for speed; enough connections for xdist.
as_pg "$PG_BIN/pg_ctl" -D "$PGDATA" -l "$PGTMP/server.log" -w -t 60 \
  -o "-h 127.0.0.1 -p $PORT -k $PGSOCK -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200 -c shared_buffers=${PG_SHARED_BUFFERS:-256MB} ${PG_EXTRA_OPTS:-}" \
  start >/dev/null || { cat "$PGTMP/server.log" >&2; exit 1; }
"$PY" - "$PORT" <<'PYCODE'
import sys

import psycopg

with psycopg.connect(f"host=127.0.0.1 port={sys.argv[1]} user=madoguchi dbname=postgres", autocommit=True) as conn:
    conn.execute("CREATE DATABASE madoguchi")
PYCODE

export DATABASE_URL="postgres://madoguchi@127.0.0.1:$PORT/madoguchi"
echo "PostgreSQL $("$PG_BIN/postgres" --version | awk '{print $3}') on 127.0.0.1:$PORT (data in $PGTMP)" >&2
set +e
"$@"
status=$?
set -e
exit $status
