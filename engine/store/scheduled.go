package store

import (
	"cmp"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"slices"
	"time"
)

// Scheduled is a message held in the store until it is due: a broker
// that cannot delay a delivery itself publishes it then (a durable retry).
type Scheduled struct {
	ID    int64
	Topic string
	// Key says what the message is about (a run id): see IsScheduled.
	Key      string
	UUID     string
	Payload  []byte
	Metadata map[string]string
	DueAt    time.Time
}

// Schedule stores a message to publish at its due time, inside tx.
func (s *Store) Schedule(ctx context.Context, tx Execer, m *Scheduled) error {
	meta, err := json.Marshal(m.Metadata)
	if err != nil {
		return fmt.Errorf("schedule message: %w", err)
	}
	// in whole milliseconds, rounded up: never due before its time
	// (UnixNano would overflow for times after 2262: a huge Retry-After)
	due := m.DueAt.UnixMilli()
	if m.DueAt.Nanosecond()%int(time.Millisecond) != 0 {
		due++
	}
	_, err = tx.ExecContext(ctx, s.q(`INSERT INTO {scheduled} (topic, key, uuid, payload, metadata, due_at) VALUES ($1, $2, $3, $4, $5, $6)`),
		m.Topic, m.Key, m.UUID, m.Payload, string(meta), due)
	if err != nil {
		return fmt.Errorf("schedule message: %w", err)
	}
	return nil
}

// ClaimDue deletes up to limit messages due at now, earliest first, and
// returns them, inside tx: the caller publishes them in the same
// transaction, so that a message is either still scheduled or published.
// On PostgreSQL the rows another transaction claims are skipped, not
// waited for, so that several processes claim side by side and never the
// same message.
func (s *Store) ClaimDue(ctx context.Context, tx Execer, now time.Time, limit int) ([]*Scheduled, error) {
	lock := ""
	if s.Dialect == Postgres {
		lock = " FOR UPDATE SKIP LOCKED"
	}
	rows, err := tx.QueryContext(ctx, s.q(`DELETE FROM {scheduled} WHERE id IN
		(SELECT id FROM {scheduled} WHERE due_at <= $1 ORDER BY due_at, id LIMIT $2`+lock+`)
		RETURNING id, topic, key, uuid, payload, metadata, due_at`), now.UnixMilli(), limit)
	if err != nil {
		return nil, fmt.Errorf("claim scheduled messages: %w", err)
	}
	defer rows.Close()
	var out []*Scheduled
	for rows.Next() {
		m := &Scheduled{}
		var meta string
		var due int64
		if err := rows.Scan(&m.ID, &m.Topic, &m.Key, &m.UUID, &m.Payload, &meta, &due); err != nil {
			return nil, fmt.Errorf("claim scheduled messages: %w", err)
		}
		// written by Schedule, so it decodes; were it not, the message is
		// still worth publishing, and failing here would hold back every
		// message behind it
		_ = json.Unmarshal([]byte(meta), &m.Metadata)
		m.DueAt = time.UnixMilli(due)
		out = append(out, m)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim scheduled messages: %w", err)
	}
	// RETURNING gives no order
	slices.SortFunc(out, func(a, b *Scheduled) int {
		return cmp.Or(a.DueAt.Compare(b.DueAt), cmp.Compare(a.ID, b.ID))
	})
	return out, nil
}

// NextDue returns the earliest due time of the scheduled messages; false
// when none is scheduled.
func (s *Store) NextDue(ctx context.Context) (time.Time, bool, error) {
	var due sql.NullInt64
	if err := s.DB.QueryRowContext(ctx, s.q(`SELECT MIN(due_at) FROM {scheduled}`)).Scan(&due); err != nil {
		return time.Time{}, false, fmt.Errorf("next scheduled message: %w", err)
	}
	if !due.Valid {
		return time.Time{}, false, nil
	}
	return time.UnixMilli(due.Int64), true, nil
}

// IsScheduled reports whether a message with this key is scheduled on
// topic: another message with the key delivered meanwhile is a copy of
// one that was put off.
func (s *Store) IsScheduled(ctx context.Context, topic, key string) (bool, error) {
	st, err := s.prepared(ctx, `SELECT EXISTS (SELECT 1 FROM {scheduled} WHERE topic = $1 AND key = $2)`)
	if err != nil {
		return false, fmt.Errorf("look up a scheduled message: %w", err)
	}
	var ok bool
	if err := st.QueryRowContext(ctx, topic, key).Scan(&ok); err != nil {
		return false, fmt.Errorf("look up a scheduled message: %w", err)
	}
	return ok, nil
}

// CountScheduled counts the messages scheduled on a topic.
func (s *Store) CountScheduled(ctx context.Context, topic string) (int64, error) {
	var n int64
	if err := s.DB.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM {scheduled} WHERE topic = $1`), topic).Scan(&n); err != nil {
		return 0, fmt.Errorf("count scheduled messages: %w", err)
	}
	return n, nil
}
