package pipeline_test

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	natsbroker "github.com/sous-run/sous/engine/broker/nats"
	"github.com/sous-run/sous/engine/broker/nats/natstest"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
)

// testNATS returns the URL of the NATS server and a prefix of the
// test's own (see natstest.NATS).
func testNATS(t *testing.T) (string, string) { return natstest.NATS(t) }

// deleteStream deletes the broker's stream under prefix, so that a
// publish fails.
func deleteStream(t *testing.T, u, prefix string) {
	t.Helper()
	nc, err := nats.Connect(u)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream(prefix+"sous"))
}

// openNATSBroker opens a process's own SQLite store and a broker on the
// shared stream.
func openNATSBroker(t *testing.T, u, prefix string) (*store.Store, *natsbroker.Broker) {
	t.Helper()
	st := openOwnStore(t)
	b, err := natsbroker.New(context.Background(), st, natsbroker.Config{URL: u, Prefix: prefix, AckWait: time.Minute, Concurrency: 16})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return st, b
}

// openOwnStore opens a process's own SQLite store, migrated, closed when
// the test ends (after what the test registers later, such as a broker).
func openOwnStore(t *testing.T) *store.Store {
	t.Helper()
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	t.Cleanup(func() {
		require.NoError(t, read.Close())
		require.NoError(t, write.Close())
	})
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.Migrate(ctx))
	return st
}

func TestNATSBroker(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	st, b := openNATSBroker(t, u, prefix)
	sink := newBrokerSink(t, 0)
	load := newBrokerLoad(200)

	start := time.Now()
	load.accept(t, b.Accept)
	acceptTime, accepted := time.Since(start), len(load.events)
	require.Equal(t, int64(load.distinct()), b.Depth(ctx, broker.TopicEvents), "one message per accepted event")
	for _, ev := range load.events {
		_, err := st.GetEvent(ctx, ev.ID)
		if load.fresh[ev.ID] {
			require.NoError(t, err)
		} else {
			require.ErrorIs(t, err, store.ErrNotFound, "a duplicate is not stored")
		}
	}

	// a second process, with a store of its own, on the same stream: the
	// keys the first accepted are duplicates to it too, by their JetStream
	// message id
	st2, b2 := openNATSBroker(t, u, prefix)
	for _, ev := range load.events[:20] {
		again := *ev
		again.ID = pipeline.NewEventID()
		fresh, err := b2.Accept(ctx, &again)
		require.NoError(t, err)
		require.False(t, fresh, "key %s accepted by another process", ev.DedupKey)
		_, err = st2.GetEvent(ctx, again.ID)
		require.ErrorIs(t, err, store.ErrNotFound, "a duplicate is not kept")
	}
	require.Equal(t, int64(load.distinct()), b.Depth(ctx, broker.TopicEvents))
	// a key that cannot be a header is hashed into the message id, as
	// deterministically
	odd := newBrokerLoad(1).events[0]
	odd.DedupKey = "hook:/load:line\nbreak " + strings.Repeat("x", 300)
	fresh, err := b2.Accept(ctx, odd)
	require.NoError(t, err)
	require.True(t, fresh)
	again := *odd
	again.ID = pipeline.NewEventID()
	fresh, err = b.Accept(ctx, &again)
	require.NoError(t, err)
	require.False(t, fresh, "the odd key accepted by another process")
	load.events = append(load.events, odd)
	load.fresh[odd.ID] = true

	start = time.Now()
	startEngine(t, st, b, brokerIndex(t, sink.srv.URL), "engine-1")
	load.wait(t, sink, st)
	t.Logf("nats: accepted %d events in %s (%.0f/s); ran %d runs in %s (%.0f/s, including start and the 500ms settle)",
		accepted, acceptTime, float64(accepted)/acceptTime.Seconds(),
		load.distinct(), time.Since(start), float64(load.distinct())/time.Since(start).Seconds())
	require.Eventually(t, func() bool {
		return b.Depth(ctx, broker.TopicEvents) == 0 && b.Depth(ctx, broker.TopicRuns) == 0
	}, 10*time.Second, 50*time.Millisecond)
	require.Zero(t, b.Depth(ctx, broker.TopicDeadLetters))
	require.Eventually(t, func() bool {
		left, err := st.Outbox(ctx, time.Now().Add(time.Hour), 10)
		return err == nil && len(left) == 0
	}, 10*time.Second, 10*time.Millisecond, "the outbox entries of published events are deleted")
}

