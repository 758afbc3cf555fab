package outlook_test

import (
	"context"
	"encoding/base64"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/actions/outlook"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/microsoft"
)

const token = "graph-token-1"

// setup serves a fake and returns it with a connection on it.
func setup(t *testing.T) (*microsoft.Fake, *connector.Connection) {
	t.Helper()
	f := microsoft.NewFake(token)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	values := connector.Values{connector.ConnToken: token, connector.ConnBaseURL: srv.URL + "/v1.0/"}
	conn := &connector.Connection{Name: "ms", Type: "microsoft", Values: values}
	cl, err := connector.NewClient(conn, microsoft.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	conn.Client = cl
	return f, conn
}

func run(t *testing.T, spec *connector.Spec, conn *connector.Connection, with map[string]any, key string) (map[string]any, error) {
	t.Helper()
	w, err := connectortest.With(spec, with)
	require.NoError(t, err)
	return spec.Action.Run(context.Background(), &connector.Request{With: w, Connection: conn, IdempotencyKey: key})
}

func TestSendMail(t *testing.T) {
	f, conn := setup(t)
	out, err := run(t, outlook.SendMail, conn, map[string]any{
		"to": "Ada <ada@example.com>, bob@example.com", "cc": []any{"cy@example.com"}, "bcc": "audit@example.com",
		"reply_to": "support@example.com", "subject": "Report", "text": "plain", "html": "<b>rich</b>",
		"attachments": []any{
			map[string]any{"filename": "r.csv", "content": "a,b\n"},
			map[string]any{"name": "p.bin", "content_base64": base64.StdEncoding.EncodeToString([]byte{0, 1, 2}), "content_type": "application/x-x"},
		},
		"headers": map[string]any{"X-Ticket": "OPS-9"},
	}, "run1/step1")
	require.NoError(t, err)
	require.Equal(t, []any{"ada@example.com", "bob@example.com", "cy@example.com", "audit@example.com"}, out["accepted"])
	require.EqualValues(t, 202, out["status"])
	require.Empty(t, out["message_id"])
	require.Empty(t, f.Problems())
	sent := f.Sent()
	require.Len(t, sent, 1)
	m := sent[0].Message
	require.Equal(t, "Report", m["subject"])
	require.Equal(t, map[string]any{"contentType": "HTML", "content": "<b>rich</b>"}, m["body"], "html wins")
	require.Equal(t, []any{
		map[string]any{"emailAddress": map[string]any{"address": "ada@example.com", "name": "Ada"}},
		map[string]any{"emailAddress": map[string]any{"address": "bob@example.com"}},
	}, m["toRecipients"])
	require.Len(t, m["bccRecipients"], 1)
	require.Len(t, m["replyTo"], 1)
	atts := m["attachments"].([]any)
	require.Len(t, atts, 2)
	a0 := atts[0].(map[string]any)
	require.Equal(t, microsoft.FileAttachmentType, a0["@odata.type"])
	require.Equal(t, "r.csv", a0["name"])
	require.Equal(t, "text/csv; charset=utf-8", a0["contentType"])
	require.Equal(t, base64.StdEncoding.EncodeToString([]byte("a,b\n")), a0["contentBytes"])
	require.Equal(t, "application/x-x", atts[1].(map[string]any)["contentType"])
	require.Equal(t, []any{
		map[string]any{"name": "X-Ticket", "value": "OPS-9"},
		map[string]any{"name": outlook.IdempotencyHeader, "value": outlook.TransactionID("run1/step1")},
	}, m["internetMessageHeaders"])
	require.Equal(t, true, sent[0].SaveToSentItems, "saved by default")
	require.Equal(t, "/v1.0/me/sendMail", f.Requests()[0].Path)

	t.Run("user and text", func(t *testing.T) {
		_, err := run(t, outlook.SendMail, conn, map[string]any{"user": "ops@contoso.com", "to": "ada@example.com", "subject": "S",
			"text": "just text", "save_to_sent_items": false}, "k2")
		require.NoError(t, err)
		s := f.Sent()[1]
		require.Equal(t, "ops@contoso.com", s.User)
		require.Equal(t, false, s.SaveToSentItems)
		require.Equal(t, map[string]any{"contentType": "Text", "content": "just text"}, s.Message["body"])
	})
}

func TestSendMailInvalid(t *testing.T) {
	for _, tc := range []struct {
		name string
		with map[string]any
	}{
		{"bad address", map[string]any{"to": "not an address", "subject": "x"}},
		{"attachment without content", map[string]any{"to": "a@example.com", "subject": "x", "attachments": []any{map[string]any{"filename": "a"}}}},
		{"bad base64", map[string]any{"to": "a@example.com", "subject": "x", "attachments": []any{map[string]any{"filename": "a", "content_base64": "%%"}}}},
		{"non-X header", map[string]any{"to": "a@example.com", "subject": "x", "headers": map[string]any{"Subject": "y"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := connectortest.With(outlook.SendMail, tc.with)
			require.Error(t, err)
		})
	}
}

func TestGraphErrors(t *testing.T) {
	for _, tc := range []struct {
		status     int
		code       string
		retryAfter string
		reason     connector.Reason
		retryable  bool
		after      time.Duration
	}{
		{429, "TooManyRequests", "9", connector.ReasonRateLimited, true, 9 * time.Second},
		{503, "serviceNotAvailable", "4", connector.ReasonServerError, true, 4 * time.Second},
		{500, "generalException", "", connector.ReasonServerError, true, 0},
		{401, "InvalidAuthenticationToken", "", connector.ReasonAuth, false, 0},
		{403, "ErrorAccessDenied", "", connector.ReasonAuth, false, 0},
		{404, "ErrorItemNotFound", "", connector.ReasonNotFound, false, 0},
		{400, "ErrorInvalidRecipients", "", connector.ReasonClientError, false, 0},
	} {
		t.Run(tc.code, func(t *testing.T) {
			f, conn := setup(t)
			f.Fail(microsoft.Failure{Status: tc.status, Code: tc.code, RetryAfter: tc.retryAfter})
			_, err := run(t, outlook.SendMail, conn, map[string]any{"to": "a@example.com", "subject": "x", "text": "y"}, "k")
			require.Error(t, err)
			ce := connector.Classify(err)
			require.Equal(t, tc.reason, ce.Reason, "%v", err)
			require.Equal(t, tc.retryable, ce.Retryable)
			require.Equal(t, tc.after, ce.RetryAfter)
			require.Contains(t, err.Error(), tc.code, "Graph's error code is in the message")
			require.NotContains(t, err.Error(), token)
		})
	}
}

func TestCreateEvent(t *testing.T) {
	f, conn := setup(t)
	with := map[string]any{"summary": "Planning", "start": "2026-03-02T10:00:00+01:00", "end": "2026-03-02T11:00:00+01:00",
		"attendees":   []any{"ada@example.com", map[string]any{"email": "bob@example.com", "optional": true, "display_name": "Bob"}},
		"description": "agenda", "location": "Room 4", "is_online_meeting": true}
	out, err := run(t, outlook.CreateEvent, conn, with, "run1/create")
	require.NoError(t, err)
	require.NotEmpty(t, out["id"])
	require.Contains(t, out["web_link"], "outlook.office365.com")
	require.Equal(t, "2026-03-02T09:00:00", out["start"], "the offset applied, sent in UTC")
	require.Equal(t, "UTC", out["time_zone"])
	require.Contains(t, out["online_meeting_url"], "teams.microsoft.com")
	require.Equal(t, []any{"ada@example.com", "bob@example.com"}, out["attendees"])
	evs := f.Events("")
	require.Len(t, evs, 1)
	ev := evs[0]
	require.Equal(t, outlook.TransactionID("run1/create"), ev.TransactionID)
	require.Equal(t, "Planning", ev.Subject)
	require.Equal(t, &microsoft.ItemBody{ContentType: "Text", Content: "agenda"}, ev.Body)
	require.Equal(t, "Room 4", ev.Location.DisplayName)
	require.Equal(t, "optional", ev.Attendees[1].Type)
	require.Equal(t, "Bob", ev.Attendees[1].EmailAddress.Name)
	require.Empty(t, f.Problems())

	t.Run("a retry with the same key makes no second event", func(t *testing.T) {
		again, err := run(t, outlook.CreateEvent, conn, with, "run1/create")
		require.NoError(t, err)
		require.Equal(t, out["id"], again["id"])
		require.Len(t, f.Events(""), 1)
	})
	t.Run("all-day in a calendar, in a zone", func(t *testing.T) {
		out, err := run(t, outlook.CreateEvent, conn, map[string]any{"subject": "Offsite", "start": "2026-03-02", "end": "2026-03-04",
			"time_zone": "Europe/Paris", "calendar_id": "cal-7", "body": "<p>x</p>"}, "run2/create")
		require.NoError(t, err)
		require.Equal(t, true, out["all_day"])
		ev := f.Events("cal-7")
		require.Len(t, ev, 1)
		require.True(t, ev[0].IsAllDay)
		require.Equal(t, microsoft.DateTimeTimeZone{DateTime: "2026-03-02T00:00:00", TimeZone: "Europe/Paris"}, *ev[0].Start)
		require.Equal(t, "HTML", ev[0].Body.ContentType)
		require.Equal(t, "/v1.0/me/calendars/cal-7/events", f.Requests()[len(f.Requests())-1].Path)
	})
	t.Run("naive date-time in a zone, for a user", func(t *testing.T) {
		_, err := run(t, outlook.CreateEvent, conn, map[string]any{"subject": "1:1", "start": "2026-03-02T10:00:00", "end": "2026-03-02T10:30:00",
			"time_zone": "Pacific Standard Time", "user": "ada@contoso.com"}, "run3/create")
		require.NoError(t, err)
		require.Equal(t, "/v1.0/users/ada@contoso.com/events", f.Requests()[len(f.Requests())-1].Path)
	})
	for _, tc := range []struct {
		name string
		with map[string]any
	}{
		{"end before start", map[string]any{"subject": "x", "start": "2026-03-02T10:00:00Z", "end": "2026-03-02T09:00:00Z"}},
		{"mixed", map[string]any{"subject": "x", "start": "2026-03-02", "end": "2026-03-02T09:00:00Z"}},
		{"bad time", map[string]any{"subject": "x", "start": "tomorrow", "end": "2026-03-02T09:00:00Z"}},
		{"bad attendee", map[string]any{"subject": "x", "start": "2026-03-02", "end": "2026-03-03", "attendees": []any{"nobody"}}},
	} {
		t.Run("invalid "+tc.name, func(t *testing.T) {
			_, err := connectortest.With(outlook.CreateEvent, tc.with)
			require.Error(t, err)
		})
	}
	t.Run("no title, found when the step runs (either may be a template)", func(t *testing.T) {
		_, err := run(t, outlook.CreateEvent, conn, map[string]any{"start": "2026-03-02T10:00:00Z", "end": "2026-03-02T11:00:00Z"}, "k8")
		require.ErrorContains(t, err, "subject (or summary) is required")
		require.Equal(t, connector.ReasonInvalid, connector.Classify(err).Reason)
	})
	t.Run("naive without a zone", func(t *testing.T) {
		_, err := run(t, outlook.CreateEvent, conn, map[string]any{"subject": "x", "start": "2026-03-02T10:00:00", "end": "2026-03-02T11:00:00"}, "k9")
		require.Error(t, err)
		require.Equal(t, connector.ReasonInvalid, connector.Classify(err).Reason)
	})
}
