// Package sqlqueue is a durable Watermill Publisher and Subscriber over a
// SQL queue table, the embedded default broker. Messages are leased, not
// locked: many are in flight at once, an Ack deletes the row, a Nack makes
// it available again (after a delay the handler may set), and a lease that
// runs out (a crashed process) makes it deliverable again. All writes go
// through the store's group-commit Writer, so that a burst of webhooks
// costs one transaction and one fsync, not one each.
package sqlqueue

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/sqlin"
)

// DeliveriesKey carries how many times the message was delivered.
const DeliveriesKey = "sous_deliveries"

// The keys a row's metadata keeps its crash count in (see Crashes): the
// deaths counted (those a normal end knew of, and the starts marked
// before they started that did not end normally), and up to which
// delivery the row's deliveries are accounted for (ended normally, or
// marked).
const (
	crashedKey = "sous_crashed"
	settledKey = "sous_settled"
)

// Schema is the statements that create the queue table named table, with
// its index, unless they exist, written for store.CreateTables (<serial>
// and <blob> take the dialect's types): the embedded broker runs them
// when it starts.
func Schema(table string) []string {
	return []string{
		`CREATE TABLE IF NOT EXISTS ` + table + ` (seq <serial>, topic TEXT NOT NULL, uuid TEXT NOT NULL,
			payload <blob> NOT NULL, metadata TEXT NOT NULL, available_at BIGINT NOT NULL,
			leased_until BIGINT NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0)`,
		`CREATE INDEX IF NOT EXISTS ` + table + `_topic ON ` + table + ` (topic, available_at, seq)`,
	}
}

// Config tunes a queue.
type Config struct {
	// Table is the queue table name (with any prefix).
	Table string
	// Lease is how long a delivered message stays invisible to other
	// consumers. The queue extends the leases of the messages it still
	// holds (see Queue) before they run out, so a lease runs out only
	// when its process is gone (or gave the message up): the message is
	// then delivered again.
	Lease time.Duration
	// MaxInFlight bounds the unacknowledged messages per subscription.
	MaxInFlight int
	// Batch bounds the messages claimed at once.
	Batch int
	// Poll is how often an idle subscription looks for messages that other
	// processes published or that became available.
	Poll time.Duration
	// CommitDelay is the commit delay of the writer sqlite.New makes
	// (see store.Writer.Linger); zero commits at once.
	CommitDelay time.Duration
	// LocalLimit bounds the messages waiting to be handed over in memory
	// to a subscription of this process; beyond it, messages wait in the
	// table only (DefaultLocalLimit when zero).
	LocalLimit int
	// ChildWait bounds how long publishing children (see Derive) waits
	// for room in their subscription's in-memory queue before it stores
	// them in rows of their own (10s when zero).
	ChildWait time.Duration
	// Claimed, when set, is called with the messages of each claim from
	// the table, outside the writer's transaction, before any is
	// delivered. The value it gives for a message (nil for none) is what
	// Local returns for it, as for a message handed over in memory: a
	// consumer that reads something for each message (a row the message
	// names) can read it for the whole claim in one query. It returns
	// nil, or one value per message.
	Claimed func(ctx context.Context, topic string, msgs []*message.Message) []any
}

// DefaultLocalLimit is the default Config.LocalLimit. What waits in memory
// beyond what the subscription can take at once only costs memory: it is
// in the table too, and a claim reads the rest in batches. A burst of 256
// senders (sous-bench -c 256) kept 4,096 events waiting with their decoded
// payloads: with 1,024, the server's peak RSS fell from 185-191 MB to
// 119-123 MB (10 recipes loaded) and from 240 to 187 MB (10,000), for the
// same accepted and delivered rates and CPU per event.
const DefaultLocalLimit = 1024

// Queue is a Watermill Publisher and Subscriber over a SQL table.
//
// A message published in the process that consumes its topic is handed
// over in memory: it is inserted already leased to this process and
// queued locally, so that the subscriber neither claims nor reads it back
// (a write and a read saved per message). The row is there all the same
// until the ack deletes it: after a crash, the leases are released at
// start (or run out) and the message is delivered from the table.
//
// A leased row is also not available before its lease ends: available_at
// is set to the lease's end with it, so that a claim walking the index of
// due rows never passes the held ones. A backlog draining holds its oldest
// rows (those in flight and handed over), thousands of them, which every
// claim otherwise stepped over, reading each row to see its lease (2.4 ms a
// claim with 5,000 held, in the writer's transaction). A lease that runs
// out makes its row due again by the same index, with nothing to sweep.
//
// A row stays leased as long as this process holds it: from its handover
// or claim until its message is done (acked with all its children, see
// Derive) or put back. A message may take longer than Config.Lease (an
// event's row is held while its runs execute), so a background loop
// extends the leases of the rows held for more than a third of the lease,
// in a few statements through the store.Writer; it stops with Close, after
// which the leases left run out.
type Queue struct {
	cfg    Config
	db     *sql.DB
	w      *store.Writer
	mu     sync.Mutex
	wake   map[string]chan struct{}
	locals map[string]*localQueue
	acks   chan int64
	closed chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
	// heldMu guards held: the rows leased to this process and not yet
	// released, each with the end of its lease as last written (unix
	// milliseconds), which the renew loop extends
	heldMu sync.Mutex
	held   map[int64]int64
	// unstarted, guarded by heldMu, lists the rows taken but never
	// delivered by a stopping subscription (see notStarted)
	unstarted []int64
}

