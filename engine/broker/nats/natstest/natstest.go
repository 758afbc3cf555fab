// Package natstest is test support for code that needs a real NATS
// server with JetStream: each test gets a prefix of its own, whose stream,
// key-value buckets and object store are deleted at cleanup.
package natstest

import (
	"crypto/rand"
	"encoding/hex"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	natsbroker "github.com/sous-run/sous/engine/broker/nats"
)

// NATS returns the URL of the NATS server (SOUS_TEST_NATS overrides the
// default, nats://127.0.0.1:4222) and a random prefix for the test's
// broker, whose streams are deleted at cleanup. It fails when the server
// is unreachable or has no JetStream (CI starts it) and skips with
// -short.
func NATS(t *testing.T) (url, prefix string) {
	t.Helper()
	if testing.Short() {
		t.Skip("NATS test skipped with -short")
	}
	url = os.Getenv("SOUS_TEST_NATS")
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, nats.Timeout(5*time.Second))
	if err != nil {
		t.Fatalf("NATS is not reachable at %s (set SOUS_TEST_NATS, or run with -short to skip): %v", natsbroker.RedactURL(url), err)
	}
	js, err := nc.JetStream()
	if err == nil {
		_, err = js.AccountInfo()
	}
	if err != nil {
		nc.Close()
		t.Fatalf("NATS at %s has no JetStream (start nats-server with -js): %v", natsbroker.RedactURL(url), err)
	}
	var b [6]byte
	_, _ = rand.Read(b[:])
	prefix = "t" + hex.EncodeToString(b[:]) + "_"
	t.Cleanup(func() {
		defer nc.Close()
		if err := natsbroker.DropStreams(js, prefix); err != nil {
			t.Error(err)
		}
	})
	return url, prefix
}
