package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// TokensTable creates the tokens table: one row per connection that holds
// an OAuth token. Its metadata is in clear (none of it is secret); the
// token itself is sealed by engine/oauth (AES-256-GCM) before it reaches
// the store, which never sees it in clear. Migrate runs it.
const TokensTable = `CREATE TABLE IF NOT EXISTS {tokens} (connection TEXT PRIMARY KEY, type TEXT NOT NULL, account TEXT NOT NULL,
	scopes TEXT NOT NULL, extra TEXT NOT NULL, expiry BIGINT NOT NULL, refreshed_at BIGINT NOT NULL, state TEXT NOT NULL,
	last_error TEXT NOT NULL, updated_at BIGINT NOT NULL, key_id TEXT NOT NULL, sealed <blob> NOT NULL)`

// TokenRow is a connection's stored token: metadata in clear, and the
// token sealed. Times are kept to the millisecond; a zero time is stored
// as 0 and read back as the zero time.
type TokenRow struct {
	Connection  string
	Type        string
	Account     string
	Scopes      []string
	Extra       map[string]string
	Expiry      time.Time
	RefreshedAt time.Time
	State       string
	LastError   string
	UpdatedAt   time.Time
	// KeyID names the master key the token was sealed with.
	KeyID string
	// Sealed is the encrypted token (nil in ListTokens' rows).
	Sealed []byte
}

