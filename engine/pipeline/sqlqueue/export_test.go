package sqlqueue

// ClaimQuery is claimQuery, for the plan test.
var ClaimQuery = claimQuery

// HeldRows counts the rows whose leases the queue renews.
func (q *Queue) HeldRows() int {
	q.heldMu.Lock()
	defer q.heldMu.Unlock()
	return len(q.held)
}
