package pipeline_test

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// pollCall is one call of a fakePoller.
type pollCall struct {
	typ    string
	with   connector.Values
	conn   *connector.Connection
	cursor json.RawMessage
	at     time.Time
}

// fakePoller records its calls and answers the nth (from 1) with respond.
type fakePoller struct {
	mu      sync.Mutex
	calls   []pollCall
	respond func(n int, req *connector.PollRequest) (*connector.PollResult, error)
}

func (f *fakePoller) Poll(_ context.Context, req *connector.PollRequest) (*connector.PollResult, error) {
	f.mu.Lock()
	f.calls = append(f.calls, pollCall{typ: req.Type, with: req.With, conn: req.Connection, cursor: req.Cursor, at: time.Now()})
	n := len(f.calls)
	f.mu.Unlock()
	return f.respond(n, req)
}

func (f *fakePoller) seen() []pollCall {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]pollCall(nil), f.calls...)
}

const (
	polledType    = "ptest.item_created"
	connectedType = "ptest.item_connected"
)

// pollRegistry holds ptest.item_created, polled by p and filtered by match
// (when not nil), with options channel and every (its interval, 1h by
// default); ptest.item_connected, the same on a connection of type ptest;
// and an action ptest.note that does nothing.
func pollRegistry(t *testing.T, p connector.Poller, match func(connector.Values, *connector.Event) bool) *connector.Registry {
	t.Helper()
	reg := connector.NewRegistry()
	require.NoError(t, reg.Add(&connector.Spec{ID: "ptest.note", Kind: connector.KindAction, Summary: "Note",
		Action: connector.ActionFunc(func(context.Context, *connector.Request) (map[string]any, error) {
			return map[string]any{"ok": true}, nil
		})}))
	for _, id := range []string{polledType, connectedType} {
		s := &connector.Spec{ID: id, Kind: connector.KindTrigger, Summary: "An item was created",
			Fields: []connector.Field{
				{Name: "channel", Type: connector.String, Description: "The channel"},
				{Name: "every", Type: connector.Duration, Default: "1h", Description: "How often to poll"},
			},
			Trigger: &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: p, Match: match,
				Interval: func(with connector.Values) time.Duration { return with.Duration("every") }},
		}
		if id == connectedType {
			s.Connection, s.ConnectionRequired = "ptest", true
		}
		require.NoError(t, reg.Add(s))
	}
	return reg
}

// polledRecipe is a recipe of ptest.item_created on a channel, polled
// every every ("" for the spec's default); with a connection, of
// ptest.item_connected on it.
type polledRecipe struct{ name, channel, every, conn string }

// pollIndex indexes recipes of reg.
func pollIndex(t *testing.T, reg *connector.Registry, specs ...polledRecipe) *pipeline.Index {
	t.Helper()
	var rs []*recipes.Recipe
	for _, s := range specs {
		with := "channel: " + s.channel
		if s.every != "" {
			with += ", every: " + s.every
		}
		typ, conn := polledType, ""
		if s.conn != "" {
			typ, conn = connectedType, ", connection: "+s.conn
		}
		rec, diags := (&recipes.Loader{Registry: reg}).Parse(s.name+".yaml", fmt.Appendf(nil, `version: 1
name: %s
trigger: {type: %s%s, with: {%s}}
steps:
  - id: note
    action: ptest.note
`, s.name, typ, conn, with))
		require.False(t, diags.HasErrors(), "%v", diags)
		rs = append(rs, rec)
	}
	ix, errs := pipeline.BuildIndex(rs, nil)
	require.Empty(t, errs)
	return ix
}

// pollKey is the key of the only poller of ix.
func pollKey(t *testing.T, ix *pipeline.Index) string {
	t.Helper()
	polls := ix.Polls()
	require.Len(t, polls, 1)
	return polls[0].Key
}

// pollHost is an engine over the embedded broker whose pollers the test
// starts once it has set the store up.
type pollHost struct {
	o   opened
	eng *pipeline.Engine
}

