// Package nats is the NATS JetStream broker: messages on a stream that
// several sous processes share, events and runs in each process's own
// store (see Broker), and what the processes must share of each run in
// JetStream key-value buckets (natskv.go).
package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wnats "github.com/ThreeDotsLabs/watermill-nats/v2/pkg/nats"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/store"
)

// Config tunes the NATS JetStream broker.
type Config struct {
	// URL of the NATS server, nats://127.0.0.1:4222 when empty.
	URL string
	// Prefix names the stream, its subjects and its consumers (tests
	// isolate with it): stream <prefix>sous, subjects <prefix>sous.<topic>.
	Prefix string
	// AckWait is how long JetStream waits for a delivery's ack, or a sign
	// that it is in progress, before it delivers the message again,
	// possibly to another process: how soon the work of a process that
	// died is taken up. A process says so every AckWait/3 for each
	// message it holds, however long its run takes; 30 s by default.
	AckWait time.Duration
	// HandleTimeout bounds how long a process waits for a message it
	// handed to the router to be settled; then it lets it go (JetStream
	// delivers it again after AckWait). It must exceed the engine's run
	// timeout; 16 minutes by default.
	HandleTimeout time.Duration
	// Concurrency is how many runs one process handles at once.
	Concurrency int
	// MaxAckPending bounds the messages in flight on a topic across all
	// processes; by default four times Concurrency. A run paused for a
	// durable retry is not in flight: it waits on the parked subject.
	MaxAckPending int
	// MaxParked bounds the runs that wait for their durable retry time
	// on the parked subject's consumer, across all processes; 100,000 by
	// default, or the account's bound on pending acks when that is lower.
	// Beyond it, a paused run waits in the stream, undelivered, until an
	// earlier one is due: its retry comes late, it is not lost.
	MaxParked int
	// DuplicateWindow is how long JetStream remembers a message id: within
	// it, the same dedup key accepted by two processes yields one event.
	DuplicateWindow time.Duration
	// DedupTTL is how long the processes share an accepted dedup key
	// (retention.dedup): within it the same key accepted by any process
	// yields one event; 7 days by default.
	DedupTTL time.Duration
	// MaxAge drops messages no process consumed in that time; the
	// processes share what became of a run as long.
	MaxAge time.Duration
	// KVTimeout bounds one operation on the key-value buckets the
	// processes share; 5 s by default.
	KVTimeout time.Duration
	// DrainTimeout bounds how long closing waits for the messages in
	// flight to be acknowledged.
	DrainTimeout time.Duration
	Logger       watermill.LoggerAdapter
}

