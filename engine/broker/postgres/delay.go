package postgres

import (
	"context"
	"fmt"
	"maps"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sous-run/sous/engine/store"
)

// storeScheduler gives a broker that cannot delay a delivery durable
// delayed messages: a message is stored in the store's scheduled table,
// in the transaction that stores the run's checkpoint, and published when
// due by whichever process claims it first. Claim and publish happen in
// one transaction of the store, which must also hold the broker's
// messages: a message is either still scheduled or published, never lost
// or published twice by a crash in between. Every process polls the
// table (one indexed read per interval), and sleeps no longer than the
// earliest due time.
type storeScheduler struct {
	st *store.Store
	w  *store.Writer
	// publish publishes msgs on topic inside tx.
	publish func(ctx context.Context, tx store.Execer, topic string, msgs ...*message.Message) error
	poll    time.Duration
	batch   int
	logger  watermill.LoggerAdapter
	kick    chan struct{}
}

func newStoreScheduler(st *store.Store, w *store.Writer, poll time.Duration, logger watermill.LoggerAdapter,
	publish func(context.Context, store.Execer, string, ...*message.Message) error) *storeScheduler {
	return &storeScheduler{st: st, w: w, publish: publish, poll: poll, batch: 100, logger: logger, kick: make(chan struct{}, 1)}
}

// schedule runs save and stores msg to be published on topic at at, in
// one transaction. key says what msg is about (see store.IsScheduled).
func (s *storeScheduler) schedule(ctx context.Context, topic, key string, msg *message.Message, at time.Time, save store.Op) error {
	sm := &store.Scheduled{Topic: topic, Key: key, UUID: msg.UUID, Payload: msg.Payload, Metadata: maps.Clone(msg.Metadata), DueAt: at}
	err := s.w.Do(ctx, func(ctx context.Context, tx store.Execer) error {
		if save != nil {
			if err := save(ctx, tx); err != nil {
				return err
			}
		}
		return s.st.Schedule(ctx, tx, sm)
	})
	if err != nil {
		return fmt.Errorf("schedule the retry: %w", err)
	}
	// look again now: this one may be due before the next poll
	select {
	case s.kick <- struct{}{}:
	default:
	}
	return nil
}

// run publishes the messages that come due until stop is closed.
func (s *storeScheduler) run(stop <-chan struct{}) {
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-stop:
			return
		case <-s.kick:
		case <-timer.C:
		}
		// since Go 1.23, Reset leaves no stale tick behind
		timer.Reset(s.tick(stop))
	}
}

// tick publishes what is due and returns how long to sleep.
func (s *storeScheduler) tick(stop <-chan struct{}) time.Duration {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for {
		due, ok, err := s.st.NextDue(ctx)
		if err != nil {
			s.logger.Error("read the scheduled messages", err, nil)
			return s.poll
		}
		now := time.Now()
		if !ok {
			return s.poll
		}
		if due.After(now) {
			return min(s.poll, due.Sub(now))
		}
		n, err := s.release(ctx)
		if err != nil {
			s.logger.Error("publish the scheduled messages", err, nil)
			return s.poll
		}
		if n == 0 {
			// claimed by another process a moment ago: its transaction
			// publishes them, or gives them back
			return s.poll
		}
		select {
		case <-stop:
			return s.poll
		default:
		}
	}
}

// release claims up to a batch of due messages and publishes them, in
// one transaction; it returns how many.
func (s *storeScheduler) release(ctx context.Context) (int, error) {
	n := 0
	err := s.w.Do(ctx, func(ctx context.Context, tx store.Execer) error {
		n = 0 // an op may run twice
		due, err := s.st.ClaimDue(ctx, tx, time.Now(), s.batch)
		if err != nil {
			return err
		}
		var topics []string
		byTopic := map[string][]*message.Message{}
		for _, d := range due {
			m := message.NewMessage(d.UUID, d.Payload)
			if d.Metadata != nil {
				m.Metadata = d.Metadata
			}
			if _, ok := byTopic[d.Topic]; !ok {
				topics = append(topics, d.Topic)
			}
			byTopic[d.Topic] = append(byTopic[d.Topic], m)
		}
		for _, topic := range topics {
			if err := s.publish(ctx, tx, topic, byTopic[topic]...); err != nil {
				return fmt.Errorf("publish on %s: %w", topic, err)
			}
		}
		n = len(due)
		return nil
	})
	return n, err
}
