package store

import (
	"context"
	"fmt"
	"time"
)

// AuditEntry is one line of the audit log: who changed what, never a
// secret (an API key is named by its fingerprint, a token never appears).
type AuditEntry struct {
	ID     int64     `json:"id"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`  // "cli:alice", "api:key-3f2a9c1d", "serve"
	Action string    `json:"action"` // "connection.connected", "recipe.run", ...
	Target string    `json:"target"` // the connection, recipe or run
	Detail string    `json:"detail,omitempty"`
}

// AddAudit appends an entry to the audit log (At is now when zero).
func (s *Store) AddAudit(ctx context.Context, e AuditEntry) error {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	_, err := s.w().ExecContext(ctx, s.q(`INSERT INTO {audit} (at, actor, action, target, detail) VALUES ($1, $2, $3, $4, $5)`),
		e.At.UnixMicro(), e.Actor, e.Action, e.Target, e.Detail)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

// ListAudit lists the audit log's entries since a time, newest first, at
// most limit (100 when not positive).
func (s *Store) ListAudit(ctx context.Context, since time.Time, limit int) ([]AuditEntry, error) {
	if limit <= 0 {
		limit = 100
	}
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT id, at, actor, action, target, detail FROM {audit} WHERE at >= $1 ORDER BY at DESC, id DESC LIMIT $2`),
		since.UnixMicro(), limit)
	if err != nil {
		return nil, fmt.Errorf("list audit: %w", err)
	}
	defer rows.Close()
	out := []AuditEntry{}
	for rows.Next() {
		var e AuditEntry
		var at int64
		if err := rows.Scan(&e.ID, &at, &e.Actor, &e.Action, &e.Target, &e.Detail); err != nil {
			return nil, fmt.Errorf("list audit: %w", err)
		}
		e.At = time.UnixMicro(at).UTC()
		out = append(out, e)
	}
	return out, rows.Err()
}
