package gcal_test

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/actions/gcal"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

const token = "ya29.gcal-test-token-0123456789"

// fixture is a fake Google and a connection to it.
type fixture struct {
	fake *google.Fake
	conn *connector.Connection
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	fake := google.NewFake(token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.Empty(t, fake.Problems, "requests the fake refused as malformed") })
	return &fixture{fake: fake, conn: connection(t, srv.URL+"/", token)}
}

func connection(t *testing.T, base, tok string) *connector.Connection {
	t.Helper()
	c := &connector.Connection{Name: "google", Type: "google", Values: connector.Values{connector.ConnToken: tok, connector.ConnBaseURL: base}}
	cl, err := connector.NewClient(c, google.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	return c
}

// run calls an action with a `with` block checked as a recipe's would be.
func (f *fixture) run(t *testing.T, s *connector.Spec, key string, with map[string]any) (map[string]any, error) {
	t.Helper()
	w := connector.Values{}
	for name, v := range with {
		fd, ok := s.Field(name)
		require.True(t, ok, name)
		c, err := fd.CheckValue(v)
		require.NoError(t, err, name)
		w[name] = c
	}
	for _, fd := range s.Fields {
		if _, ok := w[fd.Name]; !ok && fd.Default != nil {
			c, err := fd.CheckValue(fd.Default)
			require.NoError(t, err)
			w[fd.Name] = c
		}
	}
	if s.Validate != nil {
		require.Empty(t, s.Validate(w))
	}
	return s.Action.Run(context.Background(), &connector.Request{Recipe: "r", RunID: "run1", Step: "s", With: w,
		Connection: f.conn, IdempotencyKey: key})
}

func TestCreateEvent(t *testing.T) {
	tests := []struct {
		name  string
		with  map[string]any
		check func(t *testing.T, out map[string]any, f *fixture)
	}{
		{name: "timed, with guests", with: map[string]any{"summary": "Standup", "start": "2026-03-02T10:00:00+01:00",
			"end": "2026-03-02T10:15:00+01:00", "attendees": []any{"ada@example.com", map[string]any{"email": "bob@example.com", "optional": true}},
			"description": "Daily", "location": "Room 4"},
			check: func(t *testing.T, out map[string]any, f *fixture) {
				require.Equal(t, "2026-03-02T10:00:00+01:00", out["start"])
				require.Equal(t, false, out["all_day"])
				require.Equal(t, []any{"ada@example.com", "bob@example.com"}, out["attendees"])
				ev := f.fake.Events("primary")[out["id"].(string)]
				require.NotNil(t, ev)
				require.Equal(t, "Room 4", ev.Location)
				require.True(t, ev.Attendees[1].Optional)
				require.Empty(t, out["meet_link"])
			}},
		{name: "all-day", with: map[string]any{"summary": "Offsite", "start": "2026-03-02", "end": "2026-03-04"},
			check: func(t *testing.T, out map[string]any, f *fixture) {
				require.Equal(t, true, out["all_day"])
				ev := f.fake.Events("primary")[out["id"].(string)]
				require.Equal(t, "2026-03-02", ev.Start.Date)
				require.Empty(t, ev.Start.DateTime)
			}},
		{name: "local time in a zone", with: map[string]any{"summary": "Review", "start": "2026-03-02T10:00:00",
			"end": "2026-03-02T11:00:00", "time_zone": "Europe/Paris", "calendar_id": "team@group.calendar.google.com"},
			check: func(t *testing.T, out map[string]any, f *fixture) {
				ev := f.fake.Events("team@group.calendar.google.com")[out["id"].(string)]
				require.Equal(t, "Europe/Paris", ev.Start.TimeZone)
				require.Equal(t, "2026-03-02T10:00:00", ev.Start.DateTime)
			}},
		{name: "with a Meet link", with: map[string]any{"summary": "Call", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:30:00Z", "conference": true},
			check: func(t *testing.T, out map[string]any, f *fixture) {
				require.True(t, strings.HasPrefix(out["meet_link"].(string), "https://meet.google.com/"))
				rec := f.fake.Recorded()
				require.Contains(t, rec[len(rec)-1].Query, "conferenceDataVersion=1")
			}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			out, err := f.run(t, gcal.CreateEvent, "run1:"+tc.name, tc.with)
			require.NoError(t, err)
			require.Equal(t, gcal.EventID("run1:"+tc.name), out["id"])
			require.Equal(t, false, out["existed"])
			rec := f.fake.Recorded()
			require.Len(t, rec, 1)
			require.Equal(t, http.MethodPost, rec[0].Method)
			require.True(t, strings.HasPrefix(rec[0].Path, "/calendar/v3/calendars/"), rec[0].Path)
			require.True(t, strings.HasSuffix(rec[0].Path, "/events"), rec[0].Path)
			require.Contains(t, rec[0].Query, "sendUpdates=none")
			tc.check(t, out, f)
		})
	}
}

func TestEventID(t *testing.T) {
	id := gcal.EventID("run_1:create")
	require.Regexp(t, `^[a-v0-9]{52}$`, id)
	require.Equal(t, id, gcal.EventID("run_1:create"))
	require.NotEqual(t, id, gcal.EventID("run_2:create"))
}

// TestCreateIsIdempotent: a calendar create that gets a 503 on its first
// attempt ends with exactly one event, whether the 503 came before
// Google made the event or after (the answer lost).
func TestCreateIsIdempotent(t *testing.T) {
	with := map[string]any{"summary": "Standup", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:15:00Z"}
	for _, after := range []bool{false, true} {
		name := map[bool]string{false: "503 before creating", true: "503 after creating"}[after]
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			f.fake.Fail(google.Failure{Method: http.MethodPost, Path: "/events", Status: http.StatusServiceUnavailable, After: after})
			_, err := f.run(t, gcal.CreateEvent, "run9:create", with)
			require.Error(t, err)
			ce := connector.Classify(err)
			require.True(t, ce.Retryable)
			require.Equal(t, connector.ReasonServerError, ce.Reason)
			require.Len(t, f.fake.Events("primary"), map[bool]int{false: 0, true: 1}[after])

			// the runner's retry: the same step, the same key
			out, err := f.run(t, gcal.CreateEvent, "run9:create", with)
			require.NoError(t, err)
			require.Equal(t, after, out["existed"])
			events := f.fake.Events("primary")
			require.Len(t, events, 1, "exactly one event")
			require.Contains(t, events, out["id"])
			require.Equal(t, "Standup", out["summary"])

			// and a third attempt still gives the one event
			out2, err := f.run(t, gcal.CreateEvent, "run9:create", with)
			require.NoError(t, err)
			require.Equal(t, out["id"], out2["id"])
			require.Len(t, f.fake.Events("primary"), 1)
		})
	}
}

