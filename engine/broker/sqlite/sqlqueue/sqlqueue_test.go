package sqlqueue_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/store"
)

const schema = `CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, uuid TEXT NOT NULL,
	payload BLOB NOT NULL, metadata TEXT NOT NULL, available_at BIGINT NOT NULL,
	leased_until BIGINT NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0);
CREATE INDEX queue_topic ON queue (topic, available_at, seq)`

// The schema above is the queue's own (Schema, which the embedded broker
// creates), index included.

// openDB opens a file database with one connection, as the service does.
func openDB(t testing.TB) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "q.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(schema)
	require.NoError(t, err)
	return db
}

func newQueue(t *testing.T, db *sql.DB, cfg sqlqueue.Config) *sqlqueue.Queue {
	t.Helper()
	w := store.NewWriter(db, 64)
	cfg.Table = "queue"
	q := sqlqueue.New(db, w, cfg)
	t.Cleanup(func() { q.Close(); w.Close() })
	return q
}

func receive(t *testing.T, ch <-chan *message.Message, d time.Duration) *message.Message {
	t.Helper()
	select {
	case m := <-ch:
		return m
	case <-time.After(d):
		t.Fatalf("no message within %s", d)
		return nil
	}
}

func TestQueueDeliversAndAcks(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	for i := 0; i < 20; i++ {
		require.NoError(t, q.Publish("t", message.NewMessage(fmt.Sprint(i), []byte(fmt.Sprint(i)))))
	}
	seen := map[string]bool{}
	for i := 0; i < 20; i++ {
		m := receive(t, ch, 5*time.Second)
		seen[string(m.Payload)] = true
		m.Ack()
	}
	require.Len(t, seen, 20)
	require.Eventually(t, func() bool {
		n, err := q.Depth(ctx, "t")
		return err == nil && n == 0
	}, 5*time.Second, 10*time.Millisecond, "acked messages are deleted")
}

func TestQueueNackWithDelayRedeliversLater(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	require.NoError(t, q.Publish("t", message.NewMessage("a", []byte("x"))))
	m := receive(t, ch, 5*time.Second)
	require.Equal(t, "1", m.Metadata.Get(sqlqueue.DeliveriesKey))
	at := time.Now().Add(400 * time.Millisecond)
	m.Metadata.Set(broker.RetryAtKey, fmt.Sprint(at.UnixMilli()))
	m.Nack()
	m2 := receive(t, ch, 5*time.Second)
	require.False(t, time.Now().Before(at.Add(-20*time.Millisecond)), "redelivered before its retry time")
	require.Equal(t, "2", m2.Metadata.Get(sqlqueue.DeliveriesKey))
	m2.Ack()
}

// TestQueueLeasesSurviveAProcess models a crash: a message delivered but
// never acked comes back once its lease runs out, or at once when the
// leases are released at start.
func TestQueueLeasesSurviveAProcess(t *testing.T) {
	db := openDB(t)
	q1 := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, Lease: time.Hour})
	ctx1, cancel1 := context.WithCancel(context.Background())
	ch1, err := q1.Subscribe(ctx1, "t")
	require.NoError(t, err)
	require.NoError(t, q1.Publish("t", message.NewMessage("a", []byte("x"))))
	receive(t, ch1, 5*time.Second) // delivered, never acked: the "process" dies
	cancel1()
	q1.Close()

	q2 := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, Lease: time.Hour})
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ch2, err := q2.Subscribe(ctx2, "t")
	require.NoError(t, err)
	select {
	case <-ch2:
		t.Fatal("a leased message was delivered again before its lease ran out")
	case <-time.After(200 * time.Millisecond):
	}
	require.NoError(t, q2.ReleaseLeases(ctx2))
	q2.Notify("t")
	m := receive(t, ch2, 5*time.Second)
	require.Equal(t, "x", string(m.Payload))
	m.Ack()
}

func TestQueueBoundsInFlight(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, MaxInFlight: 3})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	for i := 0; i < 10; i++ {
		require.NoError(t, q.Publish("t", message.NewMessage(fmt.Sprint(i), []byte("x"))))
	}
	var held []*message.Message
	for i := 0; i < 3; i++ {
		held = append(held, receive(t, ch, 5*time.Second))
	}
	select {
	case <-ch:
		t.Fatal("a fourth message was delivered while three were unacknowledged")
	case <-time.After(200 * time.Millisecond):
	}
	held[0].Ack()
	receive(t, ch, 5*time.Second).Ack()
	for _, m := range held[1:] {
		m.Ack()
	}
}

// rowsOf returns the queue's rows of a topic as "uuid:leased:deliveries".
func rowsOf(t *testing.T, db *sql.DB, topic string) []string {
	t.Helper()
	rows, err := db.Query(`SELECT uuid, leased_until > 0, deliveries FROM queue WHERE topic = $1 ORDER BY seq`, topic)
	require.NoError(t, err)
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		var leased bool
		var n int
		require.NoError(t, rows.Scan(&id, &leased, &n))
		out = append(out, fmt.Sprintf("%s:%v:%d", id, leased, n))
	}
	require.NoError(t, rows.Err())
	return out
}