func newPollHost(t *testing.T, ix *pipeline.Index) *pollHost {
	t.Helper()
	o := sqliteCase().backing(t)(t)
	t.Cleanup(o.close)
	er := runEngine(t, o, ix, "one")
	t.Cleanup(func() { er.stop(t) })
	return &pollHost{o: o, eng: er.eng}
}

// start runs the pollers (owner "me" unless cfg says) until the test ends
// or stop is called.
func (h *pollHost) start(t *testing.T, cfg pipeline.PollConfig) (stop func()) {
	t.Helper()
	if cfg.Owner == "" {
		cfg.Owner = "me"
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.eng.RunPollers(ctx, cfg)
	}()
	stop = func() {
		cancel()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Error("RunPollers did not return once its context ended")
		}
	}
	t.Cleanup(stop)
	return stop
}

// saveCursor saves a cursor of key as an earlier process would have.
func (h *pollHost) saveCursor(t *testing.T, key string, cursor []byte) {
	t.Helper()
	ctx := context.Background()
	held, _, err := h.o.st.LeasePoll(ctx, key, "earlier", time.Now(), time.Hour)
	require.NoError(t, err)
	require.True(t, held)
	require.NoError(t, h.o.b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		return h.o.st.SavePoll(ctx, tx, key, "earlier", cursor, time.Now())
	}))
	require.NoError(t, h.o.st.ReleasePoll(ctx, key, "earlier"))
}

func (h *pollHost) cursor(t *testing.T, key string) string {
	t.Helper()
	c, err := h.o.st.PollCursor(context.Background(), key)
	require.NoError(t, err)
	return string(c)
}

func (h *pollHost) waitCursor(t *testing.T, key, want string) {
	t.Helper()
	require.Eventually(t, func() bool { return h.cursor(t, key) == want }, 10*time.Second, 5*time.Millisecond,
		"the cursor of %s did not become %s", key, want)
}

// polled is a stored event of a poller.
type polled struct {
	ID       string
	Type     string
	DedupKey string
	Payload  map[string]any
}

// events lists the stored events from source, by dedup key.
func (h *pollHost) events(t *testing.T, source string) []polled {
	t.Helper()
	rows, err := h.o.st.DB.QueryContext(context.Background(),
		`SELECT id, type, dedup_key, payload FROM events WHERE source = $1 ORDER BY dedup_key`, source)
	require.NoError(t, err)
	defer rows.Close()
	var out []polled
	for rows.Next() {
		var p polled
		var payload []byte
		require.NoError(t, rows.Scan(&p.ID, &p.Type, &p.DedupKey, &payload))
		require.NoError(t, json.Unmarshal(payload, &p.Payload))
		out = append(out, p)
	}
	require.NoError(t, rows.Err())
	return out
}

// leaseOf reads who holds a poller's lease and until when (0: released).
func (h *pollHost) leaseOf(t *testing.T, key string) (string, int64) {
	t.Helper()
	var owner string
	var until int64
	require.NoError(t, h.o.st.DB.QueryRowContext(context.Background(),
		`SELECT owner, lease_until FROM polls WHERE key = $1`, key).Scan(&owner, &until))
	return owner, until
}

func item(channel string, id int) connector.Event {
	return connector.Event{DedupKey: fmt.Sprint(id), Payload: map[string]any{"channel": channel, "id": float64(id)}}
}

