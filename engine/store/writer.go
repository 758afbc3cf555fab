package store

// The group-commit writer: every write of the store and of the brokers
// that keep their messages in it goes through a Writer, so that a burst of
// webhooks costs one transaction and one fsync, not one each.

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"sync"
	"sync/atomic"
	"time"
)

// Op is one unit of work in a group-committed transaction. An Op may run
// twice: when another Op of its batch fails, the batch is rolled back and
// each Op is run again in a transaction of its own, so an Op must derive
// its results from what it reads, not from an earlier try.
// An Op writes through tx, the batch's transaction, with prepared
// statements cached across batches (SQLite spends most of a small
// statement's time parsing it).
type Op func(ctx context.Context, tx Execer) error

type pending struct {
	ctx  context.Context
	fn   Op
	done chan error
}

// Writer runs Ops in batches: every Op waiting when a transaction starts
// joins it. Do returns only after the commit: nothing is acknowledged
// before it is stored.
type Writer struct {
	db        *sql.DB
	ops       chan *pending
	maxBatch  int
	wg        sync.WaitGroup
	closeMu   sync.RWMutex
	closed    bool
	stmts     map[string]*cachedStmt // used by the writer goroutine only
	toPrepare map[string]bool        // likewise
	inTx      txStmts                // likewise
	uses      uint64                 // likewise: statements looked up, a clock for cachedStmt.used
	txs, done atomic.Int64
	// Linger, when positive, is a commit delay: a busy writer (its last
	// transaction held lingerAbove ops or more) lets ops gather for this
	// long before it starts the next transaction (up to maxBatch of them
	// join it). A commit costs the same for one op as for a hundred
	// (WAL page writes, an fsync, a checkpoint share): fewer, larger
	// transactions trade a little latency for much less work per op. Set
	// it before the first Do.
	Linger time.Duration
	// Detached runs the statements of Ops under a context that is never
	// done, whatever the Op's. The Op's context is still checked before
	// the Op runs. For a local database, where a statement takes
	// microseconds: a context that can end makes modernc's SQLite driver
	// watch it with a goroutine and a progress handler for every
	// statement (and database/sql, for every Rows), which costs more than
	// the statement under load. Not for a database over the network,
	// where the context is what ends a statement that hangs. Set it
	// before the first Do.
	Detached bool
	// Observe, when set, is called by the writer's goroutine after each
	// transaction, committed or not, with the number of Ops in it and how
	// long it took from its begin to its commit: what an Op waits for
	// once its transaction started. Set it before the first Do.
	Observe func(ops int, took time.Duration)
}

// Statements returns the texts of the statements the writer prepared or
// will prepare (its statement cache), read on the writer's goroutine: for
// tests that check which shapes of statements the writer's users make.
func (w *Writer) Statements() []string {
	var out []string
	_ = w.Do(context.Background(), func(context.Context, Execer) error {
		out = out[:0] // an op may run twice
		for q := range w.stmts {
			out = append(out, q)
		}
		for q := range w.toPrepare {
			if _, ok := w.stmts[q]; !ok {
				out = append(out, q)
			}
		}
		return nil
	})
	return out
}

// lingerAbove is the batch size from which the writer counts as busy: an
// idle writer commits at once.
const lingerAbove = 4

// Stats returns how many transactions the writer committed or tried, and
// how many Ops ran in them: their ratio is the group-commit batch size.
func (w *Writer) Stats() (txs, ops int64) { return w.txs.Load(), w.done.Load() }

// maxCachedStmts bounds the statement cache (queries with a variable
// number of placeholders would otherwise grow it). When it is full, the
// statement used least recently makes room for a new one: a process that
// runs for months meets more shapes than it keeps, and a cache that kept
// its first ones would leave every later one unprepared.
const maxCachedStmts = 256

// cachedStmt is a prepared statement and when it was last used.
type cachedStmt struct {
	st   *sql.Stmt
	used uint64
}

type cachedTx struct {
	tx *sql.Tx
	w  *Writer
}

// txStmts holds the statements bound to the writer's current transaction:
// binding one (Tx.StmtContext) makes a new Stmt each time, and a batch
// runs the same few statements for every Op. Only the writer's goroutine
// uses it; try clears it for each transaction.
type txStmts map[string]*sql.Stmt

// ctx is the context a statement of an Op runs under: the Op's, or with
// Detached one that is never done.
func (c cachedTx) ctx(op context.Context) context.Context {
	if c.w.Detached {
		return context.Background()
	}
	return op
}

func (c cachedTx) stmt(ctx context.Context, query string) *sql.Stmt {
	c.w.uses++
	cs, ok := c.w.stmts[query]
	if !ok {
		// preparing needs a free connection, and this transaction may hold
		// the only one: run unprepared now, prepare between transactions
		if len(c.w.toPrepare) < maxCachedStmts {
			c.w.toPrepare[query] = true
		}
		return nil
	}
	cs.used = c.w.uses
	if bound, ok := c.w.inTx[query]; ok {
		return bound
	}
	bound := c.tx.StmtContext(ctx, cs.st)
	c.w.inTx[query] = bound
	return bound
}