// localQueue holds the messages handed over in memory to the
// subscription of one topic in this process.
type localQueue struct {
	mu    sync.Mutex
	items []handedOver
	// limit is a soft bound: beyond it, publishers insert messages
	// unleased and the subscription claims them from the table
	limit  int
	signal chan struct{}
	// roomed is closed when the queue falls below its limit or loses its
	// last subscription, for the publishers waiting for room (nil when
	// none waits)
	roomed chan struct{}
	subs   int // subscriptions taking from the queue
}

// handedOver is a message for a subscription: handed over in memory
// (local) or claimed from the table.
type handedOver struct {
	seq        int64 // 0 for a message without a row (a child)
	msg        *message.Message
	value      any
	deliveries int
	local      bool
	parent     *holder // a child's parent
}

// holder keeps a delivered message's row until the message is acked and
// every message published in memory from its handler (its children) is
// done: the row is what brings all of them back after a crash.
type holder struct {
	q        *Queue
	seq      int64   // the row, or 0 for a child
	parent   *holder // a child's parent
	first    bool    // delivered for the first time from its row
	mu       sync.Mutex
	children int
	acked    bool
	// suspect deliveries only (see Crashes): done is closed once the
	// row is released or put back
	done     chan struct{}
	doneOnce sync.Once
}

// deliveryContext is the context a delivered message's own starts from:
// the subscription's values, never done (a delivered message outlives its
// subscription: closing the subscription, a graceful shutdown, lets
// in-flight handlers finish, and the router's timeout bounds them), with
// the message's holder and its value handed over in memory, if any. One
// allocation for what context.WithoutCancel and two context.WithValue
// made in three, twice per event.
type deliveryContext struct {
	values context.Context
	local  any
	holder *holder
}

func (*deliveryContext) Deadline() (time.Time, bool) { return time.Time{}, false }
func (*deliveryContext) Done() <-chan struct{}       { return nil }
func (*deliveryContext) Err() error                  { return nil }

func (c *deliveryContext) Value(key any) any {
	switch key.(type) {
	case broker.DeliveryKey:
		return c.holder
	case broker.LocalKey:
		if c.local != nil {
			return c.local
		}
	}
	return c.values.Value(key)
}

func (h *holder) add() {
	h.mu.Lock()
	h.children++
	h.mu.Unlock()
}

// ack marks the message handled; its row goes once its children are done.
func (h *holder) ack() {
	h.mu.Lock()
	h.acked = true
	release := h.children == 0
	h.mu.Unlock()
	if release {
		h.release()
	}
}

// childDone counts a child acked, or stored in a row of its own.
func (h *holder) childDone() {
	h.mu.Lock()
	h.children--
	release := h.acked && h.children == 0
	h.mu.Unlock()
	if release {
		h.release()
	}
}

func (h *holder) release() {
	if h.seq != 0 {
		// the ack loop stops renewing the row once it is deleted
		h.q.acks <- h.seq
		h.settled()
		return
	}
	if h.parent != nil {
		h.parent.childDone()
	}
}

// settled tells a suspect's lane that its row is released or put back.
func (h *holder) settled() {
	if h.done != nil {
		h.doneOnce.Do(func() { close(h.done) })
	}
}

// abandon gives up the row that holds h (its own, or its first ancestor's)
// to its lease: a child that could be neither handled nor stored keeps its
// parent from being done, and the parent's redelivery once the lease runs
// out is what brings the child back.
func (h *holder) abandon() {
	for r := h; r != nil; r = r.parent {
		if r.seq != 0 {
			r.q.untrack(r.seq)
			r.settled()
			return
		}
	}
}

// First implements broker.Delivery: whether the message is the first
// delivery of its row (broker.FirstDelivery), handed over in memory by
// the process that inserted it, or claimed from the table by a claim that
// found it never delivered (a claim counts deliveries in the same
// statement, so no two claims see the first). For a message inserted once
// and never copied to another row (an event), a handler can then skip
// looking for the work of an earlier delivery, which cannot have
// happened. A child nacked and stored in a row of its own (see Derive)
// starts counting again in that row, so its first delivery from it is not
// its first. False for a child handed over in memory, a message of
// another publisher and any later delivery.
func (h *holder) First() bool { return h.seq != 0 && h.first }

// How the queue counts the crashes broker.Crashes reads (broker.CrashesKey): how
// many times at least a process died, or stopped without settling it,
// while it held a message a Queue delivered.
//
// A first delivery writes nothing to count it (that would be a write
// per message): a delivery is known to have ended abnormally only when
// the row comes again without having been settled (acked, or nacked,
// which writes the row anyway). Such a row is a suspect: it is delivered
// in this subscription's lane, one suspect at a time beside the other
// messages, so that a message that kills the process is held by it
// alone among the suspects; and before it starts, its start is counted
// in its row's metadata (one write per suspect), which a normal end
// takes back. A death is so counted for the messages that were being
// handled, the suspects among them alone: one that only waited in this
// process (claimed, handed over, or in the lane) when it died counts no
// more than one death, the first. A poison message comes to n after n
// deaths: its first delivery, then n-1 starts as a suspect.
//
// Zero for a message of another publisher, a child (see Derive) handed
// over in memory, and a message that never came back unsettled.

