package gcal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"google.golang.org/api/calendar/v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/google"
)

const token = "ya29.gcal-trigger-token-0123456789"

type fixture struct {
	fake   *google.Fake
	conn   *connector.Connection
	with   connector.Values
	cursor json.RawMessage
}

func newFixture(t *testing.T, with connector.Values) *fixture {
	t.Helper()
	fake := google.NewFake(token)
	srv := httptest.NewServer(fake)
	t.Cleanup(srv.Close)
	t.Cleanup(func() { require.Empty(t, fake.Problems, "requests the fake refused as malformed") })
	c := &connector.Connection{Name: "google", Type: "google", Values: connector.Values{connector.ConnToken: token, connector.ConnBaseURL: srv.URL + "/"}}
	cl, err := connector.NewClient(c, google.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	c.Client = cl
	if with == nil {
		with = connector.Values{}
	}
	return &fixture{fake: fake, conn: c, with: with}
}

// poll polls once, keeping the cursor.
func (f *fixture) poll(t *testing.T) (*connector.PollResult, error) {
	t.Helper()
	res, err := Poll(context.Background(), &connector.PollRequest{Type: EventCreated.ID, With: f.with, Connection: f.conn, Cursor: f.cursor})
	if err == nil && res.Next != nil {
		f.cursor = res.Next
	}
	return res, err
}

// drain polls until a poll asks for no more, and returns the events'
// ids, in order, and how many polls it took.
func (f *fixture) drain(t *testing.T) (ids []string, polls int) {
	t.Helper()
	for {
		res, err := f.poll(t)
		require.NoError(t, err)
		polls++
		for _, ev := range res.Events {
			require.Equal(t, ev.Payload["id"], ev.DedupKey)
			ids = append(ids, ev.DedupKey)
		}
		if !res.More {
			return ids, polls
		}
		require.Less(t, polls, 100, "the poller asks for more forever")
	}
}

// listQueries are the queries of the events.list requests of a calendar
// since request n.
func (f *fixture) listQueries(t *testing.T, cal string, n int) []url.Values {
	t.Helper()
	var out []url.Values
	for _, r := range f.fake.Recorded()[n:] {
		if r.Method == http.MethodGet && r.Path == "/calendar/v3/calendars/"+cal+"/events" {
			q, err := url.ParseQuery(r.Query)
			require.NoError(t, err)
			out = append(out, q)
		}
	}
	return out
}

func setClock(t *testing.T, at *time.Time) {
	t.Helper()
	old := now
	now = func() time.Time { return *at }
	t.Cleanup(func() { now = old })
}

func addEvent(f *google.Fake, cal, id string, created time.Time) {
	f.AddEvent(cal, &calendar.Event{Id: id, Status: "confirmed", Summary: "event " + id, Created: google.Stamp(created),
		Start: &calendar.EventDateTime{DateTime: "2026-03-02T10:00:00Z"}, End: &calendar.EventDateTime{DateTime: "2026-03-02T11:00:00Z"}})
}

// TestSeedWithoutReplay: the first polls page through the calendar to its
// sync token (no syncToken asked, pageToken followed) and start nothing.
func TestSeedWithoutReplay(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.MaxPage = 2
	t0 := time.Now().UTC()
	for _, id := range []string{"old01", "old02", "old03", "old04", "old05"} {
		addEvent(f.fake, "primary", id, t0.Add(-time.Hour))
	}
	ids, polls := f.drain(t)
	require.Empty(t, ids, "the calendar's history is not replayed")
	require.Equal(t, 3, polls, "5 events, 2 a page")
	qs := f.listQueries(t, "primary", 0)
	require.Len(t, qs, 3)
	for i, q := range qs {
		require.False(t, q.Has("syncToken"), "a full sync")
		require.Equal(t, "250", q.Get("maxResults"))
		require.Equal(t, "false", q.Get("singleEvents"))
		if i > 0 {
			require.NotEmpty(t, q.Get("pageToken"), "page %d follows nextPageToken", i)
		}
	}
	var cur cursor
	require.NoError(t, json.Unmarshal(f.cursor, &cur))
	require.NotEmpty(t, cur.SyncToken)
	require.False(t, cur.Full)
	require.Empty(t, cur.PageToken)

	// nothing changed: an incremental sync, nothing new
	n := len(f.fake.Recorded())
	ids, _ = f.drain(t)
	require.Empty(t, ids)
	qs = f.listQueries(t, "primary", n)
	require.Len(t, qs, 1)
	require.Equal(t, cur.SyncToken, qs[0].Get("syncToken"))
	require.False(t, qs[0].Has("timeMin"), "a sync token takes no time range")
}

// TestNewEventsOnce: events created after the seed start one event each,
// in creation order, over pages; edits of older events, deletions and a
// created-then-deleted event start nothing; a later poll finds nothing.
func TestNewEventsOnce(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.MaxPage = 2
	t0 := time.Now().UTC()
	clock := t0
	setClock(t, &clock)
	addEvent(f.fake, "primary", "old01", t0.Add(-time.Hour))
	addEvent(f.fake, "primary", "old02", t0.Add(-time.Hour))
	ids, _ := f.drain(t)
	require.Empty(t, ids)

	addEvent(f.fake, "primary", "new02", t0.Add(2*time.Second))
	addEvent(f.fake, "primary", "new01", t0.Add(time.Second))
	addEvent(f.fake, "primary", "new03", t0.Add(3*time.Second))
	f.fake.UpdateEvent("primary", "old01", "renamed")
	f.fake.DeleteEvent("primary", "old02")
	addEvent(f.fake, "primary", "gone1", t0.Add(4*time.Second))
	f.fake.DeleteEvent("primary", "gone1")
	clock = t0.Add(2 * time.Minute)
	n := len(f.fake.Recorded())
	ids, polls := f.drain(t)
	require.Equal(t, []string{"new01", "new02", "new03"}, ids, "oldest first within a page (new02 and new01 share one); each once")
	require.Equal(t, 3, polls, "six changes, two a page")
	for _, q := range f.listQueries(t, "primary", n) {
		require.NotEmpty(t, q.Get("syncToken"), "an incremental sync")
	}

	clock = t0.Add(4 * time.Minute)
	ids, _ = f.drain(t)
	require.Empty(t, ids, "nothing new")

	// an edit of an event created before the last sync began (less the
	// overlap) is not a creation
	f.fake.UpdateEvent("primary", "new01", "moved")
	ids, _ = f.drain(t)
	require.Empty(t, ids)
}

// TestExpiredSyncToken: a 410 syncs the calendar in full again; the
// events created since the last completed sync (during the gap) start a
// run, the older ones do not.
func TestExpiredSyncToken(t *testing.T) {
	f := newFixture(t, nil)
	f.fake.MaxPage = 2
	t0 := time.Now().UTC()
	clock := t0
	setClock(t, &clock)
	addEvent(f.fake, "primary", "old01", t0.Add(-time.Hour))
	ids, _ := f.drain(t)
	require.Empty(t, ids)

	addEvent(f.fake, "primary", "seen1", t0.Add(30*time.Second))
	clock = t0.Add(2 * time.Minute)
	ids, _ = f.drain(t)
	require.Equal(t, []string{"seen1"}, ids)

	addEvent(f.fake, "primary", "gap01", t0.Add(3*time.Minute))
	addEvent(f.fake, "primary", "gap02", t0.Add(3*time.Minute+time.Second))
	f.fake.ExpireSyncTokens()
	clock = t0.Add(10 * time.Minute)
	res, err := f.poll(t)
	require.NoError(t, err, "a 410 is no failure")
	require.Empty(t, res.Events)
	require.True(t, res.More, "the full sync follows at once")
	var gone bool
	for _, r := range f.fake.Recorded() {
		gone = gone || r.Status == http.StatusGone
	}
	require.True(t, gone, "the fake answered 410")
	ids, _ = f.drain(t)
	require.Equal(t, []string{"gap01", "gap02"}, ids, "created during the gap: started; seen1 and old01 not again")

	// and incremental sync resumes
	addEvent(f.fake, "primary", "after", t0.Add(11*time.Minute))
	clock = t0.Add(12 * time.Minute)
	ids, _ = f.drain(t)
	require.Equal(t, []string{"after"}, ids)
}

// TestOptions: calendar_id and single_events reach the request.
func TestOptions(t *testing.T) {
	cal := "team@group.calendar.google.com"
	f := newFixture(t, connector.Values{FieldCalendarID: cal, FieldSingleEvents: true})
	addEvent(f.fake, "primary", "other", time.Now().Add(time.Hour))
	_, _ = f.drain(t)
	addEvent(f.fake, cal, "mine1", time.Now().Add(time.Hour))
	addEvent(f.fake, "primary", "other2", time.Now().Add(time.Hour))
	ids, _ := f.drain(t)
	require.Equal(t, []string{"mine1"}, ids)
	for _, r := range f.fake.Recorded() {
		require.Equal(t, "/calendar/v3/calendars/"+cal+"/events", r.Path, "the calendar asked (escaped by the library)")
	}
	qs := f.listQueries(t, cal, 0)
	require.NotEmpty(t, qs)
	for _, q := range qs {
		require.Equal(t, "true", q.Get("singleEvents"))
	}
	res, err := Poll(context.Background(), &connector.PollRequest{With: f.with, Connection: f.conn, Cursor: f.cursor})
	require.NoError(t, err)
	require.Empty(t, res.Events)
}

// TestErrors: a 429 is retryable after its Retry-After, a 401 is an auth
// failure, a bad cursor is refused, and the cursor stays where it was.
func TestErrors(t *testing.T) {
	f := newFixture(t, nil)
	_, _ = f.drain(t)
	before := string(f.cursor)
	f.fake.Fail(google.Failure{Method: http.MethodGet, Path: "/events", Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"7"}}})
	_, err := f.poll(t)
	var ce *connector.Error
	require.True(t, errors.As(err, &ce), "%v", err)
	require.True(t, ce.Retryable)
	require.Equal(t, connector.ReasonRateLimited, ce.Reason)
	require.Equal(t, 7*time.Second, ce.RetryAfter)
	require.Equal(t, before, string(f.cursor))

	f.fake.Fail(google.Failure{Method: http.MethodGet, Path: "/events", Status: http.StatusUnauthorized})
	_, err = f.poll(t)
	require.True(t, errors.As(err, &ce), "%v", err)
	require.False(t, ce.Retryable)
	require.Equal(t, connector.ReasonAuth, ce.Reason)
	require.NotContains(t, err.Error(), token)

	_, err = Poll(context.Background(), &connector.PollRequest{With: f.with, Connection: f.conn, Cursor: json.RawMessage(`{"since":7}`)})
	require.True(t, errors.As(err, &ce), "%v", err)
	require.Equal(t, connector.ReasonInvalid, ce.Reason)

	_, err = Poll(context.Background(), &connector.PollRequest{With: f.with, Cursor: f.cursor})
	require.Error(t, err, "no connection")
}

