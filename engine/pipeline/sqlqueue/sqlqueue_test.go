package sqlqueue_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
	_ "modernc.org/sqlite"

	"github.com/sous-run/sous/engine/pipeline/sqlqueue"
)

const schema = `CREATE TABLE queue (seq INTEGER PRIMARY KEY AUTOINCREMENT, topic TEXT NOT NULL, uuid TEXT NOT NULL,
	payload BLOB NOT NULL, metadata TEXT NOT NULL, available_at BIGINT NOT NULL,
	leased_until BIGINT NOT NULL DEFAULT 0, deliveries INTEGER NOT NULL DEFAULT 0)`

// openDB opens a file database with one connection, as the service does.
func openDB(t *testing.T) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.Join(t.TempDir(), "q.db")+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(5000)&_txlock=immediate")
	require.NoError(t, err)
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	_, err = db.Exec(schema)
	require.NoError(t, err)
	_, err = db.Exec(`CREATE TABLE kv (k TEXT PRIMARY KEY, v INTEGER NOT NULL)`)
	require.NoError(t, err)
	return db
}

func withTimeout(t *testing.T, d time.Duration, f func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); f() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("did not finish within %s (deadlock?)", d)
	}
}

// TestWriterReusesStatementsWithOneConnection is the regression test of a
// deadlock: preparing a statement inside the batch's transaction waited
// for a connection the transaction itself held.
func TestWriterReusesStatementsWithOneConnection(t *testing.T) {
	db := openDB(t)
	w := sqlqueue.NewWriter(db, 64)
	defer w.Close()
	withTimeout(t, 10*time.Second, func() {
		for i := 0; i < 50; i++ {
			err := w.Do(context.Background(), func(ctx context.Context, tx sqlqueue.Tx) error {
				_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, fmt.Sprint(i), i)
				return err
			})
			require.NoError(t, err)
		}
	})
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n))
	require.Equal(t, 50, n)
}

func TestWriterIsolatesAFailingOp(t *testing.T) {
	db := openDB(t)
	w := sqlqueue.NewWriter(db, 64)
	defer w.Close()
	var wg sync.WaitGroup
	errs := make([]error, 40)
	for i := range errs {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			errs[i] = w.Do(context.Background(), func(ctx context.Context, tx sqlqueue.Tx) error {
				if i == 7 {
					return errors.New("op 7 fails")
				}
				_, err := tx.ExecContext(ctx, `INSERT INTO kv (k, v) VALUES ($1, $2)`, fmt.Sprint(i), i)
				return err
			})
		}(i)
	}
	withTimeout(t, 10*time.Second, wg.Wait)
	for i, err := range errs {
		if i == 7 {
			require.EqualError(t, err, "op 7 fails")
			continue
		}
		require.NoError(t, err, "op %d", i)
	}
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM kv`).Scan(&n))
	require.Equal(t, 39, n, "every op but the failing one is committed")
}

func TestWriterAfterClose(t *testing.T) {
	w := sqlqueue.NewWriter(openDB(t), 8)
	require.NoError(t, w.Close())
	require.ErrorIs(t, w.Do(context.Background(), func(context.Context, sqlqueue.Tx) error { return nil }), sqlqueue.ErrClosed)
}

func newQueue(t *testing.T, db *sql.DB, cfg sqlqueue.Config) *sqlqueue.Queue {
	t.Helper()
	w := sqlqueue.NewWriter(db, 64)
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
	m.Metadata.Set(sqlqueue.RetryAtKey, fmt.Sprint(at.UnixMilli()))
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
