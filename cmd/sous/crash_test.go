package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/nats/natstest"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
)

// crashLoad is the number of webhooks the crash test sends.
const crashLoad = 1000

// crashRecipe has two steps, so that a kill can land between them and the
// run resumes from its checkpoint.
const crashRecipe = `version: 1
name: load
trigger: {type: webhook.received, with: {path: /load, id: event.body.id}}
steps:
  - id: first
    action: http.request
    with: {url: "%[1]s/first", json: {id: "{{ event.body.id }}"}}
  - id: second
    action: http.request
    with: {url: "%[1]s/second", json: {id: "{{ event.body.id }}"}}
`

// crashSink counts the calls of each idempotency key (run id and step) and
// remembers the ids whose last step was called.
type crashSink struct {
	mu     sync.Mutex
	keys   map[string]int
	second map[string]bool
}

func (s *crashSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var body struct {
		ID string `json:"id"`
	}
	_ = json.NewDecoder(r.Body).Decode(&body)
	time.Sleep(time.Millisecond) // a remote call takes a little while
	s.mu.Lock()
	s.keys[r.Header.Get("Idempotency-Key")]++
	if r.URL.Path == "/second" {
		s.second[body.ID] = true
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/json")
	_, _ = io.WriteString(w, `{"ok":true}`)
}

// child is one `sous serve` process.
type child struct {
	cmd  *exec.Cmd
	done chan error
	log  string // the file its output goes to
}

func (c *child) output() string {
	b, _ := os.ReadFile(c.log)
	return string(b)
}

// crashSetup is where a crash test's processes keep their work.
type crashSetup struct {
	// procs is how many `sous serve` processes share the load; the
	// first one is killed and restarted.
	procs int
	// config is the sous.yaml's broker lines.
	config string
	// open opens the stores the processes kept their runs in, once they
	// stopped: the one they shared, or each one's own (in data1, data2...
	// under tmp).
	open func(t *testing.T, tmp string) []*sql.DB
	// prefix is broker.prefix, which the store's tables take too.
	prefix string
}

// openSQLiteStores opens the stores of procs processes, each in its own
// data directory under tmp.
func openSQLiteStores(t *testing.T, tmp string, procs int) []*sql.DB {
	t.Helper()
	var dbs []*sql.DB
	for i := range procs {
		write, read, err := store.OpenSQLite(context.Background(), filepath.Join(tmp, fmt.Sprintf("data%d", i+1)))
		require.NoError(t, err)
		require.NoError(t, write.Close())
		dbs = append(dbs, read)
	}
	return dbs
}

// TestCrashEveryAcceptedEventRunsOnce: a `sous serve` is killed with
// SIGKILL in the middle of a load of webhooks and restarted on the same
// data: one process on the embedded SQLite, and one of two processes
// sharing a PostgreSQL database while the other goes on. Every accepted
// event has exactly one run, and the sink saw every run (a step cut by
// the kill may be called again, with the same idempotency key).
func TestCrashEveryAcceptedEventRunsOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and kills a sous binary")
	}
	began := time.Now()
	bin := buildSous(t)
	t.Logf("built in %s", time.Since(began).Round(time.Millisecond))
	t.Run("sqlite", func(t *testing.T) {
		testCrash(t, bin, crashSetup{procs: 1, open: func(t *testing.T, tmp string) []*sql.DB {
			return openSQLiteStores(t, tmp, 1)
		}})
	})
	t.Run("postgres, two processes", func(t *testing.T) {
		dsn := storetest.Postgres(t)
		testCrash(t, bin, crashSetup{procs: 2, config: fmt.Sprintf("broker: {type: postgres, url: %q}\n", dsn),
			open: func(t *testing.T, _ string) []*sql.DB {
				db, err := store.OpenPostgres(context.Background(), dsn)
				require.NoError(t, err)
				return []*sql.DB{db}
			}})
	})
	t.Run("nats, two processes", func(t *testing.T) {
		url, prefix := natstest.NATS(t)
		// the killed process's messages come back to the other one
		// within the ack wait
		testCrash(t, bin, crashSetup{procs: 2,
			config: fmt.Sprintf("broker: {type: nats, url: %q, prefix: %s, ack_wait: 2s}\n", url, prefix), prefix: prefix,
			open: func(t *testing.T, tmp string) []*sql.DB { return openSQLiteStores(t, tmp, 2) }})
	})
}

