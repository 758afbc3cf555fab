package store_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// TestSQLiteReadPoolKeepsConnections is the regression test of a read
// pool that closed all but two of its connections after each burst of
// reads: the next burst opened the file and prepared its statements
// again, which doubled the CPU per event of a backlog draining (one
// event read per event).
func TestSQLiteReadPoolKeepsConnections(t *testing.T) {
	ctx := context.Background()
	st := openSQLite(t)
	write, read := st.Write, st.DB
	const readers = 8
	for i := range readers {
		ev := &store.Event{ID: fmt.Sprintf("ev%d", i), Type: "webhook.received", Source: "/hooks/x", DedupKey: fmt.Sprint(i),
			ReceivedAt: time.Now(), Payload: []byte(`{}`)}
		require.NoError(t, st.InsertEvent(ctx, write, ev))
	}
	for range 5 { // bursts of reads, as events claimed in batches are
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range readers {
			wg.Go(func() {
				<-start
				for range 20 {
					_, err := st.GetEvent(ctx, fmt.Sprintf("ev%d", i))
					require.NoError(t, err)
				}
			})
		}
		close(start)
		wg.Wait()
	}
	stats := read.Stats()
	require.Zero(t, stats.MaxIdleClosed, "read connections closed for want of idle room: %+v", stats)
}
