package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/postgres"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
)

// TestPostgresBrokerPrefix checks the broker refuses a prefix that would
// reach into SQL, and a store of another dialect.
func TestPostgresBrokerPrefix(t *testing.T) {
	ctx := context.Background()
	_, err := postgres.New(ctx, &store.Store{Dialect: store.Postgres}, postgres.Config{Prefix: `x"; DROP TABLE y; --`})
	require.ErrorContains(t, err, "prefix")
	_, err = postgres.New(ctx, &store.Store{Dialect: store.SQLite}, postgres.Config{})
	require.ErrorContains(t, err, "dialect")
}

// TestCapabilities: a paused run waits in the store's scheduled table,
// which the broker creates, and is taken back by the broker itself (a
// Rescheduler); the runs topic is split in RunPartitions partitions; the
// processes share the store, so no state is shared apart from it.
func TestCapabilities(t *testing.T) {
	ctx := context.Background()
	db, err := store.OpenPostgres(ctx, storetest.Postgres(t))
	require.NoError(t, err)
	t.Cleanup(func() { db.Close() })
	st := &store.Store{DB: db, Dialect: store.Postgres, Prefix: "caps_"}
	b, err := postgres.New(ctx, st, postgres.Config{Prefix: "caps_", RunPartitions: 3})
	require.NoError(t, err)
	defer b.Close()
	caps := b.Capabilities()
	require.True(t, caps.DelayedRedelivery)
	require.False(t, caps.LeanMessages)
	require.Equal(t, 3, caps.Partitions)
	require.Same(t, b, caps.Rescheduler)
	require.Nil(t, caps.SharedState)
	n, err := st.CountScheduled(ctx, broker.TopicRuns)
	require.NoError(t, err, "the scheduled table caps_scheduled exists")
	require.Zero(t, n)
}
