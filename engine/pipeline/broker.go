package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/pubsub/gochannel"

	"github.com/sous-run/sous/engine/pipeline/sqlqueue"
	"github.com/sous-run/sous/engine/store"
)

// Broker carries the pipeline's messages and accepts events durably.
type Broker interface {
	// Accept stores an event with its dedup key and publishes it on the
	// events topic. It returns false, storing nothing, for a duplicate.
	// It returns only after the event is committed.
	Accept(ctx context.Context, ev *store.Event) (bool, error)
	// AcceptAll stores events as Accept does, in one transaction of the
	// store together with also (a poller's cursor), when not nil: either
	// all of it commits, or nothing. It returns how many events were new.
	AcceptAll(ctx context.Context, evs []*store.Event, also sqlqueue.Op) (int, error)
	// Write runs fn in a (group-committed) transaction of the store.
	Write(ctx context.Context, fn sqlqueue.Op) error
	Publisher() message.Publisher
	Subscriber() message.Subscriber
	// Depth counts the messages waiting on a topic, -1 when unknown.
	Depth(ctx context.Context, topic string) int64
	Close() error
}

// SQLBroker is the embedded default: the queue lives in the store's own
// database, so the dedup claim, the event and its queue message commit in
// one transaction.
type SQLBroker struct {
	Store  *store.Store
	Writer *sqlqueue.Writer
	Queue  *sqlqueue.Queue

	claimedPayloads atomic.Int64 // events read with their claim, for tests
}

// NewSQLBroker builds the queue over the store's write handle.
func NewSQLBroker(st *store.Store, cfg sqlqueue.Config) *SQLBroker {
	w := sqlqueue.NewWriter(st.Write, 512)
	w.Linger = cfg.CommitDelay
	w.Detached = true // the embedded database is local
	if cfg.Table == "" {
		cfg.Table = st.Prefix + "queue"
	}
	b := &SQLBroker{Store: st, Writer: w}
	if cfg.Claimed == nil {
		cfg.Claimed = b.claimed
	}
	b.Queue = sqlqueue.New(st.Write, w, cfg)
	return b
}

// Accept implements Broker. The queued message leaves the payload out
// (it is in the events table, written in the same transaction); the
// matcher of this process gets it in memory, another reads it back.
func (b *SQLBroker) Accept(ctx context.Context, ev *store.Event) (bool, error) {
	em := EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Recipes: ev.Recipes}
	msg, err := newMessage(em)
	if err != nil {
		return false, err
	}
	sqlqueue.WithLocal(msg, &localEvent{msg: em, payload: ev.Payload, decoded: ev.Decoded})
	var ins *sqlqueue.Inserted
	fresh, err := acceptEvent(ctx, b.Writer, b.Store, ev, func(ctx context.Context, tx sqlqueue.Tx) error {
		var err error
		ins, err = b.Queue.Insert(ctx, tx, TopicEvents, msg)
		return err
	})
	if err != nil {
		return false, err
	}
	if fresh {
		b.Queue.Delivered(ins)
	}
	return fresh, nil
}

// AcceptAll implements Broker.
func (b *SQLBroker) AcceptAll(ctx context.Context, evs []*store.Event, also sqlqueue.Op) (int, error) {
	msgs := make([]*message.Message, len(evs))
	for i, ev := range evs {
		em := EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Recipes: ev.Recipes}
		msg, err := newMessage(em)
		if err != nil {
			return 0, err
		}
		sqlqueue.WithLocal(msg, &localEvent{msg: em, payload: ev.Payload, decoded: ev.Decoded})
		msgs[i] = msg
	}
	ins := make([]*sqlqueue.Inserted, len(evs))
	fresh, err := acceptEvents(ctx, b.Writer, b.Store, evs, func(ctx context.Context, tx sqlqueue.Tx, i int) error {
		var err error
		ins[i], err = b.Queue.Insert(ctx, tx, TopicEvents, msgs[i])
		return err
	}, also)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, ok := range fresh {
		if ok {
			b.Queue.Delivered(ins[i])
			n++
		}
	}
	return n, nil
}

