package main

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/nats/natstest"
	"github.com/sous-run/sous/engine/store"
)

// serveSetup is a `sous serve` over a data directory that outlives its
// processes, with an API key.
type serveSetup struct {
	bin, tmp, base, key string
	args                []string
	env                 []string // more environment (SOUS_SECRET_...)
}

// newServeSetup writes recipes (file name to text) and a config with
// extra lines, and returns how to start `sous serve` on them.
func newServeSetup(t *testing.T, bin string, recipeFiles map[string]string, extra string) *serveSetup {
	t.Helper()
	tmp := t.TempDir()
	dir := filepath.Join(tmp, "recipes")
	require.NoError(t, os.MkdirAll(dir, 0o755))
	for name, text := range recipeFiles {
		require.NoError(t, os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644))
	}
	const key = "test-key-0123456789"
	config := filepath.Join(tmp, "sous.yaml")
	require.NoError(t, os.WriteFile(config, []byte("log_level: warn\napi_keys: [\""+key+"\"]\n"+extra), 0o644))
	addr := freeAddr(t)
	return &serveSetup{bin: bin, tmp: tmp, base: "http://" + addr, key: key,
		args: []string{"serve", "--recipes", dir, "--data", filepath.Join(tmp, "data"), "--listen", addr, "--config", config}}
}

// start starts a process; its output goes to the n-th log file.
func (s *serveSetup) start(t *testing.T, n int) *child {
	t.Helper()
	return startChild(t, s.bin, filepath.Join(s.tmp, fmt.Sprintf("child%d.log", n)), s.env, s.args...)
}

// post sends a webhook; the status code, 0 when the server is down.
func (s *serveSetup) post(path, id string) int {
	client := &http.Client{Timeout: 10 * time.Second}
	resp, err := client.Post(s.base+"/hooks"+path, "application/json", strings.NewReader(`{"id":"`+id+`"}`))
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.StatusCode
}

