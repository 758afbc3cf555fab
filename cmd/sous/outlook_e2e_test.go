package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/clients/microsoft"
)

const outlookToken = "eyJ0eXAi.e2e-graph-token-0123456789"

// TestOutlookActionsThroughServe: through a real `sous serve`, a webhook
// starts a recipe that sends a mail (the first sendMail answered 429 with
// Retry-After: retried, one mail) and creates an event (the first create
// answered 503 after Graph made it: the retry carries the same
// transactionId, one event); the run record holds both outputs.
func TestOutlookActionsThroughServe(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	fake := microsoft.NewFake(outlookToken)
	fake.Fail(microsoft.Failure{Method: http.MethodPost, Path: "/sendMail", Status: http.StatusTooManyRequests, RetryAfter: "1",
		Code: "ApplicationThrottled", Times: 1})
	fake.Fail(microsoft.Failure{Method: http.MethodPost, Path: "/events", Status: http.StatusServiceUnavailable, Code: "ServiceUnavailable",
		Times: 1, After: true})
	api := httptest.NewServer(fake)
	defer api.Close()
	fake.URL = api.URL
	recipe := `version: 1
name: outlook-meeting
trigger: {type: webhook.received, with: {path: /meetings}}
filter: event.body.kind == "meeting"
steps:
  - id: invite
    action: outlook.create_event
    connection: ms
    with:
      subject: "{{ event.body.title }}"
      start: "{{ event.body.start }}"
      end: "{{ event.body.end }}"
      attendees: ["ada@example.com"]
      is_online_meeting: true
    retry: {max_attempts: 3, backoff: constant, initial_interval: 100ms}
  - id: mail
    action: outlook.send_mail
    connection: ms
    with:
      to: ["ada@example.com"]
      subject: "Invited: {{ event.body.title }}"
      html: "<p>Join: {{ steps.invite.output.online_meeting_url }}</p>"
      attachments: [{filename: agenda.txt, content: "{{ event.body.agenda }}"}]
    retry: {max_attempts: 3, backoff: constant, initial_interval: 100ms}
`
	srv := svcStart(t, []string{"E2E_MS_TOKEN=" + outlookToken},
		fmt.Sprintf("  ms: {type: microsoft, token: \"${E2E_MS_TOKEN}\", base_url: %s/v1.0/}\n", api.URL),
		map[string]string{"meeting.yaml": recipe})

	code, body := svcPost(t, srv.base+"/hooks/meetings", http.Header{"Content-Type": {"application/json"}},
		[]byte(`{"kind":"meeting","title":"Planning","start":"2026-03-02T10:00:00Z","end":"2026-03-02T11:00:00Z","agenda":"everything"}`))
	require.Equal(t, http.StatusAccepted, code, body)
	var run svcRun
	require.Eventually(t, func() bool {
		for _, r := range srv.runs(t) {
			if r.Recipe == "outlook-meeting" && r.Status != "running" && r.Status != "queued" && r.Status != "" {
				run = r
				return true
			}
		}
		return false
	}, 30*time.Second, 50*time.Millisecond)
	rec := string(srv.api("/api/v1/runs/" + run.ID))
	require.Equal(t, "succeeded", run.Status, rec)

	events := fake.Events("")
	require.Len(t, events, 1, "one event though the first create's answer was a 503")
	require.Contains(t, rec, events[0].ID, "the run record holds the event id")
	require.Contains(t, rec, events[0].OnlineMeeting.JoinURL, "and the join URL")
	sent := fake.Sent()
	require.Len(t, sent, 1, "one mail: the 429 was answered before Graph took it")
	require.Contains(t, fmt.Sprint(sent[0].Message["body"]), events[0].OnlineMeeting.JoinURL)
	require.Contains(t, rec, `"accepted"`)
	require.NotContains(t, rec, outlookToken)
	posts := map[string]int{}
	for _, r := range fake.Requests() {
		if r.Method == http.MethodPost {
			posts[r.Path[strings.LastIndex(r.Path, "/")+1:]]++
		}
	}
	require.Equal(t, map[string]int{"events": 2, "sendMail": 2}, posts, "each step retried once")
	require.Empty(t, fake.Problems())
}

