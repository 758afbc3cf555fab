package sqlqueue_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
)

// shortLease is the lease of the renewal tests: a message is held for
// several of them.
const shortLease = 200 * time.Millisecond

// leaseOf returns the leased_until of the row of a message, and whether
// the row is there.
func leaseOf(t *testing.T, db *sql.DB, uuid string) (int64, bool) {
	t.Helper()
	var until int64
	err := db.QueryRow(`SELECT leased_until FROM queue WHERE uuid = $1`, uuid).Scan(&until)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false
	}
	require.NoError(t, err)
	return until, true
}

// holdRow waits for n leases while the message uuid is held, failing if
// any of subs delivers a message meanwhile (the row claimed again), and
// checks that the row's lease keeps moving forward and never runs out.
func holdRow(t *testing.T, db *sql.DB, uuid string, n int, subs ...<-chan *message.Message) {
	t.Helper()
	first, ok := leaseOf(t, db, uuid)
	require.True(t, ok, "the held row is there")
	last, moves := first, 0
	tick := time.NewTicker(shortLease / 10)
	defer tick.Stop()
	end := time.After(time.Duration(n) * shortLease)
	for {
		for _, ch := range subs {
			select {
			case m := <-ch:
				t.Fatalf("%s delivered again (deliveries %s) while %s is held", m.UUID, m.Metadata.Get(sqlqueue.DeliveriesKey), uuid)
			default:
			}
		}
		select {
		case <-end:
			require.GreaterOrEqual(t, moves, n, "the lease moved forward %d times in %d leases", moves, n)
			require.Greater(t, last, first+int64(n-2)*shortLease.Milliseconds(), "the lease kept up with the time held")
			return
		case <-tick.C:
		}
		until, ok := leaseOf(t, db, uuid)
		require.True(t, ok, "the held row is there")
		require.GreaterOrEqual(t, until, last, "a lease never moves back")
		if until > last {
			moves++
			last = until
		}
	}
}

// TestQueueRenewsHeldLeases: a message held for several leases (its
// handler, or its child, still running) is delivered once, its row's lease
// renewed all along; once done, its row goes and nothing renews it.
func TestQueueRenewsHeldLeases(t *testing.T) {
	cfg := sqlqueue.Config{Poll: 10 * time.Millisecond, Lease: shortLease}
	t.Run("handed over in memory", func(t *testing.T) {
		db := openDB(t)
		q := newQueue(t, db, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := q.Subscribe(ctx, "t")
		require.NoError(t, err)
		require.NoError(t, q.Publish("t", message.NewMessage("a", []byte("x"))))
		m := receive(t, ch, 5*time.Second)
		require.Equal(t, "1", m.Metadata.Get(sqlqueue.DeliveriesKey))
		require.Equal(t, []string{"a:true:1"}, rowsOf(t, db, "t"), "handed over, not claimed")
		holdRow(t, db, "a", 5, ch)
		m.Ack()
		require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 0 }, 5*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, 10*time.Millisecond)
	})
	t.Run("claimed from the table", func(t *testing.T) {
		db := openDB(t)
		q := newQueue(t, db, cfg)
		_, err := db.Exec(`INSERT INTO queue (topic, uuid, payload, metadata, available_at) VALUES ('t', 'a', x'00', '{}', $1)`, time.Now().UnixMilli())
		require.NoError(t, err)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := q.Subscribe(ctx, "t")
		require.NoError(t, err)
		m := receive(t, ch, 5*time.Second)
		require.Equal(t, "1", m.Metadata.Get(sqlqueue.DeliveriesKey))
		holdRow(t, db, "a", 5, ch)
		m.Ack()
		require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 0 }, 5*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, 10*time.Millisecond)
	})
	t.Run("held by its child", func(t *testing.T) {
		db := openDB(t)
		q := newQueue(t, db, cfg)
		parents, children, parent := parentWithChild(t, q)
		parent.Ack()
		got := receive(t, children, 5*time.Second)
		holdRow(t, db, "parent", 5, parents, children)
		got.Ack()
		require.Eventually(t, func() bool { return len(rowsOf(t, db, "parents")) == 0 }, 5*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, 10*time.Millisecond)
	})
}

