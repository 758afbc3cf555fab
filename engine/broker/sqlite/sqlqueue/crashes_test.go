package sqlqueue_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
)

// process is one life of a queue over a database that outlives it.
type process struct {
	q      *sqlqueue.Queue
	ch     <-chan *message.Message
	cancel context.CancelFunc
}

// startProcess opens a queue over db as a process starting does: the
// leases a dead one left are released.
func startProcess(t *testing.T, db *sql.DB) *process {
	t.Helper()
	q := newQueue(t, db, sqlqueue.Config{Poll: 10 * time.Millisecond, Lease: time.Hour})
	ctx, cancel := context.WithCancel(context.Background())
	require.NoError(t, q.ReleaseLeases(ctx))
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	return &process{q: q, ch: ch, cancel: cancel}
}

// die stops the process without settling what it holds, as a kill does.
func (p *process) die() {
	p.cancel()
	p.q.Close()
}

// noMessage fails if ch delivers within d.
func noMessage(t *testing.T, ch <-chan *message.Message, d time.Duration, why string) {
	t.Helper()
	select {
	case m := <-ch:
		t.Fatalf("%s: %s delivered", why, m.UUID)
	case <-time.After(d):
	}
}

// TestCrashesCountDeathsInFlight: a message held by a process that dies
// comes back counted, one more for each death in it; a normal end (a
// nack) is not counted, and a first delivery writes nothing.
func TestCrashesCountDeathsInFlight(t *testing.T) {
	db := openDB(t)
	p := startProcess(t, db)
	require.NoError(t, p.q.Publish("t", message.NewMessage("p", []byte("x"))))
	m := receive(t, p.ch, 5*time.Second)
	require.Equal(t, 0, broker.Crashes(m), "a first delivery")
	var md string
	require.NoError(t, db.QueryRow(`SELECT metadata FROM queue WHERE uuid = 'p'`).Scan(&md))
	require.Equal(t, "{}", md, "a first delivery writes nothing")
	p.die()
	for want := 1; want <= 3; want++ {
		p = startProcess(t, db)
		m = receive(t, p.ch, 5*time.Second)
		require.Equal(t, "p", m.UUID)
		require.Equal(t, want, broker.Crashes(m), "after %d deaths", want)
		p.die()
	}
	// a normal end takes the start back
	p = startProcess(t, db)
	m = receive(t, p.ch, 5*time.Second)
	require.Equal(t, 4, broker.Crashes(m))
	m.Nack()
	m = receive(t, p.ch, 5*time.Second)
	require.Equal(t, 4, broker.Crashes(m), "the nacked delivery did not die, the four before it did")
	m.Nack()
	m = receive(t, p.ch, 5*time.Second)
	require.Equal(t, 4, broker.Crashes(m))
	m.Ack()
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 0 }, 5*time.Second, 10*time.Millisecond)
	p.die()
}

// TestCrashesKeptAcrossANormalEnd: a death is not forgotten when the
// delivery after it ends normally (a nack, a durable retry): a message
// that kills its process every other delivery still reaches the limit.
func TestCrashesKeptAcrossANormalEnd(t *testing.T) {
	db := openDB(t)
	p := startProcess(t, db)
	require.NoError(t, p.q.Publish("t", message.NewMessage("p", []byte("x"))))
	receive(t, p.ch, 5*time.Second)
	for want := 1; want <= 3; want++ {
		p.die()
		p = startProcess(t, db)
		m := receive(t, p.ch, 5*time.Second)
		require.Equal(t, want, broker.Crashes(m), "after %d deaths", want)
		m.Nack()
		m = receive(t, p.ch, 5*time.Second)
		require.Equal(t, want, broker.Crashes(m), "after %d deaths and a nack", want)
	}
	p.die()
}

// TestCrashesSuspectsOneAtATime: the messages a dead process held come
// back one at a time, while fresh ones flow; one that only waited its
// turn when the process died again is not counted for that death.
func TestCrashesSuspectsOneAtATime(t *testing.T) {
	db := openDB(t)
	p := startProcess(t, db)
	for _, id := range []string{"a", "b"} {
		require.NoError(t, p.q.Publish("t", message.NewMessage(id, []byte(id))))
	}
	receive(t, p.ch, 5*time.Second)
	receive(t, p.ch, 5*time.Second)
	p.die()

	p = startProcess(t, db)
	a := receive(t, p.ch, 5*time.Second)
	require.Equal(t, "a", a.UUID, "the oldest first")
	require.Equal(t, 1, broker.Crashes(a))
	noMessage(t, p.ch, 300*time.Millisecond, "a second suspect while the first is in flight")
	require.NoError(t, p.q.Publish("t", message.NewMessage("c", []byte("c"))))
	c := receive(t, p.ch, 5*time.Second)
	require.Equal(t, "c", c.UUID, "a fresh message flows beside the suspect")
	c.Ack()
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 2 }, 5*time.Second, 10*time.Millisecond, "c's ack is written")
	p.die() // a was in flight, b waited

	p = startProcess(t, db)
	a = receive(t, p.ch, 5*time.Second)
	require.Equal(t, "a", a.UUID)
	require.Equal(t, 2, broker.Crashes(a), "in flight at two deaths")
	a.Ack()
	b := receive(t, p.ch, 5*time.Second)
	require.Equal(t, "b", b.UUID, "the next suspect once the first is done")
	require.Equal(t, 1, broker.Crashes(b), "b only waited at the second death")
	b.Ack()
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 0 }, 5*time.Second, 10*time.Millisecond)
	p.die()
}

// TestCrashesNotCountedForMessagesNotStarted: a process that stops with
// messages taken but never handed to a handler (handed over in memory,
// waiting for a place) puts them back as they were: they come back as
// first deliveries, not suspects; the one in flight comes back counted.
func TestCrashesNotCountedForMessagesNotStarted(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 10 * time.Millisecond, Lease: time.Hour, MaxInFlight: 1})
	ctx, cancel := context.WithCancel(context.Background())
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	for _, id := range []string{"a", "b", "c"} {
		require.NoError(t, q.Publish("t", message.NewMessage(id, []byte(id))))
	}
	a := receive(t, ch, 5*time.Second)
	require.Equal(t, "a", a.UUID)
	cancel()
	require.NoError(t, q.Close()) // a in flight; b and c never delivered

	p := startProcess(t, db)
	got := map[string]*message.Message{}
	for range 3 {
		m := receive(t, p.ch, 5*time.Second)
		got[m.UUID] = m
	}
	require.Equal(t, 1, broker.Crashes(got["a"]), "in flight when its process stopped")
	for _, id := range []string{"b", "c"} {
		require.Equal(t, 0, broker.Crashes(got[id]), "%s was never started", id)
		require.True(t, broker.FirstDelivery(got[id]), "%s was never started", id)
	}
	for _, m := range got {
		m.Ack()
	}
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 0 }, 5*time.Second, 10*time.Millisecond)
	p.die()
}
