// Package service assembles the runtime that `sous serve` runs: the store,
// the broker, the pipeline, the HTTP server, the scheduler, hot reload of
// the recipes folder and retention.
package service

import (
	"errors"
	"fmt"
	"math"
	"net"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/pipeline"
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
	// AckWait is, on NATS, how long a message delivered to a process that
	// died waits before another process takes it up.
	AckWait time.Duration `yaml:"ack_wait"`
	// MaxAge is, on NATS, how long the stream keeps a message no process
	// consumed, and how long the processes share what became of a run.
	MaxAge time.Duration `yaml:"max_age"`
	// MaxParked bounds, on NATS, the runs that wait for their durable
	// retry time across all processes.
	MaxParked int `yaml:"max_parked"`
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
	// MaxCrashes is how many times a process may die while it holds a
	// message (the embedded queue and NATS count them) before the message
	// is set aside as poison: its runs are recorded dead with reason poison.
	MaxCrashes int `yaml:"max_crashes"`
}

// MaxMaxRetryAfter is the most pipeline.max_retry_after may be: 6 days,
// below the NATS stream's default broker.max_age of 7 days, because a
// durable retry on NATS is a redelivery delayed by the wait and JetStream
// silently drops a message older than MaxAge: a longer wait would lose the
// run. A day's margin covers the run's time before the retry and a late
// redelivery. The bound is fixed, not derived from broker.max_age, so that
// the JSON Schema can state it; a shorter broker.max_age is checked
// against pipeline.max_retry_after when the config is read.
const MaxMaxRetryAfter = 6 * 24 * time.Hour

// DefaultGCPercent is the garbage collector's default target for `sous
// serve`: twice Go's. Intake and runs allocate quickly and keep little,
// so with Go's 100 the collector ran often over a small live heap and
// took a quarter of the CPU under load; at 200 a run costs about 18 %
// less CPU, for about 10 MB more memory with a few recipes and 30 MB more
// with 10,000 (docs/performance.md).
const DefaultGCPercent = 200

// DevAPIKey is the API key examples/sous.yaml (and so `make run`) falls
// back to when SOUS_API_KEY is not set. It is published: `sous serve`
// warns when it is in use and refuses it on an address other hosts can
// reach.
const DevAPIKey = "dev-only-api-key-change-me"

// checkDevKey reports whether the development API key is among keys, and
// refuses it unless the service listens on a loopback address only.
func checkDevKey(keys []string, addr net.Addr) (inUse bool, err error) {
	if !slices.Contains(keys, DevAPIKey) {
		return false, nil
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return true, nil
	}
	return true, fmt.Errorf("api_keys: the development API key (%s, from examples/sous.yaml) is refused on %s, which other hosts can reach: "+
		"set SOUS_API_KEY or api_keys to a key of your own, or listen on 127.0.0.1", DevAPIKey, addr)
}

// BrokerTypes are the values of broker.type, and SharedBrokers those
// that several processes share, which need broker.url.
var (
	BrokerTypes   = []string{"sqlite", "memory", "postgres", "nats"}
	SharedBrokers = []string{"postgres", "nats"}
)

// MinAckWait is the least broker.ack_wait: a process tells the NATS
// server every third of it that each message it holds is in progress.
const MinAckWait = time.Second

// RetryAgeMargin is how much longer than pipeline.max_retry_after
// broker.max_age must be: a durable retry on NATS is a redelivery delayed
// by the wait, and JetStream drops a message older than MaxAge, so a
// retry must come due a margin before then (the run's time before its
// retry, a late redelivery).
const RetryAgeMargin = 24 * time.Hour

// MaxMaxParked bounds broker.max_parked.
const MaxMaxParked = 10_000_000