// TestPollerCursor: the poller is called with the cursor saved before,
// its events are stored (keyed by the poller) and run, and its next
// cursor is saved; it is not called again before its interval.
func TestPollerCursor(t *testing.T) {
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		return &connector.PollResult{Events: []connector.Event{item("a", 8)}, Next: json.RawMessage(`{"after":8}`)}, nil
	}}
	ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a"})
	key := pollKey(t, ix)
	require.Equal(t, connector.PollKey(polledType, "", connector.Values{"channel": "a", "every": time.Hour}), key)
	h := newPollHost(t, ix)
	h.saveCursor(t, key, []byte(`{"after":7}`))
	h.start(t, pipeline.PollConfig{})

	h.waitCursor(t, key, `{"after":8}`)
	calls := p.seen()
	require.Len(t, calls, 1)
	require.JSONEq(t, `{"after":7}`, string(calls[0].cursor), "called with the saved cursor")
	require.Equal(t, polledType, calls[0].typ)
	require.Equal(t, "a", calls[0].with.String("channel"))

	evs := h.events(t, key)
	require.Len(t, evs, 1)
	require.Equal(t, polledType, evs[0].Type)
	require.Equal(t, key+":8", evs[0].DedupKey, "an item's dedup key is the poller's")
	require.Equal(t, map[string]any{"channel": "a", "id": 8.0}, evs[0].Payload)
	run := waitRun(t, h.o.st, pipeline.RunID(evs[0].ID, "items"))
	require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)

	time.Sleep(300 * time.Millisecond)
	require.Len(t, p.seen(), 1, "not polled again before the interval")
	owner, until := h.leaseOf(t, key)
	require.Equal(t, "me", owner)
	require.Greater(t, until, time.Now().UnixMilli(), "the lease is held while the poller waits")
}

// TestPollerMore: a poller that asks for more is polled again at once,
// from the cursor it returned.
func TestPollerMore(t *testing.T) {
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		switch n {
		case 1:
			return &connector.PollResult{Events: []connector.Event{item("a", 1)}, Next: json.RawMessage(`1`), More: true}, nil
		case 2:
			return &connector.PollResult{Events: []connector.Event{item("a", 2)}, Next: json.RawMessage(`2`), More: true}, nil
		case 3:
			return &connector.PollResult{Events: []connector.Event{item("a", 3)}, Next: json.RawMessage(`3`)}, nil
		}
		return &connector.PollResult{}, nil
	}}
	ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a"})
	key := pollKey(t, ix)
	h := newPollHost(t, ix)
	h.start(t, pipeline.PollConfig{})

	h.waitCursor(t, key, `3`)
	calls := p.seen()
	require.Len(t, calls, 3)
	require.Nil(t, calls[0].cursor, "the first poll has no cursor")
	require.Equal(t, `1`, string(calls[1].cursor))
	require.Equal(t, `2`, string(calls[2].cursor))
	require.Less(t, calls[2].at.Sub(calls[0].at), 5*time.Second, "polled again at once, not after the interval (1h)")
	require.Len(t, h.events(t, key), 3)

	time.Sleep(300 * time.Millisecond)
	require.Len(t, p.seen(), 3, "once it has no more, it waits for its interval")
}

// TestPollerErrorBacksOff: a failed poll (an error, or a panic of the
// poller) stores nothing of what it returned and leaves the cursor; it is
// retried after the backoff, from the same cursor.
func TestPollerErrorBacksOff(t *testing.T) {
	const backoff = 150 * time.Millisecond
	tests := []struct {
		name string
		fail func(n int) (*connector.PollResult, error)
	}{
		{name: "an error", fail: func(n int) (*connector.PollResult, error) {
			// what a failed poll returns besides its error is dropped
			return &connector.PollResult{Events: []connector.Event{item("a", 100+n)}, Next: json.RawMessage(`"bad"`)},
				fmt.Errorf("the service answered 503 (%d)", n)
		}},
		{name: "a panic", fail: func(n int) (*connector.PollResult, error) {
			panic(fmt.Sprintf("poller bug %d", n))
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
				if n <= 2 {
					return tc.fail(n)
				}
				if n == 3 {
					return &connector.PollResult{Events: []connector.Event{item("a", 3)}, Next: json.RawMessage(`"good"`)}, nil
				}
				return &connector.PollResult{}, nil
			}}
			ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a"})
			key := pollKey(t, ix)
			h := newPollHost(t, ix)
			h.saveCursor(t, key, []byte(`"start"`))
			h.start(t, pipeline.PollConfig{MaxBackoff: backoff})

			h.waitCursor(t, key, `"good"`)
			calls := p.seen()
			require.Len(t, calls, 3)
			for i, c := range calls {
				require.Equal(t, `"start"`, string(c.cursor), "call %d is made from the saved cursor", i+1)
			}
			for i := 1; i < 3; i++ {
				gap := calls[i].at.Sub(calls[i-1].at)
				require.GreaterOrEqual(t, gap, backoff-10*time.Millisecond, "retry %d came after the backoff", i)
				require.Less(t, gap, 5*time.Second, "retry %d waited for MaxBackoff, not the interval", i)
			}
			evs := h.events(t, key)
			require.Len(t, evs, 1)
			require.Equal(t, key+":3", evs[0].DedupKey)
		})
	}
}

