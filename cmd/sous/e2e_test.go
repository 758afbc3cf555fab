package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// What the end-to-end tests of the services share.

// idSink counts the requests recipes send it, by the body's "id".
type idSink struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *idSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID any `json:"id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	s.mu.Lock()
	if s.seen == nil {
		s.seen = map[string]int{}
	}
	s.seen[fmt.Sprint(body.ID)]++
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// counts is how many ids the sink heard, and how many requests.
func (s *idSink) counts() (distinct, total int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, n := range s.seen {
		distinct++
		total += n
	}
	return distinct, total
}

// stoppedStore opens the embedded store of a stopped server's data folder.
func stoppedStore(t *testing.T, dataDir string) *sql.DB {
	t.Helper()
	write, read, err := store.OpenSQLite(context.Background(), dataDir)
	require.NoError(t, err)
	t.Cleanup(func() { read.Close(); write.Close() })
	return read
}

// requireOnceEach checks that a poller's n items are n events of type typ,
// none deduplicated away or stored twice, and n runs of recipe, one per
// event.
func requireOnceEach(t *testing.T, db *sql.DB, typ, recipe string, n int) {
	t.Helper()
	var events, keys, runs, runEvents int
	require.NoError(t, db.QueryRow(`SELECT count(*), count(DISTINCT dedup_key) FROM events WHERE type = ?`, typ).Scan(&events, &keys))
	require.NoError(t, db.QueryRow(`SELECT count(*), count(DISTINCT event_id) FROM runs WHERE recipe = ?`, recipe).Scan(&runs, &runEvents))
	require.Equal(t, n, events, "%s: one event per item", typ)
	require.Equal(t, n, keys, "%s: one dedup key per item", typ)
	require.Equal(t, n, runs, "%s: one run per item", recipe)
	require.Equal(t, n, runEvents, "%s: one run per event", recipe)
}

// requireNoneFailed checks that every run of the store succeeded.
func requireNoneFailed(t *testing.T, db *sql.DB) {
	t.Helper()
	var failed int
	require.NoError(t, db.QueryRow(`SELECT count(*) FROM runs WHERE status <> 'succeeded'`).Scan(&failed))
	require.Zero(t, failed)
}
