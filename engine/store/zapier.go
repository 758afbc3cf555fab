package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ZapierTables create the tables of the Zapier REST hooks (engine/zapier):
// the subscriptions, the items published to them (kept for the samples
// Zapier's editor shows, and as the body of their deliveries), and one
// delivery per item and subscriber, each a unit retried on its own.
// MigrateZapier runs them; each can run again.
var ZapierTables = []string{
	`CREATE TABLE IF NOT EXISTS {zapier_hooks} (id TEXT PRIMARY KEY, event TEXT NOT NULL, target TEXT NOT NULL,
		filter TEXT NOT NULL, created_by TEXT NOT NULL, created_at BIGINT NOT NULL)`,
	`CREATE UNIQUE INDEX IF NOT EXISTS {zapier_hooks_target} ON {zapier_hooks} (event, target)`,
	`CREATE TABLE IF NOT EXISTS {zapier_items} (id TEXT PRIMARY KEY, event TEXT NOT NULL, run_id TEXT NOT NULL,
		body TEXT NOT NULL, created_at BIGINT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS {zapier_items_event} ON {zapier_items} (event, created_at)`,
	`CREATE TABLE IF NOT EXISTS {zapier_deliveries} (id TEXT PRIMARY KEY, item_id TEXT NOT NULL, hook_id TEXT NOT NULL,
		event TEXT NOT NULL, target TEXT NOT NULL, run_id TEXT NOT NULL, step TEXT NOT NULL, status TEXT NOT NULL,
		attempts INTEGER NOT NULL, claimed INTEGER NOT NULL, next_at BIGINT NOT NULL, last_code INTEGER NOT NULL,
		last_error TEXT NOT NULL, created_at BIGINT NOT NULL, updated_at BIGINT NOT NULL, done_at BIGINT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS {zapier_deliveries_due} ON {zapier_deliveries} (status, next_at)`,
	`CREATE INDEX IF NOT EXISTS {zapier_deliveries_run} ON {zapier_deliveries} (run_id)`,
	`CREATE INDEX IF NOT EXISTS {zapier_deliveries_hook} ON {zapier_deliveries} (hook_id, status)`,
}

// The statuses of a Zapier delivery.
const (
	DeliveryPending      = "pending"      // to send, at next_at
	DeliveryDelivered    = "delivered"    // the subscriber answered 2xx
	DeliveryFailed       = "failed"       // a 4xx other than 408, 410 and 429, or the attempts ran out
	DeliveryGone         = "gone"         // the subscriber answered 410: its subscription was deleted
	DeliveryUnsubscribed = "unsubscribed" // the subscription was deleted before it was sent
)

// ZapierSamplesKept is how many items of an event the store keeps for
// its samples (beyond those still to deliver).
const ZapierSamplesKept = 50

// MigrateZapier creates the Zapier tables (ZapierTables).
func (s *Store) MigrateZapier(ctx context.Context) error {
	return s.CreateTables(ctx, ZapierTables...)
}

// ZapierHook is one REST-hook subscription: Zapier's target URL for one
// event, with optional filter fields (an item is delivered when each of
// them equals the item's field of that name).
type ZapierHook struct {
	ID        string            `json:"id"`
	Event     string            `json:"event"`
	Target    string            `json:"target_url"`
	Filter    map[string]string `json:"filter,omitempty"`
	CreatedBy string            `json:"created_by,omitempty"`
	CreatedAt time.Time         `json:"created_at"`
}

// ZapierItem is one item published to an event: the JSON object every
// subscriber receives, with its stable id.
type ZapierItem struct {
	ID        string    `json:"id"`
	Event     string    `json:"event"`
	RunID     string    `json:"run_id"`
	Body      []byte    `json:"-"`
	CreatedAt time.Time `json:"created_at"`
}

// ZapierDelivery is one item for one subscriber.
type ZapierDelivery struct {
	ID        string    `json:"id"`
	ItemID    string    `json:"item_id"`
	HookID    string    `json:"hook_id"`
	Event     string    `json:"event"`
	Target    string    `json:"target_url"`
	RunID     string    `json:"run_id"`
	Step      string    `json:"step"`
	Status    string    `json:"status"`
	Attempts  int       `json:"attempts"`
	NextAt    time.Time `json:"next_at,omitzero"`
	LastCode  int       `json:"last_code,omitempty"`
	LastError string    `json:"last_error,omitempty"`
	CreatedAt time.Time `json:"created_at"`
	UpdatedAt time.Time `json:"updated_at"`
	DoneAt    time.Time `json:"done_at,omitzero"`
	// Body is the item's JSON, set by ClaimZapierDeliveries.
	Body []byte `json:"-"`
}

