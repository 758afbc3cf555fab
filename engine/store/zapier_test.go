package store_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// TestZapierHooks: a subscription is added once per event and target,
// listed, read and deleted; deleting it marks its pending deliveries.
func TestZapierHooks(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		require.NoError(t, st.MigrateZapier(ctx))
		require.NoError(t, st.MigrateZapier(ctx)) // again: nothing changes
		now := time.Now().UTC().Truncate(time.Millisecond)
		h, created, err := st.AddZapierHook(ctx, &store.ZapierHook{ID: "hk1", Event: "order", Target: "https://hooks.test/1",
			Filter: map[string]string{"region": "eu"}, CreatedAt: now})
		require.NoError(t, err)
		require.True(t, created)
		require.Equal(t, "hk1", h.ID)
		require.Equal(t, map[string]string{"region": "eu"}, h.Filter)
		again, created, err := st.AddZapierHook(ctx, &store.ZapierHook{ID: "hk2", Event: "order", Target: "https://hooks.test/1", CreatedAt: now})
		require.NoError(t, err)
		require.False(t, created, "the same target twice is one subscription")
		require.Equal(t, "hk1", again.ID)
		_, created, err = st.AddZapierHook(ctx, &store.ZapierHook{ID: "hk3", Event: "refund", Target: "https://hooks.test/1", CreatedAt: now})
		require.NoError(t, err)
		require.True(t, created, "the same target on another event is another subscription")

		all, err := st.ListZapierHooks(ctx, "")
		require.NoError(t, err)
		require.Len(t, all, 2)
		orders, err := st.ListZapierHooks(ctx, "order")
		require.NoError(t, err)
		require.Len(t, orders, 1)
		require.Equal(t, now, orders[0].CreatedAt)

		ds, err := st.EnqueueZapier(ctx, &store.ZapierItem{ID: "it1", Event: "order", RunID: "r1", Body: []byte(`{"id":"it1"}`), CreatedAt: now},
			"notify", nil, func(hook string) string { return "it1/" + hook })
		require.NoError(t, err)
		require.Len(t, ds, 1)
		ok, err := st.DeleteZapierHook(ctx, "hk1", store.DeliveryUnsubscribed, now)
		require.NoError(t, err)
		require.True(t, ok)
		ok, err = st.DeleteZapierHook(ctx, "hk1", store.DeliveryUnsubscribed, now)
		require.NoError(t, err)
		require.False(t, ok)
		_, err = st.GetZapierHook(ctx, "hk1")
		require.ErrorIs(t, err, store.ErrNotFound)
		ds, err = st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{RunID: "r1"})
		require.NoError(t, err)
		require.Len(t, ds, 1)
		require.Equal(t, store.DeliveryUnsubscribed, ds[0].Status)
	})
}

