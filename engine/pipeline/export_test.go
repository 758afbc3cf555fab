package pipeline

import (
	"context"
	"errors"

	"github.com/sous-run/sous/engine/store"
)

// RefuseRelease makes b fail to release a shared dedup claim, as when
// the NATS server goes away between the claim and its release.
func RefuseRelease(b *NATSBroker) {
	b.release = func(context.Context, *store.Event, uint64) error { return errors.New("release refused") }
}
