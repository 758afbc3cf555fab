package zapier_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
	"github.com/sous-run/sous/engine/zapier"
	"github.com/sous-run/sous/internal/logbuf"
)

func TestValidate(t *testing.T) {
	decl := []zapier.Input{{Key: "email", Type: "string", Required: true}, {Key: "qty", Type: "integer"},
		{Key: "price", Type: "number"}, {Key: "gift", Type: "boolean"}, {Key: "at", Type: "datetime"}}
	for _, tc := range []struct {
		name  string
		in    string
		want  map[string]any
		field string
	}{
		{"typed", `{"email":"a@b.test","qty":2,"price":9.5,"gift":true,"at":"2026-01-02T15:04:05+01:00"}`,
			map[string]any{"email": "a@b.test", "qty": int64(2), "price": 9.5, "gift": true, "at": "2026-01-02T14:04:05Z"}, ""},
		{"as text", `{"email":"a@b.test","qty":"3","price":"1e2","gift":"false"}`,
			map[string]any{"email": "a@b.test", "qty": int64(3), "price": 100.0, "gift": false}, ""},
		{"undeclared kept, empty optional dropped", `{"email":"x","note":"hi","qty":""}`, map[string]any{"email": "x", "note": "hi"}, ""},
		{"missing required", `{"qty":1}`, nil, "email"},
		{"empty required", `{"email":""}`, nil, "email"},
		{"not an integer", `{"email":"x","qty":1.5}`, nil, "qty"},
		{"integer text", `{"email":"x","qty":"many"}`, nil, "qty"},
		{"not a number", `{"email":"x","price":"cheap"}`, nil, "price"},
		{"not a boolean", `{"email":"x","gift":"perhaps"}`, nil, "gift"},
		{"not a datetime", `{"email":"x","at":"tomorrow"}`, nil, "at"},
		{"an object for a string", `{"email":{"a":1}}`, nil, "email"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var in map[string]any
			require.NoError(t, json.Unmarshal([]byte(tc.in), &in))
			got, err := zapier.Validate(decl, in)
			if tc.field != "" {
				var ie *zapier.InputError
				require.ErrorAs(t, err, &ie)
				require.Equal(t, tc.field, ie.Field)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}

func TestParseInputs(t *testing.T) {
	ins, err := zapier.ParseInputs([]any{map[string]any{"key": "a"}, map[string]any{"key": "b", "type": "integer", "required": true, "help": "h"}})
	require.NoError(t, err)
	require.Equal(t, []zapier.Input{{Key: "a", Type: "string"}, {Key: "b", Type: "integer", Required: true, Help: "h"}}, ins)
	_, err = zapier.ParseInputs([]any{map[string]any{"key": "a", "type": "date"}})
	require.Error(t, err)
	_, err = zapier.ParseInputs([]any{"a"})
	require.Error(t, err)
}

func TestBodyAndFilter(t *testing.T) {
	b := zapier.Body("zi_1", map[string]any{"id": 7.0, "region": "eu", "n": 3.0})
	require.Equal(t, map[string]any{"id": "zi_1", "data_id": 7.0, "region": "eu", "n": 3.0}, b)
	require.True(t, zapier.Matches(nil, b))
	require.True(t, zapier.Matches(map[string]string{"region": "eu", "n": "3"}, b))
	require.False(t, zapier.Matches(map[string]string{"region": "us"}, b))
	require.False(t, zapier.Matches(map[string]string{"missing": "x"}, b))
	require.Equal(t, zapier.ItemID("r", "s"), zapier.ItemID("r", "s"))
	require.NotEqual(t, zapier.ItemID("r", "s"), zapier.ItemID("r", "t"))
}

func TestFilterText(t *testing.T) {
	item := map[string]any{"n": 3, "total": 7.5, "vip": true, "s": "7", "big": int64(9007199254740993)}
	for _, tc := range []struct {
		raw, want string
		set       bool
		err       bool
	}{
		{raw: `"eu"`, want: "eu", set: true},
		{raw: `3`, want: "3", set: true},
		{raw: `3.0`, want: "3", set: true},
		{raw: `7.50`, want: "7.5", set: true},
		{raw: `7e0`, want: "7", set: true},
		{raw: `9007199254740993`, want: "9007199254740993", set: true},
		{raw: `true`, want: "true", set: true},
		{raw: `null`},
		{raw: `[1]`, err: true},
		{raw: `{"a":1}`, err: true},
	} {
		t.Run(tc.raw, func(t *testing.T) {
			got, set, err := zapier.FilterText(json.RawMessage(tc.raw))
			if tc.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.set, set)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("matches as the item's field as text", func(t *testing.T) {
		for k, raw := range map[string]string{"n": `3`, "total": `7.50`, "vip": `true`, "s": `7`, "big": `9007199254740993`} {
			text, _, err := zapier.FilterText(json.RawMessage(raw))
			require.NoError(t, err)
			require.True(t, zapier.Matches(map[string]string{k: text}, item), k)
		}
		require.False(t, zapier.Matches(map[string]string{"vip": "false"}, item))
	})
}

func TestSettingsFromEnv(t *testing.T) {
	env := map[string]string{"SOUS_ZAPIER_BACKOFF": "200ms", "SOUS_ZAPIER_MAX_ATTEMPTS": "4", "SOUS_ZAPIER_RETENTION": "7d"}
	s, err := zapier.SettingsFromEnv(func(k string) string { return env[k] })
	require.NoError(t, err)
	require.Equal(t, 200*time.Millisecond, s.Backoff)
	require.Equal(t, 4, s.MaxAttempts)
	require.Equal(t, time.Hour, s.MaxBackoff)
	require.Equal(t, 7*24*time.Hour, s.Retention)
	for _, bad := range []map[string]string{{"SOUS_ZAPIER_BACKOFF": "soon"}, {"SOUS_ZAPIER_TIMEOUT": "-1s"}, {"SOUS_ZAPIER_MAX_ATTEMPTS": "0"}} {
		_, err := zapier.SettingsFromEnv(func(k string) string { return bad[k] })
		require.Error(t, err, "%v", bad)
	}
}

// sink stands in for Zapier: it records each delivery and answers with
// what answer says.
type sink struct {
	srv    *httptest.Server
	mu     sync.Mutex
	got    []received
	answer atomic.Int32 // the status to answer
}

type received struct {
	Delivery, Event string
	Body            map[string]any
}

func newSink(t testing.TB, status int) *sink {
	s := &sink{}
	s.answer.Store(int32(status))
	s.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		raw, _ := io.ReadAll(r.Body)
		var b map[string]any
		_ = json.Unmarshal(raw, &b)
		code := int(s.answer.Load())
		if code < 300 {
			s.mu.Lock()
			s.got = append(s.got, received{r.Header.Get(zapier.DeliveryHeader), r.Header.Get(zapier.EventHeader), b})
			s.mu.Unlock()
		}
		w.WriteHeader(code)
	}))
	t.Cleanup(s.srv.Close)
	return s
}

// ids lists the item ids received, each once.
func (s *sink) ids() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for _, g := range s.got {
		out[g.Body["id"].(string)]++
	}
	return out
}

func backends(t *testing.T, test func(t *testing.T, st *store.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		ctx := context.Background()
		write, read, err := store.OpenSQLite(ctx, t.TempDir())
		require.NoError(t, err)
		t.Cleanup(func() { read.Close(); write.Close() })
		test(t, &store.Store{DB: read, Write: write, Dialect: store.SQLite})
	})
	t.Run("postgres", func(t *testing.T) {
		ctx := context.Background()
		db, err := store.OpenPostgres(ctx, storetest.Postgres(t))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		test(t, &store.Store{DB: db, Dialect: store.Postgres})
	})
}

