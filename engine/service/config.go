// Package service assembles the runtime that `sous serve` runs: the store,
// the broker, the pipeline, the HTTP server, the scheduler, hot reload of
// the recipes folder and retention.
package service

import (
	"fmt"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
)

// Settings are the runtime sections of sous.yaml, with defaults.
type Settings struct {
	Broker    BrokerSettings
	Retention RetentionSettings
	Limits    LimitSettings
	Pipeline  PipelineSettings
}

// BrokerSettings choose the broker: sqlite (default), memory, postgres or nats.
type BrokerSettings struct {
	Type string `yaml:"type"`
	// URL is the PostgreSQL DSN or the NATS URL.
	URL string `yaml:"url"`
	// Prefix names tables or streams (tests isolate with it).
	Prefix string `yaml:"prefix"`
}

// RetentionSettings say how long records are kept.
type RetentionSettings struct {
	Succeeded time.Duration `yaml:"succeeded"`
	Failed    time.Duration `yaml:"failed"`
	Dedup     time.Duration `yaml:"dedup"`
	Interval  time.Duration `yaml:"interval"`
}

// LimitSettings bound intake.
type LimitSettings struct {
	MaxBody int64 `yaml:"max_body"`
}

// PipelineSettings tune the pipeline.
type PipelineSettings struct {
	MaxInFlight     int           `yaml:"max_in_flight"`
	RunTimeout      time.Duration `yaml:"run_timeout"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
	ReloadInterval  time.Duration `yaml:"reload_interval"`
	// CommitDelay lets a busy embedded store gather writes for up to this
	// long into one transaction (0: commit at once).
	CommitDelay time.Duration `yaml:"commit_delay"`
	// GCPercent is the garbage collector's target (Go's GOGC) that
	// `sous serve` sets unless GOGC is in its environment.
	GCPercent int `yaml:"gc_percent"`
	// MaxRetryAfter is the longest Retry-After a step's retry honours: a
	// service asking for a longer wait fails the step at once with the
	// error's reason (rate_limited, say) instead of holding the run.
	MaxRetryAfter time.Duration `yaml:"max_retry_after"`
}

// maxMaxRetryAfter is the most pipeline.max_retry_after may be: 6 days,
// below the 7-day MaxAge of the NATS stream, because a durable retry on
// NATS is a redelivery delayed by the wait and JetStream silently drops a
// message older than MaxAge: a longer wait would lose the run. A day's
// margin covers the run's time before the retry and a late redelivery.
const maxMaxRetryAfter = 6 * 24 * time.Hour

// DefaultGCPercent is the garbage collector's default target for `sous
// serve`: twice Go's. Intake and runs allocate quickly and keep little,
// so with Go's 100 the collector ran often over a small live heap and
// took a quarter of the CPU under load; at 200 a run costs about 18 %
// less CPU, for about 10 MB more memory with a few recipes and 30 MB more
// with 10,000 (docs/performance.md).
const DefaultGCPercent = 200

// GC ranges pipeline.gc_percent may take.
const (
	minGCPercent = 25
	maxGCPercent = 1000
)

// GCPercent is the garbage collector's target to set for these settings,
// and false when GOGC is set in the environment (it wins, as Go's own
// setting).
func (s Settings) GCPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	if s.Pipeline.GCPercent < minGCPercent || s.Pipeline.GCPercent > maxGCPercent {
		return 0, false // not from ParseSettings: leave Go's setting alone
	}
	return s.Pipeline.GCPercent, true
}

// DefaultSettings are used for what the config does not set.
func DefaultSettings() Settings {
	return Settings{
		Broker:    BrokerSettings{Type: "sqlite"},
		Retention: RetentionSettings{Succeeded: 7 * 24 * time.Hour, Failed: 30 * 24 * time.Hour, Dedup: 7 * 24 * time.Hour, Interval: time.Hour},
		Limits:    LimitSettings{MaxBody: 1 << 20},
		Pipeline: PipelineSettings{MaxInFlight: 256, RunTimeout: 15 * time.Minute, ShutdownTimeout: 30 * time.Second, ReloadInterval: time.Second,
			CommitDelay: 2 * time.Millisecond, GCPercent: DefaultGCPercent, MaxRetryAfter: runner.DefaultMaxRetryAfter},
	}
}

// withDefaults fills what is unset (zero) with the defaults: a zero
// retention would prune every run, a zero interval panics a ticker.
func (s Settings) withDefaults() Settings {
	d := DefaultSettings()
	if s.Broker.Type == "" {
		s.Broker.Type = d.Broker.Type
	}
	for _, f := range []struct{ v, def *time.Duration }{
		{&s.Retention.Succeeded, &d.Retention.Succeeded}, {&s.Retention.Failed, &d.Retention.Failed},
		{&s.Retention.Dedup, &d.Retention.Dedup}, {&s.Retention.Interval, &d.Retention.Interval},
		{&s.Pipeline.RunTimeout, &d.Pipeline.RunTimeout}, {&s.Pipeline.ShutdownTimeout, &d.Pipeline.ShutdownTimeout},
		{&s.Pipeline.ReloadInterval, &d.Pipeline.ReloadInterval}, {&s.Pipeline.MaxRetryAfter, &d.Pipeline.MaxRetryAfter},
	} {
		if *f.v <= 0 {
			*f.v = *f.def
		}
	}
	if s.Limits.MaxBody <= 0 {
		s.Limits.MaxBody = d.Limits.MaxBody
	}
	if s.Pipeline.MaxInFlight <= 0 {
		s.Pipeline.MaxInFlight = d.Pipeline.MaxInFlight
	}
	return s
}

