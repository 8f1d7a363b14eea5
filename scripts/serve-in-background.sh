#!/usr/bin/env bash
# Start the shop with gunicorn in the background and wait until it is healthy, or stop it.
#
#   scripts/serve-in-background.sh start   # serve on 127.0.0.1:$PORT, return once IT answers /healthz
#   scripts/serve-in-background.sh stop    # stop it and wait until it is gone
#
# For docs/migration-guide.md and for trying things by hand. The server inherits the caller's
# environment, so DATABASE_URL and the FLASK_CQRS_* settings (FLASK_CQRS_DEFAULT_WRITE_STAGE, ...) set on
# the command line reach it: `FLASK_CQRS_DEFAULT_WRITE_STAGE=command scripts/serve-in-background.sh start`.
# Its output goes to $SHOP_LOG; its process id to $SHOP_LOG.pid, which `stop` reads.
# SHOP_APP overrides what gunicorn serves (default 'legacy_app:create_app()').
set -euo pipefail

PORT="${PORT:-5000}"
SHOP_LOG="${SHOP_LOG:-${TMPDIR:-/tmp}/shop-guide.log}"
PID_FILE="$SHOP_LOG.pid"
SHOP_APP="${SHOP_APP:-legacy_app:create_app()}"
URL="http://127.0.0.1:$PORT"
# The request line and header limits docs/api.md promises (wherever this is run from).
GUNICORN_CONFIG="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/gunicorn.conf.py"

start() {
    if [ -s "$PID_FILE" ] && kill -0 "$(cat "$PID_FILE")" 2>/dev/null; then
        echo "already serving (pid $(cat "$PID_FILE")); run '$0 stop' first" >&2
        return 1
    fi
    if listening; then
        echo "port $PORT is already in use on 127.0.0.1 (another server?): stop it, or start" \
            "on another port: PORT=<free port> $0 start" >&2
        return 1
    fi
    # Its own stdin/stdout/stderr: nothing of ours stays open, so `$(...)` and pipes return.
    gunicorn --config "$GUNICORN_CONFIG" --workers 2 --bind "127.0.0.1:$PORT" "$SHOP_APP" \
        </dev/null >"$SHOP_LOG" 2>&1 &
    local pid=$!
    echo "$pid" >"$PID_FILE"
    # Healthy means OURS answers: gunicorn logs "Listening at: <url> (<its pid>)" once it
    # holds the port, so a server that took the port meanwhile is never mistaken for it.
    for _ in $(seq 1 150); do
        if ! kill -0 "$pid" 2>/dev/null; then
            rm -f "$PID_FILE"
            explain "the shop did not start on $URL"
            return 1
        fi
        if grep -qF "Listening at: $URL ($pid)" "$SHOP_LOG" &&
            curl -fsS "$URL/healthz" >/dev/null 2>&1; then
            echo "serving $URL (pid $pid, log $SHOP_LOG)"
            return 0
        fi
        sleep 0.2
    done
    stop >/dev/null 2>&1 || true
    explain "the shop did not become healthy on $URL in 30 s"
    return 1
}

# Whether something accepts connections on the port (bash's /dev/tcp: no other tool needed).
listening() {
    (: <>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}

explain() {
    echo "$1; the end of $SHOP_LOG:" >&2
    tail -n 20 "$SHOP_LOG" >&2
}

stop() {
    if [ ! -s "$PID_FILE" ]; then
        echo "not running (no $PID_FILE)"
        return 0
    fi
    local pid
    pid="$(cat "$PID_FILE")"
    rm -f "$PID_FILE"
    kill "$pid" 2>/dev/null || { echo "not running"; return 0; }
    # The gunicorn master stops its workers first (graceful), then exits.
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || { echo "stopped (pid $pid)"; return 0; }
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    echo "killed (pid $pid) after 10 s"
}

case "${1:-}" in
    start) start ;;
    stop) stop ;;
    *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