// fast are settings that retry within the test's patience.
var fast = zapier.Settings{Timeout: 2 * time.Second, Backoff: 100 * time.Millisecond, MaxBackoff: 400 * time.Millisecond,
	MaxAttempts: 100, Poll: 20 * time.Millisecond}

// TestDeliveries: each subscriber's deliveries are its own. A healthy
// subscriber gets every item at once while another answers 503; that one
// gets every item once it recovers; one answering 410 is unsubscribed
// (its later items are not sent); one answering 400 is failed at once;
// the item's id is the same for all and the delivery id is stable.
func TestDeliveries(t *testing.T) {
	backends(t, func(t *testing.T, st *store.Store) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		hub, err := zapier.New(ctx, zapier.Config{Store: st, Settings: fast})
		require.NoError(t, err)
		healthy, flaky, gone, bad := newSink(t, 200), newSink(t, 503), newSink(t, 410), newSink(t, 400)
		hooks := map[*sink]string{}
		for _, s := range []*sink{healthy, flaky, gone, bad} {
			h, created, err := hub.Subscribe(ctx, "order_paid", s.srv.URL+"/hooks/catch/1/abc", nil, "test")
			require.NoError(t, err)
			require.True(t, created)
			hooks[s] = h.ID
		}
		// another event's subscriber gets nothing
		other := newSink(t, 200)
		_, _, err = hub.Subscribe(ctx, "refund", other.srv.URL, nil, "test")
		require.NoError(t, err)

		const n = 5
		var items []string
		for i := range n {
			req := &connector.Request{RunID: fmt.Sprintf("run-%d", i), Step: "notify"}
			r, err := hub.Publish(ctx, req, &connector.OutboxMessage{Channel: zapier.Channel, Topic: "order_paid",
				Body: map[string]any{"order": float64(i)}})
			require.NoError(t, err)
			require.Len(t, r.Deliveries, 4)
			items = append(items, r.ID)
			// published again (the step repeated): nothing more is sent
			again, err := hub.Publish(ctx, req, &connector.OutboxMessage{Channel: zapier.Channel, Topic: "order_paid",
				Body: map[string]any{"order": float64(i)}})
			require.NoError(t, err)
			require.Equal(t, r.ID, again.ID)
		}
		done := make(chan error, 1)
		go func() { done <- hub.Run(ctx) }()
		require.Eventually(t, func() bool { return len(healthy.ids()) == n }, 5*time.Second, 10*time.Millisecond,
			"the healthy subscriber gets every item while another fails")
		require.Empty(t, flaky.ids())
		require.Eventually(t, func() bool {
			ds, err := st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{HookID: hooks[bad]})
			require.NoError(t, err)
			return len(ds) == n && ds[0].Status == store.DeliveryFailed && ds[n-1].Status == store.DeliveryFailed
		}, 5*time.Second, 10*time.Millisecond)
		require.Eventually(t, func() bool {
			_, err := st.GetZapierHook(ctx, hooks[gone])
			return err != nil
		}, 5*time.Second, 10*time.Millisecond, "a 410 unsubscribes")
		// a flaky subscriber that recovers gets every item, once each
		time.Sleep(300 * time.Millisecond) // some retries happen meanwhile
		flaky.answer.Store(200)
		require.Eventually(t, func() bool { return len(flaky.ids()) == n }, 10*time.Second, 10*time.Millisecond)
		for _, id := range items {
			require.Equal(t, 1, healthy.ids()[id])
			require.Equal(t, 1, flaky.ids()[id])
		}
		flaky.mu.Lock()
		require.Equal(t, "order_paid", flaky.got[0].Event)
		require.Equal(t, zapier.DeliveryID(flaky.got[0].Body["id"].(string), hooks[flaky]), flaky.got[0].Delivery)
		flaky.mu.Unlock()
		require.Eventually(t, func() bool {
			ds, err := st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{HookID: hooks[flaky], Status: store.DeliveryDelivered})
			return err == nil && len(ds) == n
		}, 5*time.Second, 10*time.Millisecond, "recorded once the sink answered")
		ds, err := st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{HookID: hooks[flaky]})
		require.NoError(t, err)
		for _, d := range ds {
			require.Greater(t, d.Attempts, 1, "it was retried")
		}
		ds, err = st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{HookID: hooks[gone]})
		require.NoError(t, err)
		for _, d := range ds {
			require.Equal(t, store.DeliveryGone, d.Status)
		}
		require.Empty(t, other.ids())
		// a later item goes to the remaining subscribers only
		_, err = hub.Publish(ctx, &connector.Request{RunID: "late", Step: "notify"},
			&connector.OutboxMessage{Channel: zapier.Channel, Topic: "order_paid", Body: map[string]any{}})
		require.NoError(t, err)
		require.Eventually(t, func() bool { return len(healthy.ids()) == n+1 && len(flaky.ids()) == n+1 }, 5*time.Second, 10*time.Millisecond)
		samples, err := hub.Samples(ctx, "order_paid", 10)
		require.NoError(t, err)
		require.Len(t, samples, n+1)
		var newest map[string]any
		require.NoError(t, json.Unmarshal(samples[0], &newest))
		require.Equal(t, zapier.ItemID("late", "notify"), newest["id"], "newest first")
		cancel()
		require.NoError(t, <-done)
	})
}