func TestUpdateEvent(t *testing.T) {
	f := newFixture(t)
	out, err := f.run(t, gcal.CreateEvent, "k1", map[string]any{"summary": "Standup", "description": "Daily",
		"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:15:00Z"})
	require.NoError(t, err)
	id := out["id"].(string)
	got, err := f.run(t, gcal.UpdateEvent, "k2", map[string]any{"event_id": id, "summary": "Standup (moved)",
		"start": "2026-03-02T11:00:00Z", "end": "2026-03-02T11:15:00Z"})
	require.NoError(t, err)
	require.Equal(t, "Standup (moved)", got["summary"])
	require.Equal(t, "Daily", got["description"], "a field not set is kept")
	require.Equal(t, "2026-03-02T11:00:00Z", got["start"])
	rec := f.fake.Recorded()
	require.Equal(t, http.MethodPatch, rec[len(rec)-1].Method)
	require.Equal(t, "/calendar/v3/calendars/primary/events/"+id, rec[len(rec)-1].Path)

	_, err = f.run(t, gcal.UpdateEvent, "k3", map[string]any{"event_id": "nosuchevent", "summary": "x"})
	require.Error(t, err)
	ce := connector.Classify(err)
	require.False(t, ce.Retryable)
	require.Equal(t, connector.ReasonNotFound, ce.Reason)

	_, err = f.run(t, gcal.UpdateEvent, "k4", map[string]any{"event_id": id})
	require.ErrorContains(t, err, "nothing to change")
}

