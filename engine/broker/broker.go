// Package broker is what the engine (engine/pipeline) knows of a broker:
// the Broker interface, the Capabilities a broker declares, the messages
// and topics the engine and the brokers share, the conventions a
// delivered message carries (a retry time, a crash count, what was handed
// over in memory), and the helpers every broker uses (AcceptEvent,
// Drainer, the Watermill logger). The brokers themselves live in the
// packages below it (sqlite, memory, postgres, nats); engine/service
// picks one. The engine imports this package and never a concrete
// broker, and no broker imports the engine: internal/layering holds them
// to that.
package broker

import (
	"context"
	"regexp"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

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
	AcceptAll(ctx context.Context, evs []*store.Event, also store.Op) (int, error)
	// Write runs fn in a (group-committed) transaction of the store.
	Write(ctx context.Context, fn store.Op) error
	Publisher() message.Publisher
	Subscriber() message.Subscriber
	// Depth counts the messages waiting on a topic, -1 when unknown.
	Depth(ctx context.Context, topic string) int64
	// Capabilities says what the broker can do beyond carrying messages
	// at least once. It is the same for the life of the broker.
	Capabilities() Capabilities
	Close() error
}

// Capabilities is what a broker declares it can do, which the engine
// asks rather than guess from the broker's type. A capability that needs
// methods is an interface value, nil when the broker has not got it.
type Capabilities struct {
	// LeanMessages: the consumers read events from the store that
	// accepted them, so messages need not carry event payloads (the
	// embedded queue: one process, one store).
	LeanMessages bool
	// DelayedRedelivery: a message nacked with a retry time (RetryAt)
	// is not delivered again before it, and waits for it in the broker,
	// not in the process: a step retry longer than the engine's
	// MaxInlineDelay is then stored and taken up again at its time.
	DelayedRedelivery bool
	// Partitions is how many partitions the runs topic is split in, each
	// consumed one message at a time by one process at a time (so it
	// bounds the runs executing at once across all processes); 0 when
	// the topic is not partitioned.
	Partitions int
	// Rescheduler, when not nil, takes a paused run back its own way,
	// rather than by a nack with a retry time.
	Rescheduler Rescheduler
	// SharedState, when not nil, is how processes that keep stores of
	// their own share what became of each run.
	SharedState Sharer
}

// Rescheduler is a broker with its own way to take a paused run back,
// rather than a nack with a retry time. Reschedule runs save (which stores
// the run's checkpoint, state) in a transaction of the store and arranges
// for msg to be delivered again at at, in this process or another, not
// before. A broker whose processes keep stores of their own (NATS) has
// the message carry state, for the process that takes it up. It may
// settle msg itself; the handler returns its error, and acks msg when it
// returns nil and msg is not settled yet.
type Rescheduler interface {
	Reschedule(ctx context.Context, msg *message.Message, at time.Time, state []byte, save store.Op) error
}

// Sharer is a broker whose processes keep stores of their own (NATS)
// and share what became of each run: a run message that comes again to
// another process (an ack lost, a process that died between the run's
// record and its ack, an event published again) does not run a finished
// run again, and a run cut short in one process resumes in another after
// its last finished step.
type Sharer interface {
	// SharedState completes what this process's store says of a run that
	// did not finish here, its checkpoint (nil when none), with what msg
	// carries and what the other processes know: whether the run
	// finished in another process, else its latest checkpoint.
	SharedState(ctx context.Context, msg *message.Message, runID string, checkpoint []byte) (done bool, state []byte, err error)
	// SharedRun is whether the run finished in any process, else its
	// latest shared checkpoint (nil when none).
	SharedRun(ctx context.Context, runID string) (done bool, state []byte, err error)
	// ShareCheckpoint shares the run's checkpoint.
	ShareCheckpoint(ctx context.Context, runID string, state []byte) error
	// ShareDone marks the run finished.
	ShareDone(ctx context.Context, runID string) error
}

// ConsumerGroup is the consumer group (PostgreSQL) and queue group (NATS)
// that every sous process joins, so that processes share the work.
const ConsumerGroup = "sous"

var identRE = regexp.MustCompile(`^[A-Za-z0-9_]*$`)

// ValidPrefix reports whether prefix, which names a broker's tables or
// streams as it names the store's tables, holds only letters, digits and
// _.
func ValidPrefix(prefix string) bool { return identRE.MatchString(prefix) }

// AcceptEvent claims ev's dedup key and stores ev in one transaction of
// w, with enqueue (when not nil) in the same transaction. It reports
// whether the event is new; a duplicate stores and enqueues nothing.
func AcceptEvent(ctx context.Context, w *store.Writer, st *store.Store, ev *store.Event, enqueue store.Op) (bool, error) {
	var each func(ctx context.Context, tx store.Execer, i int) error
	if enqueue != nil {
		each = func(ctx context.Context, tx store.Execer, _ int) error { return enqueue(ctx, tx) }
	}
	fresh, err := AcceptEvents(ctx, w, st, []*store.Event{ev}, each, nil)
	if err != nil {
		return false, err
	}
	return fresh[0], nil
}

// AcceptEvents is AcceptEvent for several events and also, in one
// transaction of w: enqueue is called with the index of each new event.
// It reports which events were new.
func AcceptEvents(ctx context.Context, w *store.Writer, st *store.Store, evs []*store.Event,
	enqueue func(ctx context.Context, tx store.Execer, i int) error, also store.Op) ([]bool, error) {
	fresh := make([]bool, len(evs))
	err := w.Do(ctx, func(ctx context.Context, tx store.Execer) error {
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