func (c *Config) setDefaults() {
	if c.URL == "" {
		c.URL = nats.DefaultURL
	}
	if c.AckWait <= 0 {
		c.AckWait = 30 * time.Second
	}
	if c.HandleTimeout <= 0 {
		c.HandleTimeout = 16 * time.Minute
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 32
	}
	if c.MaxAckPending <= 0 {
		c.MaxAckPending = 4 * c.Concurrency
	}
	if c.MaxParked <= 0 {
		c.MaxParked = 100_000
	}
	if c.DuplicateWindow <= 0 {
		c.DuplicateWindow = time.Hour
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.KVTimeout <= 0 {
		c.KVTimeout = 5 * time.Second
	}
	if c.MaxAge <= 0 {
		c.MaxAge = 7 * 24 * time.Hour
	}
	if c.DedupTTL <= 0 {
		c.DedupTTL = 7 * 24 * time.Hour
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Broker carries messages on a NATS JetStream stream and keeps events
// and runs in the process's own store (the embedded SQLite one). Every
// topic has a durable consumer that all sous processes join as the queue
// group "sous", so they share the work; the stream is a work queue, so an
// acknowledged message is gone.
//
// Delivery is at least once, and not atomic with the store: the store
// and the stream commit separately. Accept claims the dedup key and stores
// the event with an outbox entry, claims the key in the dedup bucket the
// processes share (natskv.go), then publishes; when the publish fails it
// undoes all four, so the sender's retry is accepted (when the shared
// claim cannot be undone, the event is kept and the relay publishes it:
// the retry is a duplicate). Once the stream
// confirms, the entry is deleted (in batches). A process that dies between
// its commit and its publish leaves the entry: when it starts again, it
// publishes the event before anything else (the sender's retry meanwhile
// is taken for a duplicate, which the event's run makes true). An entry
// whose event the stream had already (the process died after the publish,
// before the entry went) is published again with the same message id,
// which the stream drops within its duplicate window. A publish that timed
// out may still have been stored: the retry is then a duplicate to the
// stream, and the run goes ahead without its event in the store (it
// cannot be replayed). A message whose ack was lost is delivered again,
// possibly to another process, whose store does not know the run
// finished: the runs bucket the processes share tells it (a run is
// marked finished there once it is recorded), and holds each run's
// latest checkpoint, so a run cut short in one process resumes in
// another after its last finished step. The process that marks a run
// finished alone records it (Engine.saveShared, reconcile), so a run is
// recorded once. What is left: a process that dies before the mark has
// the run's last step go again elsewhere, and a handler that outlives
// HandleTimeout stops being held, so its message goes to another
// process after AckWait while it still runs. Run ids stay deterministic,
// and actions get an idempotency key per run and step.
// The consumers push, and a process holds what it is pushed, telling the
// server that it is in progress (see natsSubs): the messages of a process
// that stops are nakked, and those of one that dies come back after
// AckWait (MaxAckPending bounds how many).
//
// A durable retry (Reschedule) stores the run's checkpoint, then publishes
// a copy of the run's message, with its retry time, on the parked subject
// and acks the delivery. The parked subject's consumer, which every
// process also joins, naks each copy with a delay until its retry time
// (JetStream keeps it meanwhile, across restarts of any process), then
// publishes it on the runs subject again. A run waiting for its retry so
// holds nothing of the runs consumer's MaxAckPending: were the delayed
// nak made on the run's own delivery, as many paused runs as
// MaxAckPending (a Slack outage, say) would stop every recipe's runs
// until the first retry came due. The copy carries the checkpoint (up to
// maxCarriedState), so a retry delivered to another process, whose store
// does not have it, resumes the run there; a larger one is in the
// checkpoints object store, where that process finds it (see
// ShareCheckpoint).
// Either way the checkpoint of a run taken up elsewhere stays behind here
// until Store.Prune drops it (see store.MaxCheckpointWait).
type Broker struct {
	Store  *store.Store
	Writer *store.Writer

	cfg       Config
	stream    string
	nc        *nats.Conn // publishes and manages the stream
	js        nats.JetStreamContext
	marshaler wnats.NATSMarshaler
	pub       *wnats.Publisher
	// dedup and runs are the key-value buckets the processes share, and
	// checkpoints the object store of their large checkpoints (see
	// natskv.go)
	dedup, runs jetstream.KeyValue
	checkpoints jetstream.ObjectStore
	// stored holds the runs whose checkpoint in the object store this
	// process put there or read, with when (a time.Time), so that their
	// end here deletes it; see remember
	stored sync.Map
	// remembered counts the calls to remember, which sweeps stored
	// every sweepStoredEvery of them
	remembered atomic.Int64
	// instance is the id of this process's store, which names the
	// process in the runs it marks finished
	instance string
	// release is releaseShared (tests make it fail)
	release    func(ctx context.Context, ev *store.Event, rev uint64) error
	publisher  *natsPublisher
	subscriber *broker.Drainer
	// raw maps each message this process holds to its JetStream
	// delivery, for the heartbeat and Reschedule
	raw sync.Map // *message.Message -> *nats.Msg
	// redelivered counts the deliveries this process took that JetStream
	// had delivered before
	redelivered atomic.Int64
	// published takes the ids of published events to the relay, which
	// deletes their outbox entries
	published chan string
	stop      chan struct{}
	wg        sync.WaitGroup
	closeOnce sync.Once
	closeErr  error
}

var _ broker.Broker = (*Broker)(nil)

// New connects, creates the stream and the topics' durable
// consumers (or updates them to cfg) and returns the broker. st is the
// process's own store, already migrated: the broker creates its own
// tables in it.
func New(ctx context.Context, st *store.Store, cfg Config) (*Broker, error) {
	// the same prefix names the store's tables
	if !broker.ValidPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("nats broker: prefix %q may hold only letters, digits and _", cfg.Prefix)
	}
	cfg.setDefaults()
	// the outbox and the journal of runs finished, in this process's
	// own store
	if err := st.CreateTables(ctx, store.OwnStoreTables...); err != nil {
		return nil, fmt.Errorf("nats broker: %w", err)
	}
	b := &Broker{Store: st, cfg: cfg, stream: cfg.Prefix + "sous"}
	b.release = b.releaseShared
	var err error
	if b.nc, err = b.connect("publisher"); err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			b.nc.Close()
		}
	}()
	if b.js, err = b.nc.JetStream(); err != nil {
		return nil, fmt.Errorf("nats broker: jetstream: %w", err)
	}
	if err := b.provision(ctx); err != nil {
		return nil, err
	}
	njs, err := jetstream.New(b.nc)
	if err != nil {
		return nil, fmt.Errorf("nats broker: jetstream: %w", err)
	}
	if b.dedup, err = b.keyValue(ctx, njs, natsDedupBucket, cfg.DedupTTL); err != nil {
		return nil, err
	}
	if b.runs, err = b.keyValue(ctx, njs, natsRunsBucket, cfg.MaxAge); err != nil {
		return nil, err
	}
	if b.checkpoints, err = b.objectStore(ctx, njs, natsCheckpointsBucket, cfg.MaxAge); err != nil {
		return nil, err
	}
	if b.instance, err = st.InstanceID(ctx); err != nil {
		return nil, fmt.Errorf("nats broker: %w", err)
	}
	b.pub, err = wnats.NewPublisherWithNatsConn(b.nc, wnats.PublisherPublishConfig{
		Marshaler:         &b.marshaler,
		SubjectCalculator: b.subjects,
	}, cfg.Logger)
	if err != nil {
		return nil, fmt.Errorf("nats broker: publisher: %w", err)
	}
	b.Writer = store.NewWriter(st.Write, 512)
	// before any run message comes: it is the run's record that counts
	if err := b.reconcile(ctx); err != nil {
		b.Writer.Close()
		return nil, err
	}
	b.published, b.stop = make(chan string, 1024), make(chan struct{})
	b.wg.Add(2)
	go b.relay(time.Now())
	go b.heartbeat()
	b.publisher = &natsPublisher{b: b}
	subs := &natsSubs{b: b}
	b.subscriber = broker.NewDrainer(subs.subscribe, subs.close, cfg.DrainTimeout, cfg.Logger)
	ok = true
	return b, nil
}

func (b *Broker) connect(role string) (*nats.Conn, error) {
	nc, err := nats.Connect(b.cfg.URL, nats.Name("sous "+role), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return nil, fmt.Errorf("nats broker: connect to %s: %w", RedactURL(b.cfg.URL), err)
	}
	return nc, nil
}