func testCrash(t *testing.T, bin string, setup crashSetup) {
	began := time.Now()
	tmp := t.TempDir()
	sink := &crashSink{keys: map[string]int{}, second: map[string]bool{}}
	srv := httptest.NewServer(sink)
	defer srv.Close()
	recipesDir := filepath.Join(tmp, "recipes")
	require.NoError(t, os.MkdirAll(recipesDir, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(recipesDir, "load.yaml"), []byte(fmt.Sprintf(crashRecipe, srv.URL)), 0o644))
	config := filepath.Join(tmp, "sous.yaml")
	require.NoError(t, os.WriteFile(config, []byte("log_level: warn\npipeline: {shutdown_timeout: 20s}\n"+setup.config), 0o644))
	// each process has its address and data directory, which its
	// restart takes again
	var args [][]string
	var bases []string
	for i := range setup.procs {
		addr := freeAddr(t)
		dataDir := filepath.Join(tmp, fmt.Sprintf("data%d", i+1))
		args = append(args, []string{"serve", "--recipes", recipesDir, "--data", dataDir, "--listen", addr, "--config", config})
		bases = append(bases, "http://"+addr)
	}

	var children []*child
	defer func() {
		if t.Failed() {
			for i, c := range children {
				t.Logf("--- child %d log:\n%s", i+1, c.output())
			}
		}
	}()
	startChild := func(proc int) *child {
		c := startChild(t, bin, filepath.Join(tmp, fmt.Sprintf("child%d.log", len(children)+1)), nil, args[proc]...)
		children = append(children, c)
		waitReady(t, bases[proc], c)
		return c
	}

	client := &http.Client{Timeout: 10 * time.Second}
	post := func(base, id string) (int, error) {
		resp, err := client.Post(base+"/hooks/load", "application/json", strings.NewReader(`{"id":"`+id+`"}`))
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		_, _ = io.Copy(io.Discard, resp.Body)
		return resp.StatusCode, nil
	}

	running := make([]*child, setup.procs)
	for i := range running {
		running[i] = startChild(i)
	}
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		dups     []string // answered 200 on their first sending: must not happen
		failed   int
		sent     atomic.Int64
	)
	ids := make(chan int)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range ids {
				// the processes take turns; the first one is killed
				id := fmt.Sprintf("ev-%04d", i)
				code, err := post(bases[i%setup.procs], id)
				sent.Add(1)
				mu.Lock()
				switch {
				case err != nil || code >= 500:
					failed++
				case code == http.StatusAccepted:
					accepted[id] = true
				case code == http.StatusOK:
					dups = append(dups, id)
				default:
					failed++
					t.Errorf("id %s answered %d", id, code)
				}
				mu.Unlock()
				if err != nil {
					// the server is down: keep trying, at a pace that
					// leaves ids for the restarted one
					time.Sleep(50 * time.Millisecond)
				}
			}
		}()
	}
	killed := make(chan struct{})
	go func() {
		defer close(ids)
		for i := range crashLoad {
			if i == crashLoad*4/10 {
				<-killed
			}
			ids <- i
		}
	}()

	// wait until about 40% were sent, then kill in the middle of the load
	require.Eventually(t, func() bool { return sent.Load() >= crashLoad*4/10-8 }, 30*time.Second, time.Millisecond)
	killedAt := sent.Load()
	require.NoError(t, running[0].cmd.Process.Kill())
	<-running[0].done
	// what the kill cut short: events accepted but not run to the end
	mu.Lock()
	sink.mu.Lock()
	pending := 0
	for id := range accepted {
		if !sink.second[id] {
			pending++
		}
	}
	acceptedBeforeKill := len(accepted)
	sink.mu.Unlock()
	mu.Unlock()
	close(killed) // the senders go on against the dead server
	time.Sleep(150 * time.Millisecond)
	running[0] = startChild(0)
	t.Logf("restarted at %s", time.Since(began).Round(time.Millisecond))
	wg.Wait()
	t.Logf("load sent at %s", time.Since(began).Round(time.Millisecond))

	mu.Lock()
	t.Logf("sent %d, killed after %d (%d accepted, %d of them not run to the end): %d accepted, %d failed, %d answered duplicate",
		sent.Load(), killedAt, acceptedBeforeKill, pending, len(accepted), failed, len(dups))
	require.Empty(t, dups, "ids sent once were answered duplicate")
	require.Greater(t, failed, 0, "no sending fell in the downtime")
	require.Greater(t, len(accepted), crashLoad/2)
	acceptedIDs := make([]string, 0, len(accepted))
	for id := range accepted {
		acceptedIDs = append(acceptedIDs, id)
	}
	mu.Unlock()
	require.Greater(t, pending, 0, "the kill cut nothing short")

	// resending accepted ids after the restart, from before the kill and
	// after it, each to a process it was not sent to before when there
	// are several: duplicates, no new run
	sort.Strings(acceptedIDs)
	resend := append(append([]string(nil), acceptedIDs[:10]...), acceptedIDs[len(acceptedIDs)-10:]...)
	require.Less(t, resend[9], fmt.Sprintf("ev-%04d", killedAt-8), "resent ids from before the kill")
	for _, id := range resend {
		var n int
		_, err := fmt.Sscanf(id, "ev-%d", &n)
		require.NoError(t, err)
		code, err := post(bases[(n+1)%setup.procs], id)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, code, "a resent accepted id %s", id)
	}

	// every accepted event reaches its last step
	require.Eventually(t, func() bool {
		sink.mu.Lock()
		defer sink.mu.Unlock()
		for _, id := range acceptedIDs {
			if !sink.second[id] {
				return false
			}
		}
		return true
	}, 40*time.Second, 20*time.Millisecond, "not every accepted event ran")

	t.Logf("all ran at %s", time.Since(began).Round(time.Millisecond))
	// a graceful stop records the runs in flight
	for _, c := range running {
		require.NoError(t, c.cmd.Process.Signal(syscall.SIGTERM))
	}
	for _, c := range running {
		select {
		case err := <-c.done:
			require.NoError(t, err, "sous serve exits 0 on SIGTERM")
		case <-time.After(30 * time.Second):
			t.Fatal("sous serve did not stop on SIGTERM")
		}
	}

	t.Logf("stopped at %s", time.Since(began).Round(time.Millisecond))
	// the store, opened after the processes stopped
	dbs := setup.open(t, tmp)
	defer func() {
		for _, db := range dbs {
			db.Close()
		}
	}()
	type stored struct{ eventID, runID, status string }
	// the runs, by event, in every store (on NATS, a run is recorded by
	// the process that ran it, its event by the one that accepted it)
	runsOf := map[string][]stored{}
	runs := 0
	for _, db := range dbs {
		rows, err := db.Query(`SELECT id, event_id, status FROM ` + setup.prefix + `runs`)
		require.NoError(t, err)
		for rows.Next() {
			var s stored
			require.NoError(t, rows.Scan(&s.runID, &s.eventID, &s.status))
			runsOf[s.eventID] = append(runsOf[s.eventID], s)
			runs++
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	// the events, by the id in their body
	byID := map[string]stored{}
	for _, db := range dbs {
		rows, err := db.Query(`SELECT id, payload FROM ` + setup.prefix + `events`)
		require.NoError(t, err)
		for rows.Next() {
			var eventID string
			var payload []byte
			require.NoError(t, rows.Scan(&eventID, &payload))
			var p struct {
				Body struct {
					ID string `json:"id"`
				} `json:"body"`
			}
			require.NoError(t, json.Unmarshal(payload, &p))
			_, twice := byID[p.Body.ID]
			require.False(t, twice, "id %s was stored as two events", p.Body.ID)
			rs := runsOf[eventID]
			require.Len(t, rs, 1, "event %s (id %s) has %d runs", eventID, p.Body.ID, len(rs))
			require.Equal(t, "succeeded", rs[0].status, "event %s (id %s)", eventID, p.Body.ID)
			byID[p.Body.ID] = rs[0]
		}
		require.NoError(t, rows.Err())
		require.NoError(t, rows.Close())
	}
	require.Equal(t, len(byID), runs, "one run per stored event, no other")

	sink.mu.Lock()
	defer sink.mu.Unlock()
	repeats, repeatedRuns := 0, map[string]bool{}
	for _, id := range acceptedIDs {
		s, ok := byID[id]
		require.True(t, ok, "accepted id %s was not stored", id)
		for _, step := range []string{"first", "second"} {
			n := sink.keys[s.runID+":"+step]
			require.GreaterOrEqual(t, n, 1, "the sink never saw %s:%s (id %s)", s.runID, step, id)
			repeats += n - 1
			if n > 1 {
				repeatedRuns[s.runID] = true
			}
		}
	}
	unacknowledged := len(byID) - len(acceptedIDs)
	t.Logf("stored %d events (%d stored though their sender saw an error), %d runs; sink calls repeated after the kill: %d (in %d runs); took %s",
		len(byID), unacknowledged, runs, repeats, len(repeatedRuns), time.Since(began).Round(time.Millisecond))
}

// freeAddr picks a port that the two children listen on in turn.
func freeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	require.NoError(t, ln.Close())
	return addr
}

// waitReady waits for /readyz, failing early if the child exits.
func waitReady(t testing.TB, base string, c *child) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-c.done:
			t.Fatalf("sous serve exited at start: %v\n%s", err, c.output())
		default:
		}
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("sous serve not ready in 20 s\n%s", c.output())
}