// TestNATSBrokerTwoEngines runs two processes, each with its own store,
// on one stream: the queue group shares the work between them, and no run
// executes twice.
func TestNATSBrokerTwoEngines(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	sink := newBrokerSink(t, 2*time.Millisecond)
	ix := brokerIndex(t, sink.srv.URL)
	st1, b1 := openNATSBroker(t, u, prefix)
	st2, b2 := openNATSBroker(t, u, prefix)
	e1 := startEngine(t, st1, b1, ix, "engine-1")
	e2 := startEngine(t, st2, b2, ix, "engine-2")

	load := newBrokerLoad(200)
	start := time.Now()
	// a key and its duplicate often reach different processes: the
	// stream's duplicate window refuses the second
	load.accept(t, b1.Accept, b2.Accept)
	load.wait(t, sink, st1, st2)
	elapsed := time.Since(start)
	d1, d2 := e1.Delivered.Load(), e2.Delivered.Load()
	t.Logf("nats, two engines: %d runs in %s (%.0f/s, including the 500ms settle); engine-1 ran %d, engine-2 ran %d",
		load.distinct(), elapsed, float64(load.distinct())/elapsed.Seconds(), d1, d2)
	require.Equal(t, int64(load.distinct()), d1+d2, "each run finished once")
	require.Positive(t, d1, "engine-1 took part")
	require.Positive(t, d2, "engine-2 took part")
}

// TestNATSBrokerPublishFails checks that an event the stream did not take
// is undone in the store, so that the sender's retry is accepted.
func TestNATSBrokerPublishFails(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	st, b := openNATSBroker(t, u, prefix)
	deleteStream(t, u, prefix)

	ev := newBrokerLoad(1).events[0]
	fresh, err := b.Accept(ctx, ev)
	require.ErrorContains(t, err, "publish event")
	require.False(t, fresh)
	_, err = st.GetEvent(ctx, ev.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "the event is undone")
	left, err := st.Outbox(ctx, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, left, "its outbox entry too")
	require.Equal(t, int64(-1), b.Depth(ctx, broker.TopicEvents), "no stream, no depth")

	// once the stream is back, the retry is a new event, not a duplicate
	b2, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix})
	require.NoError(t, err)
	defer b2.Close()
	retry := *ev
	retry.ID = pipeline.NewEventID()
	fresh, err = b2.Accept(ctx, &retry)
	require.NoError(t, err)
	require.True(t, fresh)
	require.Equal(t, int64(1), b2.Depth(ctx, broker.TopicEvents))
}

// The shared broker suite (suite_test.go) runs on NATS too: each open is
// one process with a store in a directory that outlives it, on a stream
// that does. A message in flight when a process stops comes back after
// AckWait, kept short here.
func init() {
	extraSuiteBrokers = append(extraSuiteBrokers, brokerCase{name: "nats", durable: true,
		backing: func(t *testing.T) func(t *testing.T) opened {
			u, prefix := testNATS(t)
			dir := t.TempDir()
			return func(t *testing.T) opened {
				ctx := context.Background()
				write, read, err := store.OpenSQLite(ctx, dir)
				require.NoError(t, err)
				st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
				require.NoError(t, st.Migrate(ctx))
				b, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix, AckWait: 3 * time.Second, Concurrency: 16})
				require.NoError(t, err)
				return opened{st: st, b: b, close: func() {
					require.NoError(t, b.Close())
					require.NoError(t, read.Close())
					require.NoError(t, write.Close())
				}}
			}
		}})
}

