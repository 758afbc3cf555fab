package pipeline_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
)

// loadEvent is an event of the broker-load recipe (brokerIndex) with
// dedup key key.
func loadEvent(t *testing.T, key string, n int) *store.Event {
	t.Helper()
	ev := webhookEvent(t, "/load", map[string]any{"n": n})
	ev.DedupKey = key
	return ev
}

// savedCursor is an `also` of AcceptAll that saves a poller's cursor, as
// a poller does, and checks, inside the transaction, that the batch's new
// events are in it and not yet visible outside it.
type savedCursor struct {
	st     *store.Store
	key    string
	cursor []byte
	fresh  []*store.Event
	fail   error
	calls  int
}

func (s *savedCursor) op() store.Op {
	return func(ctx context.Context, tx store.Execer) error {
		s.calls++
		for _, ev := range s.fresh {
			var n int
			err := tx.QueryRowContext(ctx, fmt.Sprintf(`SELECT COUNT(*) FROM %sevents WHERE id = $1`, s.st.Prefix), ev.ID).Scan(&n)
			if err != nil {
				return err
			}
			if n != 1 {
				return fmt.Errorf("event %s is not in also's transaction", ev.ID)
			}
			rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			_, err = s.st.GetEvent(rctx, ev.ID)
			cancel()
			if !errors.Is(err, store.ErrNotFound) {
				return fmt.Errorf("event %s is visible before also's transaction commits (%v)", ev.ID, err)
			}
		}
		if err := s.st.SavePoll(ctx, tx, s.key, "me", s.cursor, time.Now()); err != nil {
			return err
		}
		return s.fail
	}
}

// lease takes the lease of a poller key for owner "me".
func lease(t *testing.T, st *store.Store, key string) {
	t.Helper()
	held, _, err := st.LeasePoll(context.Background(), key, "me", time.Now(), time.Hour)
	require.NoError(t, err)
	require.True(t, held)
}

func requireStored(t *testing.T, st *store.Store, evs ...*store.Event) {
	t.Helper()
	for _, ev := range evs {
		got, err := st.GetEvent(context.Background(), ev.ID)
		require.NoError(t, err, "event %s is stored", ev.ID)
		require.JSONEq(t, string(ev.Payload), string(got.Payload))
		require.Equal(t, ev.DedupKey, got.DedupKey)
	}
}

func requireNotStored(t *testing.T, st *store.Store, evs ...*store.Event) {
	t.Helper()
	for _, ev := range evs {
		_, err := st.GetEvent(context.Background(), ev.ID)
		require.ErrorIs(t, err, store.ErrNotFound, "event %s is not stored", ev.ID)
	}
}

func requirePollCursor(t *testing.T, st *store.Store, key string, want []byte) {
	t.Helper()
	got, err := st.PollCursor(context.Background(), key)
	require.NoError(t, err)
	require.Equal(t, want, got)
}

