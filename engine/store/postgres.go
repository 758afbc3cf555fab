package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// OpenPostgres opens a pool on a PostgreSQL database (a DSN such as
// postgres://user@host:5432/db?sslmode=disable) through pgx's database/sql
// driver, and checks that it answers. The same pool serves reads and
// writes: PostgreSQL needs no single writer.
func OpenPostgres(ctx context.Context, dsn string) (*sql.DB, error) {
	cfg, err := pgx.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres dsn: %w", err)
	}
	if cfg.ConnectTimeout == 0 {
		cfg.ConnectTimeout = 10 * time.Second
	}
	db := stdlib.OpenDB(*cfg)
	// the broker's subscribers hold a connection each while a message is
	// handled, the group-commit writer one, and reads take the rest
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(16)
	db.SetConnMaxIdleTime(5 * time.Minute)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("connect to postgres at %s:%d: %w", cfg.Host, cfg.Port, err)
	}
	return db, nil
}

// ReleaseDedup undoes ClaimDedup and InsertEvent inside tx, for a broker
// that stored an event but could not hand it on: the sender's retry must
// then be accepted rather than taken for a duplicate. The claim is removed
// only while it still names eventID.
func (s *Store) ReleaseDedup(ctx context.Context, tx Execer, key, eventID string) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {dedup} WHERE key = $1 AND event_id = $2`), key, eventID); err != nil {
		return fmt.Errorf("release dedup key: %w", err)
	}
	return s.DeleteEvent(ctx, tx, eventID)
}

// DeleteEvent removes an event that will not run inside tx.
func (s *Store) DeleteEvent(ctx context.Context, tx Execer, id string) error {
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {events} WHERE id = $1`), id); err != nil {
		return fmt.Errorf("delete event: %w", err)
	}
	return nil
}