// TestNATSDurableRetryTwoEngines: with two processes on one stream, a
// paused run's retry comes back once, not before its time, to either
// process, and the run is recorded once. The parked message carries the
// run's checkpoint, so a retry taken up by the process that did not pause
// the run resumes it there too: the step that succeeded before the pause
// is not called again.
func TestNATSDurableRetryTwoEngines(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	sink := newRetrySink(t, "1")
	// the first step succeeds (the sink's /fast), the second meets a 503
	// with Retry-After: 1 first
	ix := twoStepIndex(t, "/retry", sink.srv.URL+"/fast", sink.srv.URL+"/retry")
	var procs []opened
	var engines []*engineRun
	for i := range 2 {
		st, b := openNATSBroker(t, u, prefix)
		o := opened{st: st, b: b}
		er := runEngine(t, o, ix, fmt.Sprintf("engine-%d", i+1))
		t.Cleanup(func() { er.stop(t) })
		procs, engines = append(procs, o), append(engines, er)
	}
	const n = 16
	var runIDs []string
	for i := range n {
		ev := webhookEvent(t, "/retry", map[string]any{"n": i})
		fresh, err := procs[i%2].b.Accept(ctx, ev)
		require.NoError(t, err)
		require.True(t, fresh)
		runIDs = append(runIDs, pipeline.RunID(ev.ID, "retried"))
	}
	runOf := func(id string) (*store.Run, int) {
		var found *store.Run
		stores := 0
		for _, p := range procs {
			if r, err := p.st.GetRun(ctx, id); err == nil {
				found = r
				stores++
			}
		}
		return found, stores
	}
	require.Eventually(t, func() bool {
		for _, id := range runIDs {
			if r, _ := runOf(id); r == nil {
				return false
			}
		}
		return true
	}, 30*time.Second, 20*time.Millisecond, "every run recorded")
	// a retry taken up twice would show up now
	time.Sleep(1500 * time.Millisecond)
	elsewhere := 0
	for _, id := range runIDs {
		run, stores := runOf(id)
		require.Equal(t, 1, stores, "run %s recorded once", id)
		require.Equal(t, "succeeded", run.Status, "run %s: %s %s", id, run.Reason, run.Error)
		require.Equal(t, 1, run.Retries, "run %s resumed, not started over", id)
		require.Len(t, sink.times(id+":first"), 1, "run %s: the step done before the pause was not called again", id)
		calls := sink.times(id + ":second")
		require.Len(t, calls, 2, "run %s: the paused step was called twice, no more", id)
		require.GreaterOrEqual(t, calls[1].Sub(calls[0]), time.Second, "run %s: retried before its time", id)
		for _, p := range procs {
			// the checkpoint stays behind in the store of the process
			// that paused the run when the other one took it up
			if cp, err := p.st.Checkpoint(ctx, id); err == nil && cp != nil {
				elsewhere++
			}
		}
	}
	d1, d2 := engines[0].eng.Delivered.Load(), engines[1].eng.Delivered.Load()
	t.Logf("nats, two engines: %d durable retries, %d taken up by the other process; engine-1 finished %d runs, engine-2 %d",
		n, elsewhere, d1, d2)
	require.Positive(t, elsewhere, "some retries were taken up by the other process")
	require.Equal(t, int64(n), d1+d2, "each run finished once")
	require.Eventually(t, func() bool { return procs[0].b.Depth(ctx, broker.TopicRuns) == 0 },
		10*time.Second, 20*time.Millisecond)
}