// The ranges pipeline.gc_percent, pipeline.max_in_flight and
// limits.max_body may take.
const (
	MinGCPercent = 25
	MaxGCPercent = 1000
	// MaxMaxInFlight bounds pipeline.max_in_flight: each run in flight
	// holds a worker, a database lease and its memory.
	MaxMaxInFlight = 65536
	// MaxMaxBody bounds limits.max_body: a body is read into memory and
	// stored whole in the events table.
	MaxMaxBody = 64 << 20
	// MaxCommitDelay bounds pipeline.commit_delay.
	MaxCommitDelay = time.Second
	// MaxMaxCrashes bounds pipeline.max_crashes: a message that killed
	// the process that often is poison.
	MaxMaxCrashes = 100
)

// GCPercent is the garbage collector's target to set for these settings,
// and false when GOGC is set in the environment (it wins, as Go's own
// setting).
func (s Settings) GCPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	if s.Pipeline.GCPercent < MinGCPercent || s.Pipeline.GCPercent > MaxGCPercent {
		return 0, false // not from ParseSettings: leave Go's setting alone
	}
	return s.Pipeline.GCPercent, true
}

// DefaultSettings are used for what the config does not set.
func DefaultSettings() Settings {
	return Settings{
		Broker:    BrokerSettings{Type: "sqlite", AckWait: 30 * time.Second, MaxAge: 7 * 24 * time.Hour, MaxParked: 100_000},
		Retention: RetentionSettings{Succeeded: 7 * 24 * time.Hour, Failed: 30 * 24 * time.Hour, Dedup: 7 * 24 * time.Hour, Interval: time.Hour},
		Limits:    LimitSettings{MaxBody: 1 << 20},
		Pipeline: PipelineSettings{MaxInFlight: 256, RunTimeout: 15 * time.Minute, ShutdownTimeout: 30 * time.Second, ReloadInterval: time.Second,
			CommitDelay: 2 * time.Millisecond, GCPercent: DefaultGCPercent, MaxRetryAfter: runner.DefaultMaxRetryAfter,
			MaxCrashes: pipeline.DefaultMaxCrashes},
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
		{&s.Retention.Dedup, &d.Retention.Dedup}, {&s.Retention.Interval, &d.Retention.Interval}, {&s.Broker.AckWait, &d.Broker.AckWait}, {&s.Broker.MaxAge, &d.Broker.MaxAge},
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
	if s.Pipeline.MaxCrashes <= 0 {
		s.Pipeline.MaxCrashes = d.Pipeline.MaxCrashes
	}
	if s.Broker.MaxParked <= 0 {
		s.Broker.MaxParked = d.Broker.MaxParked
	}
	return s
}

// A SettingsError is one bad value in the runtime sections of a config
// file, at its place: "sous.yaml:12:20: pipeline.gc_percent: 5 is not
// from 25 to 1000".
type SettingsError struct {
	recipes.Pos
	Msg string
}

func (e *SettingsError) Error() string { return e.Pos.String() + ": " + e.Msg }

// ParseSettings reads the runtime sections of a loaded config. The error
// joins (errors.Join) a *SettingsError for every problem found.
func ParseSettings(cfg *recipes.Config) (Settings, error) {
	s, errs := parseSettings(cfg)
	if len(errs) == 0 {
		return s, nil
	}
	joined := make([]error, len(errs))
	for i, e := range errs {
		joined[i] = e
	}
	return s, errors.Join(joined...)
}

// CheckSettings reports the problems of the runtime sections of a loaded
// config as diagnostics, for `sous validate`: what ParseSettings would
// refuse, without opening anything.
func CheckSettings(cfg *recipes.Config) recipes.Diagnostics {
	_, errs := parseSettings(cfg)
	var ds recipes.Diagnostics
	for _, e := range errs {
		ds = append(ds, recipes.Diagnostic{Pos: e.Pos, Severity: recipes.SevError, Message: e.Msg})
	}
	return ds
}

// settingsParser collects the problems of the runtime sections, each at
// the YAML node it is about.
type settingsParser struct {
	cfg  *recipes.Config
	errs []*SettingsError
}

func (p *settingsParser) errorf(n *yaml.Node, format string, args ...any) {
	pos := recipes.Pos{File: p.cfg.File}
	if n != nil {
		pos.Line, pos.Col = n.Line, n.Column
	}
	p.errs = append(p.errs, &SettingsError{Pos: pos, Msg: fmt.Sprintf(format, args...)})
}

// section decodes a runtime section key by key: fields maps each key to
// where its value goes (a *string, *int, *int64 or **int). Unknown keys
// are errors when strict, and ignored otherwise. It returns the section's
// node, nil when the config does not have it.
func (p *settingsParser) section(key string, strict bool, fields map[string]any) *yaml.Node {
	n, ok := p.cfg.Extra[key]
	if !ok || n == nil {
		return nil
	}
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.Tag == "!!null" {
		return n // `pipeline:` with nothing under it
	}
	if n.Kind != yaml.MappingNode {
		p.errorf(n, "%s must be a mapping, not %s", key, describe(n))
		return n
	}
	known := make([]string, 0, len(fields))
	for k := range fields {
		known = append(known, k)
	}
	sort.Strings(known)
	seen := map[string]*yaml.Node{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			p.errorf(k, "%s: keys must be strings", key)
			continue
		}
		name := key + "." + k.Value
		if k.Value == "<<" && k.Tag == "!!merge" {
			p.errorf(k, "%s: merge keys (<<) are not supported; write the keys out", key)
			continue
		}
		if prev, dup := seen[k.Value]; dup {
			p.errorf(k, "%s: duplicate key (first at line %d)", name, prev.Line)
			continue
		}
		seen[k.Value] = k
		into, ok := fields[k.Value]
		if !ok {
			if strict {
				p.errorf(k, "%s: unknown field %q%s", key, k.Value, suggestOr(k.Value, known))
			}
			continue
		}
		p.decode(v, name, into)
	}
	return n
}