// suspect reads the crash count of a row delivered for the d-th time
// (see Crashes) from its metadata, and sets broker.CrashesKey on it: whether
// the row is a suspect, and the count.
func suspect(md message.Metadata, d int) (bool, int) {
	settled, _ := strconv.Atoi(md.Get(settledKey))
	crashed, _ := strconv.Atoi(md.Get(crashedKey))
	sus := d-1 > settled
	n := crashed
	if sus {
		n++ // the death that left it unsettled, unless counted already
	}
	if n > 0 {
		md.Set(broker.CrashesKey, strconv.Itoa(n))
	} else {
		delete(md, broker.CrashesKey)
	}
	return sus, n
}

// rowMetadata is the metadata a delivered message's row keeps: its own,
// without what the queue sets for a delivery.
func rowMetadata(md message.Metadata) message.Metadata {
	out := make(message.Metadata, len(md))
	for k, v := range md {
		if k != DeliveriesKey && k != broker.CrashesKey {
			out[k] = v
		}
	}
	return out
}

// mark counts the start of a suspect's delivery in its row before it
// starts: should the process die in it, the row's next delivery finds
// it counted. A normal end takes it back (see nack). It returns the
// row's metadata as it was, nil when the write failed (the start is then
// not counted).
func (q *Queue) mark(h *holder, msg *message.Message) []byte {
	d, _ := strconv.Atoi(msg.Metadata.Get(DeliveriesKey))
	crashed, _ := strconv.Atoi(msg.Metadata.Get(crashedKey))
	before, err := json.Marshal(rowMetadata(msg.Metadata))
	if err != nil {
		return nil
	}
	md := rowMetadata(msg.Metadata)
	md.Set(crashedKey, strconv.Itoa(crashed+1))
	md.Set(settledKey, strconv.Itoa(d-1))
	raw, err := json.Marshal(md)
	if err != nil {
		return nil
	}
	err = q.w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
		_, err := tx.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET metadata = $1 WHERE seq = $2`, string(raw), h.seq)
		return err
	})
	if err != nil {
		return nil
	}
	msg.Metadata.Set(crashedKey, strconv.Itoa(crashed+1))
	msg.Metadata.Set(settledKey, strconv.Itoa(d-1))
	return before
}

// unmark undoes the mark of a suspect that a stopping subscription did
// not deliver after all (before is its row's metadata as it was), and
// its delivery, and makes the row available; when that fails, the
// delivery counts as started.
func (q *Queue) unmark(h *holder, before []byte) {
	q.untrack(h.seq)
	if before == nil {
		q.notStarted(h.seq)
		return
	}
	_ = q.w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
		_, err := tx.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET metadata = $1, deliveries = deliveries - 1, leased_until = 0, available_at = $2
			WHERE seq = $3 AND deliveries > 0`, string(before), time.Now().UnixMilli(), h.seq)
		return err
	})
}

// lane holds the suspects (see Crashes) of one subscription, delivered
// one at a time.
type lane struct {
	mu     sync.Mutex
	items  []laneItem
	signal chan struct{}
}

type laneItem struct {
	c    handedOver
	self *holder
}

func (l *lane) push(it laneItem) {
	l.mu.Lock()
	l.items = append(l.items, it)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

// next waits for the next suspect; false when stop or done comes first.
func (l *lane) next(stop, done <-chan struct{}) (laneItem, bool) {
	for {
		l.mu.Lock()
		if len(l.items) > 0 {
			it := l.items[0]
			l.items[0] = laneItem{}
			l.items = l.items[1:]
			l.mu.Unlock()
			return it, true
		}
		l.mu.Unlock()
		select {
		case <-l.signal:
		case <-stop:
			return laneItem{}, false
		case <-done:
			return laneItem{}, false
		}
	}
}

// drop gives back the suspects left, as giveBack does.
func (l *lane) drop(q *Queue) {
	l.mu.Lock()
	items := l.items
	l.items = nil
	l.mu.Unlock()
	for _, it := range items {
		q.notStarted(it.c.seq)
	}
}

// Derive (broker.Derive) makes child, a message a handler publishes while
// handling parent, a child of parent: published on this queue, it is
// handed over in memory without a row of its own, and parent's row stays
// until child is done (acked, or nacked and then stored). After a crash,
// parent is delivered again and its handler publishes child again. A
// message that is not a child is stored as usual.
//
// A child handed over in memory is delivered as the very message
// published, not a copy: its publisher must not use or change it once
// Publish returned (Watermill's router, publishing what a handler
// returned, does not).

func (l *localQueue) room() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.items) < l.limit
}

func (l *localQueue) push(items []handedOver) {
	l.mu.Lock()
	l.items = append(l.items, items...)
	l.mu.Unlock()
	select {
	case l.signal <- struct{}{}:
	default:
	}
}

func (l *localQueue) take(n int) []handedOver {
	l.mu.Lock()
	defer l.mu.Unlock()
	if n > len(l.items) {
		n = len(l.items)
	}
	out := append([]handedOver(nil), l.items[:n]...)
	clear(l.items[:n])
	l.items = l.items[n:]
	if len(l.items) == 0 {
		l.items = nil
	}
	if l.roomed != nil && len(l.items) < l.limit {
		close(l.roomed)
		l.roomed = nil
	}
	return out
}