// TestPollerLease: a process polls only while it holds the poller's
// lease: not while another owner's is live, and at once after it is
// released or expired.
func TestPollerLease(t *testing.T) {
	tests := []struct {
		name  string
		ttl   time.Duration // of the other owner's lease
		after func(t *testing.T, h *pollHost, key string)
	}{
		{name: "released by its holder", ttl: time.Hour, after: func(t *testing.T, h *pollHost, key string) {
			require.NoError(t, h.o.st.ReleasePoll(context.Background(), key, "other"))
		}},
		{name: "expired", ttl: 3 * time.Second, after: func(*testing.T, *pollHost, string) {}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
				return &connector.PollResult{Next: json.RawMessage(fmt.Sprint(n))}, nil
			}}
			ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a"})
			key := pollKey(t, ix)
			h := newPollHost(t, ix)
			held, _, err := h.o.st.LeasePoll(context.Background(), key, "other", time.Now(), tc.ttl)
			require.NoError(t, err)
			require.True(t, held)
			h.start(t, pipeline.PollConfig{LeaseTTL: 300 * time.Millisecond})

			time.Sleep(time.Second)
			require.Empty(t, p.seen(), "polled under another owner's live lease")
			owner, _ := h.leaseOf(t, key)
			require.Equal(t, "other", owner)

			tc.after(t, h, key)
			h.waitCursor(t, key, `1`)
			owner, _ = h.leaseOf(t, key)
			require.Equal(t, "me", owner)
		})
	}
}

// TestPollerStopsWithItsRecipe: a reload that removes a poller's recipe
// stops the poller and releases its lease, so that another process may
// take it at once; a poller the reload adds starts.
func TestPollerStopsWithItsRecipe(t *testing.T) {
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		return &connector.PollResult{Next: json.RawMessage(fmt.Sprint(n))}, nil
	}}
	reg := pollRegistry(t, p, nil)
	ix := pollIndex(t, reg, polledRecipe{name: "items", channel: "a", every: "50ms"})
	key := pollKey(t, ix)
	h := newPollHost(t, ix)
	h.start(t, pipeline.PollConfig{LeaseTTL: time.Hour})
	require.Eventually(t, func() bool { return len(p.seen()) >= 3 }, 10*time.Second, 5*time.Millisecond, "polled on its interval")

	next := pollIndex(t, reg, polledRecipe{name: "others", channel: "b", every: "1h"})
	nextKey := pollKey(t, next)
	require.NotEqual(t, key, nextKey)
	h.eng.SetIndex(next)

	require.Eventually(t, func() bool {
		_, until := h.leaseOf(t, key)
		return until == 0
	}, 10*time.Second, 5*time.Millisecond, "the removed poller's lease is released")
	require.Eventually(t, func() bool { return h.cursor(t, nextKey) != "" }, 10*time.Second, 5*time.Millisecond,
		"the added poller polled")
	var onA int
	for _, c := range p.seen() {
		if c.with.String("channel") == "a" {
			onA++
		}
	}
	time.Sleep(300 * time.Millisecond) // six intervals of the removed poller
	var again int
	for _, c := range p.seen() {
		if c.with.String("channel") == "a" {
			again++
		}
	}
	require.Equal(t, onA, again, "the removed poller stopped")
	held, _, err := h.o.st.LeasePoll(context.Background(), key, "other", time.Now(), time.Hour)
	require.NoError(t, err)
	require.True(t, held, "another process takes the released lease at once")
}

