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

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/sqlite"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/benchrecipes"
	"github.com/sous-run/sous/recipes"
)

// benchPipeline is the embedded default over a fresh store, with the
// benchmark's recipe delivering to a local sink that counts its hits.
type benchPipeline struct {
	hits *atomic.Int64
	st   *store.Store
	br   *sqlite.Broker
	ix   *pipeline.Index
}

func newBenchPipeline(b *testing.B, cfg sqlqueue.Config) *benchPipeline {
	b.Helper()
	hits := &atomic.Int64{}
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	b.Cleanup(sink.Close)
	src := benchrecipes.Order("bench", "/bench", 100, sink.URL+"/sink")
	rec, diags := (&recipes.Loader{}).Parse("bench.yaml", []byte(src))
	require.False(b, diags.HasErrors(), "%v", diags)
	ix, errs := pipeline.BuildIndex([]*recipes.Recipe{rec}, nil)
	require.Empty(b, errs)

	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(b, st.Migrate(ctx))
	br, err := sqlite.New(ctx, st, cfg)
	require.NoError(b, err)
	b.Cleanup(func() { br.Close(); read.Close(); write.Close() })
	return &benchPipeline{hits: hits, st: st, br: br, ix: ix}
}

// start runs an engine over the pipeline until the benchmark ends.
func (p *benchPipeline) start(b *testing.B) *pipeline.Engine {
	b.Helper()
	eng, err := pipeline.New(pipeline.Config{Store: p.st, Broker: p.br, Logger: slog.New(slog.DiscardHandler),
		NewRunner: func() *runner.Runner { return &runner.Runner{} }})
	require.NoError(b, err)
	eng.SetIndex(p.ix)
	done := make(chan error, 1)
	go func() { done <- eng.Run(context.Background()) }()
	<-eng.Running()
	b.Cleanup(func() {
		require.NoError(b, eng.Close())
		<-done
	})
	return eng
}

// benchEvent is the n-th event of a benchmark.
func benchEvent(n int64) *store.Event {
	id := strconv.FormatInt(n, 10)
	raw := []byte(`{"body":{"order":{"id":` + id + `,"total":250,"customer":"acme"}},"headers":{"Content-Type":"application/json"},"query":{},"method":"POST","path":"/bench"}`)
	return &store.Event{ID: pipeline.NewEventID(), Type: "webhook.received", Source: "/bench",
		DedupKey: "hook:/bench:" + id, ReceivedAt: time.Now().UTC(), Payload: raw}
}

// BenchmarkPipelineSQLite measures the embedded default without HTTP
// intake: 64 goroutines accept events (group-committed with dedup and
// enqueue), and the engine matches, filters, runs one http.request step
// against a local sink and records each run. One op is one event,
// accepted and delivered.
func BenchmarkPipelineSQLite(b *testing.B) {
	p := newBenchPipeline(b, sqlqueue.Config{})
	br := p.br
	eng := p.start(b)
	ctx := context.Background()

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
				if _, err := eng.Accept(ctx, benchEvent(seq.Add(1))); err != nil {
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
	require.Equal(b, total, p.hits.Load())
}

// BenchmarkDrainSQLite measures a backlog draining, as after a restart:
// b.N events accepted while no engine ran wait in the queue table, and
// the timed part is an engine claiming, matching, running and recording
// them all. "claims read" is the default (each claim's events read in one
// query); "one by one" turns that off (each event read when matched).
func BenchmarkDrainSQLite(b *testing.B) {
	for _, tc := range []struct {
		name string
		cfg  sqlqueue.Config
	}{
		{name: "claims read"},
		{name: "one by one", cfg: sqlqueue.Config{Claimed: func(context.Context, string, []*message.Message) []any { return nil }}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			p := newBenchPipeline(b, tc.cfg)
			ctx := context.Background()
			var wg sync.WaitGroup
			var seq atomic.Int64
			for g := 0; g < 16; g++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for seq.Load() < int64(b.N) {
						if n := seq.Add(1); n <= int64(b.N) {
							if _, err := p.br.Accept(ctx, benchEvent(n)); err != nil {
								b.Error(err)
								return
							}
						}
					}
				}()
			}
			wg.Wait()
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			start := time.Now()
			eng := p.start(b)
			for eng.Delivered.Load() < int64(b.N) {
				time.Sleep(time.Millisecond)
			}
			b.StopTimer()
			b.ReportMetric(float64((cpuTime()-cpu0).Microseconds())/float64(b.N), "cpu-µs/event")
			b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "drained/s")
			require.Equal(b, int64(b.N), p.hits.Load())
		})
	}
}
