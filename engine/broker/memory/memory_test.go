package memory_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/memory"
	"github.com/sous-run/sous/engine/store"
)

// TestCapabilities: the memory broker only carries messages, and cannot
// tell how many wait.
func TestCapabilities(t *testing.T) {
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() { read.Close(); write.Close() })
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.Migrate(ctx))
	b := memory.New(st)
	defer b.Close()
	require.Equal(t, broker.Capabilities{}, b.Capabilities())
	require.Equal(t, int64(-1), b.Depth(ctx, broker.TopicEvents))
}