// RedactURL is a NATS server URL (or a comma-separated list of them) without
// the passwords or tokens its user parts may hold, for errors and logs.
func RedactURL(servers string) string {
	parts := strings.Split(servers, ",")
	for i, p := range parts {
		u, err := url.Parse(strings.TrimSpace(p))
		if err != nil {
			parts[i] = "(an unreadable URL)"
			continue
		}
		if u.User != nil {
			if _, ok := u.User.Password(); !ok {
				u.User = url.User("xxxxx") // a token alone
			}
		}
		parts[i] = u.Redacted()
	}
	return strings.Join(parts, ",")
}

func (b *Broker) subject(topic string) string { return b.stream + "." + topic }

func (b *Broker) durable(topic string) string { return b.cfg.Prefix + "sous_" + topic }

func (b *Broker) subjects(queueGroup, topic string) *wnats.SubjectDetail {
	return &wnats.SubjectDetail{Primary: b.subject(topic), QueueGroup: queueGroup}
}

var natsTopics = []string{broker.TopicEvents, broker.TopicRuns, broker.TopicDeadLetters}

// natsParked is the subject (after the stream's name) and consumer where
// runs wait for their durable retry (see Broker). It is not a topic
// of the router: the broker handles its deliveries itself.
const natsParked = "parked"

// parkedAckWait is how long the parked consumer waits for a delivery's
// nak or ack before delivering it again.
const parkedAckWait = 30 * time.Second

// natsRetryAtHdr is the header of a parked run message that holds its
// retry time, in Unix milliseconds.
const natsRetryAtHdr = "Sous-Retry-At"

// provision creates or updates the stream and one durable push consumer
// per topic and one for the parked runs, delivering to the queue group. The consumers are created
// here rather than by the subscriptions, which would delete them when
// they unsubscribe, under the other processes' feet.
func (b *Broker) provision(ctx context.Context) error {
	opt := nats.Context(ctx)
	sc := &nats.StreamConfig{
		Name:       b.stream,
		Subjects:   []string{b.stream + ".>"},
		Retention:  nats.WorkQueuePolicy,
		Storage:    nats.FileStorage,
		Duplicates: b.cfg.DuplicateWindow,
		MaxAge:     b.cfg.MaxAge,
	}
	if _, err := b.js.AddStream(sc, opt); err != nil {
		if !errors.Is(err, nats.ErrStreamNameAlreadyInUse) {
			return fmt.Errorf("nats broker: create stream %s: %w", b.stream, err)
		}
		if _, err := b.js.UpdateStream(sc, opt); err != nil {
			return fmt.Errorf("nats broker: update stream %s: %w", b.stream, err)
		}
	}
	// the account may bound a consumer's pending acks: creating one above
	// the bound fails
	limit := 0
	if ai, err := b.js.AccountInfo(opt); err == nil && ai.Limits.MaxAckPending > 0 {
		limit = ai.Limits.MaxAckPending
	}
	for _, topic := range append(natsTopics, natsParked) {
		ackWait, pending := b.cfg.AckWait, b.cfg.MaxAckPending
		if topic == natsParked {
			// its deliveries are handled at once (a nak or a publish)
			ackWait, pending = parkedAckWait, b.cfg.MaxParked
		}
		if limit > 0 && pending > limit {
			b.cfg.Logger.Info("the account bounds a consumer's pending acks: the consumer takes that bound", watermill.LogFields{
				"consumer": b.durable(topic), "wanted": pending, "bound": limit})
			pending = limit
		}
		cc := &nats.ConsumerConfig{
			Durable:        b.durable(topic),
			DeliverSubject: "_sous_deliver." + b.subject(topic),
			DeliverGroup:   broker.ConsumerGroup,
			FilterSubject:  b.subject(topic),
			DeliverPolicy:  nats.DeliverAllPolicy,
			AckPolicy:      nats.AckExplicitPolicy,
			AckWait:        ackWait,
			MaxAckPending:  pending,
			MaxDeliver:     -1,
		}
		if ci, err := b.js.ConsumerInfo(b.stream, cc.Durable, opt); err == nil &&
			(ci.Config.AckWait != cc.AckWait || ci.Config.MaxAckPending != cc.MaxAckPending) {
			// another process set it up otherwise: it now takes this
			// one's settings, and the other's held deliveries may time
			// out (a shorter ack wait than its heartbeat expects)
			broker.Warn(b.cfg.Logger, "a process on this stream has another broker.ack_wait or pipeline.max_in_flight: the stream's consumer now takes this process's; processes on one stream should share one config", watermill.LogFields{
				"consumer": cc.Durable, "ack_wait": cc.AckWait.String(), "was_ack_wait": ci.Config.AckWait.String(),
				"max_ack_pending": cc.MaxAckPending, "was_max_ack_pending": ci.Config.MaxAckPending})
		}
		if _, err := b.js.AddConsumer(b.stream, cc, opt); err != nil {
			if _, uerr := b.js.UpdateConsumer(b.stream, cc, opt); uerr != nil {
				return fmt.Errorf("nats broker: create consumer %s: %w", cc.Durable, errors.Join(err, uerr))
			}
		}
	}
	return nil
}

