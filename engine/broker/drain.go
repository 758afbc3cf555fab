package broker

import (
	"context"
	"sync"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
)

// Drainer is the Subscriber a broker gives the router. It hands on the
// messages of the broker's own subscriptions, which run under a context
// of its own: when the router closes, it stops handing on messages and
// waits (up to a timeout) for those in flight to be acknowledged before it
// closes the subscriptions. The subscribers of watermill-sql and
// watermill-nats cancel a message's context and forget its ack as soon as
// they close, which would cut every run in flight short and have it run
// again, steps and all, by the next process. It closes once, when the
// router first calls Close or cancels a subscription's context.
type Drainer struct {
	subscribe  func(ctx context.Context, topic string) ([]<-chan *message.Message, error)
	closeInner func() error
	timeout    time.Duration
	logger     watermill.LoggerAdapter

	ctx      context.Context // the inner subscriptions'
	cancel   context.CancelFunc
	mu       sync.Mutex
	stopped  bool
	inflight int
	idle     chan struct{} // closed when the last message in flight is done, once stopped
	once     sync.Once
	err      error
}

// NewDrainer returns a Drainer over a broker's subscriptions: subscribe
// opens those behind a topic, under the Drainer's context; closeInner
// closes them all; timeout bounds how long closing waits for the messages
// in flight.
func NewDrainer(subscribe func(context.Context, string) ([]<-chan *message.Message, error), closeInner func() error,
	timeout time.Duration, logger watermill.LoggerAdapter) *Drainer {
	ctx, cancel := context.WithCancel(context.Background())
	return &Drainer{subscribe: subscribe, closeInner: closeInner, timeout: timeout, logger: logger,
		ctx: ctx, cancel: cancel, idle: make(chan struct{})}
}

// Subscribe implements message.Subscriber.
func (d *Drainer) Subscribe(ctx context.Context, topic string) (<-chan *message.Message, error) {
	ins, err := d.subscribe(d.ctx, topic)
	if err != nil {
		return nil, err
	}
	out := make(chan *message.Message)
	var wg sync.WaitGroup
	for _, in := range ins {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range in {
				d.forward(ctx, m, out)
			}
		}()
	}
	go func() {
		wg.Wait()
		close(out)
	}()
	// the router ends a subscription either way: by Close or by cancelling
	// its context
	go func() {
		select {
		case <-ctx.Done():
			_ = d.Close()
		case <-d.ctx.Done():
		}
	}()
	return out, nil
}

// forward hands m on, unless the subscriber is closing: then m is
// nacked, to be delivered again (by another process, or after a restart).
func (d *Drainer) forward(ctx context.Context, m *message.Message, out chan<- *message.Message) {
	if !d.begin() {
		m.Nack()
		return
	}
	// the delivery's context, taken before the router decorates m
	delivery := m.Context()
	select {
	case out <- m:
		go func() {
			select {
			case <-m.Acked():
			case <-m.Nacked():
			case <-delivery.Done(): // the delivery ended (ack deadline)
			}
			d.end()
		}()
	case <-ctx.Done():
		m.Nack()
		d.end()
	case <-d.ctx.Done():
		m.Nack()
		d.end()
	}
}

func (d *Drainer) begin() bool {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.stopped {
		return false
	}
	d.inflight++
	return true
}

func (d *Drainer) end() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.inflight--
	if d.stopped && d.inflight == 0 {
		close(d.idle)
	}
}

// Close implements message.Subscriber.
func (d *Drainer) Close() error {
	d.once.Do(func() {
		d.mu.Lock()
		d.stopped = true
		if d.inflight == 0 {
			close(d.idle)
		}
		d.mu.Unlock()
		select {
		case <-d.idle:
		case <-time.After(d.timeout):
			d.logger.Info("closing with messages still in flight: they will be delivered again", nil)
		}
		// the subscriptions close before their context ends: watermill-sql
		// commits a message's offset after its ack, under that context, and
		// a message whose commit is cut short comes back after a restart,
		// which for a run paused until its retry time means too soon
		d.err = d.closeInner()
		d.cancel()
	})
	return d.err
}
