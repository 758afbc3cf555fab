package pipeline_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/pipeline/sqlqueue"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/benchrecipes"
	"github.com/sous-run/sous/recipes"
)

// BenchmarkPipelineSQLite measures the embedded default without HTTP
// intake: 64 goroutines accept events (group-committed with dedup and
// enqueue), and the engine matches, filters, runs one http.request step
// against a local sink and records each run. One op is one event,
// accepted and delivered.
func BenchmarkPipelineSQLite(b *testing.B) {
	var hits atomic.Int64
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer sink.Close()
	src := benchrecipes.Order("bench", "/bench", 100, sink.URL+"/sink")
	rec, diags := (&recipes.Loader{}).Parse("bench.yaml", []byte(src))
	require.False(b, diags.HasErrors(), "%v", diags)
	ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
	require.Empty(b, errs)

	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	defer read.Close()
	defer write.Close()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(b, st.Migrate(ctx))
	br := pipeline.NewSQLBroker(st, sqlqueue.Config{})
	defer br.Close()
	eng, err := pipeline.New(pipeline.Config{Store: st, Broker: br, Logger: slog.New(slog.DiscardHandler),
		NewRunner: func() *runner.Runner { return &runner.Runner{} }})
	require.NoError(b, err)
	eng.SetIndex(ix)
	done := make(chan error, 1)
	go func() { done <- eng.Run(ctx) }()
	<-eng.Running()

	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	start := time.Now()
	var wg sync.WaitGroup
	per := b.N/64 + 1
	total := int64(per * 64)
	for g := 0; g < 64; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < per; i++ {
				n := strconv.FormatInt(seq.Add(1), 10)
				raw := []byte(`{"body":{"order":{"id":` + n + `,"total":250,"customer":"acme"}},"headers":{"Content-Type":"application/json"},"query":{},"method":"POST","path":"/bench"}`)
				ev := &store.Event{ID: pipeline.NewEventID(), Type: "webhook.received", Source: "/bench",
					DedupKey: "hook:/bench:" + n, ReceivedAt: time.Now().UTC(), Payload: raw}
				if _, err := eng.Accept(ctx, ev); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	accepted := time.Since(start)
	for eng.Delivered.Load() < total {
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	elapsed := time.Since(start)
	b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(total), "cpu-µs/event")
	b.ReportMetric(float64(total)/accepted.Seconds(), "accepted/s")
	b.ReportMetric(float64(total)/elapsed.Seconds(), "delivered/s")
	txs, ops := br.Writer.Stats()
	b.ReportMetric(float64(txs)/float64(total), "tx/event")
	b.ReportMetric(float64(ops)/float64(txs), "ops/tx")
	require.NoError(b, eng.Close())
	<-done
	require.Equal(b, total, hits.Load())
}
