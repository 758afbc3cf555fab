// Package postgres is the broker that keeps the store and the queue in one
// PostgreSQL database, which several sous processes share (see Broker).
package postgres

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"hash/fnv"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	wsql "github.com/ThreeDotsLabs/watermill-sql/v3/pkg/sql"
	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/store"
)

// Config tunes the PostgreSQL broker.
type Config struct {
	// Prefix is put before the message tables' names, as the store's
	// Prefix is before its own.
	Prefix string
	// AckDeadline bounds one delivery: a message not acknowledged by then
	// is delivered again. It must exceed the engine's run timeout.
	AckDeadline time.Duration
	// PollInterval is how often an idle subscription looks for messages,
	// and how often the scheduled messages (durable retries) are looked
	// at.
	PollInterval time.Duration
	// RunPartitions splits the runs topic: each partition is consumed one
	// message at a time by one process at a time, so this bounds the runs
	// executing at once across all processes. Every process on a database
	// must use the same number; partitions left over from a larger number
	// are still consumed.
	RunPartitions int
	// CompactInterval is how often acknowledged messages are deleted;
	// negative never.
	CompactInterval time.Duration
	// DrainTimeout bounds how long closing waits for the messages in
	// flight to be acknowledged.
	DrainTimeout time.Duration
	Logger       watermill.LoggerAdapter
}

func (c *Config) setDefaults() {
	if c.AckDeadline <= 0 {
		c.AckDeadline = 16 * time.Minute
	}
	if c.PollInterval <= 0 {
		c.PollInterval = 200 * time.Millisecond
	}
	if c.RunPartitions <= 0 {
		c.RunPartitions = 8
	}
	if c.DrainTimeout <= 0 {
		c.DrainTimeout = 30 * time.Second
	}
	if c.CompactInterval == 0 {
		c.CompactInterval = time.Minute
	}
	if c.Logger == nil {
		c.Logger = watermill.NopLogger{}
	}
}

// Broker keeps the store and the queue in one PostgreSQL database,
// which several `sous serve` processes share. Messages travel through
// watermill-sql: a table per topic, and an offsets table per topic in
// which every process joins the consumer group "sous". A consumer holds
// the group's lock on a topic while it handles a batch, so a message is
// handled by one process at a time, and processes share the work by
// taking turns. To run several runs at once, the runs topic is split in
// RunPartitions partitions consumed one message per transaction; a run id
// always lands in the same partition, so two copies of a run never run at
// once, and the engine skips a copy whose run already finished.
//
// A consumer's transaction stays open while its message is handled: a
// long run delays the runs queued behind it in its partition (not the
// others, see pgOffsets), holds a database connection, and holds back
// vacuum for its duration.
//
// Accept is atomic: the dedup claim, the event and its message commit in
// one transaction.
//
// A durable retry (Reschedule) is a row of the store's scheduled table,
// written with the run's checkpoint while the run's message is acked; the
// first process to see it due publishes it on the runs topic, in the
// transaction that deletes the row (see storeScheduler). It holds no
// partition and no connection while it waits.
type Broker struct {
	Store  *store.Store
	Writer *store.Writer

	cfg Config
	// parts is how many runs partitions are consumed: RunPartitions, or
	// more when the database holds more
	parts   int
	schema  wsql.DefaultPostgreSQLSchema
	offsets pgOffsets
	pub     *wsql.Publisher
	// subs consume events and dead letters (in batches), and the runs
	// partitions (one message per transaction)
	subs, runSubs *wsql.Subscriber
	publisher     *pgPublisher
	subscriber    *broker.Drainer
	sched         *storeScheduler
	stop          chan struct{}
	wg            sync.WaitGroup
	closeOnce     sync.Once
	closeErr      error
}

var _ broker.Broker = (*Broker)(nil)

