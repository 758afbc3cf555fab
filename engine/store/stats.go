package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"

	gojson "github.com/goccy/go-json"
)

// Stats are the analytics of runs in a window.
type Stats struct {
	Recipe   string           `json:"recipe,omitempty"`
	Since    time.Time        `json:"since"`
	Runs     int64            `json:"runs"`
	ByStatus map[string]int64 `json:"by_status"`
	// SuccessRate is succeeded / (succeeded + failed + dead). JSON writes
	// null when no run ended so (see Finished): unknown, not 0 %.
	SuccessRate float64 `json:"success_rate"`
	// P50, P95 and P99 are percentiles of the succeeded runs' durations.
	// JSON writes them in milliseconds, as p50_ms, p95_ms and p99_ms, and
	// null when no run succeeded (see Timed).
	P50         time.Duration `json:"-"`
	P95         time.Duration `json:"-"`
	P99         time.Duration `json:"-"`
	Retries     int64         `json:"retries"`
	RateLimited int64         `json:"rate_limited"`
	// StepFailures counts failed steps by step (recipe/step) and reason.
	StepFailures []FailureCount `json:"step_failures"`
	// ConnectorFailures counts failed steps by action ID and reason.
	ConnectorFailures []FailureCount `json:"connector_failures"`
	// Actions are the calls of each action in the window, worst first
	// (most errors, then most calls): every attempt of every step of the
	// window's runs, read from the runs' records, which hold them all.
	Actions []CallCount `json:"actions"`
	// Connections are the same per connection, for the steps that named
	// one (a step without a connection counts under its action only).
	Connections []CallCount `json:"connections"`
}

// CallCount is what the calls of one action, or of the actions on one
// connection, came to in the window. An attempt is a call: a step
// retried three times made four.
type CallCount struct {
	// Action is set in Stats.Actions, Connection in Stats.Connections.
	Action     string `json:"action,omitempty"`
	Connection string `json:"connection,omitempty"`
	// Calls are the attempts made.
	Calls int64 `json:"calls"`
	// Errors are the attempts that failed, and ErrorsByReason the same by
	// their reason (rate_limited, server_error, timeout, auth...).
	Errors         int64            `json:"errors"`
	ErrorsByReason map[string]int64 `json:"errors_by_reason"`
	// RateLimited are the attempts the service rate limited.
	RateLimited int64 `json:"rate_limited"`
	// Retries are the attempts after a step's first.
	Retries int64 `json:"retries"`
	// Failed are the steps that ended failed.
	Failed int64 `json:"failed"`
	// Waited is the time the steps waited before their retries: the
	// Retry-After the service asked for, else the backoff. JSON writes it
	// in milliseconds, as waited_ms.
	Waited time.Duration `json:"-"`
}

