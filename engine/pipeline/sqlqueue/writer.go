// Package sqlqueue is a durable Watermill Publisher and Subscriber over a
// SQL queue table, the embedded default broker. Messages are leased, not
// locked: many are in flight at once, an Ack deletes the row, a Nack makes
// it available again (after a delay the handler may set), and a lease that
// runs out (a crashed process) makes it deliverable again. All writes go
// through a group-commit Writer, so that a burst of webhooks costs one
// transaction and one fsync, not one each.
package sqlqueue

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"sync"
)

// Op is one unit of work in a group-committed transaction.
type Op func(ctx context.Context, tx *sql.Tx) error

type pending struct {
	ctx  context.Context
	fn   Op
	done chan error
}

// Writer runs Ops in batches: every Op waiting when a transaction starts
// joins it, each under its own savepoint so that one failing Op does not
// undo the others. Do returns only after the commit: nothing is
// acknowledged before it is stored.
type Writer struct {
	db       *sql.DB
	ops      chan *pending
	maxBatch int
	wg       sync.WaitGroup
	closeMu  sync.RWMutex
	closed   bool
	stop     chan struct{}
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("sqlqueue: closed")

// NewWriter starts a writer with up to maxBatch Ops per transaction.
func NewWriter(db *sql.DB, maxBatch int) *Writer {
	if maxBatch <= 0 {
		maxBatch = 512
	}
	w := &Writer{db: db, ops: make(chan *pending, maxBatch*4), maxBatch: maxBatch, stop: make(chan struct{})}
	w.wg.Add(1)
	go w.loop()
	return w
}

// Do runs fn in the next transaction and waits for its commit.
func (w *Writer) Do(ctx context.Context, fn Op) error {
	p := &pending{ctx: ctx, fn: fn, done: make(chan error, 1)}
	w.closeMu.RLock()
	if w.closed {
		w.closeMu.RUnlock()
		return ErrClosed
	}
	select {
	case w.ops <- p:
	case <-ctx.Done():
		w.closeMu.RUnlock()
		return ctx.Err()
	}
	w.closeMu.RUnlock()
	// once queued, the op is committed or failed: wait for the answer even
	// if ctx ends, so that the caller never reports a stored event as lost
	return <-p.done
}

// Close stops the writer after the queued Ops ran.
func (w *Writer) Close() error {
	w.closeMu.Lock()
	if w.closed {
		w.closeMu.Unlock()
		return nil
	}
	w.closed = true
	close(w.ops)
	w.closeMu.Unlock()
	w.wg.Wait()
	return nil
}

func (w *Writer) loop() {
	defer w.wg.Done()
	batch := make([]*pending, 0, w.maxBatch)
	for first := range w.ops {
		batch = append(batch[:0], first)
	fill:
		for len(batch) < w.maxBatch {
			select {
			case p, ok := <-w.ops:
				if !ok {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		w.run(batch)
	}
}

func (w *Writer) run(batch []*pending) {
	ctx := context.Background()
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		for _, p := range batch {
			p.done <- fmt.Errorf("begin: %w", err)
		}
		return
	}
	errs := make([]error, len(batch))
	single := len(batch) == 1
	for i, p := range batch {
		if p.ctx.Err() != nil {
			errs[i] = p.ctx.Err()
			continue
		}
		if single {
			errs[i] = p.fn(p.ctx, tx)
			continue
		}
		if _, err := tx.ExecContext(ctx, "SAVEPOINT op"); err != nil {
			errs[i] = err
			continue
		}
		if err := p.fn(p.ctx, tx); err != nil {
			errs[i] = err
			if _, rerr := tx.ExecContext(ctx, "ROLLBACK TO SAVEPOINT op"); rerr != nil {
				// the transaction is unusable: fail the whole batch
				_ = tx.Rollback()
				for _, q := range batch {
					q.done <- fmt.Errorf("rollback to savepoint: %w", rerr)
				}
				return
			}
		}
		if _, err := tx.ExecContext(ctx, "RELEASE SAVEPOINT op"); err != nil && errs[i] == nil {
			errs[i] = err
		}
	}
	if single && errs[0] != nil {
		_ = tx.Rollback()
		batch[0].done <- errs[0]
		return
	}
	if err := tx.Commit(); err != nil {
		for _, p := range batch {
			p.done <- fmt.Errorf("commit: %w", err)
		}
		return
	}
	for i, p := range batch {
		p.done <- errs[i]
	}
}