// subscribed counts a subscription in (+1) or out (-1); the last one out
// wakes the publishers waiting for room, which no one will make.
func (l *localQueue) subscribed(n int) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.subs += n
	if l.subs == 0 && l.roomed != nil {
		close(l.roomed)
		l.roomed = nil
	}
}

// waitRoom reports whether the queue is below its limit, waiting for it
// for at most d: false when it is still full then, or when stop is closed
// or the last subscription stops first.
func (l *localQueue) waitRoom(d time.Duration, stop <-chan struct{}) bool {
	var timeout <-chan time.Time
	for {
		l.mu.Lock()
		if len(l.items) < l.limit {
			l.mu.Unlock()
			return true
		}
		if l.subs == 0 {
			l.mu.Unlock()
			return false
		}
		if l.roomed == nil {
			l.roomed = make(chan struct{})
		}
		roomed := l.roomed
		l.mu.Unlock()
		if timeout == nil {
			t := time.NewTimer(d)
			defer t.Stop()
			timeout = t.C
		}
		select {
		case <-roomed:
		case <-timeout:
			return false
		case <-stop:
			return false
		}
	}
}

var (
	_ message.Publisher  = (*Queue)(nil)
	_ message.Subscriber = (*Queue)(nil)
)

// New returns a queue over db (whose table exists: see Schema) writing through w.
func New(db *sql.DB, w *store.Writer, cfg Config) *Queue {
	if cfg.Lease <= 0 {
		cfg.Lease = 5 * time.Minute
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 256
	}
	if cfg.Batch <= 0 {
		cfg.Batch = 128
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 200 * time.Millisecond
	}
	if cfg.LocalLimit <= 0 {
		cfg.LocalLimit = DefaultLocalLimit
	}
	if cfg.ChildWait <= 0 {
		cfg.ChildWait = 10 * time.Second
	}
	q := &Queue{cfg: cfg, db: db, w: w, wake: map[string]chan struct{}{}, locals: map[string]*localQueue{},
		acks: make(chan int64, 4096), closed: make(chan struct{}), held: map[int64]int64{}}
	q.wg.Add(2)
	go q.ackLoop()
	go q.renewLoop()
	return q
}