// TestOutlookPollingSurvivesKill: outlook.email_received against the Graph
// fake, which pages its list (3 messages a page) while messages arrive
// all along (many in the same second); `sous serve` is killed with SIGKILL
// in the middle and started again: every message starts one run, none
// two, and the mail already there at the start none.
func TestOutlookPollingSurvivesKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary twice")
	}
	fake := microsoft.NewFake(outlookToken)
	fake.PageSize = 3
	api := httptest.NewServer(fake)
	defer api.Close()
	fake.URL = api.URL
	for i := range 4 {
		fake.AddMessage("inbox", microsoft.Message{Subject: fmt.Sprintf("old %d", i)})
	}
	sink := &idSink{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()
	recipes := map[string]string{"mail.yaml": `version: 1
name: polled-mail
trigger: {type: outlook.email_received, connection: ms, with: {poll_interval: 50ms}}
steps:
  - id: tell
    action: http.request
    connection: sink
    with: {method: POST, url: /hook, json: {id: "{{ event.subject }}"}}
`}
	conns := fmt.Sprintf("connections:\n  ms:\n    type: microsoft\n    token: %s\n    base_url: %s/v1.0/\n  sink:\n    type: http\n    base_url: %s\n",
		outlookToken, api.URL, sinkSrv.URL)
	s := newServeSetup(t, buildSous(t), recipes, conns)
	t.Cleanup(func() {
		if t.Failed() {
			for _, n := range []string{"child1.log", "child2.log"} {
				b, _ := os.ReadFile(filepath.Join(s.tmp, n))
				t.Logf("%s:\n%s", n, b)
			}
			sink.mu.Lock()
			t.Logf("sink: %d distinct", len(sink.seen))
			sink.mu.Unlock()
		}
	})
	c := s.start(t, 1)
	waitReady(t, s.base, c)
	// the first poll remembers the newest message: wait for it
	require.Eventually(t, func() bool {
		for _, r := range fake.Requests() {
			if r.Query.Get("$orderby") == "receivedDateTime asc" {
				return true
			}
		}
		return false
	}, 30*time.Second, 10*time.Millisecond, "the poller lists the inbox from its cursor")

	const total = 90
	var wmu sync.Mutex
	want := map[string]bool{}
	write := func(from, to int) {
		for i := from; i < to; i++ {
			subject := fmt.Sprintf("mail %03d", i)
			wmu.Lock()
			want[subject] = true
			wmu.Unlock()
			fake.AddMessage("inbox", microsoft.Message{Subject: subject,
				From: &microsoft.Recipient{EmailAddress: microsoft.EmailAddress{Address: "a@example.com"}}})
			if i%4 == 0 {
				time.Sleep(3 * time.Millisecond)
			}
		}
	}
	done := make(chan struct{})
	go func() { defer close(done); write(0, 60) }()
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d >= 15 }, 60*time.Second, time.Millisecond)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	<-c.done
	atKill, _ := sink.counts()
	<-done
	require.Less(t, atKill, 60, "killed in the middle")

	c = s.start(t, 2)
	waitReady(t, s.base, c)
	write(60, total)
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d == total }, 90*time.Second, 10*time.Millisecond,
		"every message reaches the sink after the restart")
	require.Eventually(t, func() bool {
		rs, err := s.runs("polled-mail")
		return err == nil && len(rs) == total
	}, 60*time.Second, 20*time.Millisecond)
	stopChild(t, c)

	sink.mu.Lock()
	for k := range sink.seen {
		require.True(t, want[k], "a message the writer added (none of the old ones): %s", k)
	}
	sink.mu.Unlock()
	db := stoppedStore(t, filepath.Join(s.tmp, "data"))
	requireOnceEach(t, db, "outlook.email_received", "polled-mail", total)
	requireNoneFailed(t, db)
	require.Empty(t, fake.Problems())
	_, heard := sink.counts()
	t.Logf("killed after %d of %d messages reached the sink; %d requests heard twice (runs in flight at the kill)", atKill, total, heard-total)
}
