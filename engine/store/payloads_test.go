package store_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/sqlin"
)

// TestEventPayloads: the payloads of a claim's events are read at once,
// by id, across more ids than one IN list takes; an id not stored is
// left out, and a repeated id is read once.
func TestEventPayloads(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		now := time.Now().UTC()
		n := sqlin.Max + 3 // two statements
		want := map[string]json.RawMessage{}
		require.NoError(t, inTx(t, st, func(tx *sql.Tx) error {
			for i := range n {
				ev := &store.Event{ID: fmt.Sprintf("ev_%04d", i), Type: "webhook.received", Source: "/p",
					DedupKey: fmt.Sprintf("k%d", i), ReceivedAt: now, Payload: json.RawMessage(fmt.Sprintf(`{"n":%d}`, i))}
				if err := st.InsertEvent(ctx, tx, ev); err != nil {
					return err
				}
				want[ev.ID] = ev.Payload
			}
			return nil
		}))
		tests := []struct {
			name string
			ids  []string
			want map[string]json.RawMessage
		}{
			{name: "one", ids: []string{"ev_0007"}, want: map[string]json.RawMessage{"ev_0007": want["ev_0007"]}},
			{name: "missing and repeated", ids: []string{"ev_0001", "ev_gone", "ev_0001", "ev_0002"},
				want: map[string]json.RawMessage{"ev_0001": want["ev_0001"], "ev_0002": want["ev_0002"]}},
			{name: "more than one list", ids: keys(want), want: want},
			{name: "none", ids: nil, want: map[string]json.RawMessage{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				got, err := st.EventPayloads(ctx, tt.ids)
				require.NoError(t, err)
				require.Equal(t, len(tt.want), len(got))
				for id, p := range tt.want {
					require.JSONEq(t, string(p), string(got[id]), id)
				}
			})
		}
		cancelled, cancel := context.WithCancel(ctx)
		cancel()
		_, err := st.EventPayloads(cancelled, []string{"ev_0001"})
		require.Error(t, err, "a read under an ended context fails")
	})
}

func keys(m map[string]json.RawMessage) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
