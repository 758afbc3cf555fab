package main

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/clients/google"
)

// TestGoogleTriggersSurviveKill: gcal.event_created and
// gdrive.file_created poll a fake Google that pages its answers (3 items
// a page) while events and files are created during the test (and older
// ones edited, trashed and deleted, which start nothing); `sous serve` is
// killed with SIGKILL in the middle and started again: every new event
// and every new file in the watched folder starts one run, none two.
func TestGoogleTriggersSurviveKill(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary twice")
	}
	fake := google.NewFake(googleToken)
	fake.MaxPage = 3
	api := httptest.NewServer(fake)
	defer api.Close()
	sink := &idSink{}
	sinkSrv := httptest.NewServer(sink)
	defer sinkSrv.Close()

	// history: none of it starts a run
	var oldEvents, oldFiles []string
	for i := range 5 {
		oldEvents = append(oldEvents, fake.CreateEvent("primary", fmt.Sprintf("old %d", i)).Id)
		oldFiles = append(oldFiles, fake.NewFile(fmt.Sprintf("old-%d.txt", i), "text/plain", []string{"inbox"}, []byte("old")).Id)
	}
	// a 429 with Retry-After along the way: the poller waits and goes on
	fake.Fail(google.Failure{Method: http.MethodGet, Path: "/changes", Status: http.StatusTooManyRequests, Header: http.Header{"Retry-After": {"1"}}})

	recipes := map[string]string{
		"cal.yaml": jiraRecipe("new-events", `{type: gcal.event_created, connection: google, with: {poll_interval: 50ms}}`,
			"event:{{ event.summary }}"),
		"drive.yaml": jiraRecipe("new-files", `{type: gdrive.file_created, connection: google, with: {folder_id: inbox, poll_interval: 50ms}}`,
			"file:{{ event.name }}"),
	}
	conns := fmt.Sprintf("connections:\n  google: {type: google, token: %q, base_url: %s/}\n  sink: {type: http, base_url: %s}\n",
		googleToken, api.URL, sinkSrv.URL)
	s := newServeSetup(t, buildSous(t), recipes, conns)
	c := s.start(t, 1)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("sous serve:\n%s", c.output())
			t.Logf("fake problems: %v", fake.Problems)
		}
	})
	waitReady(t, s.base, c)
	// both pollers seeded: the calendar syncs incrementally, Drive lists changes
	require.Eventually(t, func() bool {
		var cal, drv bool
		for _, r := range fake.Recorded() {
			cal = cal || strings.Contains(r.Query, "syncToken=")
			drv = drv || (r.Path == "/drive/v3/changes" && r.Status == http.StatusOK)
		}
		return cal && drv
	}, 30*time.Second, 10*time.Millisecond, "the pollers seed")

	const n = 30
	want := map[string]bool{}
	var wmu sync.Mutex
	create := func(from, to int) {
		for i := from; i < to; i++ {
			ev := fake.CreateEvent("primary", fmt.Sprintf("meeting %d", i))
			fake.NewFile(fmt.Sprintf("doc-%d.txt", i), "text/plain", []string{"inbox"}, []byte("new"))
			fake.NewFile(fmt.Sprintf("elsewhere-%d.txt", i), "text/plain", []string{"other"}, []byte("no"))
			wmu.Lock()
			want[fmt.Sprintf("event:meeting %d", i)] = true
			want[fmt.Sprintf("file:doc-%d.txt", i)] = true
			wmu.Unlock()
			switch i % 5 {
			case 0:
				fake.UpdateEvent("primary", oldEvents[i%len(oldEvents)], fmt.Sprintf("old renamed %d", i))
				fake.TrashFile(oldFiles[i%len(oldFiles)])
			case 1:
				fake.UpdateEvent("primary", ev.Id, fmt.Sprintf("meeting %d", i)) // an edit of a new event: same event
			case 2:
				gone := fake.CreateEvent("primary", "cancelled at once")
				fake.DeleteEvent("primary", gone.Id)
			}
			if i%3 == 0 {
				time.Sleep(5 * time.Millisecond) // spread them over the polls
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		create(0, n)
	}()
	total := 2 * (n + 5)
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d >= total/5 }, 60*time.Second, time.Millisecond)
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGKILL))
	<-c.done
	atKill, _ := sink.counts()
	<-done
	require.Less(t, atKill, 2*n, "killed in the middle")

	c = s.start(t, 2)
	waitReady(t, s.base, c)
	create(n, n+5)
	require.Eventually(t, func() bool { d, _ := sink.counts(); return d == total }, 90*time.Second, 10*time.Millisecond,
		"every new event and file reaches the sink after the restart")
	require.Eventually(t, func() bool {
		ev, err1 := s.runs("new-events")
		fl, err2 := s.runs("new-files")
		return err1 == nil && err2 == nil && len(ev) == n+5 && len(fl) == n+5
	}, 60*time.Second, 20*time.Millisecond)
	// several more polls of each: nothing more may come
	polls := func() (cal, drv int) {
		for _, r := range fake.Recorded() {
			if strings.Contains(r.Query, "syncToken=") {
				cal++
			} else if r.Path == "/drive/v3/changes" {
				drv++
			}
		}
		return cal, drv
	}
	cal0, drv0 := polls()
	require.Eventually(t, func() bool { cal, drv := polls(); return cal >= cal0+5 && drv >= drv0+5 }, 30*time.Second, 10*time.Millisecond)
	stopChild(t, c)

	sink.mu.Lock()
	for k := range sink.seen {
		require.True(t, want[k], "an event or file the writer made: %s", k)
	}
	sink.mu.Unlock()
	db := stoppedStore(t, filepath.Join(s.tmp, "data"))
	requireOnceEach(t, db, "gcal.event_created", "new-events", n+5)
	requireOnceEach(t, db, "gdrive.file_created", "new-files", n+5)
	requireNoneFailed(t, db)
	require.Empty(t, fake.Problems, "requests the fake refused as malformed")
	var limited bool
	for _, r := range fake.Recorded() {
		limited = limited || r.Status == http.StatusTooManyRequests
	}
	require.True(t, limited, "the 429 was served")
	_, heard := sink.counts()
	t.Logf("killed after %d of %d reached the sink; %d requests heard twice (runs in flight at the kill)", atKill, total, heard-total)
}

