// Package store keeps what the runtime must not lose: accepted events and
// their dedup keys, run records with every step and
// attempt, schedule ticks, and the analytics computed from them. One SQL
// implementation serves the embedded SQLite default and PostgreSQL.
package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/sous-run/sous/internal/sqlin"
)

// Dialect names a SQL engine.
type Dialect string

// The supported engines.
const (
	SQLite   Dialect = "sqlite"
	Postgres Dialect = "postgres"
)

// ErrNotFound is returned for a missing record.
var ErrNotFound = errors.New("not found")

// Store is the SQL store.
type Store struct {
	// DB serves reads; Write, when set, serves writes (SQLite keeps one
	// writer connection beside a pool of readers).
	DB       *sql.DB
	Write    *sql.DB
	stmts    sync.Map     // query -> *sql.Stmt on DB
	queries  sync.Map     // query as written -> with table prefixes (see q)
	nQueries atomic.Int64 // entries stored in queries, or tried past the bound
	Dialect  Dialect
	// Prefix is put before every table name (tests use it to isolate).
	Prefix string
	// PruneBatch is the most rows of a table one transaction of Prune
	// deletes (0: DefaultPruneBatch).
	PruneBatch int
	// pruned, when set (tests), is told what each of Prune's transactions
	// deleted.
	pruned func(table string, n int64)
}

// Event is an accepted trigger event.
type Event struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Source     string          `json:"source"` // the webhook path or connection it came through
	DedupKey   string          `json:"dedup_key"`
	ReceivedAt time.Time       `json:"received_at"`
	Payload    json.RawMessage `json:"payload"`
	// Recipes names the recipes the event was accepted for (the ones on
	// its webhook path at intake): carried to the matcher, so that a
	// recipe removed in between is recorded as a dead run rather than
	// silently skipped. Not stored with the event.
	Recipes []string `json:"-"`
	// Decoded, when set, is Payload as encoding/json decodes it, which
	// intake has at hand: the matcher of the same process uses it rather
	// than decode the payload again. Not stored.
	Decoded map[string]any `json:"-"`
}

// Run is a stored run record.
type Run struct {
	ID         string          `json:"id"`
	Recipe     string          `json:"recipe"`
	EventID    string          `json:"event_id"`
	Status     string          `json:"status"`
	StartedAt  time.Time       `json:"started_at"`
	FinishedAt time.Time       `json:"finished_at"`
	Duration   time.Duration   `json:"-"` // as duration_ms (see MarshalJSON)
	ErrorStep  string          `json:"error_step,omitempty"`
	Reason     string          `json:"reason,omitempty"`
	Error      string          `json:"error,omitempty"`
	Attempt    int             `json:"attempt"`
	Retries    int             `json:"retries"`
	Record     json.RawMessage `json:"record,omitempty"` // the full runner.Result
	Steps      []RunStep       `json:"steps,omitempty"`
	// Deliveries are the run's Zapier deliveries as they stand now (one
	// per item and subscriber, their targets shown as scheme and host),
	// when it made any: set by RunDeliveries' callers, not by GetRun.
	Deliveries []*ZapierDelivery `json:"zapier_deliveries,omitempty"`
	// Input is the payload of the event that started the run (a webhook's
	// body and headers, a Zapier action's fields): set by RunInputs'
	// callers, not by GetRun or ListRuns.
	Input json.RawMessage `json:"input,omitempty"`
	// Replace makes SaveRunTx clear what an earlier save of the same run
	// left (steps, checkpoint); a run's first save skips that work.
	Replace bool `json:"-"`
	// Checkpointed makes SaveRunTx delete the run's checkpoint (a
	// multi-step run stored one after a step): a finished run keeps none.
	Checkpointed bool `json:"-"`
}

// RunStep is the summary of one step of a run, for analytics.
type RunStep struct {
	Step        string        `json:"step"`
	Action      string        `json:"action"`
	Status      string        `json:"status"`
	Reason      string        `json:"reason,omitempty"`
	Attempts    int           `json:"attempts"`
	RateLimited int           `json:"rate_limited"`
	Duration    time.Duration `json:"-"` // as duration_ms (see MarshalJSON)
}

