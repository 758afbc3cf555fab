package pipeline_test

import (
	"context"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	natsbroker "github.com/sous-run/sous/engine/broker/nats"
)

// TestNATSCrashesCounted: on NATS, a message whose holder let it go
// unsettled (as a process that dies does) comes back counted, one more
// for each time; a nak is a normal end, not counted.
func TestNATSCrashesCounted(t *testing.T) {
	t.Parallel()
	u, prefix := testNATS(t)
	st := openOwnStore(t)
	b := openNATSWith(t, st, natsbroker.Config{URL: u, Prefix: prefix,
		AckWait: time.Second, HandleTimeout: 300 * time.Millisecond, DuplicateWindow: shortWindow})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	msgs, err := b.Subscriber().Subscribe(ctx, broker.TopicRuns)
	require.NoError(t, err)
	receive := func() *message.Message {
		t.Helper()
		select {
		case m := <-msgs:
			return m
		case <-time.After(15 * time.Second):
			t.Fatal("no delivery")
			return nil
		}
	}
	sent := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	require.NoError(t, b.Publisher().Publish(broker.TopicRuns, sent))
	for want := range 4 {
		m := receive() // never settled: let go after the handle timeout
		require.Equal(t, sent.UUID, m.UUID)
		require.Equal(t, want, broker.Crashes(m), "after %d deaths", want)
	}
	m := receive()
	require.Equal(t, 4, broker.Crashes(m))
	m.Nack()
	m = receive()
	require.Equal(t, 4, broker.Crashes(m), "the nakked delivery did not die, the four before it did")
	m.Ack()
	// a fresh message is not counted
	other := message.NewMessage(watermill.NewUUID(), []byte(`{}`))
	require.NoError(t, b.Publisher().Publish(broker.TopicRuns, other))
	o := receive()
	require.Equal(t, other.UUID, o.UUID)
	require.Equal(t, 0, broker.Crashes(o))
	o.Ack()
}