// Accept implements broker.Broker: claim the dedup key in this process's store
// and store the event with an outbox entry, then claim the key in the
// dedup bucket the processes share, then publish with the dedup key as
// the JetStream message id. See Broker for what is not atomic here.
func (b *Broker) Accept(ctx context.Context, ev *store.Event) (bool, error) {
	fresh, err := broker.AcceptEvent(ctx, b.Writer, b.Store, ev, func(ctx context.Context, tx store.Execer) error {
		return b.Store.AddOutbox(ctx, tx, ev, time.Now())
	})
	if err != nil || !fresh {
		return false, err
	}
	// not cancelled with the request: a claim or a publish the server
	// made must not be undone here
	ctx = context.WithoutCancel(ctx)
	rev, err := b.claimShared(ctx, ev)
	if errors.Is(err, errTakenElsewhere) {
		return false, b.dropEvent(ctx, ev)
	}
	if err != nil {
		return false, b.undoAccept(ctx, ev, err)
	}
	dup, err := b.publishEvent(ev)
	if err == nil && dup {
		// the stream had the message id (published by an earlier life
		// of this process whose shared claim has expired since)
		return false, b.dropEvent(ctx, ev)
	}
	if err != nil {
		err = fmt.Errorf("publish event: %w", err)
		if rerr := b.release(ctx, ev, rev); rerr != nil {
			// the key stays claimed for every process, so the sender's
			// retry would be taken for a duplicate: the event must run.
			// It is stored with its outbox entry, which the relay
			// publishes (within outboxAge): accepted.
			b.cfg.Logger.Error("publish an event: it is stored, and published again within a minute", errors.Join(err, rerr),
				watermill.LogFields{"event": ev.ID})
			return true, nil
		}
		return false, b.undoAccept(ctx, ev, err)
	}
	b.sent(ev.ID)
	return true, nil
}

// AcceptAll implements broker.Broker: the local dedup claims, the events with
// their outbox entries and also commit in one transaction of this
// process's store; then each new event is claimed in the shared bucket
// and published, as Accept does. An event whose publish fails stays in
// the outbox, which the relay publishes again (within outboxAge): it is
// accepted, not lost.
func (b *Broker) AcceptAll(ctx context.Context, evs []*store.Event, also store.Op) (int, error) {
	now := time.Now()
	fresh, err := broker.AcceptEvents(ctx, b.Writer, b.Store, evs, func(ctx context.Context, tx store.Execer, i int) error {
		return b.Store.AddOutbox(ctx, tx, evs[i], now)
	}, also)
	if err != nil {
		return 0, err
	}
	ctx = context.WithoutCancel(ctx)
	n := 0
	for i, ok := range fresh {
		if !ok {
			continue
		}
		ev := evs[i]
		if _, err := b.claimShared(ctx, ev); errors.Is(err, errTakenElsewhere) {
			if err := b.dropEvent(ctx, ev); err != nil {
				return n, err
			}
			continue
		} else if err != nil {
			b.cfg.Logger.Error("claim an event's key: it is stored, and published again within a minute", err, watermill.LogFields{"event": ev.ID})
			n++
			continue
		}
		dup, err := b.publishEvent(ev)
		if err == nil && dup {
			if err := b.dropEvent(ctx, ev); err != nil {
				return n, err
			}
			continue
		}
		if err != nil {
			b.cfg.Logger.Error("publish an event: it is stored, and published again within a minute", err, watermill.LogFields{"event": ev.ID})
			n++
			continue
		}
		b.sent(ev.ID)
		n++
	}
	return n, nil
}

// dropEvent deletes an event that another process accepted first, and
// its outbox entry; the dedup claim stays, so that a later copy is
// refused here without asking the others.
func (b *Broker) dropEvent(ctx context.Context, ev *store.Event) error {
	return b.Writer.Do(ctx, func(ctx context.Context, tx store.Execer) error {
		if err := b.Store.DeleteOutbox(ctx, tx, ev.ID); err != nil {
			return err
		}
		return b.Store.DeleteEvent(ctx, tx, ev.ID)
	})
}

// undoAccept undoes the accept of ev, which failed with err, so that the
// sender's retry is accepted: the event, its outbox entry and its dedup
// claim go. It returns err, with the undo's own error if any.
func (b *Broker) undoAccept(ctx context.Context, ev *store.Event, err error) error {
	uerr := b.Writer.Do(ctx, func(ctx context.Context, tx store.Execer) error {
		if err := b.Store.DeleteOutbox(ctx, tx, ev.ID); err != nil {
			return err
		}
		return b.Store.ReleaseDedup(ctx, tx, ev.DedupKey, ev.ID)
	})
	if uerr != nil {
		return errors.Join(err, fmt.Errorf("undo the dedup claim: %w", uerr))
	}
	return err
}

// publishEvent publishes ev on the events subject with its dedup key as
// message id, waiting for the stream's answer: dup when the stream had
// the id already (within its duplicate window).
func (b *Broker) publishEvent(ev *store.Event) (dup bool, err error) {
	msg, err := broker.EventMessage(ev)
	if err != nil {
		return false, err
	}
	msg.Metadata.Set(nats.MsgIdHdr, natsMsgID(ev.DedupKey))
	nm, err := b.marshaler.Marshal(broker.TopicEvents, msg)
	if err != nil {
		return false, err
	}
	nm.Subject = b.subject(broker.TopicEvents)
	ack, err := b.js.PublishMsg(nm, nats.AckWait(10*time.Second))
	if err != nil {
		return false, err
	}
	return ack.Duplicate, nil
}

// sent queues the outbox entry of a published event for deletion; the
// relay deletes them in batches. An entry whose deletion a crash cut
// short is published again at the next start, a duplicate the stream
// drops within its window.
func (b *Broker) sent(eventID string) {
	select {
	case b.published <- eventID:
	case <-b.stop:
		// closing: the entry stays, and the next start publishes it
		// again (a duplicate the stream drops)
	}
}