func encodeFilter(f map[string]string) string {
	if len(f) == 0 {
		return "{}"
	}
	b, _ := json.Marshal(f)
	return string(b)
}

// AddZapierHook subscribes h.Target to h.Event. Subscribing a target to an
// event it is subscribed to already changes nothing and returns the
// subscription there is (created false), whatever h.ID was.
func (s *Store) AddZapierHook(ctx context.Context, h *ZapierHook) (*ZapierHook, bool, error) {
	res, err := s.w().ExecContext(ctx, s.q(`INSERT INTO {zapier_hooks} (id, event, target, filter, created_by, created_at)
		VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (event, target) DO NOTHING`),
		h.ID, h.Event, h.Target, encodeFilter(h.Filter), h.CreatedBy, millis(h.CreatedAt))
	if err != nil {
		return nil, false, fmt.Errorf("add zapier hook: %w", err)
	}
	n, _ := res.RowsAffected()
	got, err := s.zapierHook(ctx, s.w(), `event = $1 AND target = $2`, h.Event, h.Target)
	if err != nil {
		return nil, false, err
	}
	return got, n == 1, nil
}

const hookColumns = `id, event, target, filter, created_by, created_at`

func scanHook(sc interface{ Scan(...any) error }) (*ZapierHook, error) {
	h := &ZapierHook{}
	var filter string
	var at int64
	if err := sc.Scan(&h.ID, &h.Event, &h.Target, &filter, &h.CreatedBy, &at); err != nil {
		return nil, err
	}
	if err := json.Unmarshal([]byte(filter), &h.Filter); err != nil {
		return nil, fmt.Errorf("the filter of hook %s: %w", h.ID, err)
	}
	if len(h.Filter) == 0 {
		h.Filter = nil
	}
	h.CreatedAt = fromMillis(at)
	return h, nil
}

func (s *Store) zapierHook(ctx context.Context, q Execer, where string, args ...any) (*ZapierHook, error) {
	h, err := scanHook(q.QueryRowContext(ctx, s.q(`SELECT `+hookColumns+` FROM {zapier_hooks} WHERE `+where), args...))
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("read zapier hook: %w", err)
	}
	return h, nil
}

// GetZapierHook reads a subscription by id (ErrNotFound when none).
func (s *Store) GetZapierHook(ctx context.Context, id string) (*ZapierHook, error) {
	return s.zapierHook(ctx, s.DB, `id = $1`, id)
}

// ListZapierHooks lists the subscriptions to an event ("": to every
// event), oldest first.
func (s *Store) ListZapierHooks(ctx context.Context, event string) ([]*ZapierHook, error) {
	return s.listHooks(ctx, s.DB, event)
}

func (s *Store) listHooks(ctx context.Context, q Execer, event string) ([]*ZapierHook, error) {
	query, args := `SELECT `+hookColumns+` FROM {zapier_hooks}`, []any{}
	if event != "" {
		query += ` WHERE event = $1`
		args = append(args, event)
	}
	rows, err := q.QueryContext(ctx, s.q(query+` ORDER BY created_at, id`), args...)
	if err != nil {
		return nil, fmt.Errorf("list zapier hooks: %w", err)
	}
	defer rows.Close()
	var out []*ZapierHook
	for rows.Next() {
		h, err := scanHook(rows)
		if err != nil {
			return nil, fmt.Errorf("list zapier hooks: %w", err)
		}
		out = append(out, h)
	}
	return out, rows.Err()
}