func (s *Store) w() *sql.DB {
	if s.Write != nil {
		return s.Write
	}
	return s.DB
}

// q rewrites $N placeholders for the dialect (both engines accept $N; the
// hook is here for table prefixes written as {name}). Rewritten queries
// are kept, up to maxCachedQueries: the hot paths would otherwise build the
// same string for every event. Queries built with varying parts (filters,
// limits) fill the cache up to its bound and are rewritten each time after.
func (s *Store) q(query string) string {
	if v, ok := s.queries.Load(query); ok {
		return v.(string)
	}
	out := tableRE.Replace(query, s.Prefix)
	if s.nQueries.Add(1) <= maxCachedQueries {
		s.queries.Store(query, out)
	}
	return out
}

// maxCachedQueries bounds the rewritten queries a store keeps.
const maxCachedQueries = 256

type tableReplacer struct{}

var tableRE tableReplacer

func (tableReplacer) Replace(query, prefix string) string {
	var b strings.Builder
	for {
		i := strings.IndexByte(query, '{')
		if i < 0 {
			b.WriteString(query)
			return b.String()
		}
		j := strings.IndexByte(query[i:], '}')
		if j < 0 {
			b.WriteString(query)
			return b.String()
		}
		b.WriteString(query[:i])
		b.WriteString(prefix)
		b.WriteString(query[i+1 : i+j])
		query = query[i+j+1:]
	}
}

// Migrate creates the engine's tables: dedup keys, events, runs and
// their steps, checkpoints, the instance id, pollers. The tables a broker needs beside them (its
// queue, the scheduled messages, an outbox) the broker creates when it
// starts (CreateTables).
func (s *Store) Migrate(ctx context.Context) error {
	return s.CreateTables(ctx,
		`CREATE TABLE IF NOT EXISTS {dedup} (key TEXT PRIMARY KEY, event_id TEXT NOT NULL, created_at BIGINT NOT NULL)<keyed>`,
		// dedup keys are pruned with their events (see Prune): an index on
		// created_at cost a b-tree write per event, 1-5 % of the CPU of an
		// event end to end on the embedded store (docs/performance.md)
		`DROP INDEX IF EXISTS {dedup_created}`,
		`CREATE TABLE IF NOT EXISTS {events} (id TEXT PRIMARY KEY, type TEXT NOT NULL, source TEXT NOT NULL,
			dedup_key TEXT NOT NULL, received_at BIGINT NOT NULL, payload <blob> NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS {events_received} ON {events} (received_at)`,
		`CREATE TABLE IF NOT EXISTS {runs} (id TEXT PRIMARY KEY, recipe TEXT NOT NULL, event_id TEXT NOT NULL,
			status TEXT NOT NULL, started_at BIGINT NOT NULL, finished_at BIGINT NOT NULL, duration_us BIGINT NOT NULL,
			error_step TEXT NOT NULL, reason TEXT NOT NULL, error TEXT NOT NULL, attempt INTEGER NOT NULL,
			retries INTEGER NOT NULL, record <blob>)`,
		`CREATE INDEX IF NOT EXISTS {runs_started} ON {runs} (started_at)`,
		`CREATE INDEX IF NOT EXISTS {runs_recipe} ON {runs} (recipe, started_at)`,
		`CREATE INDEX IF NOT EXISTS {runs_status} ON {runs} (status, started_at)`,
		`CREATE INDEX IF NOT EXISTS {runs_event} ON {runs} (event_id)`,
		`CREATE TABLE IF NOT EXISTS {run_steps} (run_id TEXT NOT NULL, idx INTEGER NOT NULL, step TEXT NOT NULL,
			action TEXT NOT NULL, status TEXT NOT NULL, reason TEXT NOT NULL, attempts INTEGER NOT NULL,
			rate_limited INTEGER NOT NULL, duration_us BIGINT NOT NULL, PRIMARY KEY (run_id, idx))<keyed>`,
		`CREATE TABLE IF NOT EXISTS {checkpoints} (run_id TEXT PRIMARY KEY, state <blob> NOT NULL, updated_at BIGINT NOT NULL)`,
		// the id of the process that keeps this store (the NATS broker's,
		// and the owner of the pollers' leases): see InstanceID
		`CREATE TABLE IF NOT EXISTS {instance} (id TEXT NOT NULL)`,
		// one row per poller: its cursor, saved with the events it produced,
		// and the lease of the process polling it: see LeasePoll
		`CREATE TABLE IF NOT EXISTS {polls} (key TEXT PRIMARY KEY, cursor <blob>, owner TEXT NOT NULL,
			lease_until BIGINT NOT NULL, polled_at BIGINT NOT NULL)`,
		// the connections' OAuth tokens, sealed by engine/oauth: see TokensTable
		TokensTable,
		// who changed what: see AddAudit
		`CREATE TABLE IF NOT EXISTS {audit} (id <serial>, at BIGINT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL,
			target TEXT NOT NULL, detail TEXT NOT NULL)`,
		`CREATE INDEX IF NOT EXISTS {audit_at} ON {audit} (at)`,
	)
}

