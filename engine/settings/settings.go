// Package settings describes the runtime sections of sous.yaml (broker,
// retention, limits, pipeline) once: each setting's name, type, default,
// bounds, description and example. That description drives the parser
// (with its diagnostics at file:line:col), the defaults, the range checks
// and the config JSON Schema (package schemas). It imports no broker, so
// the schema generator does not build one.
package settings

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
)

// Runtime holds the runtime sections of sous.yaml, with defaults.
type Runtime struct {
	Broker    Broker    `yaml:"broker"`
	Retention Retention `yaml:"retention"`
	Limits    Limits    `yaml:"limits"`
	Pipeline  Pipeline  `yaml:"pipeline"`
}

// Broker chooses the broker: sqlite (default), memory, postgres or nats.
type Broker struct {
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

// Retention says how long records are kept.
type Retention struct {
	Succeeded time.Duration `yaml:"succeeded"`
	Failed    time.Duration `yaml:"failed"`
	Dedup     time.Duration `yaml:"dedup"`
	Interval  time.Duration `yaml:"interval"`
}

// Limits bound intake.
type Limits struct {
	MaxBody int64 `yaml:"max_body"`
}

// Pipeline tunes the pipeline.
type Pipeline struct {
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

// DefaultMaxRetryAfter is the default pipeline.max_retry_after, the
// runner's own default (engine/service tests that they agree).
const DefaultMaxRetryAfter = 24 * time.Hour

// DefaultMaxCrashes is the default pipeline.max_crashes, the pipeline's
// own default (engine/service tests that they agree).
const DefaultMaxCrashes = 3

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

// A Section is one runtime section of sous.yaml and its settings, in the
// order they are checked.
type Section struct {
	Name        string
	Description string
	// Strict makes an unknown key an error; otherwise it is ignored.
	Strict   bool
	Settings []Spec
}

// Spec describes one runtime setting. Its Type is connector.String,
// connector.Int or connector.Duration.
type Spec struct {
	Key  string // in its section, snake_case
	Type connector.Type
	// Days, on a Duration, makes it a period as recipes.ParsePeriod reads
	// it (7d, 12h) that must be positive; without it the value is a Go
	// duration (time.ParseDuration) from Min to Max.
	Days bool
	// Default is a string, an int or a time.Duration (nil: none).
	Default any
	// Enum lists the values a String takes.
	Enum []string
	// Min and Max bound an Int, or a Duration in nanoseconds (0: no bound
	// for a period's Min and Max).
	Min, Max int64
	// Range, on an Int, replaces "from Min to Max" in its error.
	Range string
	// RequiredIf makes a String required when another setting of its
	// section has one of some values.
	RequiredIf *Condition
	// Description is what the config schema says.
	Description string
	// Example is a value shown in the error of a bounded duration.
	Example string
	// Why follows the error of a bounded period, in parentheses.
	Why string
}

// A Condition holds when the setting Key of the same section has one of
// Values.
type Condition struct {
	Key    string
	Values []string
}

// intNote ends the description of an integer setting: the parser reads
// a number, not a string, so a ${VAR} reference cannot give one.
const intNote = "; a whole number, not a ${VAR} string"

// Sections describe every runtime setting, once.
var Sections = []Section{
	{Name: "broker", Description: "The message broker between intake and the runs", Strict: true, Settings: []Spec{
		{Key: "type", Type: connector.String, Enum: BrokerTypes, Default: "sqlite",
			Description: "sqlite: in the embedded store; memory: in process, lost at exit; postgres or nats: shared by several processes, with url"},
		{Key: "url", Type: connector.String, RequiredIf: &Condition{Key: "type", Values: SharedBrokers},
			Description: "The PostgreSQL DSN or the NATS URL (required for postgres and nats)"},
		{Key: "prefix", Type: connector.String, Description: "A prefix for the broker's tables or streams"},
		{Key: "ack_wait", Type: connector.Duration, Days: true, Default: 30 * time.Second, Min: int64(MinAckWait),
			Description: fmt.Sprintf("nats: how long a message delivered to a process that died waits before another process takes it up; at least %s (a process says every third of it that each message it holds is in progress)",
				FormatDuration(MinAckWait, false))},
		{Key: "max_age", Type: connector.Duration, Days: true, Default: 7 * 24 * time.Hour,
			Description: fmt.Sprintf("nats: how long the stream keeps a message no process consumed, and the processes share what became of a run; at least pipeline.max_retry_after and %s more (checked by sous validate, not by this schema)",
				FormatDuration(RetryAgeMargin, false))},
		{Key: "max_parked", Type: connector.Int, Default: 100_000, Min: 1, Max: MaxMaxParked,
			Description: fmt.Sprintf("nats: how many runs may wait for their durable retry time across all processes, 1 to %d (beyond it a retry comes late, not lost)", MaxMaxParked)},
	}},
	{Name: "retention", Description: "How long records are kept", Strict: true, Settings: []Spec{
		{Key: "succeeded", Type: connector.Duration, Days: true, Default: 7 * 24 * time.Hour, Description: "How long succeeded and filtered runs are kept"},
		{Key: "failed", Type: connector.Duration, Days: true, Default: 30 * 24 * time.Hour, Description: "How long failed and dead runs are kept"},
		{Key: "dedup", Type: connector.Duration, Days: true, Default: 7 * 24 * time.Hour, Description: "How long dedup keys and events are kept (events of kept runs stay, for replay)"},
		{Key: "interval", Type: connector.Duration, Days: true, Default: time.Hour, Description: "How often records are pruned"},
	}},
	{Name: "limits", Description: "Bounds on intake (other keys are ignored)", Strict: false, Settings: []Spec{
		{Key: "max_body", Type: connector.Int, Default: 1 << 20, Min: 1, Max: MaxMaxBody,
			Range:       fmt.Sprintf("a size in bytes from 1 to %d (64 MiB)", MaxMaxBody),
			Description: fmt.Sprintf("The largest request body in bytes, up to %d (64 MiB)", MaxMaxBody)},
	}},
	{Name: "pipeline", Description: "Tuning of the pipeline that runs the recipes", Strict: true, Settings: []Spec{
		{Key: "max_in_flight", Type: connector.Int, Default: 256, Min: 1, Max: MaxMaxInFlight,
			Description: fmt.Sprintf("Runs at once in this process, 1 to %d", MaxMaxInFlight)},
		{Key: "run_timeout", Type: connector.Duration, Days: true, Default: 15 * time.Minute, Description: "How long a run may take"},
		{Key: "shutdown_timeout", Type: connector.Duration, Days: true, Default: 30 * time.Second, Description: "How long in-flight runs may finish at shutdown"},
		{Key: "reload_interval", Type: connector.Duration, Days: true, Default: time.Second, Description: "How often the recipes folder is checked for changes"},
		{Key: "commit_delay", Type: connector.Duration, Default: 2 * time.Millisecond, Min: 0, Max: int64(MaxCommitDelay), Example: "2ms",
			Description: fmt.Sprintf("How long a busy embedded store gathers writes into one transaction, from 0s (commit at once) to %s", FormatDuration(MaxCommitDelay, false))},
		{Key: "gc_percent", Type: connector.Int, Default: DefaultGCPercent, Min: MinGCPercent, Max: MaxGCPercent,
			Description: fmt.Sprintf("The garbage collector's target (GOGC in the environment wins), %d to %d", MinGCPercent, MaxGCPercent)},
		{Key: "max_crashes", Type: connector.Int, Default: DefaultMaxCrashes, Min: 1, Max: MaxMaxCrashes,
			Description: fmt.Sprintf("How many times a process may die while it holds a message (embedded queue and NATS) before the message is set aside as poison: its runs are recorded dead with reason poison. 1 to %d", MaxMaxCrashes)},
		{Key: "max_retry_after", Type: connector.Duration, Days: true, Default: DefaultMaxRetryAfter, Max: int64(MaxMaxRetryAfter), Example: "24h",
			Why: "a longer wait would outlive a NATS stream's default 7-day broker.max_age",
			Description: fmt.Sprintf("The longest Retry-After a step's retry waits for; a longer one fails the step. A positive duration up to %s (a longer wait would outlive a NATS stream's default 7-day broker.max_age)",
				FormatDuration(MaxMaxRetryAfter, true))},
	}},
}

// SchemaDescription is the description the config schema gives the
// setting: an integer's says it takes no ${VAR} string.
func (s Spec) SchemaDescription() string {
	if s.Type == connector.Int {
		return s.Description + intNote
	}
	return s.Description
}

// field is where the setting is kept in r: the field of its section's
// struct whose yaml tag is its key.
func field(r *Runtime, section, key string) reflect.Value {
	v := reflect.ValueOf(r).Elem()
	for i := range v.NumField() {
		if v.Type().Field(i).Tag.Get("yaml") != section {
			continue
		}
		sec := v.Field(i)
		for j := range sec.NumField() {
			if sec.Type().Field(j).Tag.Get("yaml") == key {
				return sec.Field(j)
			}
		}
	}
	panic(fmt.Sprintf("settings: no field for %s.%s", section, key))
}

// set keeps a string, a whole number or a duration in a setting's field.
func set(f reflect.Value, v any) {
	switch v := v.(type) {
	case string:
		f.SetString(v)
	case int:
		f.SetInt(int64(v))
	case int64:
		f.SetInt(v)
	case time.Duration:
		f.SetInt(int64(v))
	default:
		panic(fmt.Sprintf("settings: a value of type %T", v))
	}
}

// Default returns the settings used for what the config does not set.
func Default() Runtime {
	var r Runtime
	for _, sec := range Sections {
		for _, s := range sec.Settings {
			if s.Default != nil {
				set(field(&r, sec.Name, s.Key), s.Default)
			}
		}
	}
	return r
}

// WithDefaults fills what is unset (zero or less) with the defaults, for
// the settings that must be positive: a zero retention would prune every
// run, a zero interval panics a ticker. pipeline.gc_percent is left, as
// GCPercent ignores a value out of its range.
func (r Runtime) WithDefaults() Runtime {
	d := Default()
	for _, sec := range Sections {
		for _, s := range sec.Settings {
			if s.Default == nil || sec.Name == "pipeline" && s.Key == "gc_percent" {
				continue
			}
			f := field(&r, sec.Name, s.Key)
			switch {
			case f.Kind() == reflect.String && f.String() == "":
			case f.Kind() != reflect.String && f.Int() <= 0 && (s.Days || s.Min > 0):
			default:
				continue
			}
			f.Set(field(&d, sec.Name, s.Key))
		}
	}
	return r
}

// GCPercent is the garbage collector's target to set for these settings,
// and false when GOGC is set in the environment (it wins, as Go's own
// setting).
func (r Runtime) GCPercent(getenv func(string) string) (int, bool) {
	if getenv("GOGC") != "" {
		return 0, false
	}
	if r.Pipeline.GCPercent < MinGCPercent || r.Pipeline.GCPercent > MaxGCPercent {
		return 0, false // not from Parse: leave Go's setting alone
	}
	return r.Pipeline.GCPercent, true
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