// decode decodes one value as YAML would (null leaves it as it is).
func (p *settingsParser) decode(n *yaml.Node, name string, into any) {
	if _, str := into.(*string); !str {
		// YAML decodes 200.5 into a whole number as 200: a fraction is an
		// error here (a whole number written as 1e6 is fine)
		if d := deref(n); d != nil && d.Kind == yaml.ScalarNode && d.Tag == "!!float" {
			if f, err := strconv.ParseFloat(d.Value, 64); err == nil && f != math.Trunc(f) {
				p.errorf(d, "%s: %s is not a whole number", name, describe(d))
				return
			}
		}
	}
	if err := n.Decode(into); err == nil {
		return
	}
	n = deref(n)
	switch into.(type) {
	case *string:
		p.errorf(n, "%s: %s is not a string", name, describe(n))
	default:
		hint := ""
		if _, err := strconv.Atoi(n.Value); err == nil && n.Kind == yaml.ScalarNode && n.Tag == "!!str" {
			hint = " (it is a string: quoted, or read from the environment)"
		}
		p.errorf(n, "%s: %s is not a whole number%s", name, describe(n), hint)
	}
}

// deref follows YAML aliases.
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode && n.Alias != nil {
		n = n.Alias
	}
	return n
}

func describe(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	}
	return strconv.Quote(n.Value)
}

func suggestOr(got string, known []string) string {
	if s := recipes.Suggest(got, known); s != "" {
		return s
	}
	return "; known fields: " + strings.Join(known, ", ")
}

