#!/usr/bin/env bash
# Throwaway PostgreSQL and Redis on loopback for the test suite.
#   scripts/services.sh start   → prints export lines (DATABASE_URL, REDIS_URL, …)
#   scripts/services.sh stop [pg,redis|none]   (default: both)
# State lives in var/services/; nothing outside the checkout is touched.
set -euo pipefail
cd "$(dirname "$0")/.."
STATE="$PWD/var/services"
PG_PORT="${KEFU_PG_PORT:-55432}"
REDIS_PORT="${KEFU_REDIS_PORT:-56379}"

pg_bin() {
  local d
  for d in /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  dirname "$(command -v initdb)"
}

as_pg() {
  # initdb and postgres refuse to run as root.
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  # What this call started (and so what the caller may stop): pg,redis.
  local started=""
  mkdir -p "$STATE"
  local bin; bin=$(pg_bin)
  if [ ! -f "$STATE/pg/PG_VERSION" ]; then
    rm -rf "$STATE/pg"; mkdir -p "$STATE/pg"
    [ "$(id -u)" = 0 ] && chown postgres "$STATE" "$STATE/pg" && chmod 755 "$STATE"
    as_pg "$bin/initdb" -D "$STATE/pg" -U postgres --auth=trust -E UTF8 >"$STATE/initdb.log" 2>&1
  fi
  if ! as_pg "$bin/pg_ctl" -D "$STATE/pg" status >/dev/null 2>&1; then
    if ! as_pg "$bin/pg_ctl" -D "$STATE/pg" -l "$STATE/pg.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $PG_PORT -k $STATE/pg -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" start >/dev/null; then
      echo "PostgreSQL did not start on port $PG_PORT:" >&2; tail -5 "$STATE/pg.log" >&2; exit 1
    fi
  fi
  if ! redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1; then
    redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --save "" --appendonly no \
      --daemonize yes --pidfile "$STATE/redis.pid" --logfile "$STATE/redis.log" --dir "$STATE"
    for _ in $(seq 50); do redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 && break; sleep 0.1; done
    redis-cli -p "$REDIS_PORT" ping >/dev/null 2>&1 || { echo "Redis did not start on port $REDIS_PORT" >&2; exit 1; }
  fi
  echo "export DATABASE_URL=postgres://postgres@127.0.0.1:$PG_PORT/kefu"
  echo "export REDIS_URL=redis://127.0.0.1:$REDIS_PORT/0"
  echo "export KEFU_PG_BIN=$bin KEFU_PG_DATA=$STATE/pg KEFU_PG_PORT=$PG_PORT KEFU_REDIS_PORT=$REDIS_PORT"
  echo "export KEFU_SERVICES_STARTED=${started:-none}"
}

stop() {
  # `stop` stops both; `stop pg`, `stop redis`, `stop pg,redis` or `stop none`
  # (KEFU_SERVICES_STARTED from `start`) stop only what a caller started.
  local which="${1:-pg,redis}"
  local bin; bin=$(pg_bin)
  if [[ ",$which," == *",pg,"* ]] && [ -f "$STATE/pg/PG_VERSION" ]; then
    as_pg "$bin/pg_ctl" -D "$STATE/pg" -m fast -w stop >/dev/null 2>&1 || true
  fi
  if [[ ",$which," == *",redis,"* ]]; then
    redis-cli -p "$REDIS_PORT" shutdown nosave >/dev/null 2>&1 || true
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  *) echo "usage: $0 start | stop [pg,redis|none]" >&2; exit 2 ;;
esac