// ParseSettings reads the runtime sections of a loaded config.
func ParseSettings(cfg *recipes.Config) (Settings, error) {
	s := DefaultSettings()
	if cfg == nil {
		return s, nil
	}
	decode := func(key string, into any) error {
		n, ok := cfg.Extra[key]
		if !ok {
			return nil
		}
		if err := n.Decode(into); err != nil {
			return fmt.Errorf("%s:%d: %s: %w", cfg.File, n.Line, key, err)
		}
		return nil
	}
	type broker BrokerSettings
	type retention struct {
		Succeeded string `yaml:"succeeded"`
		Failed    string `yaml:"failed"`
		Dedup     string `yaml:"dedup"`
		Interval  string `yaml:"interval"`
	}
	type pipe struct {
		MaxInFlight     int    `yaml:"max_in_flight"`
		RunTimeout      string `yaml:"run_timeout"`
		ShutdownTimeout string `yaml:"shutdown_timeout"`
		ReloadInterval  string `yaml:"reload_interval"`
		CommitDelay     string `yaml:"commit_delay"`
		GCPercent       *int   `yaml:"gc_percent"`
		MaxRetryAfter   string `yaml:"max_retry_after"`
	}
	b := broker(s.Broker)
	if err := strictDecode(cfg, "broker", &b); err != nil {
		return s, err
	}
	s.Broker = BrokerSettings(b)
	switch s.Broker.Type {
	case "sqlite", "memory", "postgres", "nats":
	default:
		return s, fmt.Errorf("%s: broker.type %q is not one of sqlite, memory, postgres, nats", cfg.File, s.Broker.Type)
	}
	if (s.Broker.Type == "postgres" || s.Broker.Type == "nats") && s.Broker.URL == "" {
		return s, fmt.Errorf("%s: broker.url is required for %s", cfg.File, s.Broker.Type)
	}
	var r retention
	if err := strictDecode(cfg, "retention", &r); err != nil {
		return s, err
	}
	for _, d := range []struct {
		name string
		v    string
		to   *time.Duration
	}{{"succeeded", r.Succeeded, &s.Retention.Succeeded}, {"failed", r.Failed, &s.Retention.Failed}, {"dedup", r.Dedup, &s.Retention.Dedup}, {"interval", r.Interval, &s.Retention.Interval}} {
		if err := parseDur("retention."+d.name, d.v, d.to); err != nil {
			return s, fmt.Errorf("%s: %w", cfg.File, err)
		}
	}
	if err := decode("limits", &s.Limits); err != nil {
		return s, err
	}
	var p pipe
	if err := strictDecode(cfg, "pipeline", &p); err != nil {
		return s, err
	}
	if p.MaxInFlight > 0 {
		s.Pipeline.MaxInFlight = p.MaxInFlight
	}
	for _, d := range []struct {
		name string
		v    string
		to   *time.Duration
	}{{"run_timeout", p.RunTimeout, &s.Pipeline.RunTimeout}, {"shutdown_timeout", p.ShutdownTimeout, &s.Pipeline.ShutdownTimeout}, {"reload_interval", p.ReloadInterval, &s.Pipeline.ReloadInterval}} {
		if err := parseDur("pipeline."+d.name, d.v, d.to); err != nil {
			return s, fmt.Errorf("%s: %w", cfg.File, err)
		}
	}
	if p.CommitDelay != "" {
		d, err := time.ParseDuration(p.CommitDelay)
		if err != nil || d < 0 || d > time.Second {
			return s, fmt.Errorf("%s: pipeline.commit_delay: %q is not a duration from 0s to 1s, such as 2ms", cfg.File, p.CommitDelay)
		}
		s.Pipeline.CommitDelay = d
	}
	if p.GCPercent != nil {
		if *p.GCPercent < minGCPercent || *p.GCPercent > maxGCPercent {
			return s, fmt.Errorf("%s: pipeline.gc_percent: %d is not from %d to %d", cfg.File, *p.GCPercent, minGCPercent, maxGCPercent)
		}
		s.Pipeline.GCPercent = *p.GCPercent
	}
	if p.MaxRetryAfter != "" {
		d, err := parseDays(p.MaxRetryAfter)
		if err != nil || d <= 0 || d > maxMaxRetryAfter {
			return s, fmt.Errorf("%s: pipeline.max_retry_after: %q is not a positive duration up to 6d, such as 24h (a longer wait outlives a NATS stream's 7-day MaxAge)", cfg.File, p.MaxRetryAfter)
		}
		s.Pipeline.MaxRetryAfter = d
	}
	return s, nil
}

func strictDecode(cfg *recipes.Config, key string, into any) error {
	n, ok := cfg.Extra[key]
	if !ok {
		return nil
	}
	b, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytesReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(into); err != nil {
		return fmt.Errorf("%s:%d: %s: %w", cfg.File, n.Line, key, err)
	}
	return nil
}

func parseDur(name, v string, to *time.Duration) error {
	if v == "" {
		return nil
	}
	d, err := parseDays(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s: %q is not a positive duration such as 12h or 7d", name, v)
	}
	*to = d
	return nil
}

// parseDays accepts Go durations and a whole number of days ("7d").
func parseDays(v string) (time.Duration, error) {
	var n int
	if _, err := fmt.Sscanf(v, "%dd", &n); err == nil && fmt.Sprintf("%dd", n) == v {
		return time.Duration(n) * 24 * time.Hour, nil
	}
	return time.ParseDuration(v)
}
