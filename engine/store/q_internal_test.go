package store

import (
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestQueryCacheBounded: queries with varying parts are rewritten every
// time but kept only up to the bound.
func TestQueryCacheBounded(t *testing.T) {
	s := &Store{Prefix: "p_"}
	for i := range 3 * maxCachedQueries {
		q := fmt.Sprintf(`SELECT * FROM {runs} LIMIT %d`, i)
		require.Equal(t, fmt.Sprintf(`SELECT * FROM p_runs LIMIT %d`, i), s.q(q))
		require.Equal(t, fmt.Sprintf(`SELECT * FROM p_runs LIMIT %d`, i), s.q(q), "the second time")
	}
	n := 0
	s.queries.Range(func(any, any) bool { n++; return true })
	require.Equal(t, maxCachedQueries, n)
}
