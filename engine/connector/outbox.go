package connector

import (
	"context"
	"errors"
)

// Outbox is where an action hands the runtime messages that it delivers,
// durably, to the subscribers of a topic (Zapier's REST hooks): the action
// never sees the store, and its step succeeds once the deliveries are
// safe, not once they are sent. Each message to each subscriber is a
// delivery of its own, stored before Publish returns and then sent and
// retried by the runtime apart from the others: a subscriber that fails
// delays no other, and fails no step.
//
// A step repeated with the same run and step (after a crash, or a retry)
// publishes the same message: the runtime keys it by Request.RunID and
// Request.Step, so that it is stored and sent once per subscriber.
//
// The runtime puts its outbox in the context of each action it calls
// (WithOutbox); an action finds it with OutboxFrom, and fails with
// ErrNoOutbox where there is none (`sous run`, which keeps no store).
type Outbox interface {
	Publish(ctx context.Context, req *Request, msg *OutboxMessage) (*OutboxReceipt, error)
}

// OutboxMessage is one message for the subscribers of a topic.
type OutboxMessage struct {
	// Channel names the runtime's delivery channel ("zapier": its REST
	// hooks); an outbox refuses a channel it does not serve.
	Channel string
	// Topic is what the subscribers subscribed to (a Zapier event name).
	Topic string
	// Body is the JSON object each subscriber receives. The runtime sets
	// its "id" to the message's stable id (OutboxReceipt.ID).
	Body map[string]any
}

// OutboxReceipt says what the outbox stored for a message.
type OutboxReceipt struct {
	// ID is the message's stable id: the same for every subscriber and
	// every repetition of the step.
	ID string `json:"id"`
	// Deliveries are the message's deliveries, one per subscriber.
	Deliveries []OutboxDelivery `json:"deliveries"`
}

// OutboxDelivery is one message's delivery to one subscriber.
type OutboxDelivery struct {
	ID         string `json:"id"`
	Subscriber string `json:"subscriber"`
	Status     string `json:"status"`
}

// ErrNoOutbox is what OutboxFrom's users answer where the runtime has no
// outbox.
var ErrNoOutbox = errors.New("no outbox here: deliveries to subscribers are made by `sous serve`")

type outboxKey struct{}

// WithOutbox returns a context that carries o to the actions called with it.
func WithOutbox(ctx context.Context, o Outbox) context.Context {
	return context.WithValue(ctx, outboxKey{}, o)
}

// OutboxFrom returns the outbox a context carries, nil when none.
func OutboxFrom(ctx context.Context) Outbox {
	o, _ := ctx.Value(outboxKey{}).(Outbox)
	return o
}