// ReleaseLeases makes every leased message deliverable at once. The
// embedded default calls it at start: it is the only process, so a lease
// can only be left by a crash.
func (q *Queue) ReleaseLeases(ctx context.Context) error {
	_, err := q.db.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET leased_until = 0, available_at = $1 WHERE leased_until > 0`, time.Now().UnixMilli())
	if err != nil {
		return fmt.Errorf("release leases: %w", err)
	}
	return nil
}

func (q *Queue) wakeCh(topic string) chan struct{} {
	q.mu.Lock()
	defer q.mu.Unlock()
	ch, ok := q.wake[topic]
	if !ok {
		ch = make(chan struct{}, 1)
		q.wake[topic] = ch
	}
	return ch
}

// Notify wakes the local subscription of a topic after messages were
// inserted in a transaction of the caller's.
func (q *Queue) Notify(topic string) {
	select {
	case q.wakeCh(topic) <- struct{}{}:
	default:
	}
}

// Insert adds messages inside the caller's transaction. After the commit,
// call Delivered with what it returns (even when nil): the messages a
// subscription of this process will take in memory are handed over then,
// and the others are announced.
func (q *Queue) Insert(ctx context.Context, tx store.Execer, topic string, msgs ...*message.Message) (*Inserted, error) {
	return q.insert(ctx, tx, topic, true, msgs...)
}

func (q *Queue) insert(ctx context.Context, tx store.Execer, topic string, handOver bool, msgs ...*message.Message) (*Inserted, error) {
	if len(msgs) == 0 {
		return nil, nil
	}
	now := time.Now().UnixMilli()
	lq := q.local(topic)
	leased := int64(0)
	if handOver && lq != nil && lq.room() {
		leased = now + q.cfg.Lease.Milliseconds()
	}
	// one statement per message (prepared once): its rowid is the
	// message's seq, without a RETURNING clause (SQLite materialises
	// those, which costs more than the insert)
	query := `INSERT INTO ` + q.cfg.Table + ` (topic, uuid, payload, metadata, available_at, leased_until, deliveries)
		VALUES ($1, $2, $3, $4, $5, $6, $7)`
	ins := &Inserted{topic: topic, until: leased}
	for _, m := range msgs {
		md, err := json.Marshal(m.Metadata)
		if err != nil {
			return nil, fmt.Errorf("encode metadata: %w", err)
		}
		avail := now
		if at, err := strconv.ParseInt(m.Metadata.Get(broker.RetryAtKey), 10, 64); err == nil && at > now {
			avail = at
		}
		lease, deliveries := int64(0), 0
		if leased > 0 && avail <= now {
			// handed over in memory: delivered once already, and not
			// available to a claim before its lease ends
			lease, deliveries, avail = leased, 1, leased
		}
		res, err := tx.ExecContext(ctx, query, topic, m.UUID, []byte(m.Payload), string(md), avail, lease, deliveries)
		if err != nil {
			return nil, fmt.Errorf("enqueue on %s: %w", topic, err)
		}
		if lease == 0 {
			ins.notify = true
			continue
		}
		seq, err := res.LastInsertId()
		if err != nil {
			return nil, fmt.Errorf("enqueue on %s: %w", topic, err)
		}
		ins.items = append(ins.items, handedOver{seq: seq, msg: ownCopy(m), value: m.Context().Value(broker.LocalKey{}), deliveries: 1, local: true})
	}
	return ins, nil
}

// Inserted is what Insert stored, to hand over after the commit.
type Inserted struct {
	topic  string
	items  []handedOver
	until  int64 // the end of the lease of items
	notify bool
}

// Delivered hands the inserted messages over to the local subscription
// and wakes it; call it once the transaction of Insert committed.
func (q *Queue) Delivered(ins *Inserted) {
	if ins == nil {
		return
	}
	if len(ins.items) > 0 {
		q.track(ins.until, ins.items)
		q.local(ins.topic).push(ins.items)
	}
	if ins.notify {
		q.Notify(ins.topic)
	}
}

// handOverChildren hands the children among msgs over in memory and
// returns the others.
//
// When the subscription's in-memory queue is full, it waits for room (up
// to Config.ChildWait) rather than storing the children in rows: the
// handler of their parent, and with it the parent's subscription, waits
// too, so that a backlog stays in the parents' rows, already written,
// rather than costing a row, a claim and a read for every child. This is
// what lets intake run ahead of the runs in a burst and the backlog drain
// at the cost of running it.
func (q *Queue) handOverChildren(topic string, msgs []*message.Message) []*message.Message {
	lq := q.local(topic)
	if lq == nil || !slices.ContainsFunc(msgs, func(m *message.Message) bool { return q.parentOf(m) != nil }) {
		return msgs
	}
	if !lq.waitRoom(q.cfg.ChildWait, q.closed) {
		return msgs
	}
	var rest []*message.Message
	var items []handedOver
	for _, m := range msgs {
		p := q.parentOf(m)
		if p == nil {
			rest = append(rest, m)
			continue
		}
		if at, err := strconv.ParseInt(m.Metadata.Get(broker.RetryAtKey), 10, 64); err == nil && at > time.Now().UnixMilli() {
			rest = append(rest, m) // delayed: it waits in the table
			continue
		}
		p.add()
		// the very message: a child's publisher leaves it to the queue
		// (see Derive), so no copy is made for the subscriber
		items = append(items, handedOver{msg: m, value: m.Context().Value(broker.LocalKey{}), deliveries: 1, local: true, parent: p})
	}
	if len(items) > 0 {
		lq.push(items)
	}
	return rest
}

// parentOf returns the holder of m's parent when m is a child of a
// message of this queue, else nil.
func (q *Queue) parentOf(m *message.Message) *holder {
	if p, ok := m.Context().Value(broker.DeliveryKey{}).(*holder); ok && p.q == q {
		return p
	}
	return nil
}

// ownCopy copies a message for a subscriber: the publisher keeps its own.
func ownCopy(m *message.Message) *message.Message {
	own := message.NewMessage(m.UUID, m.Payload)
	own.Metadata = make(message.Metadata, len(m.Metadata)+1)
	for k, v := range m.Metadata {
		own.Metadata[k] = v
	}
	return own
}

func (q *Queue) local(topic string) *localQueue {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.locals[topic]
}

// Publish stores messages durably (group-committed) before returning, but
// for the children (see Derive) of messages of this queue, which it hands
// over in memory to the topic's subscription in this process when it has
// room.
func (q *Queue) Publish(topic string, msgs ...*message.Message) error {
	msgs = q.handOverChildren(topic, msgs)
	if len(msgs) == 0 {
		return nil
	}
	ctx := context.Background()
	if len(msgs) > 0 && msgs[0].Context() != nil {
		ctx = context.WithoutCancel(msgs[0].Context())
	}
	var ins *Inserted
	if err := q.w.Do(ctx, func(ctx context.Context, tx store.Execer) error {
		var err error
		ins, err = q.Insert(ctx, tx, topic, msgs...)
		return err
	}); err != nil {
		return err
	}
	q.Delivered(ins)
	return nil
}

// claimQuery leases up to $5 deliverable messages of a topic until $1, the
// lease's end, which is also when they are available again (see Queue):
// $2 the topic, $3 and $4 now (the limit is an argument, not in the text:
// one statement for every claim, prepared once). They are taken in the order of the
// table's index on (topic, available_at, seq), due time first, so that
// SQLite walks the index and stops after n rows. Ordered by seq alone, it
// would sort every due row first: 25 ms a claim with 100,000 waiting,
// inside the writer's transaction, which made draining a backlog slower
// the longer it was.
func claimQuery(table string) string {
	return `UPDATE ` + table + ` SET leased_until = $1, available_at = $1, deliveries = deliveries + 1
		WHERE seq IN (SELECT seq FROM ` + table + ` WHERE topic = $2 AND available_at <= $3 AND leased_until < $4
		ORDER BY available_at, seq LIMIT $5)
		RETURNING seq, uuid, payload, metadata, deliveries`
}

func (q *Queue) claim(ctx context.Context, topic string, n int) ([]handedOver, error) {
	now := time.Now().UnixMilli()
	until := now + q.cfg.Lease.Milliseconds()
	query := claimQuery(q.cfg.Table)
	var out []handedOver
	err := q.w.Do(ctx, func(ctx context.Context, tx store.Execer) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, query, until, topic, now, now, n)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var (
				c        handedOver
				uuid, md string
				payload  []byte
			)
			if err := rows.Scan(&c.seq, &uuid, &payload, &md, &c.deliveries); err != nil {
				return err
			}
			c.msg = message.NewMessage(uuid, payload)
			if err := json.Unmarshal([]byte(md), &c.msg.Metadata); err != nil {
				c.msg.Metadata = message.Metadata{}
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim from %s: %w", topic, err)
	}
	q.track(until, out)
	// RETURNING gives no order guarantee
	slices.SortFunc(out, func(a, b handedOver) int { return cmp.Compare(a.seq, b.seq) })
	if q.cfg.Claimed != nil && len(out) > 0 {
		msgs := make([]*message.Message, len(out))
		for i, c := range out {
			msgs[i] = c.msg
		}
		if values := q.cfg.Claimed(ctx, topic, msgs); len(values) == len(out) {
			for i, v := range values {
				out[i].value = v
			}
		}
	}
	return out, nil
}

// Subscribe delivers the topic's messages, many in flight at once.
func (q *Queue) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	q.mu.Lock()
	lq, ok := q.locals[topic]
	if !ok {
		lq = &localQueue{limit: q.cfg.LocalLimit, signal: make(chan struct{}, 1)}
		q.locals[topic] = lq
	}
	q.mu.Unlock()
	lq.subscribed(1)
	q.wg.Add(1)
	go q.consume(ctx, topic, lq, out)
	return out, nil
}

func (q *Queue) consume(ctx context.Context, topic string, lq *localQueue, out chan *message.Message) {
	defer q.wg.Done()
	defer close(out)
	slots := make(chan struct{}, q.cfg.MaxInFlight)
	wake := q.wakeCh(topic)
	ticker := time.NewTicker(q.cfg.Poll)
	defer ticker.Stop()
	var inflight sync.WaitGroup
	defer inflight.Wait()
	// no more taken from the local queue once the loop stops, even while
	// the messages in flight finish
	defer lq.subscribed(-1)
	// deliver hands a message to the subscriber once a slot is free
	// (calling taken, when set, once it is), and settles its row when the
	// handler is done with it; false when the subscription stops first
	deliver := func(c handedOver, self *holder, taken func()) bool {
		msg := c.msg
		// a delivered message outlives its subscription: closing the
		// subscription (a graceful shutdown) lets in-flight handlers
		// finish; the router's timeout bounds them
		mctx, cancel := context.WithCancel(&deliveryContext{values: ctx, local: c.value, holder: self})
		msg.SetContext(mctx)
		select {
		case slots <- struct{}{}:
		case <-ctx.Done():
			cancel()
			return false
		case <-q.closed:
			cancel()
			return false
		}
		if taken != nil {
			taken()
		}
		select {
		case out <- msg:
		case <-ctx.Done():
			cancel()
			<-slots
			return false
		case <-q.closed:
			cancel()
			<-slots
			return false
		}
		inflight.Add(1)
		go func() {
			defer inflight.Done()
			defer func() { <-slots }()
			defer cancel()
			select {
			case <-msg.Acked():
				self.ack()
			case <-msg.Nacked():
				if self.seq != 0 {
					q.nack(topic, self, msg)
					self.settled()
				} else if q.storeChild(topic, msg) {
					// stored in a row of its own: the parent may go
					self.ack()
				} else {
					self.abandon()
				}
			case <-q.closed:
				// unacknowledged: the lease brings it back (or, for
				// a child, its parent's)
			}
		}()
		return true
	}
	// the suspects (see Crashes) go one at a time, each counted in its
	// row before it starts, beside the other messages
	suspects := &lane{signal: make(chan struct{}, 1)}
	// what the loop pushes after the lane stopped is given back too
	defer suspects.drop(q)
	inflight.Add(1)
	go func() {
		defer inflight.Done()
		defer suspects.drop(q)
		for {
			it, ok := suspects.next(ctx.Done(), q.closed)
			if !ok {
				return
			}
			// counted once it has a place, right before it starts
			var before []byte
			marked := false
			if !deliver(it.c, it.self, func() { before, marked = q.mark(it.self, it.c.msg), true }) {
				if marked {
					q.unmark(it.self, before)
				} else {
					q.notStarted(it.c.seq)
				}
				return
			}
			select {
			case <-it.self.done:
			case <-q.closed:
				return
			}
		}
	}()
	// the table may hold messages for this topic: at start, after a
	// Notify, on every poll tick, and after a full batch
	tableDue := true
	for {
		free := q.cfg.MaxInFlight - len(slots)
		if free == 0 {
			// wait for a slot
			select {
			case slots <- struct{}{}:
				<-slots
			case <-ctx.Done():
				return
			case <-q.closed:
				return
			}
			continue
		}
		// a busy subscription never reaches the idle wait below: the poll
		// tick is looked at here too, so that what waits in the table (due
		// retries, messages put back, overflow of the in-memory queue) is
		// taken at least once a poll interval and not overtaken forever
		select {
		case <-ticker.C:
			tableDue = true
		case <-wake:
			tableDue = true
		default:
		}
		var batch []handedOver
		if tableDue {
			n := min(free, q.cfg.Batch)
			claimedRows, err := q.claim(ctx, topic, n)
			tableDue = err == nil && len(claimedRows) == n
			batch = claimedRows
		}
		if len(batch) == 0 {
			batch = lq.take(min(free, q.cfg.Batch))
		}
		if len(batch) == 0 {
			select {
			case <-lq.signal:
			case <-wake:
				tableDue = true
			case <-ticker.C:
				tableDue = true
			case <-ctx.Done():
				return
			case <-q.closed:
				return
			}
			continue
		}
		for i, c := range batch {
			c.msg.Metadata.Set(DeliveriesKey, strconv.Itoa(c.deliveries))
			self := &holder{q: q, seq: c.seq, parent: c.parent, first: c.deliveries == 1}
			// a row claimed again without having been settled: its
			// holder died (a row handed over in memory is fresh)
			if c.seq != 0 && !c.local && c.deliveries > 1 {
				if sus, _ := suspect(c.msg.Metadata, c.deliveries); sus {
					self.done = make(chan struct{})
					suspects.push(laneItem{c: c, self: self})
					continue
				}
			}
			if !deliver(c, self, nil) {
				q.giveBack(lq, batch[i:])
				return
			}
		}
	}
}

// giveBack returns messages a stopping subscription took but did not
// deliver: those handed over in memory go back to the local queue (for a
// later subscription of this process), their rows still held; claimed
// ones are put back when the queue closes (see notStarted), or come back
// when their lease, no longer renewed, runs out, or at the next start.
func (q *Queue) giveBack(lq *localQueue, rest []handedOver) {
	var back []handedOver
	for _, c := range rest {
		if c.local {
			back = append(back, c)
		} else if c.seq != 0 {
			q.notStarted(c.seq)
		}
	}
	if len(back) > 0 {
		lq.mu.Lock()
		lq.items = append(back, lq.items...)
		lq.mu.Unlock()
	}
}

// storeChild gives a nacked child a row of its own, available at its
// retry time; false when that failed (the parent's row then stays).
func (q *Queue) storeChild(topic string, msg *message.Message) bool {
	md := rowMetadata(msg.Metadata)
	delete(md, settledKey) // a new row: its deliveries start again
	m := message.NewMessage(msg.UUID, msg.Payload)
	m.Metadata = md
	var ins *Inserted
	err := q.w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
		var err error
		ins, err = q.insert(ctx, tx, topic, false, m)
		return err
	})
	if err != nil {
		return false
	}
	q.Delivered(ins)
	return true
}

func (q *Queue) nack(topic string, h *holder, msg *message.Message) {
	seq := h.seq
	avail := time.Now().UnixMilli()
	if at, err := strconv.ParseInt(msg.Metadata.Get(broker.RetryAtKey), 10, 64); err == nil && at > avail {
		avail = at
	}
	md := rowMetadata(msg.Metadata)
	// a normal end: the deliveries so far are accounted for, a start
	// counted (see mark) is taken back, and the deaths known when it was
	// delivered are kept, the one that made it a suspect among them
	if d, err := strconv.Atoi(msg.Metadata.Get(DeliveriesKey)); err == nil {
		md.Set(settledKey, strconv.Itoa(d))
	}
	if n := broker.Crashes(msg); n > 0 {
		md.Set(crashedKey, strconv.Itoa(n))
	} else {
		delete(md, crashedKey)
	}
	raw, _ := json.Marshal(md)
	// released before the write, which comes after any renewal that
	// still saw the row held (the writer runs ops in turn): if the write
	// fails, the lease runs out and the message comes back
	q.untrack(seq)
	err := q.w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
		_, err := tx.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET leased_until = 0, available_at = $1, metadata = $2 WHERE seq = $3`, avail, string(raw), seq)
		return err
	})
	if err == nil {
		q.Notify(topic)
	}
}

