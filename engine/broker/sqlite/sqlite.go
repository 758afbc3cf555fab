// Package sqlite is the embedded default broker: the queue (sqlqueue)
// lives in the store's own SQLite database, so the dedup claim, the event
// and its queue message commit in one transaction.
package sqlite

import (
	"context"
	"encoding/json"
	"fmt"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/store"
)

// Broker is the embedded default: the queue lives in the store's own
// database, so the dedup claim, the event and its queue message commit in
// one transaction.
type Broker struct {
	Store  *store.Store
	Writer *store.Writer
	Queue  *sqlqueue.Queue

	claimedPayloads atomic.Int64 // events read with their claim
}

// New creates the queue's table in the store unless it exists, and builds
// the queue over the store's write handle.
func New(ctx context.Context, st *store.Store, cfg sqlqueue.Config) (*Broker, error) {
	if cfg.Table == "" {
		cfg.Table = st.Prefix + "queue"
	}
	if err := st.CreateTables(ctx, sqlqueue.Schema(cfg.Table)...); err != nil {
		return nil, fmt.Errorf("sqlite broker: %w", err)
	}
	w := store.NewWriter(st.Write, 512)
	w.Linger = cfg.CommitDelay
	w.Detached = true // the embedded database is local
	b := &Broker{Store: st, Writer: w}
	if cfg.Claimed == nil {
		cfg.Claimed = b.claimed
	}
	b.Queue = sqlqueue.New(st.Write, w, cfg)
	return b, nil
}

// Accept implements broker.Broker. The queued message leaves the payload out
// (it is in the events table, written in the same transaction); the
// matcher of this process gets it in memory, another reads it back.
func (b *Broker) Accept(ctx context.Context, ev *store.Event) (bool, error) {
	em := broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Recipes: ev.Recipes}
	msg, err := broker.NewMessage(em)
	if err != nil {
		return false, err
	}
	broker.WithLocal(msg, &broker.LocalEvent{Msg: em, Payload: ev.Payload, Decoded: ev.Decoded})
	var ins *sqlqueue.Inserted
	fresh, err := broker.AcceptEvent(ctx, b.Writer, b.Store, ev, func(ctx context.Context, tx store.Execer) error {
		var err error
		ins, err = b.Queue.Insert(ctx, tx, broker.TopicEvents, msg)
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

// AcceptAll implements broker.Broker.
func (b *Broker) AcceptAll(ctx context.Context, evs []*store.Event, also store.Op) (int, error) {
	msgs := make([]*message.Message, len(evs))
	for i, ev := range evs {
		em := broker.EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Recipes: ev.Recipes}
		msg, err := broker.NewMessage(em)
		if err != nil {
			return 0, err
		}
		broker.WithLocal(msg, &broker.LocalEvent{Msg: em, Payload: ev.Payload, Decoded: ev.Decoded})
		msgs[i] = msg
	}
	ins := make([]*sqlqueue.Inserted, len(evs))
	fresh, err := broker.AcceptEvents(ctx, b.Writer, b.Store, evs, func(ctx context.Context, tx store.Execer, i int) error {
		var err error
		ins[i], err = b.Queue.Insert(ctx, tx, broker.TopicEvents, msgs[i])
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
// broker.LocalEvent per message, nil for one that is not a lean event message
// (the matcher then decodes it, or reports it, as it does any). When the
// read fails, it gives nothing and each event is read when matched.
func (b *Broker) claimed(ctx context.Context, topic string, msgs []*message.Message) []any {
	if topic != broker.TopicEvents {
		return nil
	}
	values := make([]any, len(msgs))
	events := make([]*broker.LocalEvent, len(msgs))
	ids := make([]string, 0, len(msgs))
	for i, m := range msgs {
		var em broker.EventMsg
		if err := json.Unmarshal(m.Payload, &em); err != nil || em.ID == "" || len(em.Payload) > 0 {
			continue
		}
		events[i] = &broker.LocalEvent{Msg: em, Claimed: true}
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
		le.Payload = payloads[le.Msg.ID]
		values[i] = le
	}
	return values
}

// ClaimedPayloads counts the events whose payloads the broker read with
// their claim from the queue table (a backlog draining).
func (b *Broker) ClaimedPayloads() int64 { return b.claimedPayloads.Load() }

// Capabilities implements broker.Broker: messages need not carry event
// payloads (the consumers share the store that holds the events), and a
// nacked message can wait for its retry time in the queue.
func (b *Broker) Capabilities() broker.Capabilities {
	return broker.Capabilities{LeanMessages: true, DelayedRedelivery: true}
}

// Write implements broker.Broker.
func (b *Broker) Write(ctx context.Context, fn store.Op) error { return b.Writer.Do(ctx, fn) }

// Publisher implements broker.Broker.
func (b *Broker) Publisher() message.Publisher { return b.Queue }

// Subscriber implements broker.Broker.
func (b *Broker) Subscriber() message.Subscriber { return b.Queue }

// Depth implements broker.Broker.
func (b *Broker) Depth(ctx context.Context, topic string) int64 {
	n, err := b.Queue.Depth(ctx, topic)
	if err != nil {
		return -1
	}
	return n
}

// Close implements broker.Broker.
func (b *Broker) Close() error {
	qerr := b.Queue.Close()
	werr := b.Writer.Close()
	if qerr != nil {
		return qerr
	}
	return werr
}

var _ broker.Broker = (*Broker)(nil)