// outboxAge is how old an outbox entry must be before the relay takes it
// for left behind and publishes it again: longer than any Accept takes.
const outboxAge = time.Minute

// relay deletes the outbox entries of published events, in batches, and
// publishes the events whose entries were left behind: at start, every
// entry older than the start (this store belongs to this process alone,
// so those come from an earlier life of it, cut short between storing an
// event and publishing it: the sender was not answered 2xx, and its
// retry was, or will be, taken for a duplicate), then every minute the
// entries older than outboxAge.
func (b *Broker) relay(start time.Time) {
	defer b.wg.Done()
	b.republish(start)
	tick := time.NewTicker(outboxAge)
	defer tick.Stop()
	var batch []string
	flush := func() {
		if len(batch) == 0 {
			return
		}
		err := b.Writer.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
			return b.Store.DeleteOutbox(ctx, tx, batch...)
		})
		if err != nil {
			b.cfg.Logger.Error("delete published events from the outbox: they will be published again, as duplicates", err, nil)
		}
		batch = batch[:0]
	}
	for {
		select {
		case id := <-b.published:
			batch = append(batch, id)
			// and what else is waiting, up to a batch
		more:
			for len(batch) < 256 {
				select {
				case id := <-b.published:
					batch = append(batch, id)
				default:
					break more
				}
			}
			flush()
		case <-tick.C:
			b.republish(time.Now().Add(-outboxAge))
		case <-b.stop:
			for {
				select {
				case id := <-b.published:
					batch = append(batch, id)
				default:
					flush()
					return
				}
			}
		}
	}
}

// republish publishes the events of the outbox entries created before
// before, and deletes their entries once the stream has them.
func (b *Broker) republish(before time.Time) {
	ctx := context.Background()
	for {
		entries, err := b.Store.Outbox(ctx, before, 256)
		if err != nil {
			b.cfg.Logger.Error("read the outbox", err, nil)
			return
		}
		var done []string
		for _, e := range entries {
			ev, err := b.Store.GetEvent(ctx, e.EventID)
			if errors.Is(err, store.ErrNotFound) {
				done = append(done, e.EventID) // pruned: nothing to publish
				continue
			}
			if err == nil {
				ev.Recipes = e.Recipes
				var dup bool
				dup, err = b.publishEvent(ev)
				if err == nil {
					b.cfg.Logger.Info("event left unpublished by an earlier process published", watermill.LogFields{"event": ev.ID, "duplicate": dup})
				}
			}
			if err != nil {
				b.cfg.Logger.Error("publish an event left in the outbox: it is tried again later", err, watermill.LogFields{"event": e.EventID})
				continue
			}
			done = append(done, e.EventID)
		}
		if len(done) > 0 {
			err := b.Writer.Do(ctx, func(ctx context.Context, tx store.Execer) error {
				return b.Store.DeleteOutbox(ctx, tx, done...)
			})
			if err != nil {
				b.cfg.Logger.Error("delete republished events from the outbox", err, nil)
				return
			}
		}
		if len(entries) < 256 || len(done) < len(entries) {
			return
		}
		select {
		case <-b.stop:
			return
		default:
		}
	}
}

// natsMsgID is the JetStream message id of a dedup key: the key itself
// when it fits in a header, else its hash.
func natsMsgID(key string) string {
	ok := len(key) <= 200
	for i := 0; ok && i < len(key); i++ {
		ok = key[i] >= 0x20 && key[i] < 0x7f
	}
	if ok {
		return key
	}
	sum := sha256.Sum256([]byte(key))
	return "sha256:" + hex.EncodeToString(sum[:])
}

// Write implements broker.Broker.
func (b *Broker) Write(ctx context.Context, fn store.Op) error { return b.Writer.Do(ctx, fn) }

// Capabilities implements broker.Broker: a paused run waits for its retry
// time in the stream (see Reschedule), not in the process, and the
// processes, which keep stores of their own, share what became of each
// run (natskv.go).
func (b *Broker) Capabilities() broker.Capabilities {
	return broker.Capabilities{DelayedRedelivery: true, Rescheduler: b, SharedState: b}
}

// Reschedule stores the run's checkpoint (save) in this process's store,
// then parks msg: a copy with its retry time at goes on the parked
// subject (waiting for the server's answer), and the handler acks the
// delivery. Should the copy not go, msg's delivery is nakked with the
// delay left until at, as a last resort that holds a place of
// MaxAckPending meanwhile; should that fail too, msg is nacked: it comes
// back after a second (sooner than at), or after AckWait when the server
// is out of reach. It is not lost.
func (b *Broker) Reschedule(ctx context.Context, msg *message.Message, at time.Time, state []byte, save store.Op) error {
	if err := b.Writer.Do(ctx, save); err != nil {
		return fmt.Errorf("store the checkpoint: %w", err)
	}
	runID := broker.RunIDOf(msg)
	if err := b.ShareCheckpoint(ctx, runID, state); err != nil {
		// the parked copy carries it too
		b.cfg.Logger.Error("share a paused run's checkpoint", err, watermill.LogFields{"uuid": msg.UUID})
	}
	v, ok := b.raw.Load(msg)
	if !ok {
		b.cfg.Logger.Error("put a run back: the retry may come back before its time", errNotDelivered, watermill.LogFields{"uuid": msg.UUID})
		broker.RetryAt(msg, at)
		msg.Nack()
		return nil
	}
	nm := v.(*nats.Msg)
	err := b.park(nm, runID, at, state)
	if err == nil {
		return nil
	}
	b.cfg.Logger.Error("park a run for its retry: its delivery is nakked with the delay instead", err, watermill.LogFields{"uuid": msg.UUID})
	// at least a millisecond: a zero delay would be a plain nak; sent as a
	// request, so that the server's answer confirms it
	if err := nm.NakWithDelay(max(time.Until(at), time.Millisecond), nats.AckWait(10*time.Second)); err != nil {
		b.cfg.Logger.Error("nak with delay: the retry may come back before its time", err, watermill.LogFields{"uuid": msg.UUID})
	}
	// when the nak went, the subscription's own, which this lets it send,
	// is refused: the delivery is settled already (see natsSubs.hold)
	broker.RetryAt(msg, at)
	msg.Nack()
	return nil
}

