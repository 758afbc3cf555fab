package pipeline_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	natsbroker "github.com/sous-run/sous/engine/broker/nats"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/logbuf"
)

// openNATSProcess opens a process's own store and a broker on the shared
// stream with a duplicate window of shortWindow, so that a test can go
// past it, and an ack wait of ackWait.
func openNATSProcess(t *testing.T, u, prefix string, ackWait time.Duration) (*store.Store, *natsbroker.Broker) {
	t.Helper()
	st := openOwnStore(t)
	return st, openNATSWith(t, st, natsbroker.Config{URL: u, Prefix: prefix, AckWait: ackWait, Concurrency: 8, DuplicateWindow: shortWindow})
}

// openNATSWith opens a broker with cfg on st, closed when the test ends.
func openNATSWith(t *testing.T, st *store.Store, cfg natsbroker.Config) *natsbroker.Broker {
	t.Helper()
	b, err := natsbroker.New(context.Background(), st, cfg)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, b.Close()) })
	return b
}

// startNATSProcess opens a process (openNATSProcess) and runs an engine
// named name on it with the recipes of ix.
func startNATSProcess(t *testing.T, u, prefix string, ackWait time.Duration, ix *pipeline.Index, name string) (*store.Store, *natsbroker.Broker, *engineRun) {
	t.Helper()
	st, b := openNATSProcess(t, u, prefix, ackWait)
	return st, b, runEngine(t, opened{st: st, b: b}, ix, name)
}

// shortWindow is the stream's duplicate window in these tests.
const shortWindow = 200 * time.Millisecond

// TestNATSSharedDedup: a dedup key accepted by one process is a duplicate
// to another one long after the stream's duplicate window, for as long as
// retention.dedup, and nothing of the duplicate is stored.
func TestNATSSharedDedup(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	_, b1 := openNATSProcess(t, u, prefix, time.Minute)
	st2, b2 := openNATSProcess(t, u, prefix, time.Minute)

	first := webhookEvent(t, "/hook", map[string]any{"n": 1})
	fresh, err := b1.Accept(ctx, first)
	require.NoError(t, err)
	require.True(t, fresh)
	time.Sleep(3 * shortWindow) // the stream has forgotten the message id

	again := *first
	again.ID = pipeline.NewEventID()
	fresh, err = b2.Accept(ctx, &again)
	require.NoError(t, err)
	require.False(t, fresh, "the other process accepted the key first")
	_, err = st2.GetEvent(ctx, again.ID)
	require.ErrorIs(t, err, store.ErrNotFound, "the duplicate is not stored")
	left, err := st2.Outbox(ctx, time.Now().Add(time.Hour), 10)
	require.NoError(t, err)
	require.Empty(t, left, "nor left to publish")
	require.Equal(t, int64(1), b1.Depth(ctx, broker.TopicEvents), "one event on the stream")

	// a key of its own is accepted by either
	other := webhookEvent(t, "/hook", map[string]any{"n": 2})
	fresh, err = b2.Accept(ctx, other)
	require.NoError(t, err)
	require.True(t, fresh)
}

// TestNATSFinishedRunNotRunAgain: a run message that comes again to a
// process other than the one that ran it (its event published again after
// the duplicate window, an ack lost) does not run the finished run again.
func TestNATSFinishedRunNotRunAgain(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	sink := newBrokerSink(t, 0)
	ix := brokerIndex(t, sink.srv.URL)

	st1, b1, er1 := startNATSProcess(t, u, prefix, time.Minute, ix, "engine-1")
	ev := newBrokerLoad(1).events[0]
	fresh, err := b1.Accept(ctx, ev)
	require.NoError(t, err)
	require.True(t, fresh)
	runID := pipeline.RunID(ev.ID, "broker-load")
	run := waitRun(t, st1, runID)
	require.Equal(t, "succeeded", run.Status)
	er1.stop(t)

	st2, b2, er2 := startNATSProcess(t, u, prefix, time.Minute, ix, "engine-2")
	defer er2.stop(t)
	time.Sleep(3 * shortWindow)
	handleRunCopy(t, b2, runMsg(t, ev))
	require.Equal(t, map[string]int{runID + ":notify": 1}, sink.counts(), "the step was called once")
	_, err = st2.GetRun(ctx, runID)
	require.ErrorIs(t, err, store.ErrNotFound, "the other process did not run it")
	require.Zero(t, er2.eng.Delivered.Load())
}