// TestTimeoutIsRetried: a subscriber that does not answer in time is
// tried again.
func TestTimeoutIsRetried(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer func() { read.Close(); write.Close() }()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	set := fast
	set.Timeout = 100 * time.Millisecond
	hub, err := zapier.New(ctx, zapier.Config{Store: st, Settings: set})
	require.NoError(t, err)
	var calls atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if calls.Add(1) == 1 {
			select {
			case <-r.Context().Done():
			case <-time.After(2 * time.Second):
			}
			return
		}
	}))
	defer slow.Close()
	h, _, err := hub.Subscribe(ctx, "e", slow.URL, nil, "")
	require.NoError(t, err)
	go func() { _ = hub.Run(ctx) }()
	_, err = hub.Publish(ctx, &connector.Request{RunID: "r", Step: "s"}, &connector.OutboxMessage{Channel: zapier.Channel, Topic: "e"})
	require.NoError(t, err)
	require.Eventually(t, func() bool {
		ds, err := st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{HookID: h.ID})
		return err == nil && len(ds) == 1 && ds[0].Status == store.DeliveryDelivered && ds[0].Attempts == 2
	}, 5*time.Second, 10*time.Millisecond)
}

// TestFailureKeepsTheTargetSecret: a subscriber that cannot be reached is
// recorded and logged with its target's scheme and host, never the path
// (a Zapier hook URL's path is the Zap's secret).
func TestFailureKeepsTheTargetSecret(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	write, read, err := store.OpenSQLite(ctx, t.TempDir())
	require.NoError(t, err)
	defer func() { read.Close(); write.Close() }()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	var logs logbuf.Buffer
	hub, err := zapier.New(ctx, zapier.Config{Store: st, Settings: fast, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	require.NoError(t, err)
	gone := httptest.NewServer(http.NotFoundHandler())
	target := gone.URL + "/hooks/catch/123456/zap-secret-path/"
	gone.Close() // nothing answers there now
	h, _, err := hub.Subscribe(ctx, "e", target, nil, "")
	require.NoError(t, err)
	go func() { _ = hub.Run(ctx) }()
	_, err = hub.Publish(ctx, &connector.Request{RunID: "r", Step: "s"}, &connector.OutboxMessage{Channel: zapier.Channel, Topic: "e"})
	require.NoError(t, err)
	var d *store.ZapierDelivery
	require.Eventually(t, func() bool {
		ds, err := st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{HookID: h.ID})
		if err != nil || len(ds) != 1 || ds[0].Attempts == 0 {
			return false
		}
		d = ds[0]
		return true
	}, 5*time.Second, 10*time.Millisecond)
	require.NotEmpty(t, d.LastError)
	require.Contains(t, d.LastError, strings.TrimPrefix(gone.URL, "http://"), "the host is named")
	require.NotContains(t, d.LastError, "zap-secret-path")
	require.Eventually(t, func() bool { return strings.Contains(logs.String(), "delivery not accepted") }, 5*time.Second, 10*time.Millisecond)
	require.NotContains(t, logs.String(), "zap-secret-path")
}

// BenchmarkDeliveries: deliveries per second to 100 subscribers of one
// event on a local sink, from the Publish of each item (one transaction:
// the item and its 100 deliveries) to the sink's 2xx, recorded.
func BenchmarkDeliveries(b *testing.B) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	write, read, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	defer func() { read.Close(); write.Close() }()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	hub, err := zapier.New(ctx, zapier.Config{Store: st, Settings: zapier.Settings{Poll: 10 * time.Millisecond}})
	require.NoError(b, err)
	var got atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		got.Add(1)
	}))
	defer srv.Close()
	const subscribers = 100
	for i := range subscribers {
		_, _, err := hub.Subscribe(ctx, "bench", fmt.Sprintf("%s/hooks/%d", srv.URL, i), nil, "")
		require.NoError(b, err)
	}
	done := make(chan error, 1)
	go func() { done <- hub.Run(ctx) }()
	b.ResetTimer()
	start := time.Now()
	for i := range b.N {
		_, err := hub.Publish(ctx, &connector.Request{RunID: fmt.Sprintf("b%d", i), Step: "s"},
			&connector.OutboxMessage{Channel: zapier.Channel, Topic: "bench", Body: map[string]any{"n": i}})
		require.NoError(b, err)
	}
	want := int64(b.N * subscribers)
	for got.Load() < want {
		time.Sleep(time.Millisecond)
	}
	for { // and recorded
		ds, err := st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{Status: store.DeliveryPending, Limit: 1})
		require.NoError(b, err)
		if len(ds) == 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	el := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(want)/el.Seconds(), "deliveries/s")
	cancel()
	<-done
}

