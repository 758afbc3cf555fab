package outlook_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/microsoft"
	"github.com/sous-run/sous/triggers/outlook"
)

const token = "graph-token-2"

type poller struct {
	t      *testing.T
	f      *microsoft.Fake
	conn   *connector.Connection
	with   connector.Values
	cursor json.RawMessage
}

func newPoller(t *testing.T, with map[string]any) *poller {
	t.Helper()
	f := microsoft.NewFake(token)
	srv := httptest.NewServer(f)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	conn := &connector.Connection{Name: "ms", Type: "microsoft",
		Values: connector.Values{connector.ConnToken: token, connector.ConnBaseURL: srv.URL + "/v1.0/"}}
	cl, err := connector.NewClient(conn, microsoft.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	conn.Client = cl
	w, err := connectortest.With(outlook.EmailReceived, with)
	require.NoError(t, err)
	return &poller{t: t, f: f, conn: conn, with: w}
}

// poll polls once, keeping the cursor as the engine does.
func (p *poller) poll() (*connector.PollResult, error) {
	res, err := outlook.EmailReceived.Trigger.Poller.Poll(context.Background(),
		&connector.PollRequest{Type: outlook.EmailReceived.ID, With: p.with, Connection: p.conn, Cursor: p.cursor})
	if err == nil && res.Next != nil {
		p.cursor = res.Next
	}
	return res, err
}

// drain polls until a poll asks for no more, and returns the subjects.
func (p *poller) drain() []string {
	var out []string
	for range 20 {
		res, err := p.poll()
		require.NoError(p.t, err)
		for _, ev := range res.Events {
			require.NoError(p.t, connectortest.Conforms(outlook.EmailReceived.Shape, ev.Payload), "the event has the declared shape")
			require.Equal(p.t, ev.Payload["id"], ev.DedupKey)
			out = append(out, ev.Payload["subject"].(string))
		}
		if !res.More {
			return out
		}
	}
	p.t.Fatal("the poller always asks for more")
	return nil
}

func msg(subject, from string) microsoft.Message {
	return microsoft.Message{Subject: subject, From: &microsoft.Recipient{EmailAddress: microsoft.EmailAddress{Address: from, Name: "Sender " + from}},
		ToRecipients: []microsoft.Recipient{{EmailAddress: microsoft.EmailAddress{Address: "me@contoso.example"}}},
		Body:         &microsoft.ItemBody{ContentType: "html", Content: "<p>" + subject + "</p>"}, BodyPreview: subject}
}

func TestFirstPollDoesNotReplay(t *testing.T) {
	p := newPoller(t, map[string]any{})
	p.f.PageSize = 2 // the newest second's messages span pages
	for i := range 7 {
		m := msg(fmt.Sprintf("old %d", i), "a@example.com")
		m.ReceivedDateTime = "2026-03-02T10:00:00Z"
		if i < 2 {
			m.ReceivedDateTime = "2026-03-02T09:00:00Z"
		}
		p.f.AddMessage("inbox", m)
	}
	res, err := p.poll()
	require.NoError(t, err)
	require.Empty(t, res.Events, "the first poll replays nothing")
	require.NotNil(t, res.Next)
	require.Empty(t, p.drain(), "nor does the next")
	p.f.AddMessage("inbox", msg("new 1", "a@example.com"))
	p.f.AddMessage("inbox", msg("new 2", "a@example.com"))
	require.Equal(t, []string{"new 1", "new 2"}, p.drain())
	require.Empty(t, p.drain(), "each once")

	reqs := p.f.Requests()
	require.Equal(t, "/v1.0/me/mailFolders/inbox/messages", reqs[0].Path)
	require.Equal(t, "receivedDateTime desc", reqs[0].Query.Get("$orderby"), "the seed asks for the newest")
	last := reqs[len(reqs)-1]
	require.Equal(t, "receivedDateTime asc", last.Query.Get("$orderby"))
	require.Regexp(t, `^receivedDateTime ge \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$`, last.Query.Get("$filter"))
	require.Equal(t, "50", last.Query.Get("$top"))
	require.Empty(t, p.f.Problems())
}

func TestEmptyFolderSeedsAtTheStart(t *testing.T) {
	p := newPoller(t, map[string]any{"folder": "Archive", "user": "ada@contoso.example"})
	require.Empty(t, p.drain())
	p.f.AddMessage("archive", msg("first", "a@example.com"))
	require.Equal(t, []string{"first"}, p.drain())
	require.Equal(t, "/v1.0/users/ada@contoso.example/mailFolders/Archive/messages", p.f.Requests()[0].Path)
}

// TestPaging: messages (many in the same second) over pages of 3, more
// than one poll reads, each once, in order.
func TestPaging(t *testing.T) {
	p := newPoller(t, map[string]any{})
	p.f.PageSize = 3
	require.Empty(t, p.drain())
	var want []string
	for i := range 31 {
		s := fmt.Sprintf("m%02d", i)
		want = append(want, s)
		p.f.AddMessage("inbox", msg(s, "a@example.com"))
	}
	res, err := p.poll()
	require.NoError(t, err)
	require.True(t, res.More, "31 messages are more than one poll's pages")
	got := []string{}
	for _, ev := range res.Events {
		got = append(got, ev.Payload["subject"].(string))
	}
	got = append(got, p.drain()...)
	require.Equal(t, want, got)
	nextLinks := 0
	for _, r := range p.f.Requests() {
		if r.Query.Get("$skip") != "" {
			nextLinks++
		}
	}
	require.Positive(t, nextLinks, "pages followed through @odata.nextLink")
}

// TestArrivingDuringPolls: a writer adds messages while the poller polls;
// each reaches it once.
func TestArrivingDuringPolls(t *testing.T) {
	p := newPoller(t, map[string]any{})
	p.f.PageSize = 2
	require.Empty(t, p.drain())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := range 40 {
			p.f.AddMessage("inbox", msg(fmt.Sprintf("live %02d", i), "a@example.com"))
			if i%5 == 0 {
				time.Sleep(3 * time.Millisecond)
			}
		}
	}()
	seen := map[string]int{}
	require.Eventually(t, func() bool {
		for _, s := range p.drain() {
			seen[s]++
		}
		return len(seen) == 40
	}, 10*time.Second, time.Millisecond)
	<-done
	for _, s := range p.drain() {
		seen[s]++
	}
	for s, n := range seen {
		require.Equal(t, 1, n, s)
	}
}