// TestQueueHandsOverInMemory checks that a message published in the
// process that subscribes to its topic is stored leased and delivered
// with its in-memory value, without being claimed from the table; and
// that a message published where nobody subscribes is stored unleased.
func TestQueueHandsOverInMemory(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: time.Hour})
	require.NoError(t, q.Publish("nobody", message.NewMessage("n", []byte("x"))))
	require.Equal(t, []string{"n:false:0"}, rowsOf(t, db, "nobody"))

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	m := message.NewMessage("a", []byte("x"))
	value := &struct{ n int }{7}
	broker.WithLocal(m, value)
	require.NoError(t, q.Publish("t", m))
	require.Equal(t, []string{"a:true:1"}, rowsOf(t, db, "t"), "stored, leased to this process, delivered once")
	// Poll is an hour: only the handover can deliver it this soon
	got := receive(t, ch, 5*time.Second)
	require.Equal(t, "x", string(got.Payload))
	require.Same(t, value, broker.Local(got))
	require.Equal(t, "1", got.Metadata.Get(sqlqueue.DeliveriesKey))
	got.Ack()
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestQueueChildHoldsItsParent checks the in-memory children: a message
// a handler publishes from the message it handles has no row of its own;
// the parent's row stays until the child is done; a child nacked with a
// retry time gets a row of its own, and then the parent may go.
func TestQueueChildHoldsItsParent(t *testing.T) {
	tests := []struct {
		name string
		// finish acks or nacks the child
		finish func(t *testing.T, child *message.Message)
		// rows left on the child topic once the parent's row is gone
		childRows []string
	}{
		{"acked child", func(t *testing.T, c *message.Message) { c.Ack() }, nil},
		{"nacked child gets a row", func(t *testing.T, c *message.Message) {
			c.Metadata.Set(broker.RetryAtKey, fmt.Sprint(time.Now().Add(time.Hour).UnixMilli()))
			c.Nack()
		}, []string{"child:false:0"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			db := openDB(t)
			q := newQueue(t, db, sqlqueue.Config{Poll: time.Hour})
			_, children, parent := parentWithChild(t, q)
			require.Empty(t, rowsOf(t, db, "children"), "a child has no row")
			parent.Ack()
			got := receive(t, children, 5*time.Second)
			require.Equal(t, "c", string(got.Payload))
			time.Sleep(50 * time.Millisecond) // the ack loop would have deleted the row by now
			require.Equal(t, []string{"parent:true:1"}, rowsOf(t, db, "parents"), "the parent's row stays while its child runs")

			tc.finish(t, got)
			require.Eventually(t, func() bool { return len(rowsOf(t, db, "parents")) == 0 }, 5*time.Second, 10*time.Millisecond)
			require.Equal(t, tc.childRows, rowsOf(t, db, "children"))
		})
	}
}

// TestQueueChildLostWithItsProcess models a crash while a child runs: the
// parent's row is still there, and the next process gets the parent again.
func TestQueueChildLostWithItsProcess(t *testing.T) {
	db := openDB(t)
	q1 := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, Lease: time.Hour})
	ctx1, cancel1 := context.WithCancel(context.Background())
	parents, err := q1.Subscribe(ctx1, "parents")
	require.NoError(t, err)
	children, err := q1.Subscribe(ctx1, "children")
	require.NoError(t, err)
	require.NoError(t, q1.Publish("parents", message.NewMessage("parent", []byte("p"))))
	parent := receive(t, parents, 5*time.Second)
	child := message.NewMessage("child", []byte("c"))
	broker.Derive(child, parent)
	require.NoError(t, q1.Publish("children", child))
	parent.Ack()
	receive(t, children, 5*time.Second) // never acked: the process dies
	cancel1()
	q1.Close()

	q2 := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, Lease: time.Hour})
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	require.NoError(t, q2.ReleaseLeases(ctx2))
	parents2, err := q2.Subscribe(ctx2, "parents")
	require.NoError(t, err)
	again := receive(t, parents2, 5*time.Second)
	require.Equal(t, "parent", again.UUID)
	require.Equal(t, "2", again.Metadata.Get(sqlqueue.DeliveriesKey))
	again.Ack()
}

// TestQueueTableNotStarvedByHandover: a message waiting in the table is
// taken within a poll or so even while the in-memory handover never runs
// dry, not after all of it.
func TestQueueTableNotStarvedByHandover(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, MaxInFlight: 4, Batch: 4})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	const local = 2000
	msgs := make([]*message.Message, local)
	for i := range msgs {
		msgs[i] = message.NewMessage(fmt.Sprintf("local-%d", i), []byte("x"))
	}
	require.NoError(t, q.Publish("t", msgs...)) // handed over in memory
	first := receive(t, ch, 5*time.Second)
	first.Ack()
	// now busy with the handover: a row put in the table behind its back
	// (no wake-up) is found only by the poll
	_, err = db.Exec(`INSERT INTO queue (topic, uuid, payload, metadata, available_at) VALUES ('t', 'from-table', x'00', '{}', $1)`, time.Now().UnixMilli())
	require.NoError(t, err)
	for n := 1; n <= local; n++ {
		m := receive(t, ch, 5*time.Second)
		m.Ack()
		if m.UUID == "from-table" {
			require.Less(t, n, local/2, "the table's message waited for the in-memory ones")
			return
		}
		time.Sleep(100 * time.Microsecond) // a handler takes some time
	}
	t.Fatal("the table's message never came")
}