// FuzzValidate: any input against any declaration is coerced or refused
// with the field named, never a panic.
func FuzzValidate(f *testing.F) {
	f.Add(`{"email":"a@b.test","qty":"2"}`, "integer")
	f.Add(`{"qty":1e400}`, "number")
	f.Add(`{"qty":[1]}`, "datetime")
	f.Add(`{"qty":"2026-01-02T15:04:05Z"}`, "datetime")
	f.Add(`{"qty":"TRUE"}`, "boolean")
	f.Fuzz(func(t *testing.T, raw, typ string) {
		var in map[string]any
		if json.Unmarshal([]byte(raw), &in) != nil {
			return
		}
		out, err := zapier.Validate([]zapier.Input{{Key: "qty", Type: typ, Required: true}}, in)
		if err != nil {
			var ie *zapier.InputError
			require.ErrorAs(t, err, &ie)
			require.Equal(t, "qty", ie.Field)
			return
		}
		_, err = json.Marshal(out)
		require.NoError(t, err, "a valid input stays JSON")
	})
}

// TestTwoProcessesPostgres: two hubs on one PostgreSQL store (two `sous
// serve` processes) share the deliveries: each is sent once.
func TestTwoProcessesPostgres(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	db, err := store.OpenPostgres(ctx, storetest.Postgres(t))
	require.NoError(t, err)
	defer db.Close()
	st := &store.Store{DB: db, Dialect: store.Postgres}
	var hubs []*zapier.Hub
	for range 2 {
		hub, err := zapier.New(ctx, zapier.Config{Store: st, Settings: fast})
		require.NoError(t, err)
		hubs = append(hubs, hub)
	}
	s := newSink(t, 200)
	for i := range 5 {
		_, _, err := hubs[0].Subscribe(ctx, "e", fmt.Sprintf("%s/%d", s.srv.URL, i), nil, "")
		require.NoError(t, err)
	}
	var wg sync.WaitGroup
	for _, h := range hubs {
		wg.Add(1)
		go func() { defer wg.Done(); _ = h.Run(ctx) }()
	}
	const n = 40
	for i := range n {
		_, err := hubs[i%2].Publish(ctx, &connector.Request{RunID: fmt.Sprint(i), Step: "s"},
			&connector.OutboxMessage{Channel: zapier.Channel, Topic: "e", Body: map[string]any{}})
		require.NoError(t, err)
	}
	require.Eventually(t, func() bool {
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.got) >= n*5
	}, 20*time.Second, 10*time.Millisecond)
	require.Eventually(t, func() bool {
		ds, err := st.ListZapierDeliveries(ctx, store.ZapierDeliveryFilter{Status: store.DeliveryDelivered})
		return err == nil && len(ds) == n*5
	}, 10*time.Second, 10*time.Millisecond)
	s.mu.Lock()
	seen := map[string]int{}
	for _, g := range s.got {
		seen[g.Delivery]++
	}
	s.mu.Unlock()
	require.Len(t, seen, n*5)
	for id, c := range seen {
		require.Equal(t, 1, c, "delivery %s sent once", id)
	}
	cancel()
	wg.Wait()
}