// TestPollerMatch: events a recipe's options do not match
// (Trigger.Match) are not stored for it; a poll none of whose events any
// recipe matches stores nothing, and its cursor advances all the same.
func TestPollerMatch(t *testing.T) {
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		switch n {
		case 1:
			return &connector.PollResult{Events: []connector.Event{item("a", 1), item("b", 2), item("a", 3)},
				Next: json.RawMessage(`1`), More: true}, nil
		case 2:
			return &connector.PollResult{Events: []connector.Event{item("b", 4), item("c", 5)}, Next: json.RawMessage(`2`)}, nil
		}
		return &connector.PollResult{}, nil
	}}
	var matched sync.Map
	match := func(with connector.Values, ev *connector.Event) bool {
		matched.Store(fmt.Sprint(ev.Payload["id"]), with.String("channel"))
		return ev.Payload["channel"] == with.String("channel")
	}
	ix := pollIndex(t, pollRegistry(t, p, match), polledRecipe{name: "items", channel: "a"})
	key := pollKey(t, ix)
	require.Equal(t, connector.Values{"channel": "a", "every": time.Hour}, ix.Options("items"))
	h := newPollHost(t, ix)
	h.start(t, pipeline.PollConfig{})

	h.waitCursor(t, key, `2`)
	require.Len(t, p.seen(), 2)
	evs := h.events(t, key)
	require.Len(t, evs, 2, "the events of channel a only")
	require.Equal(t, []string{key + ":1", key + ":3"}, []string{evs[0].DedupKey, evs[1].DedupKey})
	for _, ev := range evs {
		require.Equal(t, "a", ev.Payload["channel"])
		run := waitRun(t, h.o.st, pipeline.RunID(ev.ID, "items"))
		require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
	}
	for id := 1; id <= 5; id++ {
		channel, ok := matched.Load(fmt.Sprint(id))
		require.True(t, ok, "item %d was matched against the recipe", id)
		require.Equal(t, "a", channel, "with the recipe's options")
	}
}

// TestIndexListeners: Listeners drops the recipes whose options an event
// does not match, and keeps all of them for a trigger without Match.
func TestIndexListeners(t *testing.T) {
	byChannel := func(with connector.Values, ev *connector.Event) bool {
		return ev.Payload["channel"] == with.String("channel")
	}
	tests := []struct {
		name  string
		match func(connector.Values, *connector.Event) bool
		ev    connector.Event
		want  []string
	}{
		{name: "matched", match: byChannel, ev: item("a", 1), want: []string{"items"}},
		{name: "not matched", match: byChannel, ev: item("b", 1), want: nil},
		{name: "no match function", ev: item("b", 1), want: []string{"items"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ix := pollIndex(t, pollRegistry(t, &fakePoller{}, tc.match), polledRecipe{name: "items", channel: "a"})
			key := pollKey(t, ix)
			require.Equal(t, tc.want, ix.Listeners(polledType, key, &tc.ev))
			require.Empty(t, ix.Listeners(polledType, "poll:other", &tc.ev), "another key")
			require.Empty(t, ix.Listeners("ptest.other", key, &tc.ev), "another type")
		})
	}
}