func TestDeleteEvent(t *testing.T) {
	f := newFixture(t)
	out, err := f.run(t, gcal.CreateEvent, "k1", map[string]any{"summary": "x", "start": "2026-03-02", "end": "2026-03-03"})
	require.NoError(t, err)
	id := out["id"].(string)
	got, err := f.run(t, gcal.DeleteEvent, "k2", map[string]any{"event_id": id})
	require.NoError(t, err)
	require.Equal(t, map[string]any{"id": id, "deleted": true, "already_deleted": false}, got)
	require.Empty(t, f.fake.Events("primary"))
	got, err = f.run(t, gcal.DeleteEvent, "k2", map[string]any{"event_id": id})
	require.NoError(t, err, "a retried delete succeeds")
	require.Equal(t, true, got["already_deleted"])
	_, err = f.run(t, gcal.DeleteEvent, "k3", map[string]any{"event_id": "neverexisted"})
	require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason)
}

func TestFindEvents(t *testing.T) {
	f := newFixture(t)
	f.fake.MaxPage = 2
	base := time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC)
	for i := range 7 {
		s := base.Add(time.Duration(i) * time.Hour)
		summary := "Standup"
		if i%2 == 1 {
			summary = "Review"
		}
		_, err := f.run(t, gcal.CreateEvent, "k"+string(rune('a'+i)), map[string]any{"summary": summary,
			"start": s.Format(time.RFC3339), "end": s.Add(30 * time.Minute).Format(time.RFC3339)})
		require.NoError(t, err)
	}
	tests := []struct {
		name string
		with map[string]any
		want int
	}{
		{name: "all, paged", with: map[string]any{}, want: 7},
		{name: "a range", with: map[string]any{"time_min": "2026-03-02T10:00:00Z", "time_max": "2026-03-02T12:00:00Z"}, want: 2},
		{name: "a query", with: map[string]any{"q": "review"}, want: 3},
		{name: "a query as query", with: map[string]any{"query": "review"}, want: 3},
		{name: "an empty query", with: map[string]any{"query": ""}, want: 7},
		{name: "at most", with: map[string]any{"max_results": 3}, want: 3},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := f.run(t, gcal.FindEvents, "find", tc.with)
			require.NoError(t, err)
			require.Equal(t, tc.want, out["count"])
			events := out["events"].([]any)
			require.Len(t, events, tc.want)
			var prev string
			for _, e := range events {
				s := e.(map[string]any)["start"].(string)
				require.GreaterOrEqual(t, s, prev, "in start order")
				prev = s
			}
		})
	}
	var lists int
	for _, r := range f.fake.Recorded() {
		if r.Method == http.MethodGet {
			lists++
			require.Contains(t, r.Query, "singleEvents=true")
			require.Contains(t, r.Query, "orderBy=startTime")
		}
	}
	require.Greater(t, lists, 4, "pages were followed")
}