// MarshalJSON writes Waited in milliseconds, as waited_ms.
func (c CallCount) MarshalJSON() ([]byte, error) {
	type plain CallCount
	return json.Marshal(struct {
		plain
		WaitedMS float64 `json:"waited_ms"`
	}{plain(c), Milliseconds(c.Waited)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (c *CallCount) UnmarshalJSON(b []byte) error {
	type plain CallCount
	var v struct {
		plain
		WaitedMS float64 `json:"waited_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*c = CallCount(v.plain)
	c.Waited = fromMilliseconds(v.WaitedMS)
	return nil
}

// Finished counts the runs of the window that succeeded, failed or went
// dead: those the success rate is a share of (a filtered run did no
// work to succeed at).
func (s *Stats) Finished() int64 {
	return s.ByStatus["succeeded"] + s.ByStatus["failed"] + s.ByStatus["dead"]
}

// Timed reports whether a run succeeded in the window, so that the
// percentiles of durations measure something.
func (s *Stats) Timed() bool { return s.ByStatus["succeeded"] > 0 }

// statsJSON is what Stats' JSON writes apart from its plain fields: the
// durations in milliseconds, and null where there is nothing to measure.
type statsJSON struct {
	P50 *float64 `json:"p50_ms"`
	P95 *float64 `json:"p95_ms"`
	P99 *float64 `json:"p99_ms"`
}

// MarshalJSON writes the percentiles in milliseconds (p50_ms, p95_ms,
// p99_ms) rather than as Go's nanoseconds, and null for a success rate
// or percentiles of no run.
func (s Stats) MarshalJSON() ([]byte, error) {
	type plain Stats // without the methods
	out := struct {
		plain
		statsJSON
		// shallower than plain's field of the same name, so it wins
		SuccessRate *float64 `json:"success_rate"`
	}{plain: plain(s)}
	if s.Finished() > 0 {
		out.SuccessRate = &s.SuccessRate
	}
	if s.Timed() {
		p50, p95, p99 := Milliseconds(s.P50), Milliseconds(s.P95), Milliseconds(s.P99)
		out.statsJSON = statsJSON{P50: &p50, P95: &p95, P99: &p99}
	}
	return json.Marshal(out)
}

// UnmarshalJSON reads what MarshalJSON writes (null as zero).
func (s *Stats) UnmarshalJSON(b []byte) error {
	type plain Stats
	w := struct {
		*plain
		statsJSON
		SuccessRate *float64 `json:"success_rate"`
	}{plain: (*plain)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	s.SuccessRate = deref(w.SuccessRate)
	s.P50, s.P95, s.P99 = fromMilliseconds(deref(w.statsJSON.P50)), fromMilliseconds(deref(w.statsJSON.P95)), fromMilliseconds(deref(w.statsJSON.P99))
	return nil
}

func deref(f *float64) float64 {
	if f == nil {
		return 0
	}
	return *f
}

// Milliseconds is d in milliseconds, the unit of every duration the API
// and the CLI write as JSON (in fields named *_ms).
func Milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}

// fromMilliseconds is the duration of ms milliseconds, to the nanosecond.
func fromMilliseconds(ms float64) time.Duration {
	return time.Duration(math.Round(ms * float64(time.Millisecond)))
}

// FailureCount is one row of a failure breakdown.
type FailureCount struct {
	Key    string `json:"key"`
	Reason string `json:"reason"`
	Count  int64  `json:"count"`
}

// maxDurationSample bounds how many durations a percentile reads.
const maxDurationSample = 200000

// Stats computes analytics for runs started since `since` (of one recipe
// when recipe is not empty).
func (s *Store) Stats(ctx context.Context, recipe string, since time.Time) (*Stats, error) {
	st := &Stats{Recipe: recipe, Since: since, ByStatus: map[string]int64{}}
	where, args := RunFilter{Recipe: recipe, Since: since}.where()
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT status, COUNT(*), COALESCE(SUM(retries), 0) FROM {runs}`+where+` GROUP BY status`), args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	for rows.Next() {
		var status string
		var n, retries int64
		if err := rows.Scan(&status, &n, &retries); err != nil {
			rows.Close()
			return nil, fmt.Errorf("stats: %w", err)
		}
		st.ByStatus[status] = n
		st.Runs += n
		st.Retries += retries
	}
	rows.Close()
	if done := st.Finished(); done > 0 {
		st.SuccessRate = float64(st.ByStatus["succeeded"]) / float64(done)
	}
	durWhere, durArgs := RunFilter{Recipe: recipe, Since: since, Status: "succeeded"}.where()
	drows, err := s.DB.QueryContext(ctx, s.q(`SELECT duration_us FROM {runs}`+durWhere+fmt.Sprintf(` ORDER BY started_at DESC LIMIT %d`, maxDurationSample)), durArgs...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	var durs []int64
	for drows.Next() {
		var d int64
		if err := drows.Scan(&d); err != nil {
			drows.Close()
			return nil, fmt.Errorf("stats: %w", err)
		}
		durs = append(durs, d)
	}
	drows.Close()
	sort.Slice(durs, func(i, j int) bool { return durs[i] < durs[j] })
	pct := func(p float64) time.Duration {
		if len(durs) == 0 {
			return 0
		}
		i := int(p*float64(len(durs)-1) + 0.5)
		return time.Duration(durs[i]) * time.Microsecond
	}
	st.P50, st.P95, st.P99 = pct(0.50), pct(0.95), pct(0.99)

	join := `FROM {run_steps} rs JOIN {runs} r ON r.id = rs.run_id` + prefixed(where)
	var rl int64
	if err := s.DB.QueryRowContext(ctx, s.q(`SELECT COALESCE(SUM(rs.rate_limited), 0) `+join), args...).Scan(&rl); err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	st.RateLimited = rl
	failWhere := " AND rs.status = 'failed'"
	if where == "" {
		failWhere = " WHERE rs.status = 'failed'"
	}
	if st.StepFailures, err = s.failures(ctx, `SELECT r.recipe || '/' || rs.step, rs.reason, COUNT(*) `+join+failWhere+` GROUP BY r.recipe || '/' || rs.step, rs.reason ORDER BY 3 DESC`, args); err != nil {
		return nil, err
	}
	if st.ConnectorFailures, err = s.failures(ctx, `SELECT rs.action, rs.reason, COUNT(*) `+join+failWhere+` GROUP BY rs.action, rs.reason ORDER BY 3 DESC`, args); err != nil {
		return nil, err
	}
	if st.Actions, st.Connections, err = s.calls(ctx, where, args); err != nil {
		return nil, err
	}
	return st, nil
}

// recordCalls is what calls reads of a run's record (a runner.Result as
// JSON): each step's action, connection and status, and its attempts.
type recordCalls struct {
	Steps []struct {
		Action     string `json:"action"`
		Connection string `json:"connection"`
		Status     string `json:"status"`
		Attempts   []struct {
			Error  string        `json:"error"`
			Reason string        `json:"reason"`
			Delay  time.Duration `json:"delay"`
		} `json:"attempts"`
	} `json:"steps"`
}

// calls counts the calls of the runs selected by where, per action and
// per connection, from their records: every step and attempt is there,
// while run_steps keeps a row only for a step that met trouble (see
// Incident), and the pipeline writes nothing more per run for this. A
// record that cannot be read is skipped.
func (s *Store) calls(ctx context.Context, where string, args []any) (actions, conns []CallCount, err error) {
	cond := " WHERE record IS NOT NULL"
	if where != "" {
		cond = where + " AND record IS NOT NULL"
	}
	rows, err := s.DB.QueryContext(ctx, s.q(`SELECT record FROM {runs}`+cond), args...)
	if err != nil {
		return nil, nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	byAction, byConn := map[string]*CallCount{}, map[string]*CallCount{}
	count := func(m map[string]*CallCount, key string, isConn bool) *CallCount {
		c, ok := m[key]
		if !ok {
			c = &CallCount{ErrorsByReason: map[string]int64{}}
			if isConn {
				c.Connection = key
			} else {
				c.Action = key
			}
			m[key] = c
		}
		return c
	}
	var raw []byte
	for rows.Next() {
		if err := rows.Scan(&raw); err != nil {
			return nil, nil, fmt.Errorf("stats: %w", err)
		}
		var rec recordCalls
		if gojson.Unmarshal(raw, &rec) != nil {
			continue
		}
		for _, step := range rec.Steps {
			if step.Action == "" || len(step.Attempts) == 0 && step.Status != "failed" {
				continue // skipped, or not run
			}
			targets := []*CallCount{count(byAction, step.Action, false)}
			if step.Connection != "" {
				targets = append(targets, count(byConn, step.Connection, true))
			}
			for _, c := range targets {
				c.Calls += int64(len(step.Attempts))
				if len(step.Attempts) > 1 {
					c.Retries += int64(len(step.Attempts) - 1)
				}
				if step.Status == "failed" {
					c.Failed++
				}
				for _, a := range step.Attempts {
					c.Waited += a.Delay
					if a.Reason == "rate_limited" {
						c.RateLimited++
					}
					if a.Error != "" {
						reason := a.Reason
						if reason == "" {
							reason = "unknown"
						}
						c.Errors++
						c.ErrorsByReason[reason]++
					}
				}
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, fmt.Errorf("stats: %w", err)
	}
	return worstFirst(byAction), worstFirst(byConn), nil
}

// worstFirst lists counts by most errors, then most calls, then name.
func worstFirst(m map[string]*CallCount) []CallCount {
	out := make([]CallCount, 0, len(m))
	for _, c := range m {
		out = append(out, *c)
	}
	sort.Slice(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if a.Errors != b.Errors {
			return a.Errors > b.Errors
		}
		if a.Calls != b.Calls {
			return a.Calls > b.Calls
		}
		return a.Action+a.Connection < b.Action+b.Connection
	})
	return out
}

// prefixed qualifies the run filter's columns with the runs alias.
func prefixed(where string) string {
	if where == "" {
		return ""
	}
	out := where
	for _, col := range []string{"recipe", "status", "started_at"} {
		out = replaceWord(out, col, "r."+col)
	}
	return out
}

func replaceWord(s, word, with string) string {
	var b []byte
	for i := 0; i < len(s); {
		if i+len(word) <= len(s) && s[i:i+len(word)] == word &&
			(i == 0 || !isIdent(s[i-1])) && (i+len(word) == len(s) || !isIdent(s[i+len(word)])) {
			b = append(b, with...)
			i += len(word)
			continue
		}
		b = append(b, s[i])
		i++
	}
	return string(b)
}

func isIdent(c byte) bool {
	return c == '_' || c == '.' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func (s *Store) failures(ctx context.Context, query string, args []any) ([]FailureCount, error) {
	rows, err := s.DB.QueryContext(ctx, s.q(query), args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer rows.Close()
	out := []FailureCount{}
	for rows.Next() {
		var fc FailureCount
		if err := rows.Scan(&fc.Key, &fc.Reason, &fc.Count); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		out = append(out, fc)
	}
	return out, rows.Err()
}
