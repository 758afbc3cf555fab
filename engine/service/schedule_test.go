package service

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

func cronRecipe(name, cron, zone, sinkURL string) string {
	return fmt.Sprintf(`version: 1
name: %s
trigger: {type: schedule.cron, with: {cron: "%s", timezone: %s}}
steps:
  - id: call
    action: http.request
    with: {url: "%s/%s", json: {at: "{{ event.scheduled_at }}"}}
`, name, cron, zone, sinkURL, name)
}

// tickOf is a run's event: its scheduled and fired times.
type tickOf struct {
	run       *store.Run
	scheduled time.Time
	fired     time.Time
	raw       string // scheduled_at as stored
}

func ticks(t *testing.T, st *store.Store, recipe string) []tickOf {
	t.Helper()
	var out []tickOf
	for _, run := range runsOf(t, st, recipe) {
		ev, err := st.GetEvent(context.Background(), run.EventID)
		require.NoError(t, err)
		var p struct {
			ScheduledAt string `json:"scheduled_at"`
			FiredAt     string `json:"fired_at"`
		}
		require.NoError(t, json.Unmarshal(ev.Payload, &p))
		sched, err := time.Parse(time.RFC3339Nano, p.ScheduledAt)
		require.NoError(t, err)
		fired, err := time.Parse(time.RFC3339Nano, p.FiredAt)
		require.NoError(t, err)
		out = append(out, tickOf{run: run, scheduled: sched, fired: fired, raw: p.ScheduledAt})
	}
	return out
}

// onePerTick checks that no tick has more than one run, and returns the
// runs by tick.
func onePerTick(t *testing.T, ts []tickOf) map[int64]tickOf {
	t.Helper()
	by := map[int64]tickOf{}
	for _, tk := range ts {
		if prev, dup := by[tk.scheduled.Unix()]; dup {
			t.Fatalf("tick %s ran twice: runs %s and %s", tk.raw, prev.run.ID, tk.run.ID)
		}
		by[tk.scheduled.Unix()] = tk
	}
	return by
}

// TestScheduleEverySecond: @every 1s fires about once a second, on the
// second, one run per tick, each run calling the step once.
func TestScheduleEverySecond(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "@every 1s", "UTC", sk.srv.URL))
	r := start(t, dataDir, recipesDir)
	time.Sleep(3500 * time.Millisecond)
	require.NoError(t, r.stop(t))

	ts := ticks(t, openStore(t, dataDir), "tick")
	require.GreaterOrEqual(t, len(ts), 3, "3.5 s of @every 1s")
	require.LessOrEqual(t, len(ts), 4, "3.5 s of @every 1s")
	by := onePerTick(t, ts)
	var first, last int64
	for sec, tk := range by {
		require.Equal(t, "succeeded", tk.run.Status, "%s %s", tk.run.Reason, tk.run.Error)
		require.Zero(t, tk.scheduled.Nanosecond(), "scheduled_at is on the second")
		require.True(t, tk.raw[len(tk.raw)-1] == 'Z', "scheduled_at is in UTC: %s", tk.raw)
		d := tk.fired.Sub(tk.scheduled)
		require.True(t, d >= 0 && d < time.Second, "fired %s after its tick", d)
		if first == 0 || sec < first {
			first = sec
		}
		last = max(last, sec)
	}
	require.Equal(t, int64(len(by)-1), last-first, "the ticks are consecutive seconds")

	// the sink saw each tick once
	seen := map[string]int{}
	for _, c := range sk.snapshot() {
		seen[c.Body["at"].(string)]++
	}
	require.Len(t, seen, len(ts))
	for at, n := range seen {
		require.Equal(t, 1, n, "tick %s called the step %d times", at, n)
	}
}

