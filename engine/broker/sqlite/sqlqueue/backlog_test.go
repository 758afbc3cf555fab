package sqlqueue_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
)

// dueRows counts the rows of topic that a claim at now would find by the
// index alone: due, whatever their lease.
func dueRows(t *testing.T, db *sql.DB, topic string) int {
	t.Helper()
	var n int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*) FROM queue WHERE topic = $1 AND available_at <= $2`, topic, time.Now().UnixMilli()).Scan(&n))
	return n
}

// requireHeldNotDue checks that every leased row is available only when
// its lease ends.
func requireHeldNotDue(t *testing.T, db *sql.DB) {
	t.Helper()
	var held, off int
	require.NoError(t, db.QueryRow(`SELECT COUNT(*), COALESCE(SUM(available_at <> leased_until), 0) FROM queue WHERE leased_until > 0`).Scan(&held, &off))
	require.Positive(t, held, "no row is held")
	require.Zero(t, off, "a held row is available before its lease ends")
}

// TestQueueHeldRowsAreNotDue checks that a row held by this process,
// handed over in memory or claimed, renewed or not, is not due until its
// lease ends, so that a claim walking the due rows never steps over it;
// and that a row put back, or released after a crash, is due again.
func TestQueueHeldRowsAreNotDue(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond, Lease: 600 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	// claimed: stored before anyone subscribed
	require.NoError(t, q.Publish("t", message.NewMessage("claimed", []byte("x"))))
	require.Equal(t, 1, dueRows(t, db, "t"))
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	claimed := receive(t, ch, 5*time.Second)
	// handed over in memory
	require.NoError(t, q.Publish("t", message.NewMessage("handed", []byte("x"))))
	receive(t, ch, 5*time.Second) // held, never acked
	requireHeldNotDue(t, db)
	require.Zero(t, dueRows(t, db, "t"))

	// renewed: a third of the lease on, and then some
	first, _ := leaseOf(t, db, "claimed")
	require.Eventually(t, func() bool {
		until, _ := leaseOf(t, db, "claimed")
		return until > first
	}, 5*time.Second, 20*time.Millisecond, "the lease was not renewed")
	requireHeldNotDue(t, db)
	require.Zero(t, dueRows(t, db, "t"))

	// put back until its retry time: due then, not held
	retry := time.Now().Add(time.Hour).UnixMilli()
	claimed.Metadata.Set(broker.RetryAtKey, fmt.Sprint(retry))
	claimed.Nack()
	require.Eventually(t, func() bool {
		var avail, until int64
		require.NoError(t, db.QueryRow(`SELECT available_at, leased_until FROM queue WHERE uuid = 'claimed'`).Scan(&avail, &until))
		return avail == retry && until == 0
	}, 5*time.Second, 10*time.Millisecond)
	require.Zero(t, dueRows(t, db, "t"))

	// released at the next start, after a crash: due at once
	cancel()
	require.NoError(t, q.Close())
	q2 := newQueue(t, db, sqlqueue.Config{})
	require.NoError(t, q2.ReleaseLeases(context.Background()))
	require.Equal(t, 1, dueRows(t, db, "t"), "the row handed over, never acked")
}

// TestQueueClaimSkipsHeldRows: with the oldest rows held, a claim takes
// the waiting ones behind them (and the claim query needs no lease test
// to leave the held ones: their time has not come).
func TestQueueClaimSkipsHeldRows(t *testing.T) {
	db := openDB(t)
	fillBacklog(t, db, 300)
	holdOldest(t, db, 200)
	now := time.Now().UnixMilli()
	rows, err := db.Query(sqlqueue.ClaimQuery("queue"), now+60_000, "events", now, int64(math.MaxInt64), 1000)
	require.NoError(t, err)
	n := 0
	for rows.Next() {
		n++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	// 300 rows: 3 of another topic and 3 delayed among them, 200 held
	require.Equal(t, 300-3-3-200, n)
}

// childQueue subscribes to parents and children with one message in
// flight each and room for one child in memory, and returns a parent
// delivered and still held.
func childQueue(t *testing.T, childWait time.Duration) (db *sql.DB, q *sqlqueue.Queue, children <-chan *message.Message, parent *message.Message) {
	t.Helper()
	db = openDB(t)
	q = newQueue(t, db, sqlqueue.Config{Poll: time.Hour, MaxInFlight: 1, LocalLimit: 1, ChildWait: childWait})
	_, children, parent = heldParent(t, q)
	return db, q, children, parent
}

// publishChild publishes a child of parent in the background.
func publishChild(q *sqlqueue.Queue, parent *message.Message, uuid string) <-chan error {
	done := make(chan error, 1)
	child := message.NewMessage(uuid, []byte(uuid))
	broker.Derive(child, parent)
	go func() { done <- q.Publish("children", child) }()
	return done
}

// TestQueueChildWaitsForRoom checks that a child published while its
// subscription's in-memory queue is full waits for room rather than
// taking a row of its own (a write, a claim and a read more), and is then
// handed over in memory.
func TestQueueChildWaitsForRoom(t *testing.T) {
	db, q, children, parent := childQueue(t, time.Minute)
	// the first is delivered and held (one in flight), the second waits
	// in memory (room for one), the third finds no room
	require.NoError(t, <-publishChild(q, parent, "c1"))
	c1 := receive(t, children, 5*time.Second)
	require.NoError(t, <-publishChild(q, parent, "c2"))
	third := publishChild(q, parent, "c3")
	select {
	case err := <-third:
		t.Fatalf("the third child was published (%v) with no room for it", err)
	case <-time.After(200 * time.Millisecond):
	}
	require.Empty(t, rowsOf(t, db, "children"))

	c1.Ack() // the second goes in flight: room for the third
	select {
	case err := <-third:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the third child still waits with room for it")
	}
	for _, want := range []string{"c2", "c3"} {
		got := receive(t, children, 5*time.Second)
		require.Equal(t, want, got.UUID)
		got.Ack()
	}
	require.Empty(t, rowsOf(t, db, "children"), "a child handed over has no row")
	parent.Ack()
	require.Eventually(t, func() bool { return len(rowsOf(t, db, "parents")) == 0 }, 5*time.Second, 10*time.Millisecond)
}

// TestQueueChildWaitRunsOut: a child that found no room within ChildWait
// is stored in a row of its own, and its parent is free to go.
func TestQueueChildWaitRunsOut(t *testing.T) {
	db, q, children, parent := childQueue(t, 100*time.Millisecond)
	require.NoError(t, <-publishChild(q, parent, "c1"))
	receive(t, children, 5*time.Second) // held
	require.NoError(t, <-publishChild(q, parent, "c2"))
	start := time.Now()
	require.NoError(t, <-publishChild(q, parent, "c3"))
	require.GreaterOrEqual(t, time.Since(start), 100*time.Millisecond)
	require.Equal(t, []string{"c3:false:0"}, rowsOf(t, db, "children"))
}

// TestFirstDelivery checks which deliveries are first: a message handed
// over in memory and one claimed for the first time are; one delivered
// again and a child are not.
func TestFirstDelivery(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond})
	require.NoError(t, q.Publish("t", message.NewMessage("claimed", []byte("x"))))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	children, err := q.Subscribe(ctx, "c")
	require.NoError(t, err)

	claimed := receive(t, ch, 5*time.Second)
	require.True(t, broker.FirstDelivery(claimed), "claimed for the first time")
	require.NoError(t, q.Publish("t", message.NewMessage("handed", []byte("x"))))
	handed := receive(t, ch, 5*time.Second)
	require.True(t, broker.FirstDelivery(handed), "handed over in memory")
	child := message.NewMessage("child", []byte("x"))
	broker.Derive(child, handed)
	require.NoError(t, q.Publish("c", child))
	gotChild := receive(t, children, 5*time.Second)
	require.Same(t, child, gotChild, "a child is handed over as published, not copied (see Derive)")
	require.False(t, broker.FirstDelivery(gotChild), "a child")
	gotChild.Ack()
	handed.Ack()

	claimed.Nack()
	again := receive(t, ch, 5*time.Second)
	require.Equal(t, "claimed", again.UUID)
	require.False(t, broker.FirstDelivery(again), fmt.Sprintf("delivery %s", again.Metadata.Get(sqlqueue.DeliveriesKey)))
	again.Ack()
	require.False(t, broker.FirstDelivery(message.NewMessage("other", nil)), "a message of another publisher")
}

// TestQueueChildWaitEndsWithItsSubscription: when the subscription of the
// children stops (a shutdown), a child waiting for room stops waiting and
// is stored in a row of its own, rather than holding the shutdown up.
func TestQueueChildWaitEndsWithItsSubscription(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: time.Hour, MaxInFlight: 1, LocalLimit: 1, ChildWait: time.Minute})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	parents, err := q.Subscribe(ctx, "parents")
	require.NoError(t, err)
	childCtx, stopChildren := context.WithCancel(context.Background())
	defer stopChildren()
	children, err := q.Subscribe(childCtx, "children")
	require.NoError(t, err)
	require.NoError(t, q.Publish("parents", message.NewMessage("parent", []byte("p"))))
	parent := receive(t, parents, 5*time.Second)

	require.NoError(t, <-publishChild(q, parent, "c1"))
	receive(t, children, 5*time.Second) // held
	require.NoError(t, <-publishChild(q, parent, "c2"))
	third := publishChild(q, parent, "c3")
	time.Sleep(50 * time.Millisecond)
	stopChildren()
	select {
	case err := <-third:
		require.NoError(t, err)
	case <-time.After(5 * time.Second):
		t.Fatal("the child still waits for a subscription that stopped")
	}
	require.Equal(t, []string{"c3:false:0"}, rowsOf(t, db, "children"))
}

type subscriptionKey struct{}

// TestDeliveredContext: a delivered message's context carries its
// subscription's values and what was handed over with it, outlives the
// subscription (a graceful shutdown lets handlers finish), and ends once
// the message is acked.
func TestDeliveredContext(t *testing.T) {
	db := openDB(t)
	q := newQueue(t, db, sqlqueue.Config{Poll: 20 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), subscriptionKey{}, "sub"))
	defer cancel()
	parents, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	children, err := q.Subscribe(ctx, "c")
	require.NoError(t, err)

	require.NoError(t, q.Publish("t", message.NewMessage("parent", []byte("x"))))
	parent := receive(t, parents, 5*time.Second)
	require.Equal(t, "sub", parent.Context().Value(subscriptionKey{}), "the subscription's values")
	require.Nil(t, broker.Local(parent), "nothing handed over with it")
	child := message.NewMessage("child", []byte("y"))
	broker.WithLocal(child, 42)
	broker.Derive(child, parent)
	require.NoError(t, q.Publish("c", child))
	got := receive(t, children, 5*time.Second)
	require.Equal(t, 42, broker.Local(got), "the value handed over with it")
	require.Equal(t, "sub", got.Context().Value(subscriptionKey{}))

	cancel() // the subscriptions stop
	time.Sleep(50 * time.Millisecond)
	require.NoError(t, got.Context().Err(), "a delivered message outlives its subscription")
	_, has := got.Context().Deadline()
	require.False(t, has)

	got.Ack()
	select {
	case <-got.Context().Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the context of an acked message did not end")
	}
	parent.Ack()
}