// DeleteZapierHook deletes a subscription and marks its deliveries not
// yet sent unsubscribed (status, DeliveryUnsubscribed or DeliveryGone
// when the subscriber asked with a 410). It reports whether there was
// such a subscription.
func (s *Store) DeleteZapierHook(ctx context.Context, id, status string, now time.Time) (bool, error) {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("delete zapier hook: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	res, err := tx.ExecContext(ctx, s.q(`DELETE FROM {zapier_hooks} WHERE id = $1`), id)
	if err != nil {
		return false, fmt.Errorf("delete zapier hook: %w", err)
	}
	n, _ := res.RowsAffected()
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE {zapier_deliveries} SET status = $1, claimed = 0, updated_at = $2, done_at = $2
		WHERE hook_id = $3 AND status = $4`), status, millis(now), id, DeliveryPending); err != nil {
		return false, fmt.Errorf("delete zapier hook: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("delete zapier hook: %w", err)
	}
	return n == 1, nil
}

// EnqueueZapier stores an item and one pending delivery of it to each
// subscriber of its event that match accepts (nil: all), due at once, in
// one transaction: once it returns, the deliveries are durable. Storing
// the same item again (a step repeated after a crash) adds only the
// deliveries it lacked. deliveryID names the delivery of the item to a
// subscription; it must be stable for the pair. It returns the
// item's deliveries, those stored before included.
func (s *Store) EnqueueZapier(ctx context.Context, it *ZapierItem, step string, match func(*ZapierHook) bool,
	deliveryID func(hookID string) string) ([]*ZapierDelivery, error) {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("enqueue zapier item: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	at := millis(it.CreatedAt)
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO {zapier_items} (id, event, run_id, body, created_at) VALUES ($1, $2, $3, $4, $5)
		ON CONFLICT (id) DO NOTHING`), it.ID, it.Event, it.RunID, string(it.Body), at); err != nil {
		return nil, fmt.Errorf("enqueue zapier item: %w", err)
	}
	hooks, err := s.listHooks(ctx, tx, it.Event)
	if err != nil {
		return nil, err
	}
	for _, h := range hooks {
		if match != nil && !match(h) {
			continue
		}
		if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO {zapier_deliveries} (id, item_id, hook_id, event, target, run_id, step,
			status, attempts, claimed, next_at, last_code, last_error, created_at, updated_at, done_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, 0, '', $9, $9, 0) ON CONFLICT (id) DO NOTHING`),
			deliveryID(h.ID), it.ID, h.ID, it.Event, h.Target, it.RunID, step, DeliveryPending, at); err != nil {
			return nil, fmt.Errorf("enqueue zapier delivery: %w", err)
		}
	}
	// the samples: the newest items of the event, and those still to deliver
	if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {zapier_items} WHERE event = $1 AND id NOT IN
		(SELECT id FROM {zapier_items} WHERE event = $1 ORDER BY created_at DESC, id DESC LIMIT $2)
		AND NOT EXISTS (SELECT 1 FROM {zapier_deliveries} d WHERE d.item_id = {zapier_items}.id AND d.status = $3)`),
		it.Event, ZapierSamplesKept, DeliveryPending); err != nil {
		return nil, fmt.Errorf("enqueue zapier item: %w", err)
	}
	ds, err := s.listDeliveries(ctx, tx, ZapierDeliveryFilter{ItemID: it.ID})
	if err != nil {
		return nil, err
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("enqueue zapier item: %w", err)
	}
	return ds, nil
}

const deliveryColumns = `id, item_id, hook_id, event, target, run_id, step, status, attempts, next_at, last_code, last_error,
	created_at, updated_at, done_at`

func scanDelivery(sc interface{ Scan(...any) error }, extra ...any) (*ZapierDelivery, error) {
	d := &ZapierDelivery{}
	var next, created, updated, done int64
	dest := append([]any{&d.ID, &d.ItemID, &d.HookID, &d.Event, &d.Target, &d.RunID, &d.Step, &d.Status, &d.Attempts,
		&next, &d.LastCode, &d.LastError, &created, &updated, &done}, extra...)
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	d.NextAt, d.CreatedAt, d.UpdatedAt, d.DoneAt = fromMillis(next), fromMillis(created), fromMillis(updated), fromMillis(done)
	if d.Status != DeliveryPending {
		d.NextAt = time.Time{}
	}
	return d, nil
}

// ZapierDeliveryFilter selects deliveries; empty fields select all.
type ZapierDeliveryFilter struct {
	RunID, HookID, ItemID, Event, Status string
	Limit                                int // 0: 1000
}

// ListZapierDeliveries lists deliveries, oldest first.
func (s *Store) ListZapierDeliveries(ctx context.Context, f ZapierDeliveryFilter) ([]*ZapierDelivery, error) {
	return s.listDeliveries(ctx, s.DB, f)
}

