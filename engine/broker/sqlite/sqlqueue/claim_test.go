package sqlqueue_test

import (
	"cmp"
	"database/sql"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
)

// fillBacklog inserts n due messages of topic events (and a few of another
// topic and a few delayed ones, as a live table has).
func fillBacklog(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	now := time.Now().UnixMilli()
	tx, err := db.Begin()
	require.NoError(t, err)
	for i := range n {
		topic, avail := "events", now-int64(n-i)
		switch i % 100 {
		case 7:
			topic = "runs"
		case 8:
			avail = now + time.Hour.Milliseconds()
		}
		_, err := tx.Exec(`INSERT INTO queue (topic, uuid, payload, metadata, available_at) VALUES ($1, 'u', x'00', '{}', $2)`, topic, avail)
		require.NoError(t, err)
	}
	require.NoError(t, tx.Commit())
}

// TestClaimWalksTheIndex is the regression test of a claim that sorted
// every due message before it took a few: its cost grew with the backlog.
func TestClaimWalksTheIndex(t *testing.T) {
	db := openDB(t)
	fillBacklog(t, db, 1000)
	rows, err := db.Query(`EXPLAIN QUERY PLAN `+sqlqueue.ClaimQuery("queue"), 1, "events", 0, 0, 64)
	require.NoError(t, err)
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		require.NoError(t, rows.Scan(&id, &parent, &unused, &detail))
		plan = append(plan, detail)
	}
	require.NoError(t, rows.Err())
	all := strings.Join(plan, "\n")
	require.Contains(t, all, "USING INDEX queue_topic", "the claim must search the topic index:\n%s", all)
	require.NotContains(t, all, "TEMP B-TREE", "the claim must not sort the due messages:\n%s", all)
}

// TestClaimTakesDueMessagesInOrder: due messages come oldest due first, a
// delayed one only once due, another topic's never.
func TestClaimTakesDueMessagesInOrder(t *testing.T) {
	db := openDB(t)
	now := time.Now().UnixMilli()
	for _, m := range []struct {
		uuid, topic string
		avail       int64
	}{{"late", "events", now + 60_000}, {"second", "events", now - 10}, {"other", "runs", now - 100}, {"first", "events", now - 20}, {"third", "events", now - 10}} {
		_, err := db.Exec(`INSERT INTO queue (topic, uuid, payload, metadata, available_at) VALUES ($1, $2, x'00', '{}', $3)`, m.topic, m.uuid, m.avail)
		require.NoError(t, err)
	}
	claim := func(n int) []string {
		t.Helper()
		rows, err := db.Query(sqlqueue.ClaimQuery("queue"), now+1000, "events", now, now, n)
		require.NoError(t, err)
		defer rows.Close()
		type row struct {
			seq  int64
			uuid string
		}
		var got []row
		for rows.Next() {
			var r row
			var md string
			var payload []byte
			var deliveries int
			require.NoError(t, rows.Scan(&r.seq, &r.uuid, &payload, &md, &deliveries))
			got = append(got, r)
		}
		require.NoError(t, rows.Err())
		slices.SortFunc(got, func(a, b row) int { return cmp.Compare(a.seq, b.seq) })
		var uuids []string
		for _, r := range got {
			uuids = append(uuids, r.uuid)
		}
		return uuids
	}
	// one at a time: due first, then inserted first
	require.Equal(t, []string{"first"}, claim(1))
	require.Equal(t, []string{"second"}, claim(1))
	// the rest that is due; the delayed one and another topic's stay
	require.Equal(t, []string{"third"}, claim(10))
	require.Empty(t, claim(10))
}

// holdOldest leases the n oldest messages of topic events, as a
// process does with those in flight and those handed over in memory: the
// queue's own claim, so that a held row looks as it does live.
func holdOldest(t testing.TB, db *sql.DB, n int) {
	t.Helper()
	now := time.Now().UnixMilli()
	rows, err := db.Query(sqlqueue.ClaimQuery("queue"), now+time.Hour.Milliseconds(), "events", now, now, n)
	require.NoError(t, err)
	held := 0
	for rows.Next() {
		held++
	}
	require.NoError(t, rows.Err())
	require.NoError(t, rows.Close())
	require.Equal(t, n, held)
}

// BenchmarkClaimBacklog claims 64 messages (and gives them back) with
// 100,000 waiting, and with 5,000 held in front of the waiting ones (a
// backlog draining: the rows in flight and handed over are the oldest):
// each must cost about what it does with few waiting and none held.
func BenchmarkClaimBacklog(b *testing.B) {
	for _, c := range []struct{ waiting, held int }{{1_000, 0}, {100_000, 0}, {10_000, 5_000}} {
		b.Run(fmt.Sprintf("waiting=%d/held=%d", c.waiting, c.held), func(b *testing.B) {
			db := openDB(b)
			fillBacklog(b, db, c.waiting+c.held)
			holdOldest(b, db, c.held)
			now := time.Now().UnixMilli()
			q := sqlqueue.ClaimQuery("queue")
			for b.Loop() {
				rows, err := db.Query(q, now+60_000, "events", now, now, 64)
				if err != nil {
					b.Fatal(err)
				}
				var seqs []string
				for rows.Next() {
					var seq int64
					var uuid, md string
					var payload []byte
					var deliveries int
					if err := rows.Scan(&seq, &uuid, &payload, &md, &deliveries); err != nil {
						b.Fatal(err)
					}
					seqs = append(seqs, strconv.FormatInt(seq, 10))
				}
				_ = rows.Close()
				if len(seqs) != 64 {
					b.Fatalf("claimed %d, want 64", len(seqs))
				}
				if _, err := db.Exec(`UPDATE queue SET leased_until = 0, available_at = $1 WHERE seq IN (`+strings.Join(seqs, ",")+`)`, now); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