// TestScheduleNoDoubleFireAcrossRestart: a service stopped right after a
// tick and another started on the same data in the same second do not
// run a tick twice, even when the second one fires that tick again.
func TestScheduleNoDoubleFireAcrossRestart(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "@every 1s", "UTC", sk.srv.URL))

	first := start(t, dataDir, recipesDir)
	require.Eventually(t, func() bool { return len(sk.snapshot()) >= 1 }, 5*time.Second, 2*time.Millisecond, "no tick")
	require.NoError(t, first.stop(t))
	firstTick, err := time.Parse(time.RFC3339, sk.snapshot()[0].Body["at"].(string))
	require.NoError(t, err)

	second := start(t, dataDir, recipesDir)
	// the second process fires the first one's tick once more, as a
	// process would whose clock or schedule saw it due again
	rec := second.svc.Engine.Index().Recipe("tick")
	require.NotNil(t, rec)
	second.svc.fire(context.Background(), rec, firstTick, time.Now())
	time.Sleep(2200 * time.Millisecond)
	require.NoError(t, second.stop(t))

	ts := ticks(t, openStore(t, dataDir), "tick")
	by := onePerTick(t, ts)
	require.Contains(t, by, firstTick.Unix())
	require.GreaterOrEqual(t, len(by), 3, "both processes fired")
	seen := map[string]int{}
	for _, c := range sk.snapshot() {
		seen[c.Body["at"].(string)]++
	}
	for at, n := range seen {
		require.Equal(t, 1, n, "tick %s called the step %d times", at, n)
	}
}

// TestScheduleTimeZone: a cron read in Asia/Tokyo computes its ticks in
// that zone, and scheduled_at carries the zone's offset.
func TestScheduleTimeZone(t *testing.T) {
	spec, ok := connector.Default.Lookup("schedule.cron")
	require.True(t, ok)
	src := cronRecipe("tokyo", "0 9 * * *", "Asia/Tokyo", "http://127.0.0.1:1")
	rec, diags := (&recipes.Loader{}).Parse("tokyo.yaml", []byte(src))
	require.False(t, diags.HasErrors(), "%v", diags)
	opts, err := rec.Trigger.Options(nil)
	require.NoError(t, err)
	next, err := spec.Schedule(opts)
	require.NoError(t, err)
	// 09:00 in Tokyo is 00:00 UTC
	got := next(time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC))
	require.True(t, time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC).Equal(got), "got %s", got)
	require.Equal(t, "2026-03-02T09:00:00+09:00", got.Format(time.RFC3339))

	// in the service: every minute, fired by hand rather than waited for
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tokyo.yaml", cronRecipe("tokyo", "* * * * *", "Asia/Tokyo", sk.srv.URL))
	r := start(t, dataDir, recipesDir)
	live := r.svc.Engine.Index().Recipe("tokyo")
	require.NotNil(t, live)
	opts, err = live.Trigger.Options(nil)
	require.NoError(t, err)
	next, err = spec.Schedule(opts)
	require.NoError(t, err)
	tick := next(time.Now())
	_, offset := tick.Zone()
	require.Equal(t, 9*3600, offset)
	require.Zero(t, tick.Second())
	r.svc.fire(context.Background(), live, tick, time.Now())
	require.Eventually(t, func() bool { return len(sk.snapshot()) >= 1 }, 10*time.Second, 10*time.Millisecond)
	require.NoError(t, r.stop(t))

	want := tick.Format(time.RFC3339)
	require.Regexp(t, `T\d\d:\d\d:00\+09:00$`, want)
	require.Equal(t, want, sk.snapshot()[0].Body["at"], "the step saw the tick in Tokyo time")
	var found bool
	for _, tk := range ticks(t, openStore(t, dataDir), "tokyo") {
		if tk.raw == want {
			found = true
			require.Equal(t, "succeeded", tk.run.Status)
		}
	}
	require.True(t, found, "no run for the tick %s", want)
}

// TestScheduleSurvivesReloads: reloading the recipes folder (here for a
// file unrelated to the schedule) does not skip ticks.
func TestScheduleSurvivesReloads(t *testing.T) {
	sk := newSink(t, 0)
	recipesDir, dataDir := t.TempDir(), t.TempDir()
	writeRecipe(t, recipesDir, "tick.yaml", cronRecipe("tick", "@every 1s", "UTC", sk.srv.URL))
	r := start(t, dataDir, recipesDir)
	stop := time.Now().Add(3500 * time.Millisecond)
	for i := 0; time.Now().Before(stop); i++ {
		writeRecipe(t, recipesDir, "other.yaml", hookRecipe("other", "/other", sk.srv.URL, fmt.Sprintf("/other-%d", i)))
		time.Sleep(120 * time.Millisecond)
	}
	require.NoError(t, r.stop(t))
	require.Greater(t, r.log.count("recipes reloaded"), 10)

	ts := ticks(t, openStore(t, dataDir), "tick")
	by := onePerTick(t, ts)
	require.GreaterOrEqual(t, len(by), 3, "ticks were skipped while the folder reloaded")
}
