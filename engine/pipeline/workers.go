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
// A worker keeps the stack it grew, even across the collector's cycles
// (see next); a handler waits for its worker, so
// the router's concurrency bounds the number of workers.
type workers struct {
	jobs     chan *job // unbuffered: a send succeeds only to an idle worker
	quit     chan struct{}
	quitOnce sync.Once
	started  atomic.Int64 // workers started, for tests
}

type job struct {
	f    func()
	done chan struct{} // buffered 1, reused with the job
}

var jobs = sync.Pool{New: func() any { return &job{done: make(chan struct{}, 1)} }}

func newWorkers() *workers {
	return &workers{jobs: make(chan *job), quit: make(chan struct{})}
}

// do runs f on an idle worker, or a new one, and waits for it.
func (w *workers) do(f func()) {
	j := jobs.Get().(*job)
	j.f = f
	select {
	case w.jobs <- j:
	default:
		w.started.Add(1)
		go w.loop(j)
	}
	<-j.done
	j.f = nil
	jobs.Put(j)
}

func (w *workers) loop(j *job) {
	for {
		j.f()
		j.done <- struct{}{}
		var ok bool
		if j, ok = w.next(); !ok {
			return
		}
	}
}

// next waits for the worker's next job with stackHeld bytes of its stack
// in use: the collector halves the stack of a goroutine that uses less
// than a quarter of it, at every cycle, and a run then grows it back by
// copying it again.
//
//go:noinline
func (w *workers) next() (*job, bool) {
	var held [stackHeld]byte
	defer hold(&held)
	select {
	case j := <-w.jobs:
		return j, true
	case <-w.quit:
		return nil, false
	}
}

const stackHeld = 8 << 10

//go:noinline
func hold(*[stackHeld]byte) {}

// stop ends the idle workers (and each busy one once its job is done).
func (w *workers) stop() { w.quitOnce.Do(func() { close(w.quit) }) }

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