// New migrates the store and creates the message tables,
// under an advisory lock so that processes starting together do not race
// on CREATE TABLE, and returns the broker. st must use the Postgres
// dialect.
func New(ctx context.Context, st *store.Store, cfg Config) (*Broker, error) {
	if st.Dialect != store.Postgres {
		return nil, fmt.Errorf("postgres broker: the store's dialect is %q", st.Dialect)
	}
	if !broker.ValidPrefix(cfg.Prefix) {
		return nil, fmt.Errorf("postgres broker: prefix %q may hold only letters, digits and _", cfg.Prefix)
	}
	cfg.setDefaults()
	db := st.DB
	b := &Broker{Store: st, cfg: cfg, parts: cfg.RunPartitions, stop: make(chan struct{})}
	b.schema = wsql.DefaultPostgreSQLSchema{
		GenerateMessagesTableName: func(topic string) string { return `"` + cfg.Prefix + "watermill_" + topic + `"` },
		// payloads are JSON, but BYTEA keeps them byte for byte
		GeneratePayloadType: func(string) string { return "BYTEA" },
	}
	b.offsets = pgOffsets{
		DefaultPostgreSQLOffsetsAdapter: wsql.DefaultPostgreSQLOffsetsAdapter{
			GenerateMessagesOffsetsTableName: func(topic string) string {
				return `"` + cfg.Prefix + "watermill_offsets_" + topic + `"`
			},
		},
		prefix: cfg.Prefix,
	}
	if err := b.migrate(ctx, db); err != nil {
		return nil, err
	}
	// every runs partition and topic holds a connection while a message is
	// handled; the writer and the reads need more beside them
	if need := b.parts + 24; db.Stats().MaxOpenConnections < need && db.Stats().MaxOpenConnections != 0 {
		db.SetMaxOpenConns(need)
	}
	var err error
	if b.pub, err = wsql.NewPublisher(db, wsql.PublisherConfig{SchemaAdapter: b.schema}, cfg.Logger); err != nil {
		return nil, fmt.Errorf("postgres publisher: %w", err)
	}
	subscriber := func(batch int) (*wsql.Subscriber, error) {
		schema := b.schema
		schema.SubscribeBatchSize = batch
		deadline := cfg.AckDeadline
		return wsql.NewSubscriber(db, wsql.SubscriberConfig{
			ConsumerGroup:    broker.ConsumerGroup,
			AckDeadline:      &deadline,
			PollInterval:     cfg.PollInterval,
			ResendInterval:   time.Second,
			RetryInterval:    time.Second,
			SchemaAdapter:    schema,
			OffsetsAdapter:   b.offsets,
			InitializeSchema: true,
		}, cfg.Logger)
	}
	if b.subs, err = subscriber(100); err != nil {
		return nil, fmt.Errorf("postgres subscriber: %w", err)
	}
	if b.runSubs, err = subscriber(1); err != nil {
		return nil, fmt.Errorf("postgres subscriber: %w", err)
	}
	b.Writer = store.NewWriter(db, 512)
	b.publisher = &pgPublisher{b: b}
	b.sched = newStoreScheduler(st, b.Writer, cfg.PollInterval, cfg.Logger, b.publishTx)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		b.sched.run(b.stop)
	}()
	b.subscriber = broker.NewDrainer(b.subscribe, func() error { return errors.Join(b.subs.Close(), b.runSubs.Close()) },
		cfg.DrainTimeout, cfg.Logger)
	if cfg.CompactInterval > 0 {
		b.wg.Add(1)
		go b.compactLoop()
	}
	return b, nil
}

// topics lists the message tables: the runs topic is split in partitions.
func (b *Broker) topics() []string {
	out := []string{broker.TopicEvents, broker.TopicDeadLetters}
	for p := range b.parts {
		out = append(out, b.runPartition(p))
	}
	return out
}

func (b *Broker) runPartition(p int) string { return broker.TopicRuns + "_" + strconv.Itoa(p) }