// TestPollerComesBackWithItsRecipe: a reload that removes a poller's
// recipe and a reload that adds it back, both between two looks of
// RunPollers at the index, leave the poller polling. (The poller's loop
// sees the first reload itself and ends; RunPollers must not take the
// ended loop for a running one.)
func TestPollerComesBackWithItsRecipe(t *testing.T) {
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		return &connector.PollResult{Next: json.RawMessage(fmt.Sprint(n))}, nil
	}}
	reg := pollRegistry(t, p, nil)
	polled := polledRecipe{name: "items", channel: "a", every: "20ms"}
	probe := polledRecipe{name: "probe", channel: "b", every: "1h"}
	ix := pollIndex(t, reg, polled)
	key := pollKey(t, ix)
	h := newPollHost(t, ix)
	h.start(t, pipeline.PollConfig{LeaseTTL: time.Hour})
	onChannel := func(channel string) int {
		n := 0
		for _, c := range p.seen() {
			if c.with.String("channel") == channel {
				n++
			}
		}
		return n
	}
	require.Eventually(t, func() bool { return onChannel("a") >= 2 }, 10*time.Second, time.Millisecond)

	// the probe's first poll tells when RunPollers has just looked
	h.eng.SetIndex(pollIndex(t, reg, polled, probe))
	require.Eventually(t, func() bool { return onChannel("b") == 1 }, 10*time.Second, time.Millisecond)
	looked := time.Now()
	h.eng.SetIndex(pollIndex(t, reg, probe))
	require.Eventually(t, func() bool {
		_, until := h.leaseOf(t, key)
		return until == 0
	}, 10*time.Second, time.Millisecond, "the removed poller ended")
	h.eng.SetIndex(pollIndex(t, reg, polled, probe))
	if time.Since(looked) > 200*time.Millisecond {
		t.Skip("too slow to reload twice between two looks of RunPollers (250ms)")
	}
	before := onChannel("a")
	require.Eventually(t, func() bool { return onChannel("a") > before }, 3*time.Second, 5*time.Millisecond,
		"the poller of a recipe removed and added back polls again")
}

// TestPollerDedup: an item polled again (a poll made again from the same
// cursor) is stored once; an item without a dedup key is always new; a
// poll without a next cursor keeps the current one.
func TestPollerDedup(t *testing.T) {
	noKey := connector.Event{Payload: map[string]any{"channel": "a", "id": 0.0}}
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		switch n {
		case 1:
			return &connector.PollResult{Events: []connector.Event{item("a", 1), noKey}, Next: json.RawMessage(`1`), More: true}, nil
		case 2:
			// no next cursor: the poll is made again from 1
			return &connector.PollResult{Events: []connector.Event{item("a", 1), noKey}, More: true}, nil
		case 3:
			return &connector.PollResult{Events: []connector.Event{item("a", 1), item("a", 2)}, Next: json.RawMessage(`2`)}, nil
		}
		return &connector.PollResult{}, nil
	}}
	ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a"})
	key := pollKey(t, ix)
	h := newPollHost(t, ix)
	h.start(t, pipeline.PollConfig{})

	h.waitCursor(t, key, `2`)
	calls := p.seen()
	require.Len(t, calls, 3)
	require.Equal(t, `1`, string(calls[1].cursor))
	require.Equal(t, `1`, string(calls[2].cursor), "a poll without a next cursor keeps the current one")
	evs := h.events(t, key)
	byKey := map[string]int{}
	for _, ev := range evs {
		byKey[ev.DedupKey]++
	}
	require.Equal(t, 1, byKey[key+":1"], "item 1, polled three times, is stored once")
	require.Equal(t, 1, byKey[key+":2"])
	require.Len(t, evs, 4, "items 1 and 2, and the item without a key twice")
	for _, ev := range evs {
		run := waitRun(t, h.o.st, pipeline.RunID(ev.ID, "items"))
		require.Equal(t, "succeeded", run.Status, "%s: %s", run.Reason, run.Error)
	}
}