// ScheduledTables creates the scheduled table: messages a broker that
// cannot delay a delivery publishes at their due time (durable retries),
// see Schedule. The PostgreSQL broker creates it (CreateTables).
var ScheduledTables = []string{
	`CREATE TABLE IF NOT EXISTS {scheduled} (id <serial>, topic TEXT NOT NULL, key TEXT NOT NULL, uuid TEXT NOT NULL,
		payload <blob> NOT NULL, metadata TEXT NOT NULL, due_at BIGINT NOT NULL)`,
	`CREATE INDEX IF NOT EXISTS {scheduled_due} ON {scheduled} (due_at, id)`,
	`CREATE INDEX IF NOT EXISTS {scheduled_key} ON {scheduled} (topic, key)`,
}

// OwnStoreTables creates the tables of a broker that commits apart from
// the store and whose processes keep stores of their own (NATS), which
// creates them (CreateTables): the outbox (events stored but not yet
// known to be handed to the broker, see AddOutbox) and the runs finished
// but not yet recorded (see AddFinishing).
var OwnStoreTables = []string{
	`CREATE TABLE IF NOT EXISTS {outbox} (event_id TEXT PRIMARY KEY, recipes TEXT NOT NULL, created_at BIGINT NOT NULL)<keyed>`,
	`CREATE TABLE IF NOT EXISTS {finishing} (run_id TEXT PRIMARY KEY, run <blob> NOT NULL, created_at BIGINT NOT NULL)`,
}

// CreateTables runs DDL statements on the store, in order: a name in
// braces ({events}) takes the store's Prefix, and <serial>, <blob> and
// <keyed> the dialect's auto-incremented integer key, binary type, and
// the clause that keeps small rows keyed by text in their key's b-tree
// alone (SQLite's WITHOUT ROWID; nothing on PostgreSQL). A broker creates
// the tables it needs with it each time it starts, so every statement
// must be one that can run again (IF NOT EXISTS).
func (s *Store) CreateTables(ctx context.Context, stmts ...string) error {
	// small rows keyed by text are stored in their key's b-tree only
	// (SQLite's WITHOUT ROWID): an insert writes one b-tree, not a table
	// and its key's index
	serial, blob, keyed := "INTEGER PRIMARY KEY AUTOINCREMENT", "BLOB", " WITHOUT ROWID"
	if s.Dialect == Postgres {
		serial, blob, keyed = "BIGSERIAL PRIMARY KEY", "BYTEA", ""
	}
	types := strings.NewReplacer("<serial>", serial, "<blob>", blob, "<keyed>", keyed)
	for _, st := range stmts {
		if _, err := s.w().ExecContext(ctx, s.q(types.Replace(st))); err != nil {
			return fmt.Errorf("migrate: %w", err)
		}
	}
	return nil
}

