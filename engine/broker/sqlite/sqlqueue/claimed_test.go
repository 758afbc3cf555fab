package sqlqueue_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
)

// TestQueueClaimedHook: the messages of a claim from the table go through
// Config.Claimed before they are delivered, and each carries the value it
// gave as its Local value; a message handed over in memory does not (it
// has its publisher's), and a hook that gives a value per message of
// another claim than the one it got is ignored.
func TestQueueClaimedHook(t *testing.T) {
	db := openDB(t)
	var (
		mu   sync.Mutex
		seen = map[string][]string{}
	)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, Claimed: func(_ context.Context, topic string, msgs []*message.Message) []any {
		mu.Lock()
		defer mu.Unlock()
		values := make([]any, len(msgs))
		for i, m := range msgs {
			seen[topic] = append(seen[topic], m.UUID)
			values[i] = "v-" + m.UUID
		}
		if topic == "wrong" {
			return values[:len(values)-1]
		}
		return values
	}})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	for _, uuid := range []string{"a", "b", "c"} {
		require.NoError(t, q.Publish("t", message.NewMessage(uuid, []byte("x"))))
	}
	require.NoError(t, q.Publish("wrong", message.NewMessage("w1", []byte("x")), message.NewMessage("w2", []byte("x"))))

	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	for range 3 {
		m := receive(t, ch, 5*time.Second)
		require.Equal(t, "v-"+m.UUID, broker.Local(m), "claimed message %s", m.UUID)
		m.Ack()
	}
	mu.Lock()
	require.ElementsMatch(t, []string{"a", "b", "c"}, seen["t"])
	mu.Unlock()

	// published while subscribed: handed over in memory, not claimed
	handed := message.NewMessage("d", []byte("x"))
	broker.WithLocal(handed, "publisher's")
	require.NoError(t, q.Publish("t", handed))
	m := receive(t, ch, 5*time.Second)
	require.Equal(t, "d", m.UUID)
	require.Equal(t, "publisher's", broker.Local(m))
	m.Ack()
	mu.Lock()
	require.False(t, slices.Contains(seen["t"], "d"), "a message handed over in memory went through the hook")
	mu.Unlock()

	wrong, err := q.Subscribe(ctx, "wrong")
	require.NoError(t, err)
	for range 2 {
		m := receive(t, wrong, 5*time.Second)
		require.Nil(t, broker.Local(m), "a value from a hook that miscounted")
		m.Ack()
	}
}