func millis(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMillis(ms int64) time.Time {
	if ms == 0 {
		return time.Time{}
	}
	return time.UnixMilli(ms).UTC()
}

// tokenWriter is tx, or the store's write handle when tx is nil.
func (s *Store) tokenWriter(tx Execer) Execer {
	if tx != nil {
		return tx
	}
	return s.w()
}

// PutToken stores a connection's token row, replacing the one it had,
// inside tx (nil: a transaction of its own on the write handle).
func (s *Store) PutToken(ctx context.Context, tx Execer, r *TokenRow) error {
	scopes, err := json.Marshal(nonNil(r.Scopes))
	if err != nil {
		return fmt.Errorf("store token of %s: %w", r.Connection, err)
	}
	extra, err := json.Marshal(nonNilMap(r.Extra))
	if err != nil {
		return fmt.Errorf("store token of %s: %w", r.Connection, err)
	}
	_, err = s.tokenWriter(tx).ExecContext(ctx, s.q(`INSERT INTO {tokens} (connection, type, account, scopes, extra, expiry, refreshed_at,
			state, last_error, updated_at, key_id, sealed) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (connection) DO UPDATE SET type = excluded.type, account = excluded.account, scopes = excluded.scopes,
			extra = excluded.extra, expiry = excluded.expiry, refreshed_at = excluded.refreshed_at, state = excluded.state,
			last_error = excluded.last_error, updated_at = excluded.updated_at, key_id = excluded.key_id, sealed = excluded.sealed`),
		r.Connection, r.Type, r.Account, string(scopes), string(extra), millis(r.Expiry), millis(r.RefreshedAt),
		r.State, r.LastError, millis(r.UpdatedAt), r.KeyID, r.Sealed)
	if err != nil {
		return fmt.Errorf("store token of %s: %w", r.Connection, err)
	}
	return nil
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func nonNilMap(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

const tokenColumns = `connection, type, account, scopes, extra, expiry, refreshed_at, state, last_error, updated_at, key_id`

func scanToken(sc interface{ Scan(...any) error }, sealed bool) (*TokenRow, error) {
	r := &TokenRow{}
	var scopes, extra string
	var expiry, refreshed, updated int64
	dest := []any{&r.Connection, &r.Type, &r.Account, &scopes, &extra, &expiry, &refreshed, &r.State, &r.LastError, &updated, &r.KeyID}
	if sealed {
		dest = append(dest, &r.Sealed)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(scopes), &r.Scopes); err != nil {
		return nil, fmt.Errorf("the scopes of %s: %w", r.Connection, err)
	}
	if err := json.Unmarshal([]byte(extra), &r.Extra); err != nil {
		return nil, fmt.Errorf("the extra fields of %s: %w", r.Connection, err)
	}
	r.Expiry, r.RefreshedAt, r.UpdatedAt = fromMillis(expiry), fromMillis(refreshed), fromMillis(updated)
	return r, nil
}

// GetToken reads a connection's token row, sealed token included, inside
// tx (nil: on the read pool). ErrNotFound when it has none.
func (s *Store) GetToken(ctx context.Context, tx Execer, connection string) (*TokenRow, error) {
	q := Execer(s.DB)
	if tx != nil {
		q = tx
	}
	r, err := scanToken(q.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+`, sealed FROM {tokens} WHERE connection = $1`), connection), true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read token of %s: %w", connection, err)
	}
	return r, nil
}

// ListTokens reads every token row by connection name, without the
// sealed tokens.
func (s *Store) ListTokens(ctx context.Context) ([]*TokenRow, error) {
	return s.listTokens(ctx, s.DB, false)
}

// SealedTokens reads every token row, sealed tokens included, inside tx:
// what re-encrypting them all needs (see LockTokens).
func (s *Store) SealedTokens(ctx context.Context, tx Execer) ([]*TokenRow, error) {
	return s.listTokens(ctx, tx, true)
}

func (s *Store) listTokens(ctx context.Context, q Execer, sealed bool) ([]*TokenRow, error) {
	cols := tokenColumns
	if sealed {
		cols += ", sealed"
	}
	rows, err := q.QueryContext(ctx, s.q(`SELECT `+cols+` FROM {tokens} ORDER BY connection`))
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []*TokenRow
	for rows.Next() {
		r, err := scanToken(rows, sealed)
		if err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	return out, nil
}

// LockTokens keeps other writers off the tokens table until tx ends, so
// that a token saved meanwhile (a refresh by another process) is neither
// lost nor left under an old key. On SQLite the write transaction already
// holds the database's write lock.
func (s *Store) LockTokens(ctx context.Context, tx Execer) error {
	if s.Dialect != Postgres {
		return nil
	}
	// SHARE ROW EXCLUSIVE: reads go on, writes wait
	if _, err := tx.ExecContext(ctx, s.q(`LOCK TABLE {tokens} IN SHARE ROW EXCLUSIVE MODE`)); err != nil {
		return fmt.Errorf("lock the tokens: %w", err)
	}
	return nil
}

// ResealToken replaces a connection's sealed token and its key id inside
// tx, leaving its metadata as it is.
func (s *Store) ResealToken(ctx context.Context, tx Execer, connection, keyID string, sealed []byte) error {
	res, err := tx.ExecContext(ctx, s.q(`UPDATE {tokens} SET key_id = $1, sealed = $2 WHERE connection = $3`), keyID, sealed, connection)
	if err != nil {
		return fmt.Errorf("re-encrypt token of %s: %w", connection, err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return fmt.Errorf("re-encrypt token of %s: %d rows updated (%v)", connection, n, err)
	}
	return nil
}

// SetTokenState records a connection's state (ok, needs_reauth) and last
// error. It reports false when the connection has no token row.
func (s *Store) SetTokenState(ctx context.Context, connection, state, lastError string, now time.Time) (bool, error) {
	res, err := s.w().ExecContext(ctx, s.q(`UPDATE {tokens} SET state = $1, last_error = $2, updated_at = $3 WHERE connection = $4`),
		state, lastError, millis(now), connection)
	if err != nil {
		return false, fmt.Errorf("set state of %s: %w", connection, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("set state of %s: %w", connection, err)
	}
	return n == 1, nil
}

// DeleteToken removes a connection's token row. It reports false when
// there was none.
func (s *Store) DeleteToken(ctx context.Context, connection string) (bool, error) {
	res, err := s.w().ExecContext(ctx, s.q(`DELETE FROM {tokens} WHERE connection = $1`), connection)
	if err != nil {
		return false, fmt.Errorf("delete token of %s: %w", connection, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("delete token of %s: %w", connection, err)
	}
	return n == 1, nil
}

// TokenKeyIDs counts the stored tokens by the id of the key they were
// sealed with.
func (s *Store) TokenKeyIDs(ctx context.Context) (map[string]int, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT key_id, COUNT(*) FROM {tokens} GROUP BY key_id`))
	if err != nil {
		return nil, fmt.Errorf("count tokens by key: %w", err)
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var id string
		var n int
		if err := rows.Scan(&id, &n); err != nil {
			return nil, fmt.Errorf("count tokens by key: %w", err)
		}
		out[id] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("count tokens by key: %w", err)
	}
	return out, nil
}

// InWriteTx runs fn in a transaction on the write handle, committed when
// fn returns nil.
func (s *Store) InWriteTx(ctx context.Context, fn func(tx Execer) error) error {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // after commit it is a no-op
	if err := fn(tx); err != nil {
		return err
	}
	return tx.Commit()
}