// runMsg is the run message of the broker-load recipe for ev.
func runMsg(t *testing.T, ev *store.Event) []byte {
	t.Helper()
	payload, err := json.Marshal(pipeline.RunMsg{RunID: pipeline.RunID(ev.ID, "broker-load"), Recipe: "broker-load",
		Event: broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Payload: ev.Payload}})
	require.NoError(t, err)
	return payload
}

// handleRunCopy publishes a copy of a run message through b and waits
// until a process handled it.
func handleRunCopy(t *testing.T, b *natsbroker.Broker, payload []byte) {
	t.Helper()
	require.NoError(t, b.Publisher().Publish(broker.TopicRuns, message.NewMessage(watermill.NewUUID(), payload)))
	require.Eventually(t, func() bool { return b.Depth(context.Background(), broker.TopicRuns) == 0 }, 10*time.Second, 10*time.Millisecond,
		"the copy was handled")
}

// TestNATSRemovedRecipeCopyNotRecorded: a copy of a finished run's
// message that comes to a process where its recipe is not loaded is not
// recorded there as a dead run of a removed recipe: the run finished.
func TestNATSRemovedRecipeCopyNotRecorded(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	sink := newBrokerSink(t, 0)
	st1, b1, er1 := startNATSProcess(t, u, prefix, time.Minute, brokerIndex(t, sink.srv.URL), "engine-1")
	ev := newBrokerLoad(1).events[0]
	fresh, err := b1.Accept(ctx, ev)
	require.NoError(t, err)
	require.True(t, fresh)
	runID := pipeline.RunID(ev.ID, "broker-load")
	require.Equal(t, "succeeded", waitRun(t, st1, runID).Status)
	er1.stop(t)

	none, errs := pipeline.BuildIndex(nil, nil)
	require.Empty(t, errs)
	st2, b2, er2 := startNATSProcess(t, u, prefix, time.Minute, none, "engine-2")
	defer er2.stop(t)
	time.Sleep(3 * shortWindow)
	handleRunCopy(t, b2, runMsg(t, ev))
	_, err = st2.GetRun(ctx, runID)
	require.ErrorIs(t, err, store.ErrNotFound, "no dead run of a removed recipe for a run that finished")
}

// TestNATSRunResumesElsewhere: a run cut short in one process (its run
// timeout, here; a crash alike) after its first step is taken up by
// another process, which resumes it at the second step: the first is not
// called again. A checkpoint too large for the runs bucket (a step that
// returned 400 KiB) is shared through the checkpoints object store.
func TestNATSRunResumesElsewhere(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		pad  int // bytes of padding in the first step's answer
	}{
		{"small checkpoint", 0},
		{"checkpoint over 256 KiB", 400 << 10},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			testRunResumesElsewhere(t, tc.pad)
		})
	}
}

