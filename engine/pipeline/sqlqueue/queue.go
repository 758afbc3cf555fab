package sqlqueue

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
)

// RetryAtKey is the metadata key a handler sets (unix milliseconds) before
// Nack to delay the redelivery: a durable retry.
const RetryAtKey = "sous_retry_at"

// DeliveriesKey carries how many times the message was delivered.
const DeliveriesKey = "sous_deliveries"

// Config tunes a queue.
type Config struct {
	// Table is the queue table name (with any prefix).
	Table string
	// Postgres selects SKIP LOCKED claiming for several processes.
	Postgres bool
	// Lease is how long a delivered message stays invisible to other
	// consumers; a message not acked by then is delivered again.
	Lease time.Duration
	// MaxInFlight bounds the unacknowledged messages per subscription.
	MaxInFlight int
	// Batch bounds the messages claimed at once.
	Batch int
	// Poll is how often an idle subscription looks for messages that other
	// processes published or that became available.
	Poll time.Duration
}

// Queue is a Watermill Publisher and Subscriber over a SQL table.
type Queue struct {
	cfg    Config
	db     *sql.DB
	w      *Writer
	mu     sync.Mutex
	wake   map[string]chan struct{}
	acks   chan int64
	closed chan struct{}
	wg     sync.WaitGroup
	once   sync.Once
}

var (
	_ message.Publisher  = (*Queue)(nil)
	_ message.Subscriber = (*Queue)(nil)
)

// New returns a queue over db (whose table exists) writing through w.
func New(db *sql.DB, w *Writer, cfg Config) *Queue {
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
	q := &Queue{cfg: cfg, db: db, w: w, wake: map[string]chan struct{}{}, acks: make(chan int64, 4096), closed: make(chan struct{})}
	q.wg.Add(1)
	go q.ackLoop()
	return q
}

