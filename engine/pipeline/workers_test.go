package pipeline

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
	"github.com/stretchr/testify/require"
)

func TestWorkers(t *testing.T) {
	t.Run("one at a time reuses one worker", func(t *testing.T) {
		w := newWorkers()
		defer w.stop()
		n := 0
		for range 100 {
			w.do(func() { n++ })
		}
		require.Equal(t, 100, n, "do waits for its job")
		// a worker is idle again before its job is done
		require.EqualValues(t, 1, w.started.Load())
	})
	t.Run("concurrent jobs get workers of their own", func(t *testing.T) {
		w := newWorkers()
		defer w.stop()
		const n = 8
		release := hold(t, w, n)
		release()
		require.EqualValues(t, n, w.started.Load())
	})
	t.Run("the worker idle last takes the next job", func(t *testing.T) {
		w := newWorkers()
		defer w.stop()
		hold(t, w, 4)()
		before := idleWorkers(w)
		require.Len(t, before, 4)
		// the top of the stack runs the job and goes back on top: a queue
		// would have taken the bottom and put it on top
		for range 10 {
			w.do(func() {})
		}
		require.Equal(t, before, idleWorkers(w))
		require.EqualValues(t, 4, w.started.Load())
	})
	t.Run("stop lets the idle workers go", func(t *testing.T) {
		w := newWorkers()
		hold(t, w, 5)()
		require.Len(t, idleWorkers(w), 5)
		require.EqualValues(t, 5, w.live.Load())
		w.stop()
		require.Empty(t, idleWorkers(w))
		require.Eventually(t, func() bool { return w.live.Load() == 0 }, 5*time.Second, time.Millisecond,
			"the idle workers did not end")
		ran := false
		w.do(func() { ran = true })
		require.True(t, ran, "a job given after stop still runs")
		require.Empty(t, idleWorkers(w), "nor does its worker stay")
		require.Eventually(t, func() bool { return w.live.Load() == 0 }, 5*time.Second, time.Millisecond,
			"the worker of a job given after stop did not end")
	})
	t.Run("results and errors come back", func(t *testing.T) {
		w := newWorkers()
		defer w.stop()
		h := w.middleware(func(msg *message.Message) ([]*message.Message, error) {
			return []*message.Message{message.NewMessage("out", msg.Payload)}, errors.New("some error")
		})
		out, err := h(message.NewMessage("in", []byte("x")))
		require.EqualError(t, err, "some error")
		require.Len(t, out, 1)
		require.Equal(t, "out", out[0].UUID)
	})
	t.Run("a panic reaches the recoverer", func(t *testing.T) {
		w := newWorkers()
		defer w.stop()
		h := middleware.Recoverer(w.middleware(func(*message.Message) ([]*message.Message, error) {
			panic("boom in a handler")
		}))
		_, err := h(message.NewMessage("in", nil))
		require.ErrorContains(t, err, "boom in a handler")
		require.ErrorContains(t, err, "(*workers).loop", "the worker's stack is kept, readable")
		// the worker survives its job's panic
		ran := false
		w.do(func() { ran = true })
		require.True(t, ran)
	})
}

// hold starts n jobs at once, each on a worker of its own, and returns
// what lets them finish, in order, and waits for them.
func hold(t *testing.T, w *workers, n int) (release func()) {
	t.Helper()
	var ready sync.WaitGroup
	ready.Add(n)
	gates := make([]chan struct{}, n)
	finished := make([]chan struct{}, n)
	for i := range n {
		gates[i], finished[i] = make(chan struct{}), make(chan struct{})
		go func() {
			defer close(finished[i])
			w.do(func() {
				ready.Done()
				<-gates[i]
			})
		}()
	}
	ready.Wait() // all n run at once: none waits for another
	return func() {
		for i := range n {
			close(gates[i])
			<-finished[i]
		}
	}
}

// idleWorkers is a copy of the idle stack, bottom first.
func idleWorkers(w *workers) []*worker {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]*worker(nil), w.idle...)
}