func testRunResumesElsewhere(t *testing.T, pad int) {
	u, prefix := testNATS(t)
	ctx := context.Background()
	var (
		mu       sync.Mutex
		calls    = map[string]int{}
		hold     = true
		released = make(chan struct{})
	)
	first := []byte(`{"ok":true,"pad":"` + strings.Repeat("x", pad) + `"}`)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls[r.URL.Path]++
		wait := hold && r.URL.Path == "/second"
		mu.Unlock()
		if wait {
			select { // until the end of the test
			case <-r.Context().Done():
			case <-released:
			}
			return
		}
		w.Header().Set("Content-Type", "application/json")
		if r.URL.Path == "/first" {
			_, _ = w.Write(first)
			return
		}
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	count := func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return calls[path]
	}
	ix := twoStepIndex(t, "/two", srv.URL+"/first", srv.URL+"/second")

	// the first process lets its run go while it waits for the second
	// step: it stops holding the message after HandleTimeout (as a
	// process that is gone stops its heartbeat), which cancels the run's
	// context, and the message comes back after the ack wait; the
	// process stops without waiting for the run (its shutdown timeout)
	st1 := openOwnStore(t)
	b1 := openNATSWith(t, st1, natsbroker.Config{URL: u, Prefix: prefix, AckWait: 2 * time.Second,
		HandleTimeout: 500 * time.Millisecond, Concurrency: 8, DuplicateWindow: shortWindow})
	eng1, err := pipeline.New(pipeline.Config{Store: st1, Broker: b1, RunTimeout: time.Minute, ShutdownTimeout: 200 * time.Millisecond,
		NewRunner: func() *runner.Runner { return &runner.Runner{} }})
	require.NoError(t, err)
	eng1.SetIndex(ix)
	done1 := make(chan error, 1)
	go func() { done1 <- eng1.Run(context.Background()) }()
	<-eng1.Running()

	ev := webhookEvent(t, "/two", map[string]any{"n": 1})
	fresh, err := b1.Accept(ctx, ev)
	require.NoError(t, err)
	require.True(t, fresh)
	runID := pipeline.RunID(ev.ID, "retried")
	// a 400 KiB step output is encoded, redacted and checkpointed under
	// -race, beside the other packages of make test on a 2-core machine:
	// seconds, not milliseconds (10 s was once too short in CI)
	require.Eventually(t, func() bool { return count("/second") == 1 }, 45*time.Second, 5*time.Millisecond)
	_ = eng1.Close() // the router's close timeout: the run is still in flight
	<-done1
	defer close(released)
	_, err = st1.GetRun(ctx, runID)
	require.ErrorIs(t, err, store.ErrNotFound, "the run did not finish in the first process")
	require.Equal(t, 1, count("/first"))

	mu.Lock()
	hold = false
	mu.Unlock()
	st2, _, er2 := startNATSProcess(t, u, prefix, 2*time.Second, ix, "engine-2")
	defer er2.stop(t)
	run := waitRun(t, st2, runID)
	require.Equal(t, "succeeded", run.Status, "%s %s", run.Reason, run.Error)
	require.Equal(t, 1, count("/first"), "the first step, done in the other process, was not called again")
	require.GreaterOrEqual(t, count("/second"), 2)
}

// TestNATSHeldMessagesAreNotDeliveredAgain: a process tells the server
// that the messages it holds are in progress, so that a run that takes
// longer than the ack wait, and the runs that wait behind it for a
// place, are not delivered again (to another process, which would run
// them at the same time).
func TestNATSHeldMessagesAreNotDeliveredAgain(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	sink := newBrokerSink(t, 1500*time.Millisecond)
	st := openOwnStore(t)
	b := openNATSWith(t, st, natsbroker.Config{URL: u, Prefix: prefix, AckWait: time.Second, Concurrency: 1})
	er := runEngine(t, opened{st: st, b: b}, brokerIndex(t, sink.srv.URL), "one")
	defer er.stop(t)

	load := newBrokerLoad(3)
	for _, ev := range load.events {
		fresh, err := b.Accept(ctx, ev)
		require.NoError(t, err)
		require.True(t, fresh)
	}
	for _, ev := range load.events {
		waitRun(t, st, pipeline.RunID(ev.ID, "broker-load"))
	}
	require.Zero(t, b.Redelivered(), "messages delivered again")
	for key, n := range sink.counts() {
		require.Equal(t, 1, n, "%s called once", key)
	}
}