func (b *Broker) migrate(ctx context.Context, db *sql.DB) error {
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("postgres broker: %w", err)
	}
	defer conn.Close()
	h := fnv.New64a()
	h.Write([]byte("sous-migrate:" + b.cfg.Prefix))
	key := int64(h.Sum64())
	if _, err := conn.ExecContext(ctx, `SELECT pg_advisory_lock($1)`, key); err != nil {
		return fmt.Errorf("postgres broker: lock for migration: %w", err)
	}
	defer func() {
		// the lock would also end with the session, but the pool keeps it
		_, _ = conn.ExecContext(context.WithoutCancel(ctx), `SELECT pg_advisory_unlock($1)`, key)
	}()
	if err := b.Store.Migrate(ctx); err != nil {
		return err
	}
	// the durable retries wait in the store (see storeScheduler)
	if err := b.Store.CreateTables(ctx, store.ScheduledTables...); err != nil {
		return err
	}
	rows, err := conn.QueryContext(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = current_schema()`)
	if err != nil {
		return fmt.Errorf("postgres broker: list the message tables: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("postgres broker: list the message tables: %w", err)
		}
		part, ok := strings.CutPrefix(name, b.cfg.Prefix+"watermill_"+broker.TopicRuns+"_")
		if n, err := strconv.Atoi(part); ok && err == nil && n >= b.parts {
			b.parts = n + 1
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("postgres broker: list the message tables: %w", err)
	}
	rows.Close()
	for _, topic := range b.topics() {
		queries := append(b.schema.SchemaInitializingQueries(topic), b.offsets.SchemaInitializingQueries(topic)...)
		queries = append(queries, b.offsets.BeforeSubscribingQueries(topic, broker.ConsumerGroup)...)
		for _, q := range queries {
			if _, err := conn.ExecContext(ctx, q.Query, q.Args...); err != nil {
				return fmt.Errorf("postgres broker: create the %s message tables: %w", topic, err)
			}
		}
	}
	return nil
}

// Accept implements broker.Broker: the dedup claim, the event and its message
// commit in one transaction, the message written by a watermill-sql
// publisher on that transaction.
func (b *Broker) Accept(ctx context.Context, ev *store.Event) (bool, error) {
	msg, err := broker.EventMessage(ev)
	if err != nil {
		return false, err
	}
	fresh, err := broker.AcceptEvent(ctx, b.Writer, b.Store, ev, func(ctx context.Context, tx store.Execer) error {
		if err := b.publishTx(ctx, tx, broker.TopicEvents, msg); err != nil {
			return fmt.Errorf("publish event: %w", err)
		}
		return nil
	})
	if err != nil {
		return false, err
	}
	return fresh, nil
}

// AcceptAll implements broker.Broker: the dedup claims, the events, their
// messages and also commit in one transaction.
func (b *Broker) AcceptAll(ctx context.Context, evs []*store.Event, also store.Op) (int, error) {
	msgs := make([]*message.Message, len(evs))
	for i, ev := range evs {
		msg, err := broker.EventMessage(ev)
		if err != nil {
			return 0, err
		}
		msgs[i] = msg
	}
	fresh, err := broker.AcceptEvents(ctx, b.Writer, b.Store, evs, func(ctx context.Context, tx store.Execer, i int) error {
		if err := b.publishTx(ctx, tx, broker.TopicEvents, msgs[i]); err != nil {
			return fmt.Errorf("publish event: %w", err)
		}
		return nil
	}, also)
	if err != nil {
		return 0, err
	}
	return countTrue(fresh), nil
}

// publishTx publishes msgs on topic through a watermill-sql publisher
// on tx (a transaction of the group commit), so that they commit with
// what else tx writes.
func (b *Broker) publishTx(_ context.Context, tx store.Execer, topic string, msgs ...*message.Message) error {
	pub, err := wsql.NewPublisher(txExecutor{tx}, wsql.PublisherConfig{SchemaAdapter: b.schema}, b.cfg.Logger)
	if err != nil {
		return err
	}
	return b.publishOn(pub, topic, msgs...)
}

// Write implements broker.Broker.
func (b *Broker) Write(ctx context.Context, fn store.Op) error {
	return b.Writer.Do(ctx, fn)
}

// Capabilities implements broker.Broker: a paused run waits for its retry
// time in the store (see Reschedule), not in the process, and the runs
// topic is split in partitions.
func (b *Broker) Capabilities() broker.Capabilities {
	return broker.Capabilities{DelayedRedelivery: true, Partitions: b.parts, Rescheduler: b}
}

// Reschedule stores msg, a run message, in the scheduled table with the
// run's checkpoint (save), in one transaction: it is published again at
// at. The handler then acks msg, which frees its partition.
// state is in the shared store already: the message does not carry it.
func (b *Broker) Reschedule(ctx context.Context, msg *message.Message, at time.Time, _ []byte, save store.Op) error {
	return b.sched.schedule(ctx, broker.TopicRuns, broker.RunIDOf(msg), msg, at, save)
}

// Publisher implements broker.Broker.
func (b *Broker) Publisher() message.Publisher { return b.publisher }

// Subscriber implements broker.Broker.
func (b *Broker) Subscriber() message.Subscriber { return b.subscriber }

// Depth implements broker.Broker: the messages past the consumer group's offset,
// and those scheduled for later (durable retries).
func (b *Broker) Depth(ctx context.Context, topic string) int64 {
	tables := []string{topic}
	if topic == broker.TopicRuns {
		tables = tables[:0]
		for p := range b.parts {
			tables = append(tables, b.runPartition(p))
		}
	}
	var total int64
	for _, t := range tables {
		var n int64
		err := b.Store.DB.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+b.schema.MessagesTable(t)+` m
			LEFT JOIN `+b.offsets.MessagesOffsetsTable(t)+` o ON o.consumer_group = $1
			WHERE o.consumer_group IS NULL OR m.transaction_id > o.last_processed_transaction_id
				OR (m.transaction_id = o.last_processed_transaction_id AND m."offset" > o.offset_acked)`, broker.ConsumerGroup).Scan(&n)
		if err != nil {
			return -1
		}
		total += n
	}
	n, err := b.Store.CountScheduled(ctx, topic)
	if err != nil {
		return -1
	}
	return total + n
}

// Compact deletes the messages the consumer group has acknowledged: sous
// is their only reader, and watermill-sql keeps them otherwise.
func (b *Broker) Compact(ctx context.Context) (int64, error) {
	var total int64
	for _, t := range b.topics() {
		res, err := b.Store.DB.ExecContext(ctx, `DELETE FROM `+b.schema.MessagesTable(t)+` m
			USING `+b.offsets.MessagesOffsetsTable(t)+` o
			WHERE o.consumer_group = $1 AND (m.transaction_id < o.last_processed_transaction_id
				OR (m.transaction_id = o.last_processed_transaction_id AND m."offset" <= o.offset_acked))`, broker.ConsumerGroup)
		if err != nil {
			return total, fmt.Errorf("compact %s: %w", t, err)
		}
		n, _ := res.RowsAffected()
		total += n
	}
	return total, nil
}

func (b *Broker) compactLoop() {
	defer b.wg.Done()
	t := time.NewTicker(b.cfg.CompactInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		if _, err := b.Compact(ctx); err != nil {
			b.cfg.Logger.Error("compact the message tables", err, nil)
		}
		cancel()
	}
}

// Close implements broker.Broker. It does not close the store's database.
func (b *Broker) Close() error {
	b.closeOnce.Do(func() {
		close(b.stop)
		serr := b.subscriber.Close()
		b.wg.Wait()
		perr := b.pub.Close()
		werr := b.Writer.Close()
		b.closeErr = errors.Join(serr, perr, werr)
	})
	return b.closeErr
}

// pgPublisher routes run messages to their partition. The router closes
// the publishers of its handlers; the broker closes the real one.
type pgPublisher struct{ b *Broker }

// Publish implements message.Publisher.
func (p *pgPublisher) Publish(topic string, msgs ...*message.Message) error {
	return p.b.publishOn(p.b.pub, topic, msgs...)
}

// publishOn publishes msgs on topic through pub, each run message on its
// partition.
func (b *Broker) publishOn(pub *wsql.Publisher, topic string, msgs ...*message.Message) error {
	if topic != broker.TopicRuns {
		return pub.Publish(topic, msgs...)
	}
	byPart := map[int][]*message.Message{}
	var order []int
	for _, m := range msgs {
		if id := broker.RunIDOf(m); id != "" {
			m.Metadata.Set(broker.RunIDKey, id)
		}
		part := b.partitionOf(m)
		if _, ok := byPart[part]; !ok {
			order = append(order, part)
		}
		byPart[part] = append(byPart[part], m)
	}
	for _, part := range order {
		if err := pub.Publish(b.runPartition(part), byPart[part]...); err != nil {
			return err
		}
	}
	return nil
}

// Close implements message.Publisher.
func (p *pgPublisher) Close() error { return nil }

// partitionOf hashes a run message's run id, so that every copy of a run
// lands in the same partition and is never handled twice at once.
func (b *Broker) partitionOf(m *message.Message) int {
	key := broker.RunIDOf(m)
	if key == "" {
		key = m.UUID
	}
	h := fnv.New32a()
	h.Write([]byte(key))
	return int(h.Sum32() % uint32(b.cfg.RunPartitions))
}

// subscribe opens the watermill-sql subscriptions behind a topic: the
// runs topic merges its partitions.
func (b *Broker) subscribe(ctx context.Context, topic string) ([]<-chan *message.Message, error) {
	if topic != broker.TopicRuns {
		in, err := b.subs.Subscribe(ctx, topic)
		if err != nil {
			return nil, err
		}
		return []<-chan *message.Message{in}, nil
	}
	var ins []<-chan *message.Message
	for p := range b.parts {
		// a partition delivers its next message only after this one is
		// acknowledged: merging keeps each partition's order
		in, err := b.runSubs.Subscribe(ctx, b.runPartition(p))
		if err != nil {
			return nil, err
		}
		ins = append(ins, b.skipRescheduled(in))
	}
	return ins, nil
}

// skipRescheduled acks, rather than hands on, the messages of a run that
// is scheduled to be taken up later (see Reschedule): copies of its
// message, which its scheduled copy brings back at its time. Such a copy
// is the message itself when the process that put it off died before its
// ack committed, another process's stale view of it (see pgOffsets), or
// the run's message made again from its event delivered again; run now,
// it would retry the run before its time.
func (b *Broker) skipRescheduled(in <-chan *message.Message) <-chan *message.Message {
	out := make(chan *message.Message)
	go func() {
		// the Drainer reads out until it closes, which follows in
		defer close(out)
		for m := range in {
			if id := broker.RunIDOf(m); id != "" {
				later, err := b.Store.IsScheduled(m.Context(), broker.TopicRuns, id)
				if err != nil {
					b.cfg.Logger.Error("look up a scheduled retry: handing the message on", err, watermill.LogFields{"run": id})
				}
				if later {
					b.cfg.Logger.Debug("a copy of a run message scheduled for later: skipped", watermill.LogFields{"run": id})
					m.Ack()
					continue
				}
			}
			out <- m
		}
	}()
	return out
}

// txExecutor lets a watermill-sql publisher write through the group
// commit's transaction.
type txExecutor struct{ store.Execer }

func (t txExecutor) Exec(query string, args ...any) (sql.Result, error) {
	return t.ExecContext(context.Background(), query, args...)
}

func (t txExecutor) Query(query string, args ...any) (*sql.Rows, error) {
	return t.QueryContext(context.Background(), query, args...)
}

func (t txExecutor) QueryRow(query string, args ...any) *sql.Row {
	return t.QueryRowContext(context.Background(), query, args...)
}

// pgOffsets is watermill-sql's PostgreSQL offsets adapter with another
// lock on the consumer group's offset row. The default takes it with
// SELECT ... FOR UPDATE, which gives the consuming transaction a
// transaction id for as long as it handles its messages; as watermill-sql
// reads only below the oldest running transaction id (to keep order), one
// long run then hides every message published after it began, on every
// topic, until it ends (a 5 s run held back an unrelated event for 4.4 s).
// A transaction-scoped advisory lock taken with pg_try_advisory_xact_lock
// excludes other consumers just as well without a transaction id. A
// consumer that does not get it sees no messages this time and polls
// again; one whose snapshot predates the previous holder's commit may be
// handed that holder's last messages again, and its offset update then
// fails on the concurrent update: a redelivery, which the engine already
// tolerates (a run that finished is not run again).
type pgOffsets struct {
	wsql.DefaultPostgreSQLOffsetsAdapter
	prefix string
}

// NextOffsetQuery implements wsql.OffsetsAdapter.
func (a pgOffsets) NextOffsetQuery(topic, consumerGroup string) wsql.Query {
	h := fnv.New64a()
	h.Write([]byte("sous-offsets\x00" + a.prefix + "\x00" + topic + "\x00" + consumerGroup))
	return wsql.Query{
		Query: `SELECT offset_acked, last_processed_transaction_id FROM ` + a.MessagesOffsetsTable(topic) + `
			WHERE consumer_group = $1 AND pg_try_advisory_xact_lock($2)`,
		Args: []any{consumerGroup, int64(h.Sum64())},
	}
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
