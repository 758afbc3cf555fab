package sqlqueue

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
