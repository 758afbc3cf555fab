package store

// SetPruned has Prune tell f what each of its transactions deleted.
func SetPruned(s *Store, f func(table string, n int64)) { s.pruned = f }