func parseSettings(cfg *recipes.Config) (Settings, []*SettingsError) {
	s := DefaultSettings()
	if cfg == nil {
		return s, nil
	}
	p := &settingsParser{cfg: cfg}

	// broker
	var ackWait, maxAge string
	var maxParked *int
	broker := p.section("broker", true, map[string]any{"type": &s.Broker.Type, "url": &s.Broker.URL, "prefix": &s.Broker.Prefix,
		"ack_wait": &ackWait, "max_age": &maxAge, "max_parked": &maxParked})
	switch {
	case !slices.Contains(BrokerTypes, s.Broker.Type):
		p.errorf(value(broker, "type"), "broker.type %q is not one of %s", s.Broker.Type, strings.Join(BrokerTypes, ", "))
	case slices.Contains(SharedBrokers, s.Broker.Type) && s.Broker.URL == "":
		p.errorf(broker, "broker.url is required for %s", s.Broker.Type)
	}
	if err := parseDur("broker.ack_wait", ackWait, &s.Broker.AckWait); err != nil {
		p.errorf(value(broker, "ack_wait"), "%v", err)
	} else if s.Broker.AckWait < MinAckWait {
		p.errorf(value(broker, "ack_wait"), "broker.ack_wait: %s is less than %s", ackWait, MinAckWait)
	}
	maxAgeOK := true
	if err := parseDur("broker.max_age", maxAge, &s.Broker.MaxAge); err != nil {
		p.errorf(value(broker, "max_age"), "%v", err)
		maxAgeOK = false
	}
	if maxParked != nil {
		if *maxParked < 1 || *maxParked > MaxMaxParked {
			p.errorf(value(broker, "max_parked"), "broker.max_parked: %d is not from 1 to %d", *maxParked, MaxMaxParked)
		} else {
			s.Broker.MaxParked = *maxParked
		}
	}

	// retention
	var r struct{ succeeded, failed, dedup, interval string }
	retention := p.section("retention", true, map[string]any{"succeeded": &r.succeeded, "failed": &r.failed, "dedup": &r.dedup, "interval": &r.interval})
	for _, d := range []struct {
		name string
		v    string
		to   *time.Duration
	}{{"succeeded", r.succeeded, &s.Retention.Succeeded}, {"failed", r.failed, &s.Retention.Failed}, {"dedup", r.dedup, &s.Retention.Dedup}, {"interval", r.interval, &s.Retention.Interval}} {
		if err := parseDur("retention."+d.name, d.v, d.to); err != nil {
			p.errorf(value(retention, d.name), "%v", err)
		}
	}

	// limits (not strict: unknown keys are ignored)
	var maxBody *int64
	limits := p.section("limits", false, map[string]any{"max_body": &maxBody})
	if maxBody != nil {
		if *maxBody < 1 || *maxBody > MaxMaxBody {
			p.errorf(value(limits, "max_body"), "limits.max_body: %d is not a size in bytes from 1 to %d (64 MiB)", *maxBody, MaxMaxBody)
		} else {
			s.Limits.MaxBody = *maxBody
		}
	}

	// pipeline
	var pp struct {
		maxInFlight                                 *int
		runTimeout, shutdownTimeout, reloadInterval string
		commitDelay, maxRetryAfter                  string
		gcPercent, maxCrashes                       *int
	}
	pipeline := p.section("pipeline", true, map[string]any{
		"max_in_flight": &pp.maxInFlight, "run_timeout": &pp.runTimeout, "shutdown_timeout": &pp.shutdownTimeout,
		"reload_interval": &pp.reloadInterval, "commit_delay": &pp.commitDelay, "gc_percent": &pp.gcPercent,
		"max_retry_after": &pp.maxRetryAfter, "max_crashes": &pp.maxCrashes,
	})
	if pp.maxInFlight != nil {
		if *pp.maxInFlight < 1 || *pp.maxInFlight > MaxMaxInFlight {
			p.errorf(value(pipeline, "max_in_flight"), "pipeline.max_in_flight: %d is not from 1 to %d", *pp.maxInFlight, MaxMaxInFlight)
		} else {
			s.Pipeline.MaxInFlight = *pp.maxInFlight
		}
	}
	for _, d := range []struct {
		name string
		v    string
		to   *time.Duration
	}{{"run_timeout", pp.runTimeout, &s.Pipeline.RunTimeout}, {"shutdown_timeout", pp.shutdownTimeout, &s.Pipeline.ShutdownTimeout}, {"reload_interval", pp.reloadInterval, &s.Pipeline.ReloadInterval}} {
		if err := parseDur("pipeline."+d.name, d.v, d.to); err != nil {
			p.errorf(value(pipeline, d.name), "%v", err)
		}
	}
	if pp.commitDelay != "" {
		d, err := time.ParseDuration(pp.commitDelay)
		if err != nil || d < 0 || d > MaxCommitDelay {
			p.errorf(value(pipeline, "commit_delay"), "pipeline.commit_delay: %q is not a duration from 0s to 1s, such as 2ms", pp.commitDelay)
		} else {
			s.Pipeline.CommitDelay = d
		}
	}
	if pp.gcPercent != nil {
		if *pp.gcPercent < MinGCPercent || *pp.gcPercent > MaxGCPercent {
			p.errorf(value(pipeline, "gc_percent"), "pipeline.gc_percent: %d is not from %d to %d", *pp.gcPercent, MinGCPercent, MaxGCPercent)
		} else {
			s.Pipeline.GCPercent = *pp.gcPercent
		}
	}
	if pp.maxCrashes != nil {
		if *pp.maxCrashes < 1 || *pp.maxCrashes > MaxMaxCrashes {
			p.errorf(value(pipeline, "max_crashes"), "pipeline.max_crashes: %d is not from 1 to %d", *pp.maxCrashes, MaxMaxCrashes)
		} else {
			s.Pipeline.MaxCrashes = *pp.maxCrashes
		}
	}
	retryOK := true
	if pp.maxRetryAfter != "" {
		d, err := recipes.ParsePeriod(pp.maxRetryAfter)
		if err != nil || d <= 0 || d > MaxMaxRetryAfter {
			retryOK = false
			p.errorf(value(pipeline, "max_retry_after"), "pipeline.max_retry_after: %q is not a positive duration up to 6d, such as 24h (a longer wait would outlive a NATS stream's default 7-day broker.max_age)", pp.maxRetryAfter)
		} else {
			s.Pipeline.MaxRetryAfter = d
		}
	}
	// against a max_retry_after refused above, it would be checked
	// against the default, which the file did not say: one mistake, one
	// error
	if maxAge != "" && maxAgeOK && retryOK && s.Broker.MaxAge < s.Pipeline.MaxRetryAfter+RetryAgeMargin {
		p.errorf(value(broker, "max_age"), "broker.max_age: %s is less than pipeline.max_retry_after (%s) and a day: a durable retry would come after the stream dropped its run",
			maxAge, FormatDuration(s.Pipeline.MaxRetryAfter, true))
	}
	// in the order of the file
	sort.SliceStable(p.errs, func(i, j int) bool {
		a, b := p.errs[i].Pos, p.errs[j].Pos
		return a.Line < b.Line || a.Line == b.Line && a.Col < b.Col
	})
	return s, p.errs
}

// value is the value node of key in a section's mapping, or the section
// itself when it has no such key (nil when there is no section).
func value(section *yaml.Node, key string) *yaml.Node {
	if section == nil || section.Kind != yaml.MappingNode {
		return section
	}
	var found *yaml.Node
	for i := 0; i+1 < len(section.Content); i += 2 {
		if k := deref(section.Content[i]); k.Kind == yaml.ScalarNode && k.Value == key && found == nil {
			found = section.Content[i+1]
		}
	}
	if found == nil {
		return section
	}
	return deref(found)
}

func parseDur(name, v string, to *time.Duration) error {
	if v == "" {
		return nil
	}
	d, err := recipes.ParsePeriod(v)
	if err != nil || d <= 0 {
		return fmt.Errorf("%s: %q is not a positive duration such as 12h or 7d", name, v)
	}
	*to = d
	return nil
}

// FormatDuration writes a duration as a config would: 7d for whole days
// (when days is set and d is more than a day), 15m rather than 15m0s.
func FormatDuration(d time.Duration, days bool) string {
	const day = 24 * time.Hour
	if days && d > day && d%day == 0 {
		return fmt.Sprintf("%dd", d/day)
	}
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