// TestGoogleTriggersValidateTypo: a typo in a gcal or gdrive event field
// is reported at its line and column, with a suggestion.
func TestGoogleTriggersValidateTypo(t *testing.T) {
	for _, tc := range []struct {
		name, trigger, expr, suggest string
	}{
		{"event", "gcal.event_created", "event.summry", "summary"},
		{"event nested", "gcal.event_created", "event.start.date_tme", "date_time"},
		{"file", "gdrive.file_created", "event.web_view_lnk", "web_view_link"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := writeFile(t, dir, "typo.yaml", `version: 1
name: typo
trigger: {type: `+tc.trigger+`, connection: google}
steps:
  - id: tell
    action: http.request
    with: {url: "https://example.com", json: {x: "{{ `+tc.expr+` }}"}}
`)
			writeFile(t, dir, "sous.yaml", "connections:\n  google:\n    type: google\n    token: ya29.validate-token-0123456789\n")
			r := sous(t, "", "validate", "--config", filepath.Join(dir, "sous.yaml"), path)
			require.Equal(t, 1, r.code, "%s", r)
			require.Regexp(t, regexp.QuoteMeta(path)+`:7:\d+: error: expression: unknown field .*\(did you mean "`+tc.suggest+`"\?\)`, r.stdout)
			require.Equal(t, 1, strings.Count(r.stdout, "error:"), "the typo alone: %s", r)
		})
	}
}
