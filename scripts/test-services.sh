#!/usr/bin/env bash
# Starts the services the integration tests use (PostgreSQL, NATS with
# JetStream) when they are installed here but not running. `make test`
# runs it first; it changes nothing when they run already, and says what it
# could not start (the tests that need it then fail and say so; `go test
# -short ./...` skips them).
set -uo pipefail

start_if_down() { # name, check command, start command
  if ! bash -c "$2" >/dev/null 2>&1; then
    echo "test-services: starting $1"
    bash -c "$3" || echo "test-services: could not start $1"
    for _ in $(seq 1 30); do bash -c "$2" >/dev/null 2>&1 && return 0; sleep 1; done
    echo "test-services: $1 is still not answering"
  fi
}

if [ -n "${SOUS_TEST_POSTGRES:-}" ]; then
  : # another server was named: not ours to start
elif command -v pg_ctlcluster >/dev/null 2>&1 && [ -d /etc/postgresql ]; then
  start_if_down postgres "pg_isready -h 127.0.0.1 -p 5432" \
    'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql | head -1) main start'
fi
if [ -n "${SOUS_TEST_NATS:-}" ]; then
  :
elif [ -x /usr/sbin/nats-server ]; then
  start_if_down nats "bash -c '</dev/tcp/127.0.0.1/4222'" \
    "start-stop-daemon --start --oknodo --background --exec /usr/sbin/nats-server -- -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log"
fi
exit 0