// TestNATSOutbox: an event a process stored but did not publish before it
// died (its outbox entry left behind) is published when a process on the
// same store starts again, and runs once; an entry whose event the stream
// had already (the process died after the publish, before the entry went)
// is a duplicate the stream drops; the sender's retry is a duplicate.
func TestNATSOutbox(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	st := openOwnStore(t)
	evs := newBrokerLoad(2).events
	unpublished, published := evs[0], evs[1]

	// the first life: one event published and its entry left behind, the
	// other stored and never published
	b0, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix})
	require.NoError(t, err)
	fresh, err := b0.Accept(ctx, published)
	require.NoError(t, err)
	require.True(t, fresh)
	require.NoError(t, b0.Close())
	tx, err := st.Write.BeginTx(ctx, nil)
	require.NoError(t, err)
	claimed, err := st.ClaimDedup(ctx, tx, unpublished.DedupKey, unpublished.ID, unpublished.ReceivedAt)
	require.NoError(t, err)
	require.True(t, claimed)
	require.NoError(t, st.InsertEvent(ctx, tx, unpublished))
	require.NoError(t, st.AddOutbox(ctx, tx, unpublished, time.Now()))
	require.NoError(t, st.AddOutbox(ctx, tx, published, time.Now()))
	require.NoError(t, tx.Commit())
	left, err := st.Outbox(ctx, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	require.Len(t, left, 2)

	// the next life publishes what was left, before it runs anything
	time.Sleep(5 * time.Millisecond) // the entries are older than its start
	b1, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b1.Close()) })
	require.Eventually(t, func() bool {
		left, err := st.Outbox(ctx, time.Now().Add(time.Hour), 10)
		return err == nil && len(left) == 0
	}, 10*time.Second, 10*time.Millisecond, "the outbox is emptied")
	require.Equal(t, int64(2), b1.Depth(ctx, broker.TopicEvents), "one message per event: the published one is not there twice")

	// the sender of the unpublished event, unanswered, sends it again
	retry := *unpublished
	retry.ID = pipeline.NewEventID()
	fresh, err = b1.Accept(ctx, &retry)
	require.NoError(t, err)
	require.False(t, fresh, "the retry is a duplicate")

	sink := newBrokerSink(t, 0)
	eng := startEngine(t, st, b1, brokerIndex(t, sink.srv.URL), "engine")
	for _, ev := range evs {
		run := waitRun(t, st, pipeline.RunID(ev.ID, "broker-load"))
		require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
	}
	require.Eventually(t, func() bool {
		return b1.Depth(ctx, broker.TopicEvents) == 0 && b1.Depth(ctx, broker.TopicRuns) == 0
	}, 10*time.Second, 20*time.Millisecond)
	require.Equal(t, int64(2), eng.Delivered.Load(), "each event ran once")
	for key, n := range sink.counts() {
		require.Equal(t, 1, n, "%s called once", key)
	}
}

// TestNATSAccountBoundsPendingAcks: on an account whose JetStream limits
// bound a consumer's pending acks below MaxParked, the broker starts, its
// parked consumer taking the account's bound (creating it above the bound
// fails). It runs a nats-server of its own with such an account.
func TestNATSAccountBoundsPendingAcks(t *testing.T) {
	t.Parallel()
	if testing.Short() {
		t.Skip("NATS test skipped with -short")
	}
	bin, err := exec.LookPath("nats-server")
	if err != nil {
		bin = "/usr/sbin/nats-server"
	}
	if _, err := os.Stat(bin); err != nil {
		t.Skipf("no nats-server to run (%v)", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	port := l.Addr().(*net.TCPAddr).Port
	require.NoError(t, l.Close())
	dir := t.TempDir()
	conf := filepath.Join(dir, "nats.conf")
	require.NoError(t, os.WriteFile(conf, fmt.Appendf(nil, `listen: 127.0.0.1:%d
jetstream { store_dir: %q }
accounts {
  bounded {
    jetstream { max_mem: 64MB, max_file: 256MB, max_streams: 10, max_consumers: 100, max_ack_pending: 1000 }
    users [{user: sous, password: sous}]
  }
}
`, port, filepath.Join(dir, "js")), 0o600))
	srv := exec.Command(bin, "-c", conf)
	require.NoError(t, srv.Start())
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	u := fmt.Sprintf("nats://sous:sous@127.0.0.1:%d", port)
	require.Eventually(t, func() bool {
		nc, err := nats.Connect(u)
		if err == nil {
			nc.Close()
		}
		return err == nil
	}, 10*time.Second, 20*time.Millisecond, "the private nats-server did not start")

	ctx := context.Background()
	st := openOwnStore(t)
	b, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: "t_"})
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })

	nc, err := nats.Connect(u)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	info, err := js.ConsumerInfo("t_sous", "t_sous_parked")
	require.NoError(t, err)
	require.Equal(t, 1000, info.Config.MaxAckPending, "the account's bound")
	info, err = js.ConsumerInfo("t_sous", "t_sous_runs")
	require.NoError(t, err)
	require.Equal(t, 4*32, info.Config.MaxAckPending, "below the bound: as configured")
}

// TestNATSConnectErrorHidesPassword: a broker that cannot reach its
// server says where it tried, without the password of its URL.
func TestNATSConnectErrorHidesPassword(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := l.Addr().String()
	require.NoError(t, l.Close()) // nothing listens there now
	_, err = natsbroker.New(context.Background(), openOwnStore(t), natsbroker.Config{URL: "nats://sous:hunter2-pw@" + addr, Prefix: "t_"})
	require.Error(t, err)
	require.Contains(t, err.Error(), addr)
	require.NotContains(t, err.Error(), "hunter2-pw")
}
