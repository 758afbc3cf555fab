package sqlite_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/store"
)

// TestCapabilities: the embedded broker's messages leave event payloads
// out (its consumers share the store) and a nacked message waits for its
// retry time in the queue; nothing else. It creates its queue table, and
// a second start finds it there.
func TestCapabilities(t *testing.T) {
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { read.Close(); write.Close() })
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite, Prefix: "c_"}
	require.NoError(t, st.Migrate(ctx))
	for range 2 {
		b, err := sqlite.New(ctx, st, sqlqueue.Config{})
		require.NoError(t, err)
		require.Equal(t, broker.Capabilities{LeanMessages: true, DelayedRedelivery: true}, b.Capabilities())
		require.Equal(t, int64(0), b.Depth(ctx, broker.TopicEvents), "the queue table c_queue exists")
		require.NoError(t, b.Close())
	}
}
