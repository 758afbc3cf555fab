package server_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/server"
)

// probes is a ProbeWrite stand-in: it counts its calls and fails with err.
type probes struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (p *probes) probe(context.Context) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.calls++
	return p.err
}

func (p *probes) set(err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.err = err
}

func (p *probes) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.calls
}

// clock is a test's time, moved by hand.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// TestReadyzWrites: /readyz answers with the outcome of the latest write
// to the store while it is fresh (a webhook's intake, or its own probe),
// and probes with a write of its own when there has been none lately.
func TestReadyzWrites(t *testing.T) {
	errFull := errors.New("database or disk is full")
	setup := func(t *testing.T) (*env, *probes, *clock) {
		p := &probes{}
		e := newEnv(t, testRecipes, testSecrets, func(c *server.Config) { c.ProbeWrite = p.probe })
		c := &clock{t: time.Date(2026, 12, 7, 9, 0, 0, 0, time.UTC)}
		server.SetClock(e.srv, c.now)
		return e, p, c
	}
	readyz := func(t *testing.T, e *env) int {
		t.Helper()
		return e.do(t, req{method: http.MethodGet, target: "/readyz"}).Code
	}
	hook := func(t *testing.T, e *env) int {
		t.Helper()
		return e.do(t, req{target: "/hooks/plain", body: `{"n":1}`, headers: map[string]string{"Content-Type": "application/json"}}).Code
	}

	t.Run("a failing probe", func(t *testing.T) {
		e, p, c := setup(t)
		p.set(errFull)
		require.Equal(t, http.StatusServiceUnavailable, readyz(t, e))
		require.Equal(t, http.StatusServiceUnavailable, readyz(t, e))
		require.Equal(t, 1, p.count(), "a fresh outcome answers: no second probe")
		p.set(nil)
		c.add(server.ReadyFresh - time.Millisecond)
		require.Equal(t, http.StatusServiceUnavailable, readyz(t, e))
		require.Equal(t, 1, p.count())
		c.add(time.Millisecond)
		require.Equal(t, http.StatusOK, readyz(t, e), "a new probe, once the outcome is stale")
		require.Equal(t, 2, p.count())
	})
	t.Run("a failed intake", func(t *testing.T) {
		e, p, c := setup(t)
		require.Equal(t, http.StatusOK, readyz(t, e))
		require.Equal(t, 1, p.count())
		c.add(time.Second)
		require.NoError(t, e.st.Write.Close()) // intake's commits fail; reads still answer
		require.Equal(t, http.StatusServiceUnavailable, hook(t, e))
		require.Equal(t, http.StatusServiceUnavailable, readyz(t, e), "the failed intake answers")
		require.Equal(t, 1, p.count(), "no probe while the intake's outcome is fresh")
		c.add(server.ReadyFresh)
		require.Equal(t, http.StatusOK, readyz(t, e), "the probe says the store takes writes again")
		require.Equal(t, 2, p.count())
	})
	t.Run("a successful intake", func(t *testing.T) {
		e, p, c := setup(t)
		p.set(errFull)
		require.Equal(t, http.StatusServiceUnavailable, readyz(t, e))
		c.add(time.Second)
		require.Equal(t, http.StatusAccepted, hook(t, e))
		require.Equal(t, http.StatusOK, readyz(t, e), "the intake's commit answers")
		require.Equal(t, 1, p.count(), "no probe while webhooks are stored")
	})
}

// TestReadyzProbesTheStore: without a stand-in, /readyz probes the store
// itself with a write.
func TestReadyzProbesTheStore(t *testing.T) {
	e := newEnv(t, testRecipes, testSecrets, nil)
	require.Equal(t, http.StatusOK, e.do(t, req{method: http.MethodGet, target: "/readyz"}).Code)
	require.NoError(t, e.st.Write.Close())
	server.SetClock(e.srv, func() time.Time { return time.Now().Add(server.ReadyFresh) })
	rec := e.do(t, req{method: http.MethodGet, target: "/readyz"})
	require.Equal(t, http.StatusServiceUnavailable, rec.Code)
	require.Equal(t, "store_unavailable", decode(t, rec)["error"].(map[string]any)["code"])
}

// TestReadyzCallerGone: a /readyz caller that goes away while the probe
// runs (a health checker's own timeout) says nothing of the store: its
// canceled probe does not make /readyz answer 503 to the next callers.
func TestReadyzCallerGone(t *testing.T) {
	started := make(chan struct{})
	var first sync.Once
	probe := func(ctx context.Context) error {
		hang := false
		first.Do(func() { hang = true })
		if !hang {
			return nil
		}
		close(started)
		<-ctx.Done() // the caller goes away while the probe waits
		return ctx.Err()
	}
	e := newEnv(t, testRecipes, testSecrets, func(c *server.Config) { c.ProbeWrite = probe })
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan int)
	go func() {
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
		done <- rec.Code
	}()
	<-started
	cancel()
	<-done
	require.Equal(t, http.StatusOK, e.do(t, req{method: http.MethodGet, target: "/readyz"}).Code,
		"a canceled probe is not the store's failure")
}

// TestReadyzProbesDoNotPileUp: while a probe hangs, another /readyz does
// not wait for it past its own deadline.
func TestReadyzProbesDoNotPileUp(t *testing.T) {
	release := make(chan struct{})
	defer close(release)
	started := make(chan struct{})
	var once sync.Once
	probe := func(context.Context) error {
		once.Do(func() { close(started) })
		<-release // a store that ignores the context
		return nil
	}
	e := newEnv(t, testRecipes, testSecrets, func(c *server.Config) { c.ProbeWrite = probe })
	go func() { e.do(t, req{method: http.MethodGet, target: "/readyz"}) }()
	<-started
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	got := make(chan int, 1)
	go func() {
		rec := httptest.NewRecorder()
		e.srv.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/readyz", nil).WithContext(ctx))
		got <- rec.Code
	}()
	select {
	case code := <-got:
		require.Equal(t, http.StatusServiceUnavailable, code)
	case <-time.After(5 * time.Second):
		t.Fatal("a second /readyz waits for the hung probe past its deadline")
	}
}