// TestPayload: every field of the event's shape, from Google's JSON.
func TestPayload(t *testing.T) {
	raw := `{"kind":"calendar#event","id":"abc123","status":"confirmed","htmlLink":"https://www.google.com/calendar/event?eid=abc",
	"created":"2026-03-01T09:00:00.000Z","updated":"2026-03-01T09:05:00.000Z","summary":"Planning","description":"Agenda",
	"location":"Room 4","creator":{"email":"ada@example.com","self":true},"organizer":{"email":"team@group.calendar.google.com","displayName":"Team"},
	"start":{"dateTime":"2026-03-02T10:00:00+01:00","timeZone":"Europe/Paris"},"end":{"dateTime":"2026-03-02T11:00:00+01:00","timeZone":"Europe/Paris"},
	"iCalUID":"abc123@google.com","attendees":[{"email":"bob@example.com","displayName":"Bob","responseStatus":"accepted","optional":true}],
	"conferenceData":{"entryPoints":[{"entryPointType":"phone","uri":"tel:+1"},{"entryPointType":"video","uri":"https://zoom.us/j/1"}]}}`
	got, err := ParseEvent("primary", []byte(raw))
	require.NoError(t, err)
	b, err := json.Marshal(got)
	require.NoError(t, err)
	require.NoError(t, connectortest.Conforms(EventShape, got), "the payload matches the declared shape")
	require.JSONEq(t, `{"id":"abc123","calendar_id":"primary","summary":"Planning","description":"Agenda","location":"Room 4",
	"start":{"date":"","date_time":"2026-03-02T10:00:00+01:00","time_zone":"Europe/Paris"},
	"end":{"date":"","date_time":"2026-03-02T11:00:00+01:00","time_zone":"Europe/Paris"},"all_day":false,
	"attendees":[{"email":"bob@example.com","display_name":"Bob","response_status":"accepted","optional":true,"organizer":false,"self":false}],
	"organizer":{"email":"team@group.calendar.google.com","display_name":"Team","self":false},
	"creator":{"email":"ada@example.com","display_name":"","self":true},
	"html_link":"https://www.google.com/calendar/event?eid=abc","hangout_link":"","conference_link":"https://zoom.us/j/1",
	"created":"2026-03-01T09:00:00.000Z","updated":"2026-03-01T09:05:00.000Z","status":"confirmed","recurring_event_id":"",
	"i_cal_uid":"abc123@google.com"}`, string(b))
	for _, pr := range EventShape.Props {
		require.Contains(t, got, pr.Name, "the shape's %s is set", pr.Name)
	}
	require.Len(t, got, len(EventShape.Props), "nothing beyond the shape")

	allDay, err := ParseEvent("primary", []byte(`{"id":"d1","start":{"date":"2026-03-02"},"end":{"date":"2026-03-03"}}`))
	require.NoError(t, err)
	require.Equal(t, true, allDay["all_day"])
	require.Equal(t, "2026-03-02", allDay["start"].(map[string]any)["date"])

	for _, bad := range []string{``, `{}`, `[]`, `{"id":7}`, `{"id":"x","start":"tomorrow"}`} {
		_, err := ParseEvent("primary", []byte(bad))
		require.Error(t, err, bad)
	}
	require.True(t, strings.HasPrefix(EventCreated.ID, "gcal."))
}

// FuzzParseEvent: any bytes give a payload or an error, never a panic; a
// payload always carries the event's id and every key of the shape.
func FuzzParseEvent(f *testing.F) {
	f.Add([]byte(`{"id":"abc","start":{"date":"2026-03-02"},"attendees":[null,{"email":"a@b"}],"conferenceData":{"entryPoints":[null]}}`))
	f.Add([]byte(`{"id":"x","organizer":null,"creator":{},"status":"cancelled"}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		got, err := ParseEvent("primary", raw)
		if err != nil {
			return
		}
		require.NotEmpty(t, got["id"])
		for _, pr := range EventShape.Props {
			require.Contains(t, got, pr.Name)
		}
		_, err = json.Marshal(got)
		require.NoError(t, err)
		require.NoError(t, connectortest.Conforms(EventShape, got))
	})
}