// prepareQueued prepares the statements met since the last transaction;
// the writer calls it when it holds no connection.
func (w *Writer) prepareQueued() {
	for q := range w.toPrepare {
		delete(w.toPrepare, q)
		if len(w.stmts) >= maxCachedStmts {
			w.evictOldest()
		}
		if st, err := w.db.PrepareContext(context.Background(), q); err == nil {
			w.stmts[q] = &cachedStmt{st: st, used: w.uses}
		}
	}
}

// evictOldest closes the statement used least recently. It runs between
// transactions: no transaction holds the statement.
func (w *Writer) evictOldest() {
	oldest, at := "", uint64(math.MaxUint64)
	for q, cs := range w.stmts {
		if cs.used < at {
			oldest, at = q, cs.used
		}
	}
	if cs, ok := w.stmts[oldest]; ok {
		cs.st.Close()
		delete(w.stmts, oldest)
	}
}

func (c cachedTx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	ctx = c.ctx(ctx)
	if st := c.stmt(ctx, query); st != nil {
		return st.ExecContext(ctx, args...)
	}
	return c.tx.ExecContext(ctx, query, args...)
}

func (c cachedTx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	ctx = c.ctx(ctx)
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryContext(ctx, args...)
	}
	return c.tx.QueryContext(ctx, query, args...)
}

func (c cachedTx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	ctx = c.ctx(ctx)
	if st := c.stmt(ctx, query); st != nil {
		return st.QueryRowContext(ctx, args...)
	}
	return c.tx.QueryRowContext(ctx, query, args...)
}

// ErrClosed is returned after Close.
var ErrClosed = errors.New("store writer: closed")

// NewWriter starts a writer with up to maxBatch Ops per transaction.
func NewWriter(db *sql.DB, maxBatch int) *Writer {
	if maxBatch <= 0 {
		maxBatch = 512
	}
	w := &Writer{db: db, ops: make(chan *pending, maxBatch*4), maxBatch: maxBatch, stmts: map[string]*cachedStmt{}, toPrepare: map[string]bool{}, inTx: txStmts{}}
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
	for _, cs := range w.stmts {
		cs.st.Close()
	}
	return nil
}

func (w *Writer) loop() {
	defer w.wg.Done()
	batch := make([]*pending, 0, w.maxBatch)
	last := 0
	for first := range w.ops {
		batch = append(batch[:0], first)
		if w.Linger > 0 && last >= lingerAbove {
			// sleep rather than wait on each arrival: a wake-up per op
			// would cost more than the transactions it saves
			time.Sleep(w.Linger)
		}
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
		last = len(batch)
		w.run(batch)
	}
}

func (w *Writer) run(batch []*pending) {
	defer w.prepareQueued()
	errs, commitErr := w.try(batch)
	if commitErr == nil && !anyErr(errs) {
		for _, p := range batch {
			p.done <- nil
		}
		return
	}
	if len(batch) == 1 {
		err := commitErr
		if errs[0] != nil {
			err = errs[0]
		}
		batch[0].done <- err
		return
	}
	// something failed: run each op alone so that one bad op does not fail
	// the others
	for _, p := range batch {
		errs, commitErr := w.try([]*pending{p})
		if errs[0] != nil {
			p.done <- errs[0]
		} else {
			p.done <- commitErr
		}
	}
}

func anyErr(errs []error) bool {
	for _, e := range errs {
		if e != nil {
			return true
		}
	}
	return false
}

// try runs a batch in one transaction, committing only when every op
// succeeded.
func (w *Writer) try(batch []*pending) ([]error, error) {
	ctx := context.Background()
	w.txs.Add(1)
	w.done.Add(int64(len(batch)))
	if w.Observe != nil {
		defer func(began time.Time) { w.Observe(len(batch), time.Since(began)) }(time.Now())
	}
	errs := make([]error, len(batch))
	tx, err := w.db.BeginTx(ctx, nil)
	if err != nil {
		return errs, fmt.Errorf("begin: %w", err)
	}
	clear(w.inTx)
	defer clear(w.inTx) // the statements end with the transaction
	ctxTx := cachedTx{tx: tx, w: w}
	for i, p := range batch {
		if err := p.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if errs[i] = p.fn(p.ctx, ctxTx); errs[i] != nil {
			_ = tx.Rollback()
			return errs, nil
		}
	}
	if anyErr(errs) {
		_ = tx.Rollback()
		return errs, nil
	}
	if err := tx.Commit(); err != nil {
		return errs, fmt.Errorf("commit: %w", err)
	}
	return errs, nil
}
