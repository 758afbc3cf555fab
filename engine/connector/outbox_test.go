package connector_test

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

type fakeOutbox struct{ got []*connector.OutboxMessage }

func (f *fakeOutbox) Publish(_ context.Context, req *connector.Request, m *connector.OutboxMessage) (*connector.OutboxReceipt, error) {
	f.got = append(f.got, m)
	return &connector.OutboxReceipt{ID: req.RunID + ":" + req.Step}, nil
}

// TestOutbox: a context carries the outbox to the action, and none
// carries none.
func TestOutbox(t *testing.T) {
	ctx := context.Background()
	require.Nil(t, connector.OutboxFrom(ctx))
	ob := &fakeOutbox{}
	ctx = connector.WithOutbox(ctx, ob)
	got := connector.OutboxFrom(ctx)
	require.NotNil(t, got)
	r, err := got.Publish(ctx, &connector.Request{RunID: "r", Step: "s"}, &connector.OutboxMessage{Channel: "zapier", Topic: "t"})
	require.NoError(t, err)
	require.Equal(t, "r:s", r.ID)
	require.Len(t, ob.got, 1)
}