// TestNATSReconcile: a process killed between marking a run finished and
// recording it records the run when it starts again; a run it journalled
// but did not mark, or that another process marked (having taken it up
// and recorded it there), is not recorded; the journal is empty after.
func TestNATSReconcile(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	st := openOwnStore(t)
	b, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix})
	require.NoError(t, err)
	_, other := openNATSBroker(t, u, prefix)

	now := time.Now().UTC()
	runs := map[string]*store.Run{}
	for _, id := range []string{"run_marked_here", "run_not_marked", "run_marked_elsewhere"} {
		runs[id] = &store.Run{ID: id, Recipe: "r", EventID: "ev_" + id, Status: "succeeded", StartedAt: now, FinishedAt: now, Attempt: 1}
		require.NoError(t, b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
			return st.AddFinishing(ctx, tx, runs[id], now)
		}))
	}
	require.NoError(t, b.ShareDone(ctx, "run_marked_here"))
	require.NoError(t, other.ShareDone(ctx, "run_marked_elsewhere"))
	require.NoError(t, b.Close()) // killed: the journal stays

	b2, err := natsbroker.New(ctx, st, natsbroker.Config{URL: u, Prefix: prefix})
	require.NoError(t, err)
	defer b2.Close()
	run, err := st.GetRun(ctx, "run_marked_here")
	require.NoError(t, err, "the run this process marked is recorded")
	require.Equal(t, "succeeded", run.Status)
	for _, id := range []string{"run_not_marked", "run_marked_elsewhere"} {
		_, err := st.GetRun(ctx, id)
		require.ErrorIs(t, err, store.ErrNotFound, "%s is not recorded here", id)
	}
	left, err := st.Finishing(ctx)
	require.NoError(t, err)
	require.Empty(t, left, "the journal is settled")
	done, _, err := b2.SharedRun(ctx, "run_not_marked")
	require.NoError(t, err)
	require.False(t, done, "a run not marked is left for whichever process takes it up")
}

// TestNATSHandleTimeoutLetsGo: a message the router has not settled
// within HandleTimeout stops being held: JetStream delivers it again
// after AckWait.
func TestNATSHandleTimeoutLetsGo(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	st := openOwnStore(t)
	b := openNATSWith(t, st, natsbroker.Config{URL: u, Prefix: prefix,
		AckWait: time.Second, HandleTimeout: 300 * time.Millisecond, DuplicateWindow: shortWindow})
	subCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	msgs, err := b.Subscriber().Subscribe(subCtx, broker.TopicEvents)
	require.NoError(t, err)
	sent := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	require.NoError(t, b.Publisher().Publish(broker.TopicEvents, sent))

	first := <-msgs // held, never settled
	require.Equal(t, sent.UUID, first.UUID)
	select {
	case again := <-msgs:
		require.Equal(t, sent.UUID, again.UUID, "the same message, delivered again")
		again.Ack()
	case <-time.After(10 * time.Second):
		t.Fatal("a message not settled within the handle timeout was not delivered again")
	}
	require.Equal(t, int64(1), b.Redelivered())
	first.Ack() // too late: the server has the second delivery's ack
}

// TestNATSRunsBucketOutOfReach: while the runs bucket cannot be read, a
// run waits (its message comes back) instead of going to the dead
// letters or running without knowing whether it ran elsewhere; a read of
// the bucket gives up after KVTimeout, so once the bucket is back the
// run goes on within a second or two.
func TestNATSRunsBucketOutOfReach(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	sink := newBrokerSink(t, 0)
	ix := brokerIndex(t, sink.srv.URL)
	st := openOwnStore(t)
	cfg := natsbroker.Config{URL: u, Prefix: prefix, KVTimeout: 200 * time.Millisecond}
	b := openNATSWith(t, st, cfg)
	er := runEngine(t, opened{st: st, b: b}, ix, "one")
	defer er.stop(t)
	nc, err := nats.Connect(u)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	require.NoError(t, js.DeleteStream("KV_"+prefix+"sous_runs"))

	ev := newBrokerLoad(1).events[0]
	fresh, err := b.Accept(ctx, ev)
	require.NoError(t, err)
	require.True(t, fresh)
	runID := pipeline.RunID(ev.ID, "broker-load")
	time.Sleep(3 * time.Second) // more than the handler's retries take
	_, err = st.GetRun(ctx, runID)
	require.ErrorIs(t, err, store.ErrNotFound, "the run was not given up")
	require.Empty(t, sink.counts(), "nor run without knowing whether it ran elsewhere")

	// another process, of the same configuration, brings the bucket back
	openNATSWith(t, openOwnStore(t), cfg)
	var run *store.Run
	require.Eventually(t, func() bool { run, err = st.GetRun(ctx, runID); return err == nil }, 5*time.Second, 10*time.Millisecond,
		"the run goes on soon: a read of the bucket does not wait as long as the run's timeout")
	require.Equal(t, "succeeded", run.Status, "%s %s", run.Reason, run.Error)
}