// TestPollerConnection: a poller on a connection is called with it,
// resolved by PollConfig.Connection; one that cannot be resolved is not
// polled, and is retried.
func TestPollerConnection(t *testing.T) {
	acme := &connector.Connection{Name: "acme", Type: "ptest", Values: connector.Values{"token": "t0k"}}
	tests := []struct {
		name    string
		resolve func(name string) (*connector.Connection, error)
		polled  bool
	}{
		{name: "resolved", resolve: func(name string) (*connector.Connection, error) {
			if name != "acme" {
				return nil, fmt.Errorf("no connection %q", name)
			}
			return acme, nil
		}, polled: true},
		{name: "not resolved", resolve: func(name string) (*connector.Connection, error) {
			return nil, fmt.Errorf("connection %q: its secret is not set", name)
		}},
		{name: "no connections configured"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
				return &connector.PollResult{Events: []connector.Event{item("a", n)}, Next: json.RawMessage(fmt.Sprint(n))}, nil
			}}
			ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a", conn: "acme"})
			key := pollKey(t, ix)
			require.Equal(t, connector.PollKey(connectedType, "acme", connector.Values{"channel": "a", "every": time.Hour}), key)
			h := newPollHost(t, ix)
			var resolved sync.WaitGroup
			resolved.Add(1)
			var once sync.Once
			var tries atomic.Int32
			resolve := tc.resolve
			if resolve != nil {
				resolve = func(name string) (*connector.Connection, error) {
					tries.Add(1)
					defer once.Do(resolved.Done)
					return tc.resolve(name)
				}
			} else {
				resolved.Done()
			}
			h.start(t, pipeline.PollConfig{Connection: resolve, MaxBackoff: 20 * time.Millisecond})
			if !tc.polled {
				resolved.Wait()
				time.Sleep(500 * time.Millisecond) // many backoffs
				require.Empty(t, p.seen(), "polled without its connection")
				require.Empty(t, h.cursor(t, key))
				require.Empty(t, h.events(t, key))
				if tc.resolve != nil {
					require.GreaterOrEqual(t, tries.Load(), int32(3), "retried after its backoff")
				}
				return
			}
			h.waitCursor(t, key, `1`)
			calls := p.seen()
			require.Len(t, calls, 1)
			require.Same(t, acme, calls[0].conn)
			require.Equal(t, connectedType, calls[0].typ)
			require.Len(t, h.events(t, key), 1)
		})
	}
}

// TestPollerLeaseLostMidPoll: a poll whose process lost its lease while it
// polled (the process stalled past the lease, which another process took
// over meanwhile; a poll at work renews its lease, so the test ends it by
// hand) commits nothing: neither its events nor its cursor; the process
// polls again only once it holds the lease again, from the cursor saved.
func TestPollerLeaseLostMidPoll(t *testing.T) {
	const ttl = time.Second // renewed every third: a stall of a second under -race would be needed to lose it
	unblock := make(chan struct{})
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		if n == 1 {
			<-unblock
			return &connector.PollResult{Events: []connector.Event{item("a", 1)}, Next: json.RawMessage(`"mine"`)}, nil
		}
		return &connector.PollResult{Events: []connector.Event{item("a", n)}, Next: json.RawMessage(fmt.Sprintf(`"again %d"`, n))}, nil
	}}
	ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a"})
	key := pollKey(t, ix)
	h := newPollHost(t, ix)
	h.start(t, pipeline.PollConfig{LeaseTTL: ttl})
	require.Eventually(t, func() bool { return len(p.seen()) == 1 }, 10*time.Second, time.Millisecond)

	ctx := context.Background()
	time.Sleep(2 * ttl)
	held, _, err := h.o.st.LeasePoll(ctx, key, "other", time.Now(), time.Hour)
	require.NoError(t, err)
	require.False(t, held, "a poll at work renews its lease")
	// the stall: the lease ends and another process takes it before this
	// one renews it (the renewal runs a third of the lease apart, so the
	// two are tried together until the other wins)
	require.Eventually(t, func() bool {
		require.NoError(t, h.o.st.ReleasePoll(ctx, key, "me"))
		held, _, err := h.o.st.LeasePoll(ctx, key, "other", time.Now(), time.Hour)
		require.NoError(t, err)
		return held
	}, 10*time.Second, time.Millisecond)
	require.NoError(t, h.o.b.Write(ctx, func(ctx context.Context, tx store.Execer) error {
		return h.o.st.SavePoll(ctx, tx, key, "other", []byte(`"theirs"`), time.Now())
	}))
	close(unblock)

	time.Sleep(time.Second)
	require.Equal(t, `"theirs"`, h.cursor(t, key), "the poll that lost its lease saved no cursor")
	require.Empty(t, h.events(t, key), "the poll that lost its lease stored no event")
	require.Len(t, p.seen(), 1, "no poll while the other process holds the lease")

	require.NoError(t, h.o.st.ReleasePoll(ctx, key, "other"))
	h.waitCursor(t, key, `"again 2"`)
	calls := p.seen()
	require.Len(t, calls, 2)
	require.Equal(t, `"theirs"`, string(calls[1].cursor))
	evs := h.events(t, key)
	require.Len(t, evs, 1)
	require.Equal(t, key+":2", evs[0].DedupKey)
}