// park publishes a copy of nm, the delivery of run runID's message, on
// the parked subject with its retry time at and the run's checkpoint,
// state, so that whichever process takes the retry up resumes the run
// where it stood. Its message id is made of the run and the time, so that
// the same pause parked twice (its delivery came again before its ack) is
// one copy.
func (b *Broker) park(nm *nats.Msg, runID string, at time.Time, state []byte) error {
	ms := strconv.FormatInt(at.UnixMilli(), 10)
	pm := b.copyTo(natsParked, nm)
	carryState(pm.Header.Set, pm.Header.Del, state)
	pm.Header.Set(natsRetryAtHdr, ms)
	pm.Header.Del(nats.MsgIdHdr)
	if runID != "" {
		pm.Header.Set(nats.MsgIdHdr, "park:"+runID+"@"+ms)
	}
	_, err := b.js.PublishMsg(pm, nats.AckWait(10*time.Second))
	return err
}

// copyTo is a copy of m, data and headers, to publish on topic's subject.
func (b *Broker) copyTo(topic string, m *nats.Msg) *nats.Msg {
	c := nats.NewMsg(b.subject(topic))
	c.Data = m.Data
	maps.Copy(c.Header, m.Header)
	return c
}

// unpark handles a delivery of the parked consumer: before its retry
// time it is nakked with the delay left (the server delivers it again
// then); once due, its run message goes on the runs subject again and
// the delivery is acked. A message without a readable retry time is due.
// Nothing here loses a run: a nak or ack that does not reach the server
// has the delivery come back after parkedAckWait, and a copy published
// twice has one message id, so the stream keeps one.
func (b *Broker) unpark(pm *nats.Msg) {
	ms, err := strconv.ParseInt(pm.Header.Get(natsRetryAtHdr), 10, 64)
	if err == nil {
		if wait := time.Until(time.UnixMilli(ms)); wait > 0 {
			if err := pm.NakWithDelay(wait); err != nil {
				b.cfg.Logger.Error("nak a parked run until its retry time", err, nil)
			}
			return
		}
	}
	rm := b.copyTo(broker.TopicRuns, pm)
	rm.Header.Del(natsRetryAtHdr)
	if id, ok := strings.CutPrefix(pm.Header.Get(nats.MsgIdHdr), "park:"); ok {
		rm.Header.Set(nats.MsgIdHdr, "due:"+id)
	}
	if _, err := b.js.PublishMsg(rm, nats.AckWait(10*time.Second)); err != nil {
		b.cfg.Logger.Error("hand a due run on: it is tried again in a second", err, nil)
		if err := pm.NakWithDelay(time.Second); err != nil {
			b.cfg.Logger.Error("nak a parked run", err, nil)
		}
		return
	}
	if err := pm.Ack(); err != nil {
		b.cfg.Logger.Error("ack a parked run handed on", err, nil)
	}
}

// errNotSettled: the router did not settle a message within
// HandleTimeout.
var errNotSettled = errors.New("not acked or nacked within the handle timeout")

// errNotDelivered: Reschedule was given a message this broker did not
// deliver.
var errNotDelivered = errors.New("not a run message delivered by this broker")

// Redelivered is how many deliveries this process took of messages
// JetStream had delivered before (a nak, a process that died, an ack
// lost or not sent within AckWait).
func (b *Broker) Redelivered() int64 { return b.redelivered.Load() }

// Publisher implements broker.Broker.
func (b *Broker) Publisher() message.Publisher { return b.publisher }

// Subscriber implements broker.Broker.
func (b *Broker) Subscriber() message.Subscriber { return b.subscriber }

// Depth implements broker.Broker: the messages the topic's consumer has not
// delivered yet or that wait for their ack, and for the runs topic the
// runs parked until their retry time.
func (b *Broker) Depth(ctx context.Context, topic string) int64 {
	consumers := []string{topic}
	if topic == broker.TopicRuns {
		consumers = append(consumers, natsParked)
	}
	var total int64
	for _, c := range consumers {
		info, err := b.js.ConsumerInfo(b.stream, b.durable(c), nats.Context(ctx))
		if err != nil {
			return -1
		}
		total += int64(info.NumPending) + int64(info.NumAckPending)
	}
	return total
}

// Close implements broker.Broker. It does not close the store.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		serr := b.subscriber.Close()
		// the relay deletes the entries of what was published, then stops
		close(b.stop)
		b.wg.Wait()
		perr := b.pub.Close() // closes b.nc
		werr := b.Writer.Close()
		b.closeErr = errors.Join(serr, perr, werr)
	})
	return b.closeErr
}

// natsPublisher gives each run message its run id as JetStream message
// id, so that the copies a redelivered event produces are dropped by the
// stream. The router closes its handlers' publishers; the broker closes
// the real one.
type natsPublisher struct{ b *Broker }