func (s *Store) listDeliveries(ctx context.Context, q Execer, f ZapierDeliveryFilter) ([]*ZapierDelivery, error) {
	var where []string
	var args []any
	for _, c := range []struct{ col, v string }{{"run_id", f.RunID}, {"hook_id", f.HookID}, {"item_id", f.ItemID},
		{"event", f.Event}, {"status", f.Status}} {
		if c.v != "" {
			args = append(args, c.v)
			where = append(where, fmt.Sprintf("%s = $%d", c.col, len(args)))
		}
	}
	query := `SELECT ` + deliveryColumns + ` FROM {zapier_deliveries}`
	if len(where) > 0 {
		query += ` WHERE ` + strings.Join(where, " AND ")
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	args = append(args, limit)
	rows, err := q.QueryContext(ctx, s.q(query+fmt.Sprintf(` ORDER BY created_at, id LIMIT $%d`, len(args))), args...)
	if err != nil {
		return nil, fmt.Errorf("list zapier deliveries: %w", err)
	}
	defer rows.Close()
	var out []*ZapierDelivery
	for rows.Next() {
		d, err := scanDelivery(rows)
		if err != nil {
			return nil, fmt.Errorf("list zapier deliveries: %w", err)
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// ClaimZapierDeliveries takes up to limit pending deliveries due at now,
// the earliest first, with their items' bodies, and leases them until
// now+lease: another claim (another process on PostgreSQL) takes them
// only after, should this one die before it finishes them.
func (s *Store) ClaimZapierDeliveries(ctx context.Context, now time.Time, lease time.Duration, limit int) ([]*ZapierDelivery, error) {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("claim zapier deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	lock := ""
	if s.Dialect == Postgres {
		lock = ` FOR UPDATE OF d SKIP LOCKED`
	}
	rows, err := tx.QueryContext(ctx, s.q(`SELECT `+prefixCols("d.", deliveryColumns)+`, i.body FROM {zapier_deliveries} d
		JOIN {zapier_items} i ON i.id = d.item_id WHERE d.status = $1 AND d.next_at <= $2 ORDER BY d.next_at, d.id LIMIT $3`+lock),
		DeliveryPending, millis(now), limit)
	if err != nil {
		return nil, fmt.Errorf("claim zapier deliveries: %w", err)
	}
	var out []*ZapierDelivery
	for rows.Next() {
		var body string
		d, err := scanDelivery(rows, &body)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("claim zapier deliveries: %w", err)
		}
		d.Body = []byte(body)
		out = append(out, d)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("claim zapier deliveries: %w", err)
	}
	until := millis(now.Add(lease))
	for _, d := range out {
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE {zapier_deliveries} SET claimed = 1, next_at = $1 WHERE id = $2`), until, d.ID); err != nil {
			return nil, fmt.Errorf("claim zapier deliveries: %w", err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("claim zapier deliveries: %w", err)
	}
	return out, nil
}

func prefixCols(p, cols string) string {
	parts := strings.Split(cols, ",")
	for i, c := range parts {
		parts[i] = p + strings.TrimSpace(c)
	}
	return strings.Join(parts, ", ")
}

// ReleaseZapierClaims makes every leased delivery due at now: what a
// process that keeps the store alone (SQLite) does when it starts, since
// only its own crash can have left a lease.
func (s *Store) ReleaseZapierClaims(ctx context.Context, now time.Time) error {
	if _, err := s.w().ExecContext(ctx, s.q(`UPDATE {zapier_deliveries} SET claimed = 0, next_at = $1 WHERE status = $2 AND claimed = 1`),
		millis(now), DeliveryPending); err != nil {
		return fmt.Errorf("release zapier deliveries: %w", err)
	}
	return nil
}

// FinishZapierAttempt records an attempt of a delivery: its status after
// it (pending again with its next time, or final), its attempts, the
// answer's code and error.
func (s *Store) FinishZapierAttempt(ctx context.Context, d *ZapierDelivery, now time.Time) error {
	return s.FinishZapierAttempts(ctx, []*ZapierDelivery{d}, now)
}

// FinishZapierAttempts records attempts of deliveries in one transaction
// (see FinishZapierAttempt): what many deliveries finishing at once cost
// is one commit.
func (s *Store) FinishZapierAttempts(ctx context.Context, ds []*ZapierDelivery, now time.Time) error {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("record zapier deliveries: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after a commit, a no-op
	for _, d := range ds {
		done := int64(0)
		if d.Status != DeliveryPending {
			done = millis(now)
		}
		if _, err := tx.ExecContext(ctx, s.q(`UPDATE {zapier_deliveries} SET status = $1, attempts = $2, claimed = 0, next_at = $3,
			last_code = $4, last_error = $5, updated_at = $6, done_at = $7 WHERE id = $8 AND status = $9`),
			d.Status, d.Attempts, millis(d.NextAt), d.LastCode, d.LastError, millis(now), done, d.ID, DeliveryPending); err != nil {
			return fmt.Errorf("record zapier delivery %s: %w", d.ID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("record zapier deliveries: %w", err)
	}
	return nil
}

// ZapierSamples lists an event's latest items, newest first.
func (s *Store) ZapierSamples(ctx context.Context, event string, limit int) ([]*ZapierItem, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT id, event, run_id, body, created_at FROM {zapier_items} WHERE event = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`), event, limit)
	if err != nil {
		return nil, fmt.Errorf("zapier samples: %w", err)
	}
	defer rows.Close()
	var out []*ZapierItem
	for rows.Next() {
		it := &ZapierItem{}
		var body string
		var at int64
		if err := rows.Scan(&it.ID, &it.Event, &it.RunID, &body, &at); err != nil {
			return nil, fmt.Errorf("zapier samples: %w", err)
		}
		it.Body, it.CreatedAt = []byte(body), fromMillis(at)
		out = append(out, it)
	}
	return out, rows.Err()
}

// ZapierHookStats counts one subscription's deliveries by status.
type ZapierHookStats struct {
	HookID   string         `json:"hook_id"`
	Event    string         `json:"event"`
	Target   string         `json:"target_url"`
	Statuses map[string]int `json:"statuses"`
	Attempts int            `json:"attempts"`
}

// ZapierStats counts the deliveries created since a time, per
// subscription (hooks since deleted included), by status.
func (s *Store) ZapierStats(ctx context.Context, since time.Time) ([]*ZapierHookStats, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT hook_id, event, target, status, COUNT(*), SUM(attempts) FROM {zapier_deliveries}
		WHERE created_at >= $1 GROUP BY hook_id, event, target, status ORDER BY hook_id, status`), millis(since))
	if err != nil {
		return nil, fmt.Errorf("zapier stats: %w", err)
	}
	defer rows.Close()
	var out []*ZapierHookStats
	for rows.Next() {
		var hook, event, target, status string
		var n, attempts int
		if err := rows.Scan(&hook, &event, &target, &status, &n, &attempts); err != nil {
			return nil, fmt.Errorf("zapier stats: %w", err)
		}
		if len(out) == 0 || out[len(out)-1].HookID != hook {
			out = append(out, &ZapierHookStats{HookID: hook, Event: event, Target: target, Statuses: map[string]int{}})
		}
		st := out[len(out)-1]
		st.Statuses[status] += n
		st.Attempts += attempts
	}
	return out, rows.Err()
}

// ZapierEvents lists the events items were published to, by name.
func (s *Store) ZapierEvents(ctx context.Context) ([]string, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT DISTINCT event FROM {zapier_items} ORDER BY event`))
	if err != nil {
		return nil, fmt.Errorf("zapier events: %w", err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var e string
		if err := rows.Scan(&e); err != nil {
			return nil, fmt.Errorf("zapier events: %w", err)
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

// PruneZapier deletes, in transactions of up to batch rows, the
// deliveries finished before a time. It returns how many it deleted.
func (s *Store) PruneZapier(ctx context.Context, before time.Time, batch int) (int64, error) {
	if batch <= 0 {
		batch = DefaultPruneBatch
	}
	var total int64
	for {
		res, err := s.w().ExecContext(ctx, s.q(`DELETE FROM {zapier_deliveries} WHERE id IN
			(SELECT id FROM {zapier_deliveries} WHERE status <> $1 AND done_at > 0 AND done_at < $2 LIMIT $3)`),
			DeliveryPending, millis(before), batch)
		if err != nil {
			return total, fmt.Errorf("prune zapier deliveries: %w", err)
		}
		n, _ := res.RowsAffected()
		total += n
		if n < int64(batch) {
			return total, nil
		}
	}
}

// RunDeliveries lists a run's Zapier deliveries as they stand now, oldest
// first, with redact applied to each target (a Zapier hook URL holds the
// Zap's secret). A store without the Zapier tables (a process that never
// served Zapier) has none.
func (s *Store) RunDeliveries(ctx context.Context, runID string, redact func(string) string) ([]*ZapierDelivery, error) {
	if ok, err := s.hasTable(ctx, "zapier_deliveries"); err != nil || !ok {
		return nil, err
	}
	ds, err := s.ListZapierDeliveries(ctx, ZapierDeliveryFilter{RunID: runID})
	if err != nil {
		return nil, err
	}
	for _, d := range ds {
		d.Target = redact(d.Target)
	}
	return ds, nil
}

// hasTable reports whether the store has the table name (before its
// prefix).
func (s *Store) hasTable(ctx context.Context, name string) (bool, error) {
	query := `SELECT COUNT(*) FROM sqlite_master WHERE type = 'table' AND name = $1`
	if s.Dialect == Postgres {
		query = `SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1`
	}
	var n int
	if err := s.DB.QueryRowContext(ctx, query, s.Prefix+name).Scan(&n); err != nil {
		return false, fmt.Errorf("look for table %s: %w", name, err)
	}
	return n > 0, nil
}