func TestFilters(t *testing.T) {
	p := newPoller(t, map[string]any{"from": "@EXAMPLE.com", "subject_contains": "Invoice", "has_attachments": true})
	require.Empty(t, p.drain())
	p.f.AddMessage("inbox", msg("invoice 1", "billing@example.com")) // no attachment
	withAtt := msg("Your invoice 2", "billing@example.com")
	withAtt.Attachments = []microsoft.Attachment{{Name: "i.pdf", ContentType: "application/pdf", ContentBytes: base64.StdEncoding.EncodeToString([]byte("%PDF"))}}
	p.f.AddMessage("inbox", withAtt)
	other := msg("invoice 3", "x@other.org")
	other.Attachments = withAtt.Attachments
	p.f.AddMessage("inbox", other)
	require.Equal(t, []string{"Your invoice 2"}, p.drain())
}

func TestEventAndAttachments(t *testing.T) {
	big := strings.Repeat("x", 2048)
	for _, tc := range []struct {
		name    string
		with    map[string]any
		content []any
		omitted []any
	}{
		{"listed only", map[string]any{}, []any{nil, nil}, []any{nil, nil}},
		{"included up to the limit", map[string]any{"include_attachments": true, "max_attachment_bytes": 1024},
			[]any{base64.StdEncoding.EncodeToString([]byte("hello")), nil}, []any{nil, true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPoller(t, tc.with)
			require.Empty(t, p.drain())
			m := msg("with files", "ada@example.com")
			m.InternetMessageID = "<abc@mail.example>"
			m.CcRecipients = []microsoft.Recipient{{EmailAddress: microsoft.EmailAddress{Address: "cc@example.com"}}}
			m.Attachments = []microsoft.Attachment{
				{Name: "a.txt", ContentType: "text/plain", ContentBytes: base64.StdEncoding.EncodeToString([]byte("hello"))},
				{Name: "big.txt", ContentType: "text/plain", ContentBytes: base64.StdEncoding.EncodeToString([]byte(big))},
			}
			stored := p.f.AddMessage("inbox", m)
			res, err := p.poll()
			require.NoError(t, err)
			require.Len(t, res.Events, 1)
			ev := res.Events[0].Payload
			require.NoError(t, connectortest.Conforms(outlook.EmailReceived.Shape, ev))
			require.Equal(t, stored.ID, ev["id"])
			require.Equal(t, "abc@mail.example", ev["message_id"])
			require.Equal(t, "ada@example.com", ev["from"])
			require.Equal(t, "Sender ada@example.com", ev["from_name"])
			require.Equal(t, []any{"me@contoso.example"}, ev["to"])
			require.Equal(t, []any{"cc@example.com"}, ev["cc"])
			require.Equal(t, "<p>with files</p>", ev["html"])
			require.Equal(t, stored.ReceivedDateTime, ev["date"])
			require.Equal(t, true, ev["has_attachments"])
			require.Equal(t, "inbox", ev["folder"])
			require.Contains(t, ev["web_link"], "outlook.office365.com")
			atts := ev["attachments"].([]any)
			require.Len(t, atts, 2)
			for i, a := range atts {
				am := a.(map[string]any)
				require.Equal(t, am["name"], am["filename"])
				require.Equal(t, tc.content[i], am["content_base64"], "attachment %d", i)
				require.Equal(t, tc.omitted[i], am["omitted"], "attachment %d", i)
			}
			require.EqualValues(t, 2048, atts[1].(map[string]any)["size"])
			require.Empty(t, p.f.Problems())
		})
	}
}

