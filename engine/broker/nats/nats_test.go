package nats_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	natsbroker "github.com/sous-run/sous/engine/broker/nats"
	"github.com/sous-run/sous/engine/broker/nats/natstest"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
)

// The tests of the NATS broker alone; those of the broker under an engine
// are in engine/pipeline (nats_test.go, natskv_test.go).

// testNATS returns the NATS server's URL and a prefix of the test's own
// (see natstest.NATS).
func testNATS(t *testing.T) (string, string) { return natstest.NATS(t) }

// deleteStream deletes the broker's stream under prefix, so that a
// publish fails.
func deleteStream(t *testing.T, u, prefix string) {
	t.Helper()
	nc, err := nats.Connect(u)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(prefix+"sous"))
}

// openOwnStore opens a process's own SQLite store, migrated, closed when
// the test ends (after what the test registers later, such as a broker).
func openOwnStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, read.Close())
		require.NoError(t, write.Close())
	})
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.Migrate(ctx))
	return st
}

// shortWindow is the duplicate window of the brokers openNATSProcess
// opens.
const shortWindow = 200 * time.Millisecond

// openNATSProcess opens a process's own store and a broker on the shared
// stream with a duplicate window of shortWindow and an ack wait of
// ackWait, closed when the test ends.
func openNATSProcess(t *testing.T, u, prefix string, ackWait time.Duration) (*store.Store, *natsbroker.Broker) {
	t.Helper()
	st := openOwnStore(t)
	b, err := natsbroker.New(context.Background(), st, natsbroker.Config{URL: u, Prefix: prefix, AckWait: ackWait, Concurrency: 8, DuplicateWindow: shortWindow})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return st, b
}

// loadEvent is the first event of engine/pipeline's brokerLoad: a webhook
// event with its dedup key.
func loadEvent() *store.Event {
	body, _ := json.Marshal(map[string]any{"body": map[string]any{"n": 0}, "method": "POST", "path": "/load"})
	return &store.Event{ID: pipeline.NewEventID(), Type: "webhook.received", Source: "/load",
		DedupKey: "hook:/load:0", ReceivedAt: time.Now().UTC(), Payload: body}
}

// TestNATSPublishFailsAfterSharedClaim: when an event's publish fails
// and its shared dedup claim cannot be released either, the sender's
// retry would be taken for a duplicate, so the event must not be lost:
// it is accepted, kept with its outbox entry, and published when a
// process on its store starts again (or the relay's next round); the
// retry is a duplicate.
func TestNATSPublishFailsAfterSharedClaim(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	st := openOwnStore(t)
	b, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix})
	require.NoError(t, err)
	natsbroker.RefuseRelease(b)
	deleteStream(t, u, prefix)

	ev := loadEvent()
	fresh, err := b.Accept(ctx, ev)
	require.NoError(t, err, "accepted: it is stored and will be published")
	require.True(t, fresh)
	_, err = st.GetEvent(ctx, ev.ID)
	require.NoError(t, err, "the event is kept")
	left, err := st.Outbox(ctx, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	require.Len(t, left, 1, "with its outbox entry")
	require.NoError(t, b.Close())

	b2, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix})
	require.NoError(t, err)
	defer b2.Close()
	require.Eventually(t, func() bool { return b2.Depth(ctx, broker.TopicEvents) == 1 }, 10*time.Second, 10*time.Millisecond,
		"published at start")
	retry := *ev
	retry.ID = pipeline.NewEventID()
	fresh, err = b2.Accept(ctx, &retry)
	require.NoError(t, err)
	require.False(t, fresh, "the sender's retry is a duplicate")
}

// TestNATSLargeCheckpoint: a checkpoint over what the runs bucket holds
// is shared through the object store, read back whole by another
// process, and deleted when the process that put it marks the run done.
func TestNATSLargeCheckpoint(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	_, b1 := openNATSProcess(t, u, prefix, time.Minute)
	_, b2 := openNATSProcess(t, u, prefix, time.Minute)
	big := []byte(`{"steps":[{"id":"first","output":{"pad":"` + strings.Repeat("y", 300<<10) + `"}}]}`)

	require.NoError(t, b1.ShareCheckpoint(ctx, "run_big", big))
	done, state, err := b2.SharedRun(ctx, "run_big")
	require.NoError(t, err)
	require.False(t, done)
	require.Equal(t, big, state, "read whole by the other process")

	nc, err := nats.Connect(u)
	require.NoError(t, err)
	defer nc.Close()
	js, err := jetstream.New(nc)
	require.NoError(t, err)
	obs, err := js.ObjectStore(ctx, prefix+"sous_checkpoints")
	require.NoError(t, err)
	_, err = obs.GetInfo(ctx, "run_big")
	require.NoError(t, err, "in the object store")

	require.NoError(t, b1.ShareDone(ctx, "run_big"))
	done, _, err = b2.SharedRun(ctx, "run_big")
	require.NoError(t, err)
	require.True(t, done)
	_, err = obs.GetInfo(ctx, "run_big")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound, "deleted with the run's end")

	// a small one stays in the runs bucket
	require.NoError(t, b1.ShareCheckpoint(ctx, "run_small", []byte(`{"steps":[]}`)))
	_, err = obs.GetInfo(ctx, "run_small")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound)

	// a run taken up in another process from its large checkpoint ends
	// there: that process deletes the object
	require.NoError(t, b1.ShareCheckpoint(ctx, "run_moved", big))
	_, state, err = b2.SharedRun(ctx, "run_moved")
	require.NoError(t, err)
	require.Equal(t, big, state)
	require.NoError(t, b2.ShareDone(ctx, "run_moved"))
	_, err = obs.GetInfo(ctx, "run_moved")
	require.ErrorIs(t, err, jetstream.ErrObjectNotFound, "deleted by the process the run ended in")
	require.False(t, natsbroker.RemembersRun(b2, "run_moved"))

	// the first process, where it did not end, forgets it once the object
	// store's TTL is past, not before; so does the second the run it read
	// but did not end (run_big)
	require.True(t, natsbroker.RemembersRun(b1, "run_moved"))
	require.True(t, natsbroker.RemembersRun(b2, "run_big"))
	natsbroker.SweepStored(b1, time.Now())
	require.True(t, natsbroker.RemembersRun(b1, "run_moved"), "within the TTL: kept")
	natsbroker.SweepStored(b1, time.Now().Add(7*24*time.Hour+time.Minute))
	require.False(t, natsbroker.RemembersRun(b1, "run_moved"), "past the TTL: forgotten")
	natsbroker.SweepStored(b2, time.Now().Add(7*24*time.Hour+time.Minute))
	require.False(t, natsbroker.RemembersRun(b2, "run_big"))
}

// TestCapabilities: a paused run waits in the stream and is taken back by
// the broker itself (a Rescheduler), and the processes, which keep stores
// of their own, share what became of each run (SharedState); the broker
// creates its tables (the outbox...) in its process's store.
func TestCapabilities(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	st, b := openNATSProcess(t, u, prefix, time.Minute)
	caps := b.Capabilities()
	require.True(t, caps.DelayedRedelivery)
	require.False(t, caps.LeanMessages)
	require.Zero(t, caps.Partitions)
	require.Same(t, b, caps.Rescheduler)
	require.Same(t, b, caps.SharedState)
	_, err := st.Outbox(context.Background(), time.Now(), 1)
	require.NoError(t, err, "the outbox table exists")
}
