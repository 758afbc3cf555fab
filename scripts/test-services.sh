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

# The email tests start their own Dovecot (IMAP, in the foreground) and
# mailpit (SMTP with an HTTP API) on free ports: they only need the
# binaries. Install them when missing; the tests that need them fail and
# say so otherwise (`go test -short` skips them).
if ! command -v dovecot >/dev/null 2>&1 && [ ! -x /usr/sbin/dovecot ]; then
  echo "test-services: installing dovecot-imapd"
  if command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq dovecot-imapd; } >/dev/null 2>&1 ||
      echo "test-services: could not install dovecot-imapd (the email.received tests will fail)"
  else
    echo "test-services: no apt-get: install Dovecot (dovecot-imapd) for the email.received tests"
  fi
fi
MAILPIT_VERSION=v1.33.1
GOBIN_DIR="$(go env GOBIN 2>/dev/null)"
[ -n "$GOBIN_DIR" ] || GOBIN_DIR="$(go env GOPATH 2>/dev/null)/bin"
if ! command -v mailpit >/dev/null 2>&1 && [ ! -x "$GOBIN_DIR/mailpit" ]; then
  echo "test-services: installing mailpit $MAILPIT_VERSION into $GOBIN_DIR"
  (cd /tmp && GOBIN="$GOBIN_DIR" go install "github.com/axllent/mailpit@$MAILPIT_VERSION") >/dev/null 2>&1 ||
    echo "test-services: could not install mailpit (the email.send tests will fail)"
fi
exit 0
