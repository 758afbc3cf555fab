package pipeline

import (
	"fmt"
	"runtime/debug"
	"sync"
	"sync/atomic"

	"github.com/ThreeDotsLabs/watermill/message"
)

// workers run handlers on goroutines that outlive them. The router starts
// a goroutine for every message, with a small stack, and a run goes deep
// (middleware, the runner, templates, an HTTP client): each new goroutine
// grew its stack by copying it several times, 6 % of the CPU under load.
// A handler waits for its worker, so the router's concurrency bounds the
// number of workers.
//
// The idle workers are a stack: a job goes to the worker that finished
// last. A load keeps a few workers hot, busy or idle for microseconds, and
// their stacks stay grown; the workers only a peak needed wait at the
// bottom, where the collector shrinks their stacks (it halves, at each
// cycle, the stack of a goroutine that uses less than a quarter of it). A
// goroutine's stack counts in the collector's heap goal, so that with a
// gc_percent of 200 each byte of it costs three of RSS: idle workers that
// held 32 KiB each (a queue of idle workers took turns, so that every one
// had to keep its stack) cost 8–9 MB of RSS with 10,000 recipes loaded.
type workers struct {
	mu      sync.Mutex
	idle    []*worker // the last went idle most recently
	stopped bool
	started atomic.Int64 // workers started, for tests
	live    atomic.Int64 // workers running, for tests
}

// worker is one goroutine's mailbox: buffered 1, a nil job lets it go.
type worker struct{ jobs chan *job }

type job struct {
	f    func()
	done chan struct{} // buffered 1, reused with the job
}

var jobs = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}

func newWorkers() *workers { return &workers{} }

// do runs f on the worker idle last, or a new one, and waits for it.
func (w *workers) do(f func()) {
	j := jobs.Get().(*job)
	j.f = f
	var wk *worker
	w.mu.Lock()
	if n := len(w.idle); n > 0 {
		wk = w.idle[n-1]
		w.idle[n-1] = nil
		w.idle = w.idle[:n-1]
	}
	w.mu.Unlock()
	if wk != nil {
		wk.jobs <- j
	} else {
		w.started.Add(1)
		w.live.Add(1)
		go w.loop(&worker{jobs: make(chan *job, 1)}, j)
	}
	<-j.done
	j.f = nil
	jobs.Put(j)
}

func (w *workers) loop(wk *worker, j *job) {
	defer w.live.Add(-1)
	for j != nil {
		j.f()
		// idle before its job is done, so that the job's handler, if it
		// asks for a worker again at once, finds this one
		idle := w.push(wk)
		j.done <- struct{}{}
		if !idle {
			return
		}
		j = <-wk.jobs
	}
}

// push puts wk on top of the idle stack; false once the workers stopped.
func (w *workers) push(wk *worker) bool {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.stopped {
		return false
	}
	w.idle = append(w.idle, wk)
	return true
}

// stop lets the idle workers go, and each busy one once its job is done;
// a job given after it runs on a goroutine of its own.
func (w *workers) stop() {
	w.mu.Lock()
	idle := w.idle
	w.idle, w.stopped = nil, true
	w.mu.Unlock()
	for _, wk := range idle {
		wk.jobs <- nil
	}
}

// workerPanic carries a handler's panic, with the worker's stack, back to
// the handler's goroutine, where the router's recoverer takes it.
type workerPanic struct {
	value any
	stack string // a string: the recoverer prints the value with %#v
}

func (p workerPanic) String() string { return fmt.Sprintf("%v\n\n%s", p.value, p.stack) }

// middleware runs the handler on a worker; a panic in it is raised again
// in the handler's goroutine.
func (w *workers) middleware(h message.HandlerFunc) message.HandlerFunc {
	return func(msg *message.Message) (out []*message.Message, err error) {
		var p *workerPanic
		w.do(func() {
			defer func() {
				if r := recover(); r != nil {
					p = &workerPanic{value: r, stack: string(debug.Stack())}
				}
			}()
			out, err = h(msg)
		})
		if p != nil {
			panic(*p)
		}
		return out, err
	}
}