// ackLoop deletes acknowledged rows in batches, and stops renewing them
// once deleted (or once the delete failed: the lease then runs out). An
// ack lost to a crash only means a redelivery, which consumers tolerate
// (run ids are unique).
func (q *Queue) ackLoop() {
	defer q.wg.Done()
	batch := make([]int64, 0, sqlin.Max)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ids := append([]int64(nil), batch...)
		batch = batch[:0]
		q.deleteAcked(ids)
	}
	for {
		select {
		case seq := <-q.acks:
			batch = append(batch, seq)
			if len(batch) >= sqlin.Max {
				flush() // one full statement (see sqlin.List)
			}
		default:
			flush()
			select {
			case seq := <-q.acks:
				batch = append(batch, seq)
			case <-q.closed:
				for {
					select {
					case seq := <-q.acks:
						batch = append(batch, seq)
					default:
						flush()
						return
					}
				}
			}
		}
	}
}

// deleteAcked deletes the rows of acknowledged messages, then stops
// renewing them (whether the delete succeeded or not: if it failed, the
// lease runs out and the message is delivered again).
func (q *Queue) deleteAcked(ids []int64) {
	_ = q.w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
		for chunk := range slices.Chunk(ids, sqlin.Max) {
			list, args := sqlin.List(nil, chunk)
			if _, err := tx.ExecContext(ctx, `DELETE FROM `+q.cfg.Table+` WHERE seq IN `+list, args...); err != nil {
				return err
			}
		}
		return nil
	})
	q.untrack(ids...)
}