// Publish implements message.Publisher.
func (p *natsPublisher) Publish(topic string, msgs ...*message.Message) error {
	if topic == broker.TopicRuns {
		for _, m := range msgs {
			var rm struct {
				RunID  string `json:"run_id"`
				Replay bool   `json:"replay"`
			}
			if err := json.Unmarshal(m.Payload, &rm); err == nil && rm.RunID != "" && !rm.Replay {
				m.Metadata.Set(nats.MsgIdHdr, "run:"+rm.RunID)
			}
		}
	}
	// watermill-nats publishes on the subject its Publish is given
	return p.b.pub.Publish(p.b.subject(topic), msgs...)
}

// Close implements message.Publisher.
func (p *natsPublisher) Close() error { return nil }

// natsSubs keeps one subscription, with its own connection, per topic:
// each binds to the topic's durable consumer as a member of the queue
// group. It is not watermill-nats' subscriber, which leaves the messages
// JetStream pushed to a process in the client's buffer until one of its
// subscriptions is free: the server's AckWait runs for them meanwhile,
// and a message that waited longer than AckWait behind slow runs would be
// delivered again to another process while this one still holds it, so
// AckWait had to outlast every wait (it was the run timeout plus a
// minute: 16 minutes by default), which is also how long the runs of a
// process killed with -9 waited before another process took them up.
// Here every delivery is taken at once, held, and handed to the router
// when one of the topic's places is free (Concurrency for runs), and the
// broker's heartbeat tells the server every AckWait/3 that each delivery
// held is in progress: AckWait can be short (30 s by default), and the
// work of a dead process comes back that soon.
type natsSubs struct {
	b      *Broker
	mu     sync.Mutex
	topics map[string]*natsTopic
	conn   map[string]*nats.Conn
}

// natsTopic is one topic's subscription and the deliveries it holds.
type natsTopic struct {
	sub   *nats.Subscription
	out   chan *message.Message
	slots chan struct{} // a place taken by each message handed on
	stop  chan struct{} // closed when the subscription closes
	mu    sync.Mutex
	shut  bool           // closing: deliveries are nakked
	held  sync.WaitGroup // deliveries held
	send  sync.WaitGroup // deliveries that may still be sent on out
	// lane is taken by the suspect handed on (see natsDelivery): the
	// suspects go one at a time
	lane chan struct{}
}

// eventPlaces bounds the events a process matches at once on NATS.
const eventPlaces = 64

func (s *natsSubs) subscribe(ctx context.Context, topic string) ([]<-chan *message.Message, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.topics[topic]; ok {
		return nil, fmt.Errorf("nats broker: topic %s is subscribed already", topic)
	}
	b := s.b
	places := 1
	switch topic {
	case broker.TopicRuns:
		places = b.cfg.Concurrency
	case broker.TopicEvents:
		// matching an event waits on the server twice (its runs'
		// publish, its ack): with 8 places the matcher, not the runs,
		// bounded delivery (1,288-1,403 delivered/s against 1,596-1,716
		// with 64, sous-bench, docs/performance.md)
		places = min(b.cfg.Concurrency, eventPlaces)
	}
	nc, err := b.connect("subscriber " + topic)
	if err != nil {
		return nil, err
	}
	js, err := nc.JetStream()
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats broker: jetstream: %w", err)
	}
	tp := &natsTopic{out: make(chan *message.Message), slots: make(chan struct{}, places), stop: make(chan struct{}),
		lane: make(chan struct{}, 1)}
	// bound to the consumer provisioned above, which the subscription
	// therefore does not delete when it ends
	tp.sub, err = js.QueueSubscribe(b.subject(topic), broker.ConsumerGroup, func(nm *nats.Msg) { s.deliver(ctx, tp, nm) },
		nats.Bind(b.stream, b.durable(topic)), nats.ManualAck())
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("nats broker: subscribe to %s: %w", topic, err)
	}
	if s.topics == nil {
		s.topics, s.conn = map[string]*natsTopic{}, map[string]*nats.Conn{}
	}
	s.topics[topic], s.conn[topic] = tp, nc
	if topic == broker.TopicRuns {
		// the runs waiting for their retry come back by this process too
		if err := s.subscribeParked(); err != nil {
			return nil, err
		}
	}
	return []<-chan *message.Message{tp.out}, nil
}

// deliver takes a delivery of tp's consumer (on the client's callback,
// which must not wait): it is held, and handed on from a goroutine of
// its own.
func (s *natsSubs) deliver(ctx context.Context, tp *natsTopic, nm *nats.Msg) {
	b := s.b
	m, err := b.marshaler.Unmarshal(nm)
	if err != nil {
		// it would be delivered again forever
		b.cfg.Logger.Error("a message of the stream is not a pipeline message: dropped", err, watermill.LogFields{"subject": nm.Subject})
		if err := nm.Term(); err != nil {
			b.cfg.Logger.Error("drop a message", err, nil)
		}
		return
	}
	if md, err := nm.Metadata(); err == nil && md.NumDelivered > 1 {
		b.redelivered.Add(1)
	}
	tp.mu.Lock()
	if tp.shut {
		tp.mu.Unlock()
		b.nak(nm) // closing: another process takes it
		return
	}
	tp.held.Add(1)
	tp.send.Add(1)
	tp.mu.Unlock()
	mctx, cancel := context.WithCancel(ctx)
	m.SetContext(mctx)
	// the heartbeat keeps it, and Reschedule finds its delivery
	b.raw.Store(m, nm)
	go s.hold(ctx, tp, m, nm, cancel)
}

