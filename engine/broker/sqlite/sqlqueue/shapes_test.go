package sqlqueue_test

import (
	"context"
	"fmt"
	"math/bits"
	"strings"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/store"
)

// deleteShapes returns the placeholder counts of the DELETE statements
// the writer cached (one per distinct statement text).
func deleteShapes(t *testing.T, w *store.Writer) []int {
	t.Helper()
	var out []int
	for _, q := range w.Statements() {
		if strings.HasPrefix(q, "DELETE FROM queue") {
			out = append(out, strings.Count(q, "$"))
		}
	}
	return out
}

// requireFewShapes checks that every IN list has a power-of-two length up
// to 512: at most 10 statement shapes however the acks are batched.
func requireFewShapes(t *testing.T, shapes []int) {
	t.Helper()
	t.Logf("%d DELETE shapes (placeholders each): %v", len(shapes), shapes)
	require.NotEmpty(t, shapes)
	require.LessOrEqual(t, len(shapes), 10, "DELETE shapes (placeholders each): %v", shapes)
	for _, n := range shapes {
		require.True(t, n > 0 && n <= 512 && bits.OnesCount(uint(n)) == 1, "an IN list of %d ids (shapes %v)", n, shapes)
	}
}

// TestAckDeletesInFewShapes is the regression test of an ack loop that
// built one DELETE text per batch size (up to 1000 of them): each is a
// statement the writer prepares and caches, and they filled its cache. A
// batch of any size deletes exactly its rows, with a handful of texts.
func TestAckDeletesInFewShapes(t *testing.T) {
	db := openDB(t)
	w := store.NewWriter(db, 64)
	q := sqlqueue.New(db, w, sqlqueue.Config{Table: "queue"})
	t.Cleanup(func() { q.Close(); w.Close() })
	var sizes []int
	for n := 1; n <= 40; n++ {
		sizes = append(sizes, n)
	}
	sizes = append(sizes, 63, 64, 65, 100, 255, 256, 257, 511, 512, 513, 777, 999, 1000)

	// each batch's rows, with a row between batches that stays
	tx, err := db.Begin()
	require.NoError(t, err)
	insert := func(uuid string) int64 {
		res, err := tx.Exec(`INSERT INTO queue (topic, uuid, payload, metadata, available_at) VALUES ('t', $1, x'00', '{}', 0)`, uuid)
		require.NoError(t, err)
		seq, err := res.LastInsertId()
		require.NoError(t, err)
		return seq
	}
	batches := make([][]int64, len(sizes))
	var kept []string
	for i, n := range sizes {
		for range n {
			batches[i] = append(batches[i], insert("acked"))
		}
		kept = append(kept, fmt.Sprintf("kept-%d", i))
		insert(kept[i])
	}
	require.NoError(t, tx.Commit())

	for _, b := range batches {
		q.DeleteAcked(b...)
	}
	var left []string
	for _, r := range rowsOf(t, db, "t") {
		left = append(left, strings.TrimSuffix(r, ":false:0"))
	}
	require.Equal(t, kept, left, "every acked row deleted, and only those")
	requireFewShapes(t, deleteShapes(t, w))
}

// TestQueueAcksInFewShapes acks delivered messages in groups of many
// sizes, however the ack loop batches them: its deletes use few texts.
func TestQueueAcksInFewShapes(t *testing.T) {
	db := openDB(t)
	w := store.NewWriter(db, 64)
	q := sqlqueue.New(db, w, sqlqueue.Config{Table: "queue", Poll: 20 * time.Millisecond, MaxInFlight: 512})
	t.Cleanup(func() { q.Close(); w.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	const groups = 24 // 1+2+...+24 messages
	total := groups * (groups + 1) / 2
	msgs := make([]*message.Message, total)
	for i := range msgs {
		msgs[i] = message.NewMessage(fmt.Sprint(i), []byte("x"))
	}
	require.NoError(t, q.Publish("t", msgs...))
	held := make([]*message.Message, total)
	for i := range held {
		held[i] = receive(t, ch, 5*time.Second)
	}
	left := int64(total)
	for n := 1; n <= groups; n++ {
		for _, m := range held[:n] {
			m.Ack()
		}
		held = held[n:]
		left -= int64(n)
		require.Eventually(t, func() bool {
			d, err := q.Depth(ctx, "t")
			return err == nil && d == left
		}, 5*time.Second, time.Millisecond)
	}
	require.Eventually(t, func() bool { return q.HeldRows() == 0 }, 5*time.Second, 10*time.Millisecond)
	requireFewShapes(t, deleteShapes(t, w))
}

// TestQueueClaimsInOneShape: claims of any size (the free slots of the
// moment) share one statement: the limit is an argument. With the limit
// in the text, each size was a statement of its own.
func TestQueueClaimsInOneShape(t *testing.T) {
	db := openDB(t)
	w := store.NewWriter(db, 64)
	q := sqlqueue.New(db, w, sqlqueue.Config{Table: "queue", Poll: 5 * time.Millisecond, MaxInFlight: 9, Batch: 8})
	// another process's rows: taken by claims, not handed over in memory
	ow := store.NewWriter(db, 64)
	other := sqlqueue.New(db, ow, sqlqueue.Config{Table: "queue"})
	t.Cleanup(func() { q.Close(); other.Close(); w.Close(); ow.Close() })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const total = 60
	msgs := make([]*message.Message, total)
	for i := range msgs {
		msgs[i] = message.NewMessage(fmt.Sprint(i), []byte("x"))
	}
	require.NoError(t, other.Publish("t", msgs...))
	ch, err := q.Subscribe(ctx, "t")
	require.NoError(t, err)
	// acked in groups of 1 to 5: the free slots, and so the claims' sizes, vary
	for got, n := 0, 1; got < total; n = n%5 + 1 {
		var group []*message.Message
		for range min(n, total-got) {
			group = append(group, receive(t, ch, 5*time.Second))
		}
		got += len(group)
		for _, m := range group {
			m.Ack()
		}
	}
	require.Eventually(t, func() bool {
		d, err := q.Depth(ctx, "t")
		return err == nil && d == 0
	}, 5*time.Second, time.Millisecond)
	var claims []string
	for _, s := range w.Statements() {
		if strings.Contains(s, "deliveries = deliveries + 1") {
			claims = append(claims, s)
		}
	}
	require.Len(t, claims, 1, "claim statements: %q", claims)
}
