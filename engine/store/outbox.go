package store

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// An OutboxEntry is an event stored for a broker whose messages commit
// apart from the store (NATS) and not yet known to be published.
type OutboxEntry struct {
	EventID string
	// Recipes the event was accepted for (see Event.Recipes).
	Recipes   []string
	CreatedAt time.Time
}

// AddOutbox records, inside the transaction that stores the event, that
// event ev is to be published. The broker removes the entry once the
// publish is confirmed (DeleteOutbox); an entry left behind (the process
// died in between) is published again (Outbox).
func (s *Store) AddOutbox(ctx context.Context, tx Execer, ev *Event, now time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO {outbox} (event_id, recipes, created_at) VALUES ($1, $2, $3)`),
		ev.ID, strings.Join(ev.Recipes, "\n"), now.UnixMilli())
	if err != nil {
		return fmt.Errorf("add to the outbox: %w", err)
	}
	return nil
}

// DeleteOutbox removes the entries of the events ids inside tx.
func (s *Store) DeleteOutbox(ctx context.Context, tx Execer, ids ...string) error {
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {outbox} WHERE event_id = $1`), id); err != nil {
			return fmt.Errorf("delete from the outbox: %w", err)
		}
	}
	return nil
}

// Outbox returns up to limit entries created before before, oldest first.
func (s *Store) Outbox(ctx context.Context, before time.Time, limit int) ([]OutboxEntry, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT event_id, recipes, created_at FROM {outbox} WHERE created_at < $1 ORDER BY created_at LIMIT $2`),
		before.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	defer rows.Close()
	var out []OutboxEntry
	for rows.Next() {
		var e OutboxEntry
		var recipes string
		var at int64
		if err := rows.Scan(&e.EventID, &recipes, &at); err != nil {
			return nil, fmt.Errorf("read the outbox: %w", err)
		}
		if recipes != "" {
			e.Recipes = strings.Split(recipes, "\n")
		}
		e.CreatedAt = time.UnixMilli(at).UTC()
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read the outbox: %w", err)
	}
	return out, nil
}
