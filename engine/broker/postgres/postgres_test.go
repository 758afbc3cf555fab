package postgres_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/postgres"
	"github.com/sous-run/sous/engine/store"
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
