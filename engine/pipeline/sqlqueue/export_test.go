package sqlqueue

import "context"

// ClaimQuery is claimQuery, for the plan test.
var ClaimQuery = claimQuery

// HeldRows counts the rows whose leases the queue renews.
func (q *Queue) HeldRows() int {
	q.heldMu.Lock()
	defer q.heldMu.Unlock()
	return len(q.held)
}

// DeleteAcked is what the ack loop does with a batch of acked rows.
func (q *Queue) DeleteAcked(seqs ...int64) { q.deleteAcked(seqs) }

// Statements returns the texts of the statements the writer prepared or
// will prepare (its statement cache), read on the writer's goroutine.
func (w *Writer) Statements() []string {
	var out []string
	_ = w.Do(context.Background(), func(context.Context, Tx) error {
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
