package store_test

import (
	"context"
	"database/sql"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// BenchmarkPruneStall prunes a day of records (runs of 760-byte records,
// their events and dedup keys) while another goroutine writes one small
// transaction after another through the same single writer connection, as
// intake does, and reports the longest a write waited: what a webhook
// waits for while the store is pruned. batch=all deletes each table in one
// transaction, as Prune did before it deleted in batches.
func BenchmarkPruneStall(b *testing.B) {
	const rows = 100_000
	for _, bc := range []struct {
		name  string
		batch int
	}{{"batch=1000", store.DefaultPruneBatch}, {"batch=all", 1 << 30}} {
		b.Run(bc.name, func(b *testing.B) {
			var worst, total time.Duration
			for b.Loop() {
				b.StopTimer()
				st := openSQLite(b)
				fillForPrune(b, st, rows)
				st.PruneBatch = bc.batch
				stop := make(chan struct{})
				var maxWait atomic.Int64
				var probeErr error
				var wg sync.WaitGroup
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := 0; ; i++ {
						select {
						case <-stop:
							return
						default:
						}
						began := time.Now()
						if probeErr = probe(st, fmt.Sprintf("probe_%d", i)); probeErr != nil {
							return
						}
						if w := time.Since(began).Nanoseconds(); w > maxWait.Load() {
							maxWait.Store(w)
						}
					}
				}()
				b.StartTimer()
				began := time.Now()
				n, err := st.Prune(context.Background(), time.Now(), store.Retention{Succeeded: time.Hour, Failed: time.Hour, Dedup: time.Hour})
				total += time.Since(began)
				b.StopTimer()
				close(stop)
				wg.Wait()
				require.NoError(b, err)
				require.NoError(b, probeErr)
				require.EqualValues(b, rows, n)
				worst = max(worst, time.Duration(maxWait.Load()))
				b.StartTimer()
			}
			b.ReportMetric(float64(worst.Microseconds())/1000, "max-write-wait-ms")
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "prune-ms")
		})
	}
}

// fillForPrune stores n succeeded runs of a day ago, each with its event
// and dedup key.
func fillForPrune(b *testing.B, st *store.Store, n int) {
	b.Helper()
	ctx := context.Background()
	record := []byte(`{"steps":[` + fmt.Sprintf("%0750d", 0) + `]}`)
	from := time.Now().Add(-24 * time.Hour)
	for start := 0; start < n; start += 1000 {
		require.NoError(b, inTx(b, st, func(tx *sql.Tx) error {
			for i := start; i < min(n, start+1000); i++ {
				at := from.Add(time.Duration(i) * time.Millisecond)
				ev := &store.Event{ID: fmt.Sprintf("ev_%09d", i), Type: "webhook.received", Source: "/x",
					DedupKey: fmt.Sprintf("hook:/x:%09d", i), ReceivedAt: at, Payload: []byte(`{"order":{"id":1,"total":250}}`)}
				if _, err := st.ClaimDedup(ctx, tx, ev.DedupKey, ev.ID, at); err != nil {
					return err
				}
				if err := st.InsertEvent(ctx, tx, ev); err != nil {
					return err
				}
				if err := st.SaveRunTx(ctx, tx, &store.Run{ID: fmt.Sprintf("run_%09d", i), Recipe: "r", EventID: ev.ID,
					Status: "succeeded", StartedAt: at, FinishedAt: at, Attempt: 1, Record: record}); err != nil {
					return err
				}
			}
			return nil
		}))
	}
}

// probe writes one dedup key in a transaction of its own.
func probe(st *store.Store, key string) error {
	ctx := context.Background()
	tx, err := st.Write.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if _, err := st.ClaimDedup(ctx, tx, key, "ev_probe", time.Now()); err != nil {
		_ = tx.Rollback()
		return err
	}
	return tx.Commit()
}