func TestPollErrors(t *testing.T) {
	p := newPoller(t, map[string]any{})
	require.Empty(t, p.drain())
	p.f.AddMessage("inbox", msg("after the limit", "a@example.com"))
	p.f.Fail(microsoft.Failure{Method: "GET", Path: "/messages", Status: 429, RetryAfter: "11", Code: "ApplicationThrottled", Times: 1})
	_, err := p.poll()
	ce := connector.Classify(err)
	require.Equal(t, connector.ReasonRateLimited, ce.Reason, "%v", err)
	require.True(t, ce.Retryable)
	require.Equal(t, 11*time.Second, ce.RetryAfter)
	require.Equal(t, []string{"after the limit"}, p.drain(), "the cursor stood: the message comes after the throttle")

	p.f.Fail(microsoft.Failure{Path: "/messages", Status: 404, Code: "ErrorInvalidIdMalformed", Times: 1})
	_, err = p.poll()
	require.Equal(t, connector.ReasonNotFound, connector.Classify(err).Reason)
	require.False(t, connector.Classify(err).Retryable)

	p.cursor = json.RawMessage(`{"since":"yesterday"}`)
	_, err = p.poll()
	require.Equal(t, connector.ReasonInvalid, connector.Classify(err).Reason)

	bad := newPoller(t, map[string]any{})
	bad.conn.Values[connector.ConnToken] = "wrong"
	cl, err := connector.NewClient(bad.conn, microsoft.Connection, nil, connector.ClientHooks{})
	require.NoError(t, err)
	bad.conn.Client = cl
	_, err = bad.poll()
	require.Equal(t, connector.ReasonAuth, connector.Classify(err).Reason)
	require.NotContains(t, err.Error(), "wrong")
}

// TestLargeBodies: a page whose bodies are over the client's 10 MiB is
// read again a message a page, rather than failing the poll for ever.
func TestLargeBodies(t *testing.T) {
	p := newPoller(t, map[string]any{})
	require.Empty(t, p.drain())
	big := strings.Repeat("newsletter ", 4<<20/11)
	for i := range 3 {
		m := msg(fmt.Sprintf("big %d", i), "news@example.com")
		m.Body.Content = big
		p.f.AddMessage("inbox", m)
	}
	require.Equal(t, []string{"big 0", "big 1", "big 2"}, p.drain())
	tops := map[string]int{}
	for _, r := range p.f.Requests() {
		tops[r.Query.Get("$top")]++
	}
	require.Positive(t, tops["1"], "pages of one message")
}