// TestPollerReleasesOnStop: a poller stopped with RunPollers's context
// releases its lease, so that another process takes it at once.
func TestPollerReleasesOnStop(t *testing.T) {
	p := &fakePoller{respond: func(n int, req *connector.PollRequest) (*connector.PollResult, error) {
		return &connector.PollResult{Next: json.RawMessage(fmt.Sprint(n))}, nil
	}}
	ix := pollIndex(t, pollRegistry(t, p, nil), polledRecipe{name: "items", channel: "a"})
	key := pollKey(t, ix)
	h := newPollHost(t, ix)
	stop := h.start(t, pipeline.PollConfig{LeaseTTL: time.Hour})
	h.waitCursor(t, key, `1`)
	owner, until := h.leaseOf(t, key)
	require.Equal(t, "me", owner)
	require.Greater(t, until, time.Now().Add(30*time.Minute).UnixMilli())

	stop()
	_, until = h.leaseOf(t, key)
	require.Zero(t, until, "released")
	held, cursor, err := h.o.st.LeasePoll(context.Background(), key, "other", time.Now(), time.Hour)
	require.NoError(t, err)
	require.True(t, held)
	require.Equal(t, `1`, string(cursor))
}

// TestStoredEvent: the stored event of what a trigger reported: its JSON
// as given or encoded, and the payload handed to the matcher only when it
// is what that JSON decodes to.
func TestStoredEvent(t *testing.T) {
	payload := map[string]any{"id": 1.0, "name": "x"}
	now := time.Date(2026, 12, 7, 20, 0, 0, 0, time.FixedZone("CET", 3600))
	tests := []struct {
		name        string
		ev          connector.Event
		wantJSON    string
		wantDecoded map[string]any
		wantErr     string
	}{
		{name: "payload only", ev: connector.Event{Payload: payload}, wantJSON: `{"id":1,"name":"x"}`, wantDecoded: payload},
		{name: "JSON only", ev: connector.Event{JSON: json.RawMessage(`{"id": 1, "name": "x"}`)}, wantJSON: `{"id": 1, "name": "x"}`},
		{name: "both, exact", ev: connector.Event{Payload: payload, JSON: json.RawMessage(`{"id":1,"name":"x"}`), Exact: true},
			wantJSON: `{"id":1,"name":"x"}`, wantDecoded: payload},
		{name: "both, not exact", ev: connector.Event{Payload: map[string]any{"id": json.Number("12345678901234567890")},
			JSON: json.RawMessage(`{"id":12345678901234567890}`)}, wantJSON: `{"id":12345678901234567890}`},
		{name: "neither", ev: connector.Event{}, wantJSON: `null`},
		{name: "a payload JSON cannot hold", ev: connector.Event{Payload: map[string]any{"c": make(chan int)}},
			wantErr: "the event cannot be stored as JSON"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ev, err := pipeline.StoredEvent(polledType, "poll:k", []string{"r1", "r2"}, &tc.ev, now)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.wantJSON, string(ev.Payload))
			require.Equal(t, tc.wantDecoded, ev.Decoded)
			require.True(t, len(ev.ID) > 3 && ev.ID[:3] == "ev_", ev.ID)
			require.Equal(t, polledType, ev.Type)
			require.Equal(t, "poll:k", ev.Source)
			require.Equal(t, []string{"r1", "r2"}, ev.Recipes)
			require.Equal(t, now.UTC(), ev.ReceivedAt)
			require.Equal(t, time.UTC, ev.ReceivedAt.Location())
			require.Empty(t, ev.DedupKey, "the caller sets it")
		})
	}
}