// TestZapierDeliveries: an item enqueued is one pending delivery per
// matching subscriber, enqueued again adds nothing, is claimed once under
// a lease, and is recorded per attempt; the samples are newest first.
func TestZapierDeliveries(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		require.NoError(t, st.MigrateZapier(ctx))
		now := time.Now().UTC().Truncate(time.Millisecond)
		for i, region := range []string{"eu", "us", "eu"} {
			_, _, err := st.AddZapierHook(ctx, &store.ZapierHook{ID: fmt.Sprintf("hk%d", i), Event: "order",
				Target: fmt.Sprintf("https://hooks.test/%d", i), Filter: map[string]string{"region": region}, CreatedAt: now})
			require.NoError(t, err)
		}
		euOnly := func(h *store.ZapierHook) bool { return h.Filter["region"] == "eu" }
		id := func(item string) func(string) string { return func(hook string) string { return item + "/" + hook } }
		for range 2 { // the second time, as a step repeated after a crash
			ds, err := st.EnqueueZapier(ctx, &store.ZapierItem{ID: "it1", Event: "order", RunID: "r1", Body: []byte(`{"id":"it1"}`),
				CreatedAt: now}, "notify", euOnly, id("it1"))
			require.NoError(t, err)
			require.Len(t, ds, 2)
			require.Equal(t, []string{"hk0", "hk2"}, []string{ds[0].HookID, ds[1].HookID})
		}
		_, err := st.EnqueueZapier(ctx, &store.ZapierItem{ID: "it2", Event: "order", RunID: "r2", Body: []byte(`{"id":"it2"}`),
			CreatedAt: now.Add(time.Second)}, "notify", euOnly, id("it2"))
		require.NoError(t, err)

		got, err := st.ClaimZapierDeliveries(ctx, now, time.Minute, 3)
		require.NoError(t, err)
		require.Len(t, got, 2, "it2's deliveries are not due yet")
		require.JSONEq(t, `{"id":"it1"}`, string(got[0].Body))
		again, err := st.ClaimZapierDeliveries(ctx, now, time.Minute, 10)
		require.NoError(t, err)
		require.Empty(t, again, "leased")

		d := got[0]
		d.Attempts, d.LastCode, d.LastError, d.NextAt = 1, 503, "503 Service Unavailable", now.Add(time.Second)
		require.NoError(t, st.FinishZapierAttempt(ctx, d, now))
		d = got[1]
		d.Attempts, d.LastCode, d.Status = 1, 200, store.DeliveryDelivered
		require.NoError(t, st.FinishZapierAttempt(ctx, d, now))

		due, err := st.ClaimZapierDeliveries(ctx, now.Add(time.Second), time.Minute, 10)
		require.NoError(t, err)
		require.Len(t, due, 3, "it1's retry and it2's two")
		require.Equal(t, "it1/hk0", due[0].ID)
		require.Equal(t, 1, due[0].Attempts)

		// a restart of the process that held them gives them back
		require.NoError(t, st.ReleaseZapierClaims(ctx, now.Add(2*time.Second)))
		due, err = st.ClaimZapierDeliveries(ctx, now.Add(2*time.Second), time.Minute, 10)
		require.NoError(t, err)
		require.Len(t, due, 3)

		samples, err := st.ZapierSamples(ctx, "order", 10)
		require.NoError(t, err)
		require.Len(t, samples, 2)
		require.Equal(t, "it2", samples[0].ID, "newest first")

		n, err := st.PruneZapier(ctx, now, 1)
		require.NoError(t, err)
		require.Zero(t, n, "none finished before now")

		stats, err := st.ZapierStats(ctx, now.Add(-time.Hour))
		require.NoError(t, err)
		require.Len(t, stats, 2)
		require.Equal(t, map[string]int{store.DeliveryPending: 2}, stats[0].Statuses)
		require.Equal(t, map[string]int{store.DeliveryDelivered: 1, store.DeliveryPending: 1}, stats[1].Statuses)

		// the delivered one is pruned once older than the time given,
		// the pending ones are kept
		n, err = st.PruneZapier(ctx, now.Add(time.Millisecond), 1)
		require.NoError(t, err)
		require.Equal(t, int64(1), n)
	})
}

// TestRunDeliveries: a run's deliveries as they stand, targets redacted;
// a store that never had the Zapier tables has none, and no error.
func TestRunDeliveries(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx := context.Background()
		redact := func(string) string { return "https://hooks.test/…" }
		none, err := st.RunDeliveries(ctx, "r1", redact)
		require.NoError(t, err, "no Zapier tables yet")
		require.Empty(t, none)

		require.NoError(t, st.MigrateZapier(ctx))
		now := time.Now().UTC().Truncate(time.Millisecond)
		_, _, err = st.AddZapierHook(ctx, &store.ZapierHook{ID: "hk1", Event: "order", Target: "https://hooks.test/secret-path/1", CreatedAt: now})
		require.NoError(t, err)
		_, err = st.EnqueueZapier(ctx, &store.ZapierItem{ID: "it1", Event: "order", RunID: "r1", Body: []byte(`{"id":"it1"}`), CreatedAt: now},
			"notify", func(*store.ZapierHook) bool { return true }, func(hook string) string { return "it1/" + hook })
		require.NoError(t, err)

		got, err := st.RunDeliveries(ctx, "r1", redact)
		require.NoError(t, err)
		require.Len(t, got, 1)
		require.Equal(t, "https://hooks.test/…", got[0].Target)
		require.Equal(t, "notify", got[0].Step)
		require.Equal(t, "pending", got[0].Status)
		other, err := st.RunDeliveries(ctx, "r2", redact)
		require.NoError(t, err)
		require.Empty(t, other)
	})
}