// TestAcceptAll: on every broker, AcceptAll stores the new events of a
// batch and commits also with them, in one transaction; the new events
// start their runs, the duplicates nothing.
func TestAcceptAll(t *testing.T) {
	cases := []struct {
		name string
		// batch builds the events given one accepted before with dedup key
		// "k0"; fresh are those of them that are new
		batch func(t *testing.T) (evs, fresh []*store.Event)
	}{
		{name: "three, one a duplicate of an earlier accept", batch: func(t *testing.T) ([]*store.Event, []*store.Event) {
			a, dup, b := loadEvent(t, "k1", 1), loadEvent(t, "k0", 2), loadEvent(t, "k2", 3)
			return []*store.Event{a, dup, b}, []*store.Event{a, b}
		}},
		{name: "a duplicate within the batch", batch: func(t *testing.T) ([]*store.Event, []*store.Event) {
			a, again := loadEvent(t, "k1", 1), loadEvent(t, "k1", 2)
			return []*store.Event{a, again}, []*store.Event{a}
		}},
		{name: "only duplicates: also commits", batch: func(t *testing.T) ([]*store.Event, []*store.Event) {
			return []*store.Event{loadEvent(t, "k0", 1)}, nil
		}},
		{name: "no events: also commits", batch: func(t *testing.T) ([]*store.Event, []*store.Event) {
			return nil, nil
		}},
	}
	for _, bc := range suiteBrokers() {
		t.Run(bc.name, func(t *testing.T) {
			o := bc.backing(t)(t)
			defer o.close()
			sink := newBrokerSink(t, 0)
			er := runEngine(t, o, brokerIndex(t, sink.srv.URL), "one")
			defer er.stop(t)
			ctx := context.Background()
			for i, tc := range cases {
				t.Run(tc.name, func(t *testing.T) {
					// a dedup key space of the case's own
					prefix := fmt.Sprintf("c%d:", i)
					first := loadEvent(t, prefix+"k0", 0)
					fresh, err := o.b.Accept(ctx, first)
					require.NoError(t, err)
					require.True(t, fresh)

					evs, want := tc.batch(t)
					for _, ev := range evs {
						ev.DedupKey = prefix + ev.DedupKey
					}
					also := &savedCursor{st: o.st, key: prefix + "poll", cursor: []byte(fmt.Sprintf(`{"case":%d}`, i)), fresh: want}
					lease(t, o.st, also.key)
					n, err := o.b.AcceptAll(ctx, evs, also.op())
					require.NoError(t, err)
					require.Equal(t, len(want), n, "new events")
					require.Positive(t, also.calls)
					requirePollCursor(t, o.st, also.key, also.cursor)
					requireStored(t, o.st, first)
					requireStored(t, o.st, want...)
					for _, ev := range evs {
						if !contains(want, ev) {
							requireNotStored(t, o.st, ev)
						}
					}
					// the new events reach the matcher
					for _, ev := range append([]*store.Event{first}, want...) {
						run := waitRun(t, o.st, pipeline.RunID(ev.ID, "broker-load"))
						require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
					}
				})
			}
		})
	}
}

// TestAcceptAllAlsoFails: on every broker, when also fails nothing of the
// batch commits: no event is stored, no dedup key is claimed (the same
// events are accepted later) and also's own write is rolled back.
func TestAcceptAllAlsoFails(t *testing.T) {
	for _, bc := range suiteBrokers() {
		t.Run(bc.name, func(t *testing.T) {
			o := bc.backing(t)(t)
			defer o.close()
			sink := newBrokerSink(t, 0)
			er := runEngine(t, o, brokerIndex(t, sink.srv.URL), "one")
			defer er.stop(t)
			ctx := context.Background()

			first := loadEvent(t, "k0", 0)
			fresh, err := o.b.Accept(ctx, first)
			require.NoError(t, err)
			require.True(t, fresh)
			a, dup, b := loadEvent(t, "k1", 1), loadEvent(t, "k0", 2), loadEvent(t, "k2", 3)
			evs := []*store.Event{a, dup, b}

			boom := errors.New("the cursor cannot be saved")
			also := &savedCursor{st: o.st, key: "poll", cursor: []byte(`"lost"`), fresh: []*store.Event{a, b}, fail: boom}
			lease(t, o.st, also.key)
			n, err := o.b.AcceptAll(ctx, evs, also.op())
			require.ErrorIs(t, err, boom)
			require.Zero(t, n)
			require.Positive(t, also.calls)
			requireNotStored(t, o.st, a, dup, b)
			requirePollCursor(t, o.st, also.key, nil)

			// the dedup keys are free: the same events are accepted now
			also.fail = nil
			also.cursor = []byte(`"saved"`)
			n, err = o.b.AcceptAll(ctx, evs, also.op())
			require.NoError(t, err)
			require.Equal(t, 2, n)
			requireStored(t, o.st, a, b)
			requireNotStored(t, o.st, dup)
			requirePollCursor(t, o.st, also.key, []byte(`"saved"`))
			for _, ev := range []*store.Event{first, a, b} {
				run := waitRun(t, o.st, pipeline.RunID(ev.ID, "broker-load"))
				require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
			}
			// each ran once
			require.Eventually(t, func() bool { return len(sink.counts()) == 3 }, 10*time.Second, 10*time.Millisecond)
			time.Sleep(200 * time.Millisecond)
			for key, calls := range sink.counts() {
				require.Equal(t, 1, calls, "step %s", key)
			}
		})
	}
}

func contains(evs []*store.Event, ev *store.Event) bool {
	for _, e := range evs {
		if e == ev {
			return true
		}
	}
	return false
}