// runs lists the recipe's runs through the API.
func (s *serveSetup) runs(recipe string) ([]*store.Run, error) {
	req, err := http.NewRequest(http.MethodGet, s.base+"/api/v1/runs?limit=1000&recipe="+recipe, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+s.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var out struct {
		Runs []*store.Run `json:"runs"`
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("list runs: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		return nil, err
	}
	return out.Runs, nil
}

// stop stops a process with SIGTERM.
func stopChild(t *testing.T, c *child) {
	t.Helper()
	require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	select {
	case err := <-c.done:
		require.NoError(t, err, "sous serve exits 0 on SIGTERM")
	case <-time.After(30 * time.Second):
		t.Fatal("sous serve did not stop on SIGTERM")
	}
}

// TestServeRunTimeoutEndsTheRun: with run_timeout 2s, a step of timeout
// 10s and one attempt against a service that answers after 4 s, the run
// is recorded failed with reason timeout and its attempt; the service is
// called once (the run used to be taken up again forever, with no record).
func TestServeRunTimeoutEndsTheRun(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs a sous binary")
	}
	var calls atomic.Int32
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls.Add(1)
		select {
		case <-time.After(4 * time.Second):
		case <-r.Context().Done():
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer slow.Close()
	s := newServeSetup(t, buildSous(t), map[string]string{"slow.yaml": fmt.Sprintf(`version: 1
name: slow
trigger: {type: webhook.received, with: {path: /slow}}
steps:
  - id: call
    action: http.request
    timeout: 10s
    retry: {max_attempts: 1}
    with: {url: "%s/slow"}
`, slow.URL)}, "pipeline: {run_timeout: 2s}\n")
	c := s.start(t, 1)
	defer func() {
		if t.Failed() {
			t.Logf("--- log:\n%s", c.output())
		}
	}()
	waitReady(t, s.base, c)
	require.Equal(t, http.StatusAccepted, s.post("/slow", "one"))
	var run *store.Run
	require.Eventually(t, func() bool {
		runs, err := s.runs("slow")
		if err != nil || len(runs) == 0 {
			return false
		}
		run = runs[0]
		return true
	}, 30*time.Second, 50*time.Millisecond, "no run recorded")
	require.Equal(t, "failed", run.Status)
	require.Equal(t, "timeout", run.Reason)
	require.Equal(t, "call", run.ErrorStep)
	require.Contains(t, run.Error, "pipeline.run_timeout (2s)")
	require.Equal(t, int32(1), calls.Load(), "the run was taken up again")
	stopChild(t, c)
	require.Equal(t, int32(1), calls.Load())
	require.NotContains(t, c.output(), "run interrupted")
}

// TestServePoisonEventKillLoop is the kill -9 loop, on the embedded
// queue and on NATS: every time the run of recipe poison calls its
// service, the service kills the `sous serve` process that called it
// with SIGKILL, and the test starts the process again on the same data.
// The poison event is set aside after the set number of deaths (3): its
// run is recorded dead with reason poison, the service is called no
// more, and the events of another recipe, sent all along, all run,
// during the loop and after it.
func TestServePoisonEventKillLoop(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a sous binary")
	}
	bin := buildSous(t)
	t.Run("sqlite", func(t *testing.T) { testPoisonKillLoop(t, bin, "") })
	t.Run("nats", func(t *testing.T) {
		url, prefix := natstest.NATS(t)
		// a dead process's messages come back within the ack wait
		testPoisonKillLoop(t, bin, fmt.Sprintf("broker: {type: nats, url: %q, prefix: %s, ack_wait: 2s}\n", url, prefix))
	})
}

func testPoisonKillLoop(t *testing.T, bin, broker string) {
	var (
		mu      sync.Mutex
		current *child
		kills   int
		seen    = map[string]bool{} // the ids of recipe good whose step was called
	)
	sink := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			ID string `json:"id"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		if r.URL.Path == "/poison" {
			// the run takes a while to kill the process (memory
			// growing, say): the other events go on meanwhile
			time.Sleep(300 * time.Millisecond)
		}
		mu.Lock()
		defer mu.Unlock()
		if r.URL.Path == "/poison" {
			// whatever kills the process while it holds the event
			kills++
			if current != nil {
				_ = current.cmd.Process.Signal(syscall.SIGKILL)
			}
			return
		}
		seen[body.ID] = true
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer sink.Close()
	s := newServeSetup(t, bin, map[string]string{
		"poison.yaml": fmt.Sprintf(`version: 1
name: poison
trigger: {type: webhook.received, with: {path: /poison, id: event.body.id}}
steps:
  - id: call
    action: http.request
    with: {url: "%s/poison"}
`, sink.URL),
		"good.yaml": fmt.Sprintf(`version: 1
name: good
trigger: {type: webhook.received, with: {path: /good, id: event.body.id}}
steps:
  - id: first
    action: http.request
    with: {url: "%[1]s/good", json: {id: "{{ event.body.id }}"}}
  - id: second
    action: http.request
    with: {url: "%[1]s/good", json: {id: "{{ event.body.id }}"}}
`, sink.URL),
	}, "pipeline: {shutdown_timeout: 10s}\n"+broker)

	// the supervisor starts the process again whenever it dies
	var children []*child
	stopSupervising := make(chan struct{})
	supervised := make(chan struct{})
	first := s.start(t, 1)
	children = append(children, first)
	mu.Lock()
	current = first
	mu.Unlock()
	deaths := 0
	go func() {
		defer close(supervised)
		c := first
		for {
			select {
			case <-c.done:
			case <-stopSupervising:
				return
			}
			deaths++
			if deaths > 10 {
				return // a crash loop: the test fails below
			}
			c = s.start(t, len(children)+1)
			mu.Lock()
			children = append(children, c)
			current = c
			mu.Unlock()
		}
	}()
	defer func() {
		if t.Failed() {
			mu.Lock()
			defer mu.Unlock()
			for i, c := range children {
				t.Logf("--- process %d log:\n%s", i+1, c.output())
			}
		}
	}()
	waitReady(t, s.base, first)

	// the good events go on during the loop and after, each sent until
	// accepted (the server is down at times)
	accepted := map[string]int{} // id -> deaths before its acceptance
	send := func(id string) {
		for range 400 {
			switch s.post("/good", id) {
			case http.StatusAccepted, http.StatusOK:
				mu.Lock()
				accepted[id] = kills
				mu.Unlock()
				return
			}
			time.Sleep(25 * time.Millisecond)
		}
		t.Errorf("good event %s never accepted", id)
	}
	for i := range 5 {
		send(fmt.Sprintf("g-%03d", i))
	}
	require.Equal(t, http.StatusAccepted, s.post("/poison", "p-1"))
	i := 5
	require.Eventually(t, func() bool {
		send(fmt.Sprintf("g-%03d", i))
		i++
		runs, err := s.runs("poison")
		return err == nil && len(runs) == 1
	}, 60*time.Second, 10*time.Millisecond, "the poison run was never recorded")
	for range 20 {
		send(fmt.Sprintf("g-%03d", i))
		i++
	}
	runs, err := s.runs("poison")
	require.NoError(t, err)
	require.Len(t, runs, 1)
	require.Equal(t, "dead", runs[0].Status)
	require.Equal(t, "poison", runs[0].Reason)
	require.Contains(t, runs[0].Error, "stopped 3 times")

	// every good event runs
	require.Eventually(t, func() bool {
		runs, err := s.runs("good")
		if err != nil {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		return len(runs) == len(accepted)
	}, 60*time.Second, 50*time.Millisecond, "not every good event ran")
	close(stopSupervising)
	<-supervised
	mu.Lock()
	last := current
	during := 0
	for _, k := range accepted {
		if k > 0 && k < 3 {
			during++
		}
	}
	require.Equal(t, 3, kills, "the poison event's service was called once per death, three times")
	require.Equal(t, 3, deaths, "the process died three times")
	mu.Unlock()
	require.Positive(t, during, "good events were accepted between the deaths")
	good, err := s.runs("good")
	require.NoError(t, err)
	for _, r := range good {
		require.Equal(t, "succeeded", r.Status, "run %s: %s %s", r.ID, r.Reason, r.Error)
	}
	mu.Lock()
	for id := range accepted {
		require.True(t, seen[id], "good event %s never reached its step", id)
	}
	mu.Unlock()
	stopChild(t, last)
}
