package pipeline_test

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
)

// TestBacklogReadWithItsClaims: on the embedded queue, events accepted
// while no engine ran wait in the queue table; the next engine claims
// them and reads their payloads with each claim (one query, not one per
// event), and every event runs its recipe once.
func TestBacklogReadWithItsClaims(t *testing.T) {
	open := sqliteCase().backing(t)
	sink := newBrokerSink(t, 0)
	ix := brokerIndex(t, sink.srv.URL)

	first := open(t)
	var events []*store.Event
	for i := range 40 {
		ev := webhookEvent(t, "/load", map[string]any{"n": i})
		ev.Recipes = []string{"broker-load"}
		fresh, err := first.b.Accept(context.Background(), ev)
		require.NoError(t, err)
		require.True(t, fresh)
		events = append(events, ev)
	}
	first.close()

	second := open(t)
	defer second.close()
	er := runEngine(t, second, ix, "second")
	defer er.stop(t)
	for _, ev := range events {
		run := waitRun(t, second.st, pipeline.RunID(ev.ID, "broker-load"))
		require.Equal(t, "succeeded", run.Status, run.Error)
	}
	counts := sink.counts()
	require.Len(t, counts, len(events))
	for key, n := range counts {
		require.Equal(t, 1, n, key)
	}
	require.Equal(t, int64(len(events)), second.b.(*sqlite.Broker).ClaimedPayloads(),
		"events of the backlog read one by one rather than with their claims")
}

// TestClaimedRedeliveryDoesNotRunAgain: an event whose row a crashed
// process left behind after its run was recorded (the crash came before
// the row's ack) is claimed by the next process and read with its claim,
// and its run, found finished, does not run again.
func TestClaimedRedeliveryDoesNotRunAgain(t *testing.T) {
	open := sqliteCase().backing(t)
	sink := newBrokerSink(t, 0)
	ix := brokerIndex(t, sink.srv.URL)

	first := open(t)
	er := runEngine(t, first, ix, "first")
	ev := webhookEvent(t, "/load", map[string]any{"n": 1})
	ev.Recipes = []string{"broker-load"}
	fresh, err := first.b.Accept(context.Background(), ev)
	require.NoError(t, err)
	require.True(t, fresh)
	runID := pipeline.RunID(ev.ID, "broker-load")
	require.Equal(t, "succeeded", waitRun(t, first.st, runID).Status)
	er.stop(t)
	// the row as the crash left it: delivered once, still leased
	msg, err := json.Marshal(broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Recipes: ev.Recipes})
	require.NoError(t, err)
	now := time.Now().UnixMilli()
	_, err = first.st.Write.Exec(`INSERT INTO queue (topic, uuid, payload, metadata, available_at, leased_until, deliveries)
		VALUES ($1, $2, $3, '{}', $4, $4, 1)`, broker.TopicEvents, "left-behind", msg, now+60_000)
	require.NoError(t, err)
	first.close()

	second := open(t) // releases the crashed process's leases
	defer second.close()
	er2 := runEngine(t, second, ix, "second")
	defer er2.stop(t)
	require.Eventually(t, func() bool {
		var n int
		require.NoError(t, second.st.Write.QueryRow(`SELECT COUNT(*) FROM queue`).Scan(&n))
		return n == 0
	}, 30*time.Second, 10*time.Millisecond, "the row left behind was not taken and acked")
	// at least once: should the first process's own ack of the event's row
	// have been lost in its shutdown, that row comes back too (the same
	// event, whose run does not run again either)
	require.GreaterOrEqual(t, second.b.(*sqlite.Broker).ClaimedPayloads(), int64(1), "the event was not read with its claim")
	require.Equal(t, map[string]int{runID + ":notify": 1}, sink.counts(), "the finished run ran again")
}