// track records rows leased to this process until the unix millisecond
// until, to renew their leases while they are held.
func (q *Queue) track(until int64, items []handedOver) {
	q.heldMu.Lock()
	for _, c := range items {
		if c.seq != 0 {
			q.held[c.seq] = until
		}
	}
	q.heldMu.Unlock()
}

// untrack stops renewing the leases of rows released.
func (q *Queue) untrack(seqs ...int64) {
	q.heldMu.Lock()
	for _, s := range seqs {
		delete(q.held, s)
	}
	q.heldMu.Unlock()
}

// renewLoop extends the leases of the rows held, every sixth of a lease:
// a lease is extended once it is older than a third of Config.Lease, so
// that it never has less than half of it left (room for a busy writer).
// It writes nothing while no lease is that old.
func (q *Queue) renewLoop() {
	defer q.wg.Done()
	tick := time.NewTicker(max(q.cfg.Lease/6, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-q.closed:
			return
		case <-tick.C:
			q.renew()
		}
	}
}

// renew extends the leases older than a third of Config.Lease.
func (q *Queue) renew() {
	lease := q.cfg.Lease.Milliseconds()
	// a lease that ends by then was written a third of a lease ago
	stale := time.Now().UnixMilli() + lease - max(lease/3, 1)
	var due []int64
	q.heldMu.Lock()
	for seq, until := range q.held {
		if until <= stale {
			due = append(due, seq)
		}
	}
	q.heldMu.Unlock()
	if len(due) == 0 {
		return
	}
	slices.Sort(due)
	for seqs := range slices.Chunk(due, sqlin.Max) {
		select {
		case <-q.closed:
			return
		default:
		}
		q.renewRows(seqs)
	}
}