// TestErrors: Google's answers map to the error kinds.
func TestErrors(t *testing.T) {
	with := map[string]any{"summary": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T10:15:00Z"}
	tests := []struct {
		name       string
		fail       google.Failure
		token      string
		retryable  bool
		reason     connector.Reason
		retryAfter time.Duration
	}{
		{name: "429 with Retry-After", fail: google.Failure{Status: 429, Header: http.Header{"Retry-After": {"12"}}}, retryable: true,
			reason: connector.ReasonRateLimited, retryAfter: 12 * time.Second},
		{name: "403 rateLimitExceeded", fail: google.Failure{Status: 403, Reason: "rateLimitExceeded"}, retryable: true, reason: connector.ReasonRateLimited},
		{name: "403 userRateLimitExceeded", fail: google.Failure{Status: 403, Reason: "userRateLimitExceeded", Header: http.Header{"Retry-After": {"3"}}},
			retryable: true, reason: connector.ReasonRateLimited, retryAfter: 3 * time.Second},
		{name: "403 forbidden", fail: google.Failure{Status: 403, Reason: "forbidden"}, reason: connector.ReasonAuth},
		{name: "401", token: "wrong-token-0123456789", reason: connector.ReasonAuth},
		{name: "500", fail: google.Failure{Status: 500}, retryable: true, reason: connector.ReasonServerError},
		{name: "400", fail: google.Failure{Status: 400, Reason: "invalid"}, reason: connector.ReasonClientError},
		{name: "404", fail: google.Failure{Status: 404}, reason: connector.ReasonNotFound},
		{name: "409 then the get fails 404", fail: google.Failure{Status: 409}, reason: connector.ReasonNotFound},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			if tc.fail.Status != 0 {
				f.fake.Fail(tc.fail)
			}
			if tc.token != "" {
				f.conn = connection(t, f.conn.Values.String(connector.ConnBaseURL), tc.token)
			}
			_, err := f.run(t, gcal.CreateEvent, "k", with)
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tc.retryable, ce.Retryable, "%v", err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.retryAfter, ce.RetryAfter)
			require.NotContains(t, err.Error(), token)
			if tc.token != "" {
				require.NotContains(t, err.Error(), tc.token)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		with connector.Values
		want string
	}{
		{name: "date and date-time", with: connector.Values{"start": "2026-03-02", "end": "2026-03-02T10:00:00Z"}, want: "both be dates"},
		{name: "end before start", with: connector.Values{"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:00:00Z"}, want: "after start"},
		{name: "fine", with: connector.Values{"start": "2026-03-02", "end": "2026-03-03"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			errs := gcal.CreateEvent.Validate(tc.with)
			if tc.want == "" {
				require.Empty(t, errs)
				return
			}
			require.Len(t, errs, 1)
			require.Contains(t, errs[0].Message, tc.want)
		})
	}
	f, _ := gcal.CreateEvent.Field("start")
	_, err := f.CheckValue("tomorrow")
	require.ErrorContains(t, err, "neither an RFC 3339 date-time")
	f, _ = gcal.CreateEvent.Field("attendees")
	_, err = f.CheckValue([]any{"not-an-email"})
	require.ErrorContains(t, err, "not an email address")
	f, _ = gcal.CreateEvent.Field("event_id")
	_, err = f.CheckValue("UPPER-case")
	require.Error(t, err)
}

// TestNaiveTimeNeedsZone: a date-time without an offset needs time_zone.
func TestNaiveTimeNeedsZone(t *testing.T) {
	f := newFixture(t)
	_, err := f.run(t, gcal.CreateEvent, "k", map[string]any{"summary": "x", "start": "2026-03-02T10:00:00", "end": "2026-03-02T11:00:00"})
	require.ErrorContains(t, err, "set time_zone")
	require.False(t, connector.Classify(err).Retryable)
	require.Empty(t, f.fake.Recorded(), "nothing sent")
}

// TestFindEventsQueryAlias: q and query are one option; both set is refused
// at load and, when templates hid one there, when the step runs.
func TestFindEventsQueryAlias(t *testing.T) {
	both := connector.Values{"q": "review", "query": "standup"}
	errs := gcal.FindEvents.Validate(both)
	require.Len(t, errs, 1)
	require.Equal(t, "query", errs[0].Field)
	require.Empty(t, gcal.FindEvents.Validate(connector.Values{"query": "x"}))

	f := newFixture(t)
	_, err := gcal.FindEvents.Action.Run(context.Background(), &connector.Request{Recipe: "r", RunID: "run1", Step: "s",
		With: connector.Values{"calendar_id": "primary", "q": "review", "query": "standup", "max_results": int64(50)}, Connection: f.conn, IdempotencyKey: "k"})
	require.ErrorContains(t, err, "not both")
	ce := connector.Classify(err)
	require.Equal(t, connector.ReasonInvalid, ce.Reason)
	require.False(t, ce.Retryable)
	require.Empty(t, f.fake.Recorded(), "nothing asked of Google")
}
