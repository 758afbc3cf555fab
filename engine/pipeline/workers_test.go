package pipeline

import (
	"errors"
	"runtime"
	"sync"
	"testing"
	"unsafe"

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
		// a worker is idle again just after its job is done: the next job
		// can come first (and start a worker), but seldom
		require.Less(t, w.started.Load(), int64(50))
	})
	t.Run("concurrent jobs get workers of their own", func(t *testing.T) {
		w := newWorkers()
		defer w.stop()
		const n = 8
		var ready, release sync.WaitGroup
		ready.Add(n)
		release.Add(1)
		var done sync.WaitGroup
		for range n {
			done.Add(1)
			go func() {
				defer done.Done()
				w.do(func() { ready.Done(); release.Wait() })
			}()
		}
		ready.Wait() // all n run at once: none waits for another
		release.Done()
		done.Wait()
		require.EqualValues(t, n, w.started.Load())
	})
	t.Run("an idle worker keeps its stack across collections", func(t *testing.T) {
		w := newWorkers()
		defer w.stop()
		// the address of a frame deep in the job's stack moves when the
		// stack is copied: shrunk by the collector, then grown back
		var before, after uintptr
		w.do(func() { before = deepFrame(40) })
		for range 3 {
			runtime.GC()
		}
		w.do(func() { after = deepFrame(40) })
		require.EqualValues(t, 1, w.started.Load())
		require.Equal(t, before, after, "the worker's stack was copied between its jobs")
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

// deepFrame uses about 200 bytes of stack per level and returns the
// address of its deepest frame.
//
//go:noinline
func deepFrame(n int) uintptr {
	var pad [192]byte
	pad[n%len(pad)] = byte(n)
	if n == 0 {
		return uintptr(unsafe.Pointer(&pad))
	}
	at := deepFrame(n - 1)
	deepSink += pad[n%len(pad)] // pad lives in the frame across the call
	return at
}

var deepSink byte
