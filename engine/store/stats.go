package store

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"time"
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
	// Actions are, per action, the steps that failed, the retried attempts
	// and the attempts the service rate-limited, worst first. (A step that
	// succeeded at once leaves no row to count: the calls of each action
	// are in /metrics, sous_connection_calls_total.)
	Actions []ActionCount `json:"actions"`
}

// ActionCount is the trouble the steps of one action met in the window.
type ActionCount struct {
	Action      string `json:"action"`
	Failed      int64  `json:"failed"`
	Retries     int64  `json:"retries"`
	RateLimited int64  `json:"rate_limited"`
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
	arows, err := s.DB.QueryContext(ctx, s.q(`SELECT rs.action, COALESCE(SUM(CASE WHEN rs.status = 'failed' THEN 1 ELSE 0 END), 0),
		COALESCE(SUM(CASE WHEN rs.attempts > 1 THEN rs.attempts - 1 ELSE 0 END), 0), COALESCE(SUM(rs.rate_limited), 0) `+join+
		` GROUP BY rs.action ORDER BY 2 DESC, 3 DESC, 1`), args...)
	if err != nil {
		return nil, fmt.Errorf("stats: %w", err)
	}
	defer arows.Close()
	st.Actions = []ActionCount{}
	for arows.Next() {
		var a ActionCount
		if err := arows.Scan(&a.Action, &a.Failed, &a.Retries, &a.RateLimited); err != nil {
			return nil, fmt.Errorf("stats: %w", err)
		}
		st.Actions = append(st.Actions, a)
	}
	return st, arows.Err()
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