// renewRows extends the leases of the rows among seqs still held when
// the statement runs. A row released meanwhile is left alone: its release
// is written after, or already untracked (see nack).
func (q *Queue) renewRows(seqs []int64) {
	until := time.Now().UnixMilli() + q.cfg.Lease.Milliseconds()
	var renewed []int64
	err := q.w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
		renewed = renewed[:0] // an op may run twice
		q.heldMu.Lock()
		for _, s := range seqs {
			if _, ok := q.held[s]; ok {
				renewed = append(renewed, s)
			}
		}
		q.heldMu.Unlock()
		if len(renewed) == 0 {
			return nil
		}
		// padded to few shapes: see sqlin.List
		list, args := sqlin.List([]any{until}, renewed)
		_, err := tx.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET leased_until = $1, available_at = $1 WHERE seq IN `+list, args...)
		return err
	})
	if err != nil {
		// tried again at the next tick, while the lease still runs
		return
	}
	q.heldMu.Lock()
	for _, s := range renewed {
		if cur, ok := q.held[s]; ok && cur < until {
			q.held[s] = until
		}
	}
	q.heldMu.Unlock()
}

// Depth counts the messages waiting or in flight on a topic.
func (q *Queue) Depth(ctx context.Context, topic string) (int64, error) {
	var n int64
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+q.cfg.Table+` WHERE topic = $1`, topic).Scan(&n)
	return n, err
}

// Close stops the subscriptions and the renewal of leases, and flushes
// acknowledgements. The leases of the messages still held then run out.
func (q *Queue) Close() error {
	q.once.Do(func() {
		close(q.closed)
		q.wg.Wait()
		q.putBackNotStarted()
	})
	q.wg.Wait()
	return nil
}

// notStarted stops renewing the leases of rows taken (claimed) but not
// delivered by a stopping subscription; Close puts them back.
func (q *Queue) notStarted(seqs ...int64) {
	q.untrack(seqs...)
	q.heldMu.Lock()
	q.unstarted = append(q.unstarted, seqs...)
	q.heldMu.Unlock()
}

// putBackNotStarted undoes the deliveries of the rows this process took
// but never handed to a handler (see notStarted, and the rows handed
// over in memory still in a local queue), and makes them available: a
// graceful stop leaves them as they were, and no death is counted for
// them (see Crashes). A row whose handler ran keeps its delivery (a
// parent whose children did not all run comes back a suspect). When the
// write fails, the leases run out, or the next start releases them.
func (q *Queue) putBackNotStarted() {
	q.heldMu.Lock()
	seqs := q.unstarted
	q.unstarted = nil
	q.heldMu.Unlock()
	q.mu.Lock()
	for _, lq := range q.locals {
		lq.mu.Lock()
		for _, c := range lq.items {
			if c.seq != 0 {
				seqs = append(seqs, c.seq)
			}
		}
		lq.mu.Unlock()
	}
	q.mu.Unlock()
	if len(seqs) == 0 {
		return
	}
	now := time.Now().UnixMilli()
	_ = q.w.Do(context.Background(), func(ctx context.Context, tx store.Execer) error {
		for chunk := range slices.Chunk(seqs, sqlin.Max) {
			list, args := sqlin.List([]any{now}, chunk)
			if _, err := tx.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET deliveries = deliveries - 1, leased_until = 0, available_at = $1
				WHERE leased_until > 0 AND deliveries > 0 AND seq IN `+list, args...); err != nil {
				return err
			}
		}
		return nil
	})
}