// TestNATSDeadLetterRecordedOnce: a run given up on (a dead letter) is
// recorded as dead once across the processes, by the one that took the
// dead letter first: the same dead letter coming again to another process
// records nothing there, and a late copy of the run's message does not
// run the dead run.
func TestNATSDeadLetterRecordedOnce(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	ctx := context.Background()
	sink := newBrokerSink(t, 0)
	ix := brokerIndex(t, sink.srv.URL)
	ev := newBrokerLoad(1).events[0]
	runID := pipeline.RunID(ev.ID, "broker-load")
	payload := runMsg(t, ev)
	deadLetter := func() *message.Message {
		m := message.NewMessage(watermill.NewUUID(), payload)
		m.Metadata.Set(middleware.PoisonedTopicKey, broker.TopicRuns)
		m.Metadata.Set(middleware.ReasonForPoisonedKey, "gave up")
		return m
	}

	st1, b1, er1 := startNATSProcess(t, u, prefix, time.Minute, ix, "engine-1")
	require.NoError(t, b1.Publisher().Publish(broker.TopicDeadLetters, deadLetter()))
	run := waitRun(t, st1, runID)
	require.Equal(t, "dead", run.Status)
	er1.stop(t)

	st2, b2, er2 := startNATSProcess(t, u, prefix, time.Minute, ix, "engine-2")
	defer er2.stop(t)
	require.NoError(t, b2.Publisher().Publish(broker.TopicDeadLetters, deadLetter()))
	require.NoError(t, b2.Publisher().Publish(broker.TopicRuns, message.NewMessage(watermill.NewUUID(), payload)))
	require.Eventually(t, func() bool {
		return b2.Depth(ctx, broker.TopicDeadLetters) == 0 && b2.Depth(ctx, broker.TopicRuns) == 0
	}, 10*time.Second, 10*time.Millisecond, "both were handled")
	_, err := st2.GetRun(ctx, runID)
	require.ErrorIs(t, err, store.ErrNotFound, "recorded in the first process only")
	require.Empty(t, sink.counts(), "the dead run did not run")
	left, err := st1.Finishing(ctx)
	require.NoError(t, err)
	require.Empty(t, left, "nothing left in the journal")
}

// TestNATSWarnsOfAnotherConfig: a process whose broker.ack_wait or
// pipeline.max_in_flight differs from those the stream's consumers were
// set up with warns, at Warn (Sous logs Watermill's Info at Debug), with
// both values; a process with the same config does not.
func TestNATSWarnsOfAnotherConfig(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	open := func(ackWait time.Duration) string {
		var buf logbuf.Buffer
		l := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelWarn}))
		openNATSWith(t, openOwnStore(t), natsbroker.Config{URL: u, Prefix: prefix, AckWait: ackWait, Concurrency: 8,
			Logger: broker.NewWatermillLogger(l)})
		return buf.String()
	}
	require.NotContains(t, open(time.Minute), "another broker.ack_wait", "the first process")
	require.NotContains(t, open(time.Minute), "another broker.ack_wait", "the same config")
	got := open(2 * time.Minute)
	require.Contains(t, got, "level=WARN")
	require.Contains(t, got, "another broker.ack_wait")
	require.Contains(t, got, "ack_wait=2m0s")
	require.Contains(t, got, "was_ack_wait=1m0s")
	require.Contains(t, got, "consumer="+prefix)
}
