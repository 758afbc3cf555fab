// Package memory is the broker that carries messages on Go channels
// (gochannel), for tests and trials: events and runs are stored, but a
// message in flight is lost with the process.
package memory

import (
	"context"
	"fmt"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/store"
)

// Broker carries messages on Go channels (for tests and trials):
// events and runs are stored, but a message in flight is lost with the
// process.
type Broker struct {
	Store  *store.Store
	Writer *store.Writer
	pubsub *gochannel.GoChannel
}

// New returns a gochannel broker over the store.
func New(st *store.Store) *Broker {
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024, Persistent: false}, watermill.NopLogger{})
	return &Broker{Store: st, Writer: store.NewWriter(st.Write, 512), pubsub: ps}
}

// Accept implements broker.Broker.
func (b *Broker) Accept(ctx context.Context, ev *store.Event) (bool, error) {
	fresh, err := broker.AcceptEvent(ctx, b.Writer, b.Store, ev, nil)
	if err != nil || !fresh {
		return false, err
	}
	msg, err := broker.EventMessage(ev)
	if err != nil {
		return false, err
	}
	if err := b.pubsub.Publish(broker.TopicEvents, msg); err != nil {
		return false, fmt.Errorf("publish event: %w", err)
	}
	return true, nil
}

// AcceptAll implements broker.Broker: the events and also commit
// together, then the new events are published (lost with the process, as
// every message of this broker).
func (b *Broker) AcceptAll(ctx context.Context, evs []*store.Event, also store.Op) (int, error) {
	fresh, err := broker.AcceptEvents(ctx, b.Writer, b.Store, evs, nil, also)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, ok := range fresh {
		if !ok {
			continue
		}
		msg, err := broker.EventMessage(evs[i])
		if err != nil {
			return n, err
		}
		if err := b.pubsub.Publish(broker.TopicEvents, msg); err != nil {
			return n, fmt.Errorf("publish event: %w", err)
		}
		n++
	}
	return n, nil
}

// Write implements broker.Broker.
func (b *Broker) Write(ctx context.Context, fn store.Op) error { return b.Writer.Do(ctx, fn) }

// Publisher implements broker.Broker.
func (b *Broker) Publisher() message.Publisher { return b.pubsub }

// Subscriber implements broker.Broker.
func (b *Broker) Subscriber() message.Subscriber { return b.pubsub }

// Capabilities implements broker.Broker: none beyond carrying messages.
func (b *Broker) Capabilities() broker.Capabilities { return broker.Capabilities{} }

// Depth implements broker.Broker.
func (b *Broker) Depth(context.Context, string) int64 { return -1 }

// Close implements broker.Broker.
func (b *Broker) Close() error {
	err := b.pubsub.Close()
	b.Writer.Close()
	return err
}

var _ broker.Broker = (*Broker)(nil)
