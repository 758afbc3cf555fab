package zapier

import (
	"context"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

type outbox struct {
	got []*connector.OutboxMessage
	err error
}

func (o *outbox) Publish(_ context.Context, req *connector.Request, m *connector.OutboxMessage) (*connector.OutboxReceipt, error) {
	if o.err != nil {
		return nil, o.err
	}
	o.got = append(o.got, m)
	return &connector.OutboxReceipt{ID: "zi_" + req.RunID, Deliveries: []connector.OutboxDelivery{{ID: "zd_1", Subscriber: "zh_1", Status: "pending"}}}, nil
}

func TestNotify(t *testing.T) {
	req := &connector.Request{RunID: "r1", Step: "notify", With: connector.Values{FieldEvent: "order_paid", FieldData: map[string]any{"order": 7}}}
	t.Run("hands the item to the outbox", func(t *testing.T) {
		ob := &outbox{}
		out, err := notify(connector.WithOutbox(context.Background(), ob), req)
		require.NoError(t, err)
		require.Equal(t, map[string]any{"id": "zi_r1", "event": "order_paid", "subscribers": 1,
			"deliveries": []any{map[string]any{"id": "zd_1", "subscriber": "zh_1", "status": "pending"}}}, out)
		require.Equal(t, []*connector.OutboxMessage{{Channel: Channel, Topic: "order_paid", Body: map[string]any{"order": 7}}}, ob.got)
	})
	t.Run("forward_run sends the run instead of data", func(t *testing.T) {
		run := map[string]any{"run": map[string]any{"id": "r1", "recipe": "orders"}, "event": map[string]any{"body": map[string]any{"id": 7}},
			"steps": map[string]any{"charge": map[string]any{"output": map[string]any{"ok": true}, "status": "succeeded"}}}
		fwd := &connector.Request{RunID: "r1", Step: "notify", Run: run,
			With: connector.Values{FieldEvent: "order_paid", FieldData: map[string]any{}, FieldForwardRun: true}}
		ob := &outbox{}
		_, err := notify(connector.WithOutbox(context.Background(), ob), fwd)
		require.NoError(t, err)
		require.Equal(t, run, ob.got[0].Body)

		fwd.With[FieldData] = map[string]any{"order": 7}
		_, err = notify(connector.WithOutbox(context.Background(), ob), fwd)
		require.ErrorContains(t, err, "set one of them")
		require.Len(t, Notify.Validate(connector.Values{FieldForwardRun: true, FieldData: map[string]any{"x": 1}}), 1)
		require.Empty(t, Notify.Validate(connector.Values{FieldForwardRun: true, FieldData: map[string]any{}}))
	})
	t.Run("no outbox: a permanent error", func(t *testing.T) {
		_, err := notify(context.Background(), req)
		require.ErrorIs(t, err, connector.ErrNoOutbox)
		var ce *connector.Error
		require.ErrorAs(t, err, &ce)
		require.False(t, ce.Retryable)
	})
	t.Run("the store failing: retried", func(t *testing.T) {
		_, err := notify(connector.WithOutbox(context.Background(), &outbox{err: errors.New("disk full")}), req)
		var ce *connector.Error
		require.ErrorAs(t, err, &ce)
		require.True(t, ce.Retryable)
	})
}
