package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrLeaseLost is returned by SavePoll when the process no longer holds
// the poller's lease (it expired and another process took it): what the
// poll produced must not commit.
var ErrLeaseLost = errors.New("the poller's lease is held by another process")

// LeasePoll takes or renews the lease of the poller key for owner until
// now+ttl, unless another owner holds an unexpired one. It reports
// whether owner holds it, and the poller's saved cursor (nil before the
// first save).
func (s *Store) LeasePoll(ctx context.Context, key, owner string, now time.Time, ttl time.Duration) (bool, []byte, error) {
	until := now.Add(ttl).UnixMilli()
	_, err := s.w().ExecContext(ctx, s.q(`INSERT INTO {polls} (key, cursor, owner, lease_until, polled_at) VALUES ($1, NULL, $2, $3, 0)
		ON CONFLICT (key) DO UPDATE SET owner = excluded.owner, lease_until = excluded.lease_until
		WHERE {polls}.owner = excluded.owner OR {polls}.lease_until < $4`), key, owner, until, now.UnixMilli())
	if err != nil {
		return false, nil, fmt.Errorf("lease poller: %w", err)
	}
	var holder string
	var cursor []byte
	err = s.w().QueryRowContext(ctx, s.q(`SELECT owner, cursor FROM {polls} WHERE key = $1`), key).Scan(&holder, &cursor)
	if err != nil {
		return false, nil, fmt.Errorf("lease poller: %w", err)
	}
	if holder != owner {
		return false, nil, nil
	}
	return true, cursor, nil
}

// SavePoll saves the poller's cursor inside tx, the transaction that
// stores the events the poll produced; it fails with ErrLeaseLost, so
// that nothing commits, when owner no longer holds the lease.
func (s *Store) SavePoll(ctx context.Context, tx Execer, key, owner string, cursor []byte, now time.Time) error {
	res, err := tx.ExecContext(ctx, s.q(`UPDATE {polls} SET cursor = $1, polled_at = $2 WHERE key = $3 AND owner = $4`),
		cursor, now.UnixMilli(), key, owner)
	if err != nil {
		return fmt.Errorf("save poller cursor: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return fmt.Errorf("save poller cursor: %w", err)
	}
	if n != 1 {
		return ErrLeaseLost
	}
	return nil
}

// ReleasePoll ends owner's lease of the poller, so that another process
// may take it at once (a clean shutdown).
func (s *Store) ReleasePoll(ctx context.Context, key, owner string) error {
	_, err := s.w().ExecContext(ctx, s.q(`UPDATE {polls} SET lease_until = 0 WHERE key = $1 AND owner = $2`), key, owner)
	if err != nil {
		return fmt.Errorf("release poller: %w", err)
	}
	return nil
}

// PollCursor reads a poller's saved cursor (nil when none).
func (s *Store) PollCursor(ctx context.Context, key string) ([]byte, error) {
	var cursor []byte
	err := s.DB.QueryRowContext(ctx, s.q(`SELECT cursor FROM {polls} WHERE key = $1`), key).Scan(&cursor)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read poller cursor: %w", err)
	}
	return cursor, nil
}