// Execer is a *sql.DB or *sql.Tx.
type Execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// ClaimDedup records a dedup key inside tx. It returns false when the key
// was already claimed (a duplicate delivery).
func (s *Store) ClaimDedup(ctx context.Context, tx Execer, key, eventID string, now time.Time) (bool, error) {
	res, err := tx.ExecContext(ctx, s.q(`INSERT INTO {dedup} (key, event_id, created_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING`),
		key, eventID, now.UnixMilli())
	if err != nil {
		return false, fmt.Errorf("claim dedup key: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("claim dedup key: %w", err)
	}
	return n == 1, nil
}

// InsertEvent stores an event inside tx.
func (s *Store) InsertEvent(ctx context.Context, tx Execer, ev *Event) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO {events} (id, type, source, dedup_key, received_at, payload) VALUES ($1, $2, $3, $4, $5, $6)`),
		ev.ID, ev.Type, ev.Source, ev.DedupKey, ev.ReceivedAt.UnixMicro(), []byte(ev.Payload))
	if err != nil {
		return fmt.Errorf("insert event: %w", err)
	}
	return nil
}

// RunInputs sets each run's Input to the payload of its event; a run
// whose event is gone (retention) keeps none.
func (s *Store) RunInputs(ctx context.Context, runs []*Run) error {
	seen := map[string]json.RawMessage{}
	for _, r := range runs {
		if r == nil || r.EventID == "" {
			continue
		}
		p, ok := seen[r.EventID]
		if !ok {
			ev, err := s.GetEvent(ctx, r.EventID)
			switch {
			case errors.Is(err, ErrNotFound):
			case err != nil:
				return fmt.Errorf("run inputs: %w", err)
			default:
				p = ev.Payload
			}
			seen[r.EventID] = p
		}
		r.Input = p
	}
	return nil
}

// GetEvent reads an event.
func (s *Store) GetEvent(ctx context.Context, id string) (*Event, error) {
	ev := &Event{}
	var at int64
	var payload []byte
	// prepared once: a backlog drains with one read per event
	st, err := s.prepared(ctx, `SELECT id, type, source, dedup_key, received_at, payload FROM {events} WHERE id = $1`)
	if err != nil {
		return nil, fmt.Errorf("get event: %w", err)
	}
	err = st.QueryRowContext(ctx, id).Scan(&ev.ID, &ev.Type, &ev.Source, &ev.DedupKey, &at, &payload)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get event: %w", err)
	}
	ev.ReceivedAt, ev.Payload = time.UnixMicro(at).UTC(), payload
	return ev, nil
}

// EventPayloads reads the payloads of the events with the given ids, in
// one query per sqlin.Max of them: a backlog of events claimed together
// is read at once rather than one query each. An id not stored (pruned)
// is left out of the map.
func (s *Store) EventPayloads(ctx context.Context, ids []string) (map[string]json.RawMessage, error) {
	out := make(map[string]json.RawMessage, len(ids))
	for chunk := range slices.Chunk(ids, sqlin.Max) {
		list, args := sqlin.List(nil, chunk)
		// one of a few texts (see sqlin.List), each prepared once
		st, err := s.prepared(ctx, `SELECT id, payload FROM {events} WHERE id IN `+list)
		if err != nil {
			return nil, fmt.Errorf("read event payloads: %w", err)
		}
		if err := s.scanPayloads(ctx, st, args, out); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (s *Store) scanPayloads(ctx context.Context, st *sql.Stmt, args []any, out map[string]json.RawMessage) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return fmt.Errorf("read event payloads: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var (
			id      string
			payload []byte
		)
		if err := rows.Scan(&id, &payload); err != nil {
			return fmt.Errorf("read event payloads: %w", err)
		}
		out[id] = payload
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read event payloads: %w", err)
	}
	return nil
}

// RunState reads, in one prepared query, whether a run reached a final
// status and its checkpoint (nil when none): what the runner needs before
// it starts a run message, on the hot path of every run.
func (s *Store) RunState(ctx context.Context, id string) (done bool, checkpoint []byte, err error) {
	st, err := s.prepared(ctx, `SELECT (SELECT status FROM {runs} WHERE id = $1), (SELECT state FROM {checkpoints} WHERE run_id = $2)`)
	if err != nil {
		return false, nil, fmt.Errorf("read run state: %w", err)
	}
	var status sql.NullString
	if err := st.QueryRowContext(ctx, id, id).Scan(&status, &checkpoint); err != nil {
		return false, nil, fmt.Errorf("read run state: %w", err)
	}
	return status.Valid && status.String != "running", checkpoint, nil
}

// prepared returns a statement prepared once on the read pool.
func (s *Store) prepared(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := s.stmts.Load(query); ok {
		return st.(*sql.Stmt), nil
	}
	st, err := s.DB.PrepareContext(ctx, s.q(query))
	if err != nil {
		return nil, err
	}
	if prev, loaded := s.stmts.LoadOrStore(query, st); loaded {
		st.Close()
		return prev.(*sql.Stmt), nil
	}
	return st, nil
}

// SaveRun writes a run record and its steps in its own transaction.
func (s *Store) SaveRun(ctx context.Context, r *Run) error {
	tx, err := s.w().BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	defer tx.Rollback() //nolint:errcheck // after commit it is a no-op
	if err := s.SaveRunTx(ctx, tx, r); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	return nil
}

// SaveRunTx writes a run record and its steps inside tx, replacing an
// earlier version of the same run (a replay or a resumed run), and drops
// its checkpoint.
func (s *Store) SaveRunTx(ctx context.Context, tx Execer, r *Run) error {
	if r.Replace {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {run_steps} WHERE run_id = $1`), r.ID); err != nil {
			return fmt.Errorf("save run: %w", err)
		}
	}
	if r.Replace || r.Checkpointed {
		if _, err := tx.ExecContext(ctx, s.q(`DELETE FROM {checkpoints} WHERE run_id = $1`), r.ID); err != nil {
			return fmt.Errorf("save run: %w", err)
		}
	}
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO {runs} (id, recipe, event_id, status, started_at, finished_at, duration_us,
			error_step, reason, error, attempt, retries, record)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)
		ON CONFLICT (id) DO UPDATE SET status = excluded.status, started_at = excluded.started_at,
			finished_at = excluded.finished_at, duration_us = excluded.duration_us, error_step = excluded.error_step,
			reason = excluded.reason, error = excluded.error, attempt = excluded.attempt, retries = excluded.retries,
			record = excluded.record`),
		r.ID, r.Recipe, r.EventID, r.Status, r.StartedAt.UnixMicro(), r.FinishedAt.UnixMicro(), r.Duration.Microseconds(),
		r.ErrorStep, r.Reason, r.Error, r.Attempt, r.Retries, []byte(r.Record))
	if err != nil {
		return fmt.Errorf("save run: %w", err)
	}
	var b strings.Builder
	var args []any
	for i, st := range r.Steps {
		if !st.Incident() {
			continue
		}
		if len(args) == 0 {
			b.WriteString(`INSERT INTO {run_steps} (run_id, idx, step, action, status, reason, attempts, rate_limited, duration_us) VALUES `)
		} else {
			b.WriteByte(',')
		}
		n := len(args)
		fmt.Fprintf(&b, "($%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d,$%d)", n+1, n+2, n+3, n+4, n+5, n+6, n+7, n+8, n+9)
		args = append(args, r.ID, i, st.Step, st.Action, st.Status, st.Reason, st.Attempts, st.RateLimited, st.Duration.Microseconds())
	}
	if len(args) > 0 {
		if _, err := tx.ExecContext(ctx, s.q(b.String()), args...); err != nil {
			return fmt.Errorf("save run steps: %w", err)
		}
	}
	return nil
}

// Incident reports whether a step is one the run_steps table keeps: it
// failed, was retried or was rate limited. The table serves the stats
// (failures per step and connector, rate-limit hits); a step that
// succeeded at its first attempt adds nothing to them, and every step is
// in the run's record. Most runs succeed at once: they write no step
// row, one statement and one b-tree insert fewer per run.
func (st RunStep) Incident() bool {
	return st.Status == "failed" || st.Attempts > 1 || st.RateLimited > 0
}

// SaveCheckpoint stores the state of an unfinished run inside tx.
func (s *Store) SaveCheckpoint(ctx context.Context, tx Execer, runID string, state []byte, now time.Time) error {
	_, err := tx.ExecContext(ctx, s.q(`INSERT INTO {checkpoints} (run_id, state, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (run_id) DO UPDATE SET state = excluded.state, updated_at = excluded.updated_at`), runID, state, now.UnixMilli())
	if err != nil {
		return fmt.Errorf("save checkpoint: %w", err)
	}
	return nil
}

// Checkpoint reads the state of an unfinished run; nil when there is none.
func (s *Store) Checkpoint(ctx context.Context, runID string) ([]byte, error) {
	var state []byte
	err := s.DB.QueryRowContext(ctx, s.q(`SELECT state FROM {checkpoints} WHERE run_id = $1`), runID).Scan(&state)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read checkpoint: %w", err)
	}
	return state, nil
}

const runColumns = `id, recipe, event_id, status, started_at, finished_at, duration_us, error_step, reason, error, attempt, retries`

func scanRun(sc interface{ Scan(...any) error }, withRecord bool) (*Run, error) {
	r := &Run{}
	var started, finished, dur int64
	dest := []any{&r.ID, &r.Recipe, &r.EventID, &r.Status, &started, &finished, &dur, &r.ErrorStep, &r.Reason, &r.Error, &r.Attempt, &r.Retries}
	var rec []byte
	if withRecord {
		dest = append(dest, &rec)
	}
	if err := sc.Scan(dest...); err != nil {
		return nil, err
	}
	r.StartedAt, r.FinishedAt = time.UnixMicro(started).UTC(), time.UnixMicro(finished).UTC()
	r.Duration = time.Duration(dur) * time.Microsecond
	if len(rec) > 0 {
		r.Record = rec
	}
	return r, nil
}

// GetRun reads one run with its full record.
func (s *Store) GetRun(ctx context.Context, id string) (*Run, error) {
	row := s.DB.QueryRowContext(ctx, s.q(`SELECT `+runColumns+`, record FROM {runs} WHERE id = $1`), id)
	r, err := scanRun(row, true)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("get run: %w", err)
	}
	return r, nil
}

// RunFilter selects runs.
type RunFilter struct {
	Recipe string
	Status string
	Since  time.Time
	Until  time.Time
	Limit  int
}

func (f RunFilter) where() (string, []any) {
	var conds []string
	var args []any
	add := func(cond string, v any) {
		args = append(args, v)
		conds = append(conds, fmt.Sprintf(cond, len(args)))
	}
	if f.Recipe != "" {
		add("recipe = $%d", f.Recipe)
	}
	if f.Status != "" {
		add("status = $%d", f.Status)
	}
	if !f.Since.IsZero() {
		add("started_at >= $%d", f.Since.UnixMicro())
	}
	if !f.Until.IsZero() {
		add("started_at < $%d", f.Until.UnixMicro())
	}
	if len(conds) == 0 {
		return "", nil
	}
	return " WHERE " + strings.Join(conds, " AND "), args
}

// ListRuns lists runs, newest first, without their full records.
func (s *Store) ListRuns(ctx context.Context, f RunFilter) ([]*Run, error) {
	where, args := f.where()
	limit := f.Limit
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT `+runColumns+` FROM {runs}`+where+fmt.Sprintf(` ORDER BY started_at DESC LIMIT %d`, limit)), args...)
	if err != nil {
		return nil, fmt.Errorf("list runs: %w", err)
	}
	defer rows.Close()
	var out []*Run
	for rows.Next() {
		r, err := scanRun(rows, false)
		if err != nil {
			return nil, fmt.Errorf("list runs: %w", err)
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Retention says how long records are kept.
type Retention struct {
	Succeeded time.Duration // succeeded and filtered runs
	Failed    time.Duration // failed and dead runs
	Dedup     time.Duration // dedup keys and events
}

// MaxCheckpointWait bounds how long an unfinished run's checkpoint waits
// for its retry: a retry waits at most pipeline.max_retry_after, 6 days at
// most (a NATS stream keeps a message 7 days).
const MaxCheckpointWait = 7 * 24 * time.Hour