// hold hands m (the delivery nm) on once a place is free, then settles
// nm as the router settles m: an ack (waiting for the server's answer,
// so that a lost ack is logged), or a nak with a delay of a second. A
// message the router does not settle within HandleTimeout is left: the
// heartbeat stops, and JetStream delivers it again after AckWait. A
// suspect (a delivery that comes after one that did not end normally,
// see natsDelivery) waits for the topic's lane first, and its start is
// counted right before it is handed on.
func (s *natsSubs) hold(ctx context.Context, tp *natsTopic, m *message.Message, nm *nats.Msg, cancel context.CancelFunc) {
	b := s.b
	defer tp.held.Done()
	defer cancel()
	defer b.raw.Delete(m)
	dv := b.delivery(ctx, nm, m)
	handed, laned := false, !dv.suspect
	if dv.suspect {
		select {
		case tp.lane <- struct{}{}:
			laned = true
			defer func() { <-tp.lane }()
		case <-tp.stop:
		case <-ctx.Done():
		}
	}
	if laned {
		select {
		case tp.slots <- struct{}{}:
			b.markDelivery(ctx, &dv)
			select {
			case tp.out <- m:
				handed = true
			case <-tp.stop:
			case <-ctx.Done():
			}
			if !handed {
				<-tp.slots
			}
		case <-tp.stop:
		case <-ctx.Done():
		}
	}
	tp.send.Done()
	if !handed {
		b.settleDelivery(ctx, &dv) // never started
		b.nak(nm)
		return
	}
	defer func() { <-tp.slots }()
	timeout := time.NewTimer(b.cfg.HandleTimeout)
	defer timeout.Stop()
	select {
	case <-m.Acked():
		if err := nm.AckSync(nats.AckWait(10 * time.Second)); err != nil && !errors.Is(err, nats.ErrMsgAlreadyAckd) {
			b.cfg.Logger.Error("ack a message: it will be delivered again, and found done", err, watermill.LogFields{"uuid": m.UUID})
		}
		b.endDelivery(ctx, &dv)
	case <-m.Nacked():
		b.settleDelivery(ctx, &dv)
		b.nak(nm)
	case <-timeout.C:
		b.cfg.Logger.Error("let a message go: it will be delivered again", errNotSettled,
			watermill.LogFields{"uuid": m.UUID, "timeout": b.cfg.HandleTimeout.String()})
	}
}

// nak has nm delivered again in a second. A delivery settled already
// (Reschedule naks with a delay of its own, then the router nacks) is
// left as it is.
func (b *Broker) nak(nm *nats.Msg) {
	if err := nm.NakWithDelay(time.Second); err != nil && !errors.Is(err, nats.ErrMsgAlreadyAckd) {
		b.cfg.Logger.Error("nak a message: it will be delivered again after the ack wait", err, nil)
	}
}

// heartbeat tells the server, every AckWait/3, that each delivery this
// process holds is in progress, so that it is not delivered again
// elsewhere however long it waits or runs here.
func (b *Broker) heartbeat() {
	defer b.wg.Done()
	tick := time.NewTicker(max(b.cfg.AckWait/3, 10*time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			b.raw.Range(func(_, v any) bool {
				if err := v.(*nats.Msg).InProgress(); err != nil && !errors.Is(err, nats.ErrMsgAlreadyAckd) {
					b.cfg.Logger.Debug("tell the server a message is in progress", watermill.LogFields{"error": err.Error()})
				}
				return true
			})
		case <-b.stop:
			return
		}
	}
}

// subscribeParked joins the parked consumer, on a connection of its own
// that close drains with the others. s.mu is held.
func (s *natsSubs) subscribeParked() error {
	b := s.b
	nc, err := b.connect("subscriber " + natsParked)
	if err != nil {
		return err
	}
	js, err := nc.JetStream()
	if err == nil {
		_, err = js.QueueSubscribe(b.subject(natsParked), broker.ConsumerGroup, b.unpark,
			nats.Bind(b.stream, b.durable(natsParked)), nats.ManualAck())
	}
	if err != nil {
		nc.Close()
		return fmt.Errorf("nats broker: subscribe to %s: %w", natsParked, err)
	}
	s.conn[natsParked] = nc
	return nil
}

// close stops the subscriptions: no more deliveries (those in the
// client's buffer come back after AckWait), the ones held but not handed
// on are nakked, and the ones handed on are waited for (their settling
// needs the connection) up to DrainTimeout; then the connections drain.
func (s *natsSubs) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for topic, tp := range s.topics {
		if err := tp.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && !errors.Is(err, nats.ErrBadSubscription) {
			errs = append(errs, fmt.Errorf("unsubscribe from %s: %w", topic, err))
		}
		tp.mu.Lock()
		tp.shut = true
		tp.mu.Unlock()
		close(tp.stop)
		tp.send.Wait()
		close(tp.out)
	}
	deadline := time.After(s.b.cfg.DrainTimeout)
	for _, tp := range s.topics {
		settled := make(chan struct{})
		go func() { tp.held.Wait(); close(settled) }()
		select {
		case <-settled:
		case <-deadline:
		}
	}
	for topic, nc := range s.conn {
		if err := nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
			errs = append(errs, fmt.Errorf("drain the %s connection: %w", topic, err))
			continue
		}
		wait := time.Now().Add(5 * time.Second)
		for !nc.IsClosed() && time.Now().Before(wait) {
			time.Sleep(10 * time.Millisecond)
		}
	}
	return errors.Join(errs...)
}