// TestQueueLeaseRunsOutAfterACrash: the leases of a process that is gone
// are no longer renewed; the next process gets the message once the last
// one written runs out, without ReleaseLeases.
func TestQueueLeaseRunsOutAfterACrash(t *testing.T) {
	db := openDB(t)
	cfg := sqlqueue.Config{Poll: 10 * time.Millisecond, Lease: shortLease}
	q1 := newQueue(t, db, cfg)
	ctx1, cancel1 := context.WithCancel(context.Background())
	ch1, err := q1.Subscribe(ctx1, "t")
	require.NoError(t, err)
	require.NoError(t, q1.Publish("t", message.NewMessage("a", []byte("x"))))
	receive(t, ch1, 5*time.Second) // never acked: the "process" dies
	holdRow(t, db, "a", 2, ch1)
	cancel1()
	require.NoError(t, q1.Close())
	last, ok := leaseOf(t, db, "a")
	require.True(t, ok)

	q2 := newQueue(t, db, cfg)
	ctx2, cancel2 := context.WithCancel(context.Background())
	defer cancel2()
	ch2, err := q2.Subscribe(ctx2, "t")
	require.NoError(t, err)
	m := receive(t, ch2, 5*time.Second)
	require.GreaterOrEqual(t, time.Now().UnixMilli(), last, "delivered again before the lease ran out")
	require.Equal(t, "x", string(m.Payload))
	require.Equal(t, "2", m.Metadata.Get(sqlqueue.DeliveriesKey))
	m.Ack()
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "t")) == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestQueueReleasedRowsAreNotRenewed: a row put back (nacked, or claimed
// and not delivered by a subscription that stops) is not leased again by
// the renewal.
func TestQueueReleasedRowsAreNotRenewed(t *testing.T) {
	cfg := sqlqueue.Config{Poll: 10 * time.Millisecond, Lease: shortLease}
	t.Run("nacked", func(t *testing.T) {
		db := openDB(t)
		q := newQueue(t, db, cfg)
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := q.Subscribe(ctx, "t")
		require.NoError(t, err)
		require.NoError(t, q.Publish("t", message.NewMessage("a", []byte("x"))))
		m := receive(t, ch, 5*time.Second)
		holdRow(t, db, "a", 2, ch)
		m.Metadata.Set(broker.RetryAtKey, fmt.Sprint(time.Now().Add(time.Hour).UnixMilli()))
		m.Nack()
		require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool {
			until, ok := leaseOf(t, db, "a")
			return ok && until == 0
		}, 5*time.Second, 10*time.Millisecond)
		deadline := time.Now().Add(3 * shortLease)
		for time.Now().Before(deadline) {
			until, ok := leaseOf(t, db, "a")
			require.True(t, ok)
			require.Zero(t, until, "a nacked row was leased again")
			time.Sleep(shortLease / 10)
		}
	})
	t.Run("given back", func(t *testing.T) {
		db := openDB(t)
		q := newQueue(t, db, cfg)
		now := time.Now().UnixMilli()
		for i := range 3 {
			_, err := db.Exec(`INSERT INTO queue (topic, uuid, payload, metadata, available_at) VALUES ('t', $1, x'00', '{}', $2)`, fmt.Sprint(i), now)
			require.NoError(t, err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		ch, err := q.Subscribe(ctx, "t")
		require.NoError(t, err)
		m := receive(t, ch, 5*time.Second) // the others wait to be delivered
		require.Equal(t, "0", m.UUID)
		cancel() // the subscription stops: it gives the other two back
		require.Eventually(t, func() bool { return q.HeldRows() == 1 }, 5*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool {
			now := time.Now().UnixMilli()
			for _, id := range []string{"1", "2"} {
				if until, _ := leaseOf(t, db, id); until >= now {
					return false
				}
			}
			return true
		}, 5*time.Second, 10*time.Millisecond, "the leases of the rows given back run out")
		until, ok := leaseOf(t, db, "0")
		require.True(t, ok)
		require.Greater(t, until, time.Now().UnixMilli(), "the row delivered stays leased")
		m.Ack()
		require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, 10*time.Millisecond)
		_, ok = leaseOf(t, db, "0")
		require.False(t, ok)
	})
}

// TestQueueAbandonedChildGivesItsParentBack: a child nacked that cannot be
// stored in a row of its own (the insert fails) is abandoned: its parent's
// row, which alone can bring it back, stays in the table but is no longer
// renewed, so that its lease runs out and the parent is delivered again;
// its handler then publishes the child again. Nothing is lost.
func TestQueueAbandonedChildGivesItsParentBack(t *testing.T) {
	db := openDB(t)
	// the only write that fails: storing the child
	_, err := db.Exec(`CREATE TRIGGER no_child BEFORE INSERT ON queue WHEN NEW.uuid = 'child'
		BEGIN SELECT RAISE(ABORT, 'no room for the child'); END`)
	require.NoError(t, err)
	q := newQueue(t, db, sqlqueue.Config{Poll: 10 * time.Millisecond, Lease: shortLease})
	parents, children, parent := parentWithChild(t, q)
	parent.Ack()
	got := receive(t, children, 5*time.Second)
	holdRow(t, db, "parent", 2, parents, children) // renewed while the child runs

	got.Nack() // storing it fails: abandoned
	require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, time.Millisecond,
		"the parent's row is no longer renewed")
	last, ok := leaseOf(t, db, "parent")
	require.True(t, ok, "the parent's row stays: it is what brings the child back")
	require.Empty(t, rowsOf(t, db, "children"), "the child has no row")

	// not renewed: the lease runs out as last written, then the parent
	// comes back (its child with it, once handled again)
	var again *message.Message
	deadline := time.After(5 * time.Second)
	for again == nil {
		select {
		case again = <-parents:
		case m := <-children:
			t.Fatalf("the abandoned child %s was delivered again on its own", m.UUID)
		case <-deadline:
			t.Fatal("the parent was not delivered again")
		case <-time.After(shortLease / 20):
			until, ok := leaseOf(t, db, "parent")
			require.True(t, ok, "the parent's row stays")
			if until != last {
				// a renewal ends before last+shortLease; the claim that
				// takes the parent again, once the lease ran out, after
				require.Greater(t, until, last+shortLease.Milliseconds(), "the abandoned parent's lease was renewed")
			}
		}
	}
	require.GreaterOrEqual(t, time.Now().UnixMilli(), last, "delivered again before the lease ran out")
	require.Equal(t, "parent", again.UUID)
	require.Equal(t, "2", again.Metadata.Get(sqlqueue.DeliveriesKey))

	// handled again: its child with it, and then both are done
	_, err = db.Exec(`DROP TRIGGER no_child`)
	require.NoError(t, err)
	child := message.NewMessage("child", []byte("c"))
	broker.Derive(child, again)
	require.NoError(t, q.Publish("children", child))
	again.Ack()
	receive(t, children, 5*time.Second).Ack()
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "parents")) == 0 }, 5*time.Second, 10*time.Millisecond)
	require.Empty(t, rowsOf(t, db, "children"))
	require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, 10*time.Millisecond)
}

// parentWithChild subscribes to the topics "parents" and "children",
// publishes a message "parent" and receives it, then publishes a message
// "child" as its child (handed over in memory, without a row). The parent
// is not acked yet.
func parentWithChild(t *testing.T, q *sqlqueue.Queue) (parents, children <-chan *message.Message, parent *message.Message) {
	t.Helper()
	parents, children, parent = heldParent(t, q)
	child := message.NewMessage("child", []byte("c"))
	broker.Derive(child, parent)
	require.NoError(t, q.Publish("children", child))
	return parents, children, parent
}

// heldParent subscribes to parents and children and returns a parent
// delivered and still held.
func heldParent(t *testing.T, q *sqlqueue.Queue) (parents, children <-chan *message.Message, parent *message.Message) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	parents, err := q.Subscribe(ctx, "parents")
	require.NoError(t, err)
	children, err = q.Subscribe(ctx, "children")
	require.NoError(t, err)
	require.NoError(t, q.Publish("parents", message.NewMessage("parent", []byte("p"))))
	return parents, children, receive(t, parents, 5*time.Second)
}
