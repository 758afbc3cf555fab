package nats

import (
	"context"
	"errors"
	"time"

	"github.com/sous-run/sous/engine/store"
)

// RefuseRelease makes b fail to release a shared dedup claim, as when
// the NATS server goes away between the claim and its release.
func RefuseRelease(b *Broker) {
	b.release = func(context.Context, *store.Event, uint64) error { return errors.New("release refused") }
}

// RemembersRun reports whether b remembers run runID as having a
// checkpoint in the object store.
func RemembersRun(b *Broker, runID string) bool {
	_, ok := b.stored.Load(runID)
	return ok
}

// SweepStored runs b's sweep of the runs it remembers as if it were now.
func SweepStored(b *Broker, now time.Time) { b.sweepStored(now) }
