package broker

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// What a delivered message carries, in its metadata or its context, from
// its broker to the engine: the conventions every broker follows.

// RetryAtKey is the metadata key a handler sets (unix milliseconds) before
// Nack to delay the redelivery: a durable retry (see RetryAt).
const RetryAtKey = "sous_retry_at"

// CrashesKey carries, on a delivered message, how many times at least a
// process died (or stopped without settling it) while it held the
// message: see Crashes.
const CrashesKey = "sous_crashes"

// RetryAt sets a durable redelivery time on a message before Nack.
func RetryAt(msg *message.Message, at time.Time) {
	msg.Metadata.Set(RetryAtKey, fmt.Sprint(at.UnixMilli()))
}

// Crashes reports how many times at least a process died, or stopped
// without settling it, while it held msg: the message may be poison, one
// whose handling kills the process, and a handler can set it aside past
// a few. A broker that counts them sets CrashesKey on the messages it
// delivers (see how the embedded queue, sqlqueue, counts them,
// and the NATS broker's natsDelivery). Zero for a message that never
// came back unsettled, and on a broker that does not count.
func Crashes(msg *message.Message) int {
	v := msg.Metadata.Get(CrashesKey)
	if v == "" {
		return 0 // nearly every message: no parse error to allocate
	}
	n, _ := strconv.Atoi(v)
	return n
}

// LocalKey is the context key of a message's in-memory value (see
// WithLocal). A broker that hands messages over in memory delivers it
// with the message.
type LocalKey struct{}

// WithLocal attaches v to msg for a local subscriber: when the message is
// handed over in memory, the delivered message carries v (see Local).
// Delivered from the broker's storage (another process, or after a
// restart), it does not: v must be something the consumer can do
// without, such as data it can read again from the store.
func WithLocal(msg *message.Message, v any) {
	msg.SetContext(context.WithValue(msg.Context(), LocalKey{}, v))
}

// Local returns the value attached with WithLocal to a message handed
// over in memory, or nil.
func Local(msg *message.Message) any { return msg.Context().Value(LocalKey{}) }

// DeliveryKey is the context key under which a broker keeps, in the
// context of a message it delivered, what it knows of the delivery: a
// Delivery.
type DeliveryKey struct{}

// Delivery is what a broker knows of a message it delivered.
type Delivery interface {
	// First reports whether this is the first delivery of the message
	// (see FirstDelivery).
	First() bool
}

// FirstDelivery reports whether msg is known to be delivered for the
// first time (the embedded queue, sqlqueue, knows): a
// handler can then skip looking for the work of an earlier delivery,
// which cannot have happened. False when the broker does not know.
func FirstDelivery(msg *message.Message) bool {
	d, ok := msg.Context().Value(DeliveryKey{}).(Delivery)
	return ok && d.First()
}

// Derive makes child, a message a handler publishes while handling
// parent, a child of parent, on a broker that keeps children with their
// parent (the embedded queue, sqlqueue): published on it, child is handed over in
// memory and parent stays until child is done. A no-op on other brokers.
func Derive(child, parent *message.Message) {
	if d := parent.Context().Value(DeliveryKey{}); d != nil {
		child.SetContext(context.WithValue(child.Context(), DeliveryKey{}, d))
	}
}