// ReleaseLeases makes every leased message deliverable at once. The
// embedded default calls it at start: it is the only process, so a lease
// can only be left by a crash.
func (q *Queue) ReleaseLeases(ctx context.Context) error {
	_, err := q.db.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET leased_until = 0 WHERE leased_until > 0`)
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

// Insert adds messages inside the caller's transaction; call Notify after
// the commit.
func (q *Queue) Insert(ctx context.Context, tx Tx, topic string, msgs ...*message.Message) error {
	if len(msgs) == 0 {
		return nil
	}
	now := time.Now().UnixMilli()
	var b strings.Builder
	b.WriteString(`INSERT INTO ` + q.cfg.Table + ` (topic, uuid, payload, metadata, available_at) VALUES `)
	args := make([]any, 0, len(msgs)*5)
	for i, m := range msgs {
		if i > 0 {
			b.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&b, "($%d,$%d,$%d,$%d,$%d)", n+1, n+2, n+3, n+4, n+5)
		md, err := json.Marshal(m.Metadata)
		if err != nil {
			return fmt.Errorf("encode metadata: %w", err)
		}
		avail := now
		if at, err := strconv.ParseInt(m.Metadata.Get(RetryAtKey), 10, 64); err == nil && at > now {
			avail = at
		}
		args = append(args, topic, m.UUID, []byte(m.Payload), string(md), avail)
	}
	if _, err := tx.ExecContext(ctx, b.String(), args...); err != nil {
		return fmt.Errorf("enqueue on %s: %w", topic, err)
	}
	return nil
}

// Publish stores messages durably (group-committed) before returning.
func (q *Queue) Publish(topic string, msgs ...*message.Message) error {
	ctx := context.Background()
	if len(msgs) > 0 && msgs[0].Context() != nil {
		ctx = context.WithoutCancel(msgs[0].Context())
	}
	if err := q.w.Do(ctx, func(ctx context.Context, tx Tx) error {
		return q.Insert(ctx, tx, topic, msgs...)
	}); err != nil {
		return err
	}
	q.Notify(topic)
	return nil
}

type claimed struct {
	seq        int64
	uuid       string
	payload    []byte
	metadata   string
	deliveries int
}

func (q *Queue) claim(ctx context.Context, topic string, n int) ([]claimed, error) {
	now := time.Now().UnixMilli()
	lock := ""
	if q.cfg.Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	query := `UPDATE ` + q.cfg.Table + ` SET leased_until = $1, deliveries = deliveries + 1
		WHERE seq IN (SELECT seq FROM ` + q.cfg.Table + ` WHERE topic = $2 AND available_at <= $3 AND leased_until < $4
		ORDER BY seq LIMIT ` + strconv.Itoa(n) + lock + `)
		RETURNING seq, uuid, payload, metadata, deliveries`
	var out []claimed
	err := q.w.Do(ctx, func(ctx context.Context, tx Tx) error {
		out = out[:0]
		rows, err := tx.QueryContext(ctx, query, now+q.cfg.Lease.Milliseconds(), topic, now, now)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var c claimed
			if err := rows.Scan(&c.seq, &c.uuid, &c.payload, &c.metadata, &c.deliveries); err != nil {
				return err
			}
			out = append(out, c)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("claim from %s: %w", topic, err)
	}
	// RETURNING gives no order guarantee
	for i := 1; i < len(out); i++ {
		for j := i; j > 0 && out[j].seq < out[j-1].seq; j-- {
			out[j], out[j-1] = out[j-1], out[j]
		}
	}
	return out, nil
}

// Subscribe delivers the topic's messages, many in flight at once.
func (q *Queue) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	out := make(chan *message.Message)
	q.wg.Add(1)
	go q.consume(ctx, topic, out)
	return out, nil
}

func (q *Queue) consume(ctx context.Context, topic string, out chan *message.Message) {
	defer q.wg.Done()
	defer close(out)
	slots := make(chan struct{}, q.cfg.MaxInFlight)
	wake := q.wakeCh(topic)
	ticker := time.NewTicker(q.cfg.Poll)
	defer ticker.Stop()
	var inflight sync.WaitGroup
	defer inflight.Wait()
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
		batch, err := q.claim(ctx, topic, min(free, q.cfg.Batch))
		if err != nil || len(batch) == 0 {
			select {
			case <-wake:
			case <-ticker.C:
			case <-ctx.Done():
				return
			case <-q.closed:
				return
			}
			continue
		}
		for _, c := range batch {
			msg := message.NewMessage(c.uuid, c.payload)
			if err := json.Unmarshal([]byte(c.metadata), &msg.Metadata); err != nil {
				msg.Metadata = message.Metadata{}
			}
			msg.Metadata.Set(DeliveriesKey, strconv.Itoa(c.deliveries))
			// a delivered message outlives its subscription: closing the
			// subscription (a graceful shutdown) lets in-flight handlers
			// finish; the router's timeout bounds them
			mctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
			msg.SetContext(mctx)
			slots <- struct{}{}
			select {
			case out <- msg:
			case <-ctx.Done():
				cancel()
				<-slots
				return
			case <-q.closed:
				cancel()
				<-slots
				return
			}
			inflight.Add(1)
			go func(seq int64) {
				defer inflight.Done()
				defer func() { <-slots }()
				defer cancel()
				select {
				case <-msg.Acked():
					q.acks <- seq
				case <-msg.Nacked():
					q.nack(topic, seq, msg)
				case <-q.closed:
					// unacknowledged: the lease brings it back
				}
			}(c.seq)
		}
	}
}

func (q *Queue) nack(topic string, seq int64, msg *message.Message) {
	avail := time.Now().UnixMilli()
	if at, err := strconv.ParseInt(msg.Metadata.Get(RetryAtKey), 10, 64); err == nil && at > avail {
		avail = at
	}
	md := make(message.Metadata, len(msg.Metadata))
	for k, v := range msg.Metadata {
		if k != DeliveriesKey {
			md[k] = v
		}
	}
	raw, _ := json.Marshal(md)
	err := q.w.Do(context.Background(), func(ctx context.Context, tx Tx) error {
		_, err := tx.ExecContext(ctx, `UPDATE `+q.cfg.Table+` SET leased_until = 0, available_at = $1, metadata = $2 WHERE seq = $3`, avail, string(raw), seq)
		return err
	})
	if err == nil {
		q.Notify(topic)
	}
}

// ackLoop deletes acknowledged rows in batches. An ack lost to a crash
// only means a redelivery, which consumers tolerate (run ids are unique).
func (q *Queue) ackLoop() {
	defer q.wg.Done()
	batch := make([]int64, 0, 1024)
	flush := func() {
		if len(batch) == 0 {
			return
		}
		ids := append([]int64(nil), batch...)
		batch = batch[:0]
		_ = q.w.Do(context.Background(), func(ctx context.Context, tx Tx) error {
			var b strings.Builder
			b.WriteString(`DELETE FROM ` + q.cfg.Table + ` WHERE seq IN (`)
			args := make([]any, len(ids))
			for i, id := range ids {
				if i > 0 {
					b.WriteByte(',')
				}
				fmt.Fprintf(&b, "$%d", i+1)
				args[i] = id
			}
			b.WriteByte(')')
			_, err := tx.ExecContext(ctx, b.String(), args...)
			return err
		})
	}
	for {
		select {
		case seq := <-q.acks:
			batch = append(batch, seq)
			if len(batch) >= 1000 {
				flush()
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

// Depth counts the messages waiting or in flight on a topic.
func (q *Queue) Depth(ctx context.Context, topic string) (int64, error) {
	var n int64
	err := q.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM `+q.cfg.Table+` WHERE topic = $1`, topic).Scan(&n)
	return n, err
}

// Close stops the subscriptions and flushes acknowledgements.
func (q *Queue) Close() error {
	q.once.Do(func() { close(q.closed) })
	q.wg.Wait()
	return nil
}