// claimed reads the payloads of a claim of event messages (a backlog
// draining) in one query, rather than one each when matched: a
// localEvent per message, nil for one that is not a lean event message
// (the matcher then decodes it, or reports it, as it does any). When the
// read fails, it gives nothing and each event is read when matched.
func (b *SQLBroker) claimed(ctx context.Context, topic string, msgs []*message.Message) []any {
	if topic != TopicEvents {
		return nil
	}
	values := make([]any, len(msgs))
	events := make([]*localEvent, len(msgs))
	ids := make([]string, 0, len(msgs))
	for i, m := range msgs {
		var em EventMsg
		if err := json.Unmarshal(m.Payload, &em); err != nil || em.ID == "" || len(em.Payload) > 0 {
			continue
		}
		events[i] = &localEvent{msg: em, claimed: true}
		ids = append(ids, em.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	payloads, err := b.Store.EventPayloads(ctx, ids)
	if err != nil {
		return nil
	}
	b.claimedPayloads.Add(int64(len(payloads)))
	for i, le := range events {
		if le == nil {
			continue
		}
		// an event no longer stored keeps an empty payload: the matcher
		// looks it up again and reports it gone
		le.payload = payloads[le.msg.ID]
		values[i] = le
	}
	return values
}

// Lean reports that messages need not carry event payloads: the
// consumers share the store that holds the events.
func (b *SQLBroker) Lean() bool { return true }

// acceptEvent claims ev's dedup key and stores ev in one transaction of
// w, with enqueue (when not nil) in the same transaction. It reports
// whether the event is new; a duplicate stores and enqueues nothing.
func acceptEvent(ctx context.Context, w *sqlqueue.Writer, st *store.Store, ev *store.Event, enqueue sqlqueue.Op) (bool, error) {
	fresh := false
	err := w.Do(ctx, func(ctx context.Context, tx sqlqueue.Tx) error {
		fresh = false // an op may run twice: decide from what this try reads
		ok, err := st.ClaimDedup(ctx, tx, ev.DedupKey, ev.ID, ev.ReceivedAt)
		if err != nil || !ok {
			return err
		}
		if err := st.InsertEvent(ctx, tx, ev); err != nil {
			return err
		}
		if enqueue != nil {
			if err := enqueue(ctx, tx); err != nil {
				return err
			}
		}
		fresh = true
		return nil
	})
	if err != nil {
		return false, err
	}
	return fresh, nil
}

// acceptEvents is acceptEvent for several events and also, in one
// transaction of w: enqueue is called with the index of each new event.
// It reports which events were new.
func acceptEvents(ctx context.Context, w *sqlqueue.Writer, st *store.Store, evs []*store.Event,
	enqueue func(ctx context.Context, tx sqlqueue.Tx, i int) error, also sqlqueue.Op) ([]bool, error) {
	fresh := make([]bool, len(evs))
	err := w.Do(ctx, func(ctx context.Context, tx sqlqueue.Tx) error {
		clear(fresh) // an op may run twice: decide from what this try reads
		for i, ev := range evs {
			ok, err := st.ClaimDedup(ctx, tx, ev.DedupKey, ev.ID, ev.ReceivedAt)
			if err != nil {
				return err
			}
			if !ok {
				continue
			}
			if err := st.InsertEvent(ctx, tx, ev); err != nil {
				return err
			}
			if enqueue != nil {
				if err := enqueue(ctx, tx, i); err != nil {
					return err
				}
			}
			fresh[i] = true
		}
		if also != nil {
			return also(ctx, tx)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return fresh, nil
}

func eventMessage(ev *store.Event) (*message.Message, error) {
	return newMessage(EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Recipes: ev.Recipes, Payload: ev.Payload})
}

// DelayedRedelivery reports that a nacked message can wait for its retry
// time in the queue.
func (b *SQLBroker) DelayedRedelivery() bool { return true }

// Write implements Broker.
func (b *SQLBroker) Write(ctx context.Context, fn sqlqueue.Op) error { return b.Writer.Do(ctx, fn) }

// Publisher implements Broker.
func (b *SQLBroker) Publisher() message.Publisher { return b.Queue }

// Subscriber implements Broker.
func (b *SQLBroker) Subscriber() message.Subscriber { return b.Queue }

// Depth implements Broker.
func (b *SQLBroker) Depth(ctx context.Context, topic string) int64 {
	n, err := b.Queue.Depth(ctx, topic)
	if err != nil {
		return -1
	}
	return n
}

// Close implements Broker.
func (b *SQLBroker) Close() error {
	qerr := b.Queue.Close()
	werr := b.Writer.Close()
	if qerr != nil {
		return qerr
	}
	return werr
}

// MemoryBroker carries messages on Go channels (for tests and trials):
// events and runs are stored, but a message in flight is lost with the
// process.
type MemoryBroker struct {
	Store  *store.Store
	Writer *sqlqueue.Writer
	pubsub *gochannel.GoChannel
}

// NewMemoryBroker returns a gochannel broker over the store.
func NewMemoryBroker(st *store.Store) *MemoryBroker {
	ps := gochannel.NewGoChannel(gochannel.Config{OutputChannelBuffer: 1024, Persistent: false}, watermill.NopLogger{})
	return &MemoryBroker{Store: st, Writer: sqlqueue.NewWriter(st.Write, 512), pubsub: ps}
}

// Accept implements Broker.
func (b *MemoryBroker) Accept(ctx context.Context, ev *store.Event) (bool, error) {
	fresh, err := acceptEvent(ctx, b.Writer, b.Store, ev, nil)
	if err != nil || !fresh {
		return false, err
	}
	msg, err := eventMessage(ev)
	if err != nil {
		return false, err
	}
	if err := b.pubsub.Publish(TopicEvents, msg); err != nil {
		return false, fmt.Errorf("publish event: %w", err)
	}
	return true, nil
}

// AcceptAll implements Broker: the events and also commit together, then
// the new events are published (lost with the process, as every message
// of this broker).
func (b *MemoryBroker) AcceptAll(ctx context.Context, evs []*store.Event, also sqlqueue.Op) (int, error) {
	fresh, err := acceptEvents(ctx, b.Writer, b.Store, evs, nil, also)
	if err != nil {
		return 0, err
	}
	n := 0
	for i, ok := range fresh {
		if !ok {
			continue
		}
		msg, err := eventMessage(evs[i])
		if err != nil {
			return n, err
		}
		if err := b.pubsub.Publish(TopicEvents, msg); err != nil {
			return n, fmt.Errorf("publish event: %w", err)
		}
		n++
	}
	return n, nil
}

// Write implements Broker.
func (b *MemoryBroker) Write(ctx context.Context, fn sqlqueue.Op) error { return b.Writer.Do(ctx, fn) }

// Publisher implements Broker.
func (b *MemoryBroker) Publisher() message.Publisher { return b.pubsub }

// Subscriber implements Broker.
func (b *MemoryBroker) Subscriber() message.Subscriber { return b.pubsub }

// Depth implements Broker.
func (b *MemoryBroker) Depth(context.Context, string) int64 { return -1 }

// Close implements Broker.
func (b *MemoryBroker) Close() error {
	err := b.pubsub.Close()
	b.Writer.Close()
	return err
}

// retryAt sets a durable redelivery time on a message before Nack.
func retryAt(msg *message.Message, at time.Time) {
	msg.Metadata.Set(sqlqueue.RetryAtKey, fmt.Sprint(at.UnixMilli()))
}

// countTrue counts the true values of l.
func countTrue(l []bool) int {
	n := 0
	for _, ok := range l {
		if ok {
			n++
		}
	}
	return n
}
