package service

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
)

// TestParseSettings checks the runtime sections of sous.yaml: what they
// set, their defaults, and a clear error naming the file and the field.
func TestParseSettings(t *testing.T) {
	tests := []struct {
		name  string
		yaml  string
		check func(t *testing.T, s Settings)
		err   string
	}{
		{name: "defaults", yaml: "log_level: info\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, DefaultSettings(), s)
			require.Equal(t, 2*time.Millisecond, s.Pipeline.CommitDelay)
			require.Equal(t, DefaultGCPercent, s.Pipeline.GCPercent)
			require.Equal(t, 24*time.Hour, s.Pipeline.MaxRetryAfter)
			require.Equal(t, runner.DefaultMaxRetryAfter, s.Pipeline.MaxRetryAfter)
		}},
		{name: "gc percent", yaml: "pipeline: {gc_percent: 100}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 100, s.Pipeline.GCPercent)
		}},
		{name: "gc percent too low", yaml: "pipeline: {gc_percent: 0}\n", err: "sous.yaml:1:24: pipeline.gc_percent: 0 is not from 25 to 1000"},
		{name: "gc percent too high", yaml: "pipeline: {gc_percent: 5000}\n", err: "pipeline.gc_percent: 5000 is not from 25 to 1000"},
		{name: "gc percent not a number", yaml: "pipeline: {gc_percent: lots}\n", err: "pipeline"},
		{name: "pipeline", yaml: "pipeline: {max_in_flight: 32, reload_interval: 5s, commit_delay: 500us}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 32, s.Pipeline.MaxInFlight)
			require.Equal(t, 5*time.Second, s.Pipeline.ReloadInterval)
			require.Equal(t, 500*time.Microsecond, s.Pipeline.CommitDelay)
		}},
		{name: "commit at once", yaml: "pipeline: {commit_delay: 0s}\n", check: func(t *testing.T, s Settings) {
			require.Zero(t, s.Pipeline.CommitDelay)
		}},
		{name: "retention in days", yaml: "retention: {succeeded: 3d}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 72*time.Hour, s.Retention.Succeeded)
		}},
		{name: "negative commit delay", yaml: "pipeline: {commit_delay: -1ms}\n", err: "sous.yaml:1:26: pipeline.commit_delay: \"-1ms\" is not a duration from 0s to 1s"},
		{name: "commit delay too long", yaml: "pipeline: {commit_delay: 2s}\n", err: "pipeline.commit_delay: \"2s\""},
		{name: "zero reload interval", yaml: "pipeline: {reload_interval: 0s}\n", err: "pipeline.reload_interval: \"0s\" is not a positive duration"},
		{name: "max retry after", yaml: "pipeline: {max_retry_after: 90m}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 90*time.Minute, s.Pipeline.MaxRetryAfter)
		}},
		{name: "max retry after in days", yaml: "pipeline: {max_retry_after: 2d}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 48*time.Hour, s.Pipeline.MaxRetryAfter)
		}},
		{name: "max retry after at its most", yaml: "pipeline: {max_retry_after: 144h}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 6*24*time.Hour, s.Pipeline.MaxRetryAfter)
		}},
		{name: "zero max retry after", yaml: "pipeline: {max_retry_after: 0s}\n",
			err: "sous.yaml:1:29: pipeline.max_retry_after: \"0s\" is not a positive duration up to 6d, such as 24h (a longer wait would outlive a NATS stream's default 7-day broker.max_age)"},
		{name: "negative max retry after", yaml: "pipeline: {max_retry_after: -1h}\n",
			err: "sous.yaml:1:29: pipeline.max_retry_after: \"-1h\" is not a positive duration up to 6d"},
		{name: "max retry after beyond 6 days", yaml: "pipeline: {max_retry_after: 7d}\n",
			err: "sous.yaml:1:29: pipeline.max_retry_after: \"7d\" is not a positive duration up to 6d"},
		{name: "max retry after a second beyond 6 days", yaml: "pipeline: {max_retry_after: 144h0m1s}\n",
			err: "sous.yaml:1:29: pipeline.max_retry_after: \"144h0m1s\" is not a positive duration up to 6d"},
		{name: "max retry after not a duration", yaml: "pipeline: {max_retry_after: soon}\n",
			err: "sous.yaml:1:29: pipeline.max_retry_after: \"soon\" is not a positive duration up to 6d"},
		{name: "unknown broker", yaml: "broker: {type: kafka}\n", err: `sous.yaml:1:16: broker.type "kafka" is not one of sqlite, memory, postgres, nats`},
		{name: "postgres without url", yaml: "broker: {type: postgres}\n", err: "sous.yaml:1:9: broker.url is required for postgres"},
		{name: "bad retention", yaml: "retention:\n  failed: 30d\n  succeeded: abc\n", err: `sous.yaml:3:14: retention.succeeded: "abc" is not a positive duration such as 12h or 7d`},
		{name: "unknown pipeline key", yaml: "pipeline:\n  max_inflight: 3\n", err: `sous.yaml:2:3: pipeline: unknown field "max_inflight" (did you mean "max_in_flight"?)`},
		{name: "unknown broker key", yaml: "broker: {type: memory, topic: x}\n", err: `sous.yaml:1:24: broker: unknown field "topic"; known fields: ack_wait, max_age, max_parked, prefix, type, url`},
		{name: "unknown retention key", yaml: "retention: {forever: true}\n", err: `sous.yaml:1:13: retention: unknown field "forever"`},
		{name: "duplicate pipeline key", yaml: "pipeline:\n  gc_percent: 100\n  gc_percent: 300\n", err: `sous.yaml:3:3: pipeline.gc_percent: duplicate key (first at line 2)`},
		{name: "gc percent a string", yaml: "pipeline: {gc_percent: lots}\n", err: `sous.yaml:1:24: pipeline.gc_percent: "lots" is not a whole number`},
		{name: "gc percent quoted", yaml: "pipeline: {gc_percent: \"300\"}\n", err: `pipeline.gc_percent: "300" is not a whole number (it is a string`},
		{name: "max in flight negative", yaml: "pipeline:\n  max_in_flight: -3\n", err: `sous.yaml:2:18: pipeline.max_in_flight: -3 is not from 1 to 65536`},
		{name: "max in flight zero", yaml: "pipeline: {max_in_flight: 0}\n", err: `pipeline.max_in_flight: 0 is not from 1 to 65536`},
		{name: "ack wait", yaml: "broker: {type: nats, url: nats://h:4222, ack_wait: 5s}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 5*time.Second, s.Broker.AckWait)
		}},
		{name: "ack wait by default", yaml: "broker: {type: nats, url: nats://h:4222}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 30*time.Second, s.Broker.AckWait)
		}},
		{name: "ack wait under a second", yaml: "broker:\n  ack_wait: 500ms\n", err: `sous.yaml:2:13: broker.ack_wait: 500ms is less than 1s`},
		{name: "ack wait not a duration", yaml: "broker: {ack_wait: soon}\n", err: `sous.yaml:1:20: broker.ack_wait: "soon" is not a positive duration`},
		{name: "max age and max parked", yaml: "broker: {type: nats, url: nats://h:4222, max_age: 30d, max_parked: 500}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 30*24*time.Hour, s.Broker.MaxAge)
			require.Equal(t, 500, s.Broker.MaxParked)
		}},
		{name: "max age and max parked by default", yaml: "broker: {type: nats, url: nats://h:4222}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 7*24*time.Hour, s.Broker.MaxAge)
			require.Equal(t, 100_000, s.Broker.MaxParked)
		}},
		{name: "max age a day above max retry after", yaml: "broker: {max_age: 3d}\npipeline: {max_retry_after: 2d}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 3*24*time.Hour, s.Broker.MaxAge)
		}},
		{name: "max age under max retry after and a day", yaml: "broker:\n  max_age: 47h\n",
			err: "sous.yaml:2:12: broker.max_age: 47h is less than pipeline.max_retry_after (24h) and a day: a durable retry would come after the stream dropped its run"},
		{name: "max age against a longer max retry after", yaml: "pipeline: {max_retry_after: 6d}\nbroker: {max_age: 6d}\n",
			err: "sous.yaml:2:19: broker.max_age: 6d is less than pipeline.max_retry_after (6d) and a day"},
		{name: "max age not a duration", yaml: "broker: {max_age: forever}\n", err: `sous.yaml:1:19: broker.max_age: "forever" is not a positive duration such as 12h or 7d`},
		{name: "max parked zero", yaml: "broker: {max_parked: 0}\n", err: `sous.yaml:1:22: broker.max_parked: 0 is not from 1 to 10000000`},
		{name: "max parked too many", yaml: "broker: {max_parked: 20000000}\n", err: `broker.max_parked: 20000000 is not from 1 to 10000000`},
		{name: "days that would wrap around", yaml: "retention: {succeeded: 213504d}\n", err: `sous.yaml:1:24: retention.succeeded: "213504d" is not a positive duration`},
		{name: "the most days", yaml: "retention: {failed: 106751d}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, 106751*24*time.Hour, s.Retention.Failed)
		}},
		{name: "max body", yaml: "limits: {max_body: 4096}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, int64(4096), s.Limits.MaxBody)
		}},
		{name: "max body negative", yaml: "limits:\n  max_body: -1\n", err: `sous.yaml:2:13: limits.max_body: -1 is not a size in bytes from 1 to 67108864 (64 MiB)`},
		{name: "max body too large", yaml: "limits: {max_body: 1000000000}\n", err: `limits.max_body: 1000000000 is not a size in bytes`},
		{name: "max body a string", yaml: "limits: {max_body: 1MiB}\n", err: `sous.yaml:1:20: limits.max_body: "1MiB" is not a whole number`},
		{name: "gc percent a fraction", yaml: "pipeline: {gc_percent: 200.5}\n", err: `sous.yaml:1:24: pipeline.gc_percent: "200.5" is not a whole number`},
		{name: "max in flight a fraction", yaml: "pipeline:\n  max_in_flight: 0.5\n", err: `sous.yaml:2:18: pipeline.max_in_flight: "0.5" is not a whole number`},
		{name: "max body in exponent form", yaml: "limits: {max_body: 1e6}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, int64(1000000), s.Limits.MaxBody)
		}},
		{name: "max in flight a list", yaml: "pipeline:\n  max_in_flight: [1]\n", err: `sous.yaml:2:18: pipeline.max_in_flight: a list is not a whole number`},
		{name: "broker url a mapping", yaml: "broker:\n  type: nats\n  url: {host: x}\n", err: `sous.yaml:3:8: broker.url: a mapping is not a string`},
		{name: "pipeline not a mapping", yaml: "pipeline: fast\n", err: `sous.yaml:1:11: pipeline must be a mapping, not "fast"`},
		{name: "limits is not strict", yaml: "limits: {max_body: 2048, other: 1}\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, int64(2048), s.Limits.MaxBody)
		}},
		{name: "limits type error", yaml: "limits:\n  max_body: big\n", err: `sous.yaml:2:13: limits.max_body: "big" is not a whole number`},
		{name: "empty sections", yaml: "pipeline:\nbroker:\nretention: ~\n", check: func(t *testing.T, s Settings) {
			require.Equal(t, DefaultSettings(), s)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, diags := recipes.ParseConfig("sous.yaml", []byte(tc.yaml), func(string) (string, bool) { return "", false }, connector.Default)
			require.False(t, diags.HasErrors(), "%v", diags)
			s, err := ParseSettings(cfg)
			if tc.err != "" {
				require.ErrorContains(t, err, tc.err)
				return
			}
			require.NoError(t, err)
			tc.check(t, s)
		})
	}
}

// TestSettingsErrors checks that every problem is reported, each as a
// *SettingsError at its line, and that CheckSettings gives the same as
// diagnostics for `sous validate`.
func TestSettingsErrors(t *testing.T) {
	// max_age is short of the default max_retry_after and a day, but the
	// file's own max_retry_after is refused: nothing to check it against
	src := "broker: {type: kafka, max_age: 36h}\nretention:\n  succeeded: abc\npipeline:\n  gc_percent: 5\n  max_retry_after: 10d\n  bogus: 1\n"
	cfg, diags := recipes.ParseConfig("ops/sous.yaml", []byte(src), func(string) (string, bool) { return "", false }, connector.Default)
	require.False(t, diags.HasErrors(), "%v", diags)
	want := []string{
		`ops/sous.yaml:1:16: broker.type "kafka" is not one of sqlite, memory, postgres, nats`,
		`ops/sous.yaml:3:14: retention.succeeded: "abc" is not a positive duration such as 12h or 7d`,
		`ops/sous.yaml:5:15: pipeline.gc_percent: 5 is not from 25 to 1000`,
		`ops/sous.yaml:6:20: pipeline.max_retry_after: "10d" is not a positive duration up to 6d, such as 24h (a longer wait would outlive a NATS stream's default 7-day broker.max_age)`,
		`ops/sous.yaml:7:3: pipeline: unknown field "bogus"; known fields: commit_delay, gc_percent, max_crashes, max_in_flight, max_retry_after, reload_interval, run_timeout, shutdown_timeout`,
	}

	_, err := ParseSettings(cfg)
	require.Error(t, err)
	require.Equal(t, strings.Join(want, "\n"), err.Error())
	var se *SettingsError
	require.ErrorAs(t, err, &se)
	require.Equal(t, recipes.Pos{File: "ops/sous.yaml", Line: 1, Col: 16}, se.Pos)

	ds := CheckSettings(cfg)
	require.Len(t, ds, len(want))
	for i, d := range ds {
		require.Equal(t, recipes.SevError, d.Severity)
		require.Equal(t, want[i], d.Pos.String()+": "+d.Message)
	}

	good, _ := recipes.ParseConfig("sous.yaml", []byte("pipeline: {gc_percent: 300}\n"), func(string) (string, bool) { return "", false }, connector.Default)
	require.Empty(t, CheckSettings(good))
	require.Empty(t, CheckSettings(nil))
}

func TestGCPercent(t *testing.T) {
	s := DefaultSettings()
	tests := []struct {
		name string
		env  map[string]string
		want int
		set  bool
	}{
		{"the setting", nil, DefaultGCPercent, true},
		{"GOGC in the environment wins", map[string]string{"GOGC": "off"}, 0, false},
		{"an empty GOGC is unset", map[string]string{"GOGC": ""}, DefaultGCPercent, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, set := s.GCPercent(func(k string) string { return tc.env[k] })
			require.Equal(t, tc.set, set)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("out of range, as settings built in code may be", func(t *testing.T) {
		_, set := Settings{}.GCPercent(func(string) string { return "" })
		require.False(t, set, "0 would make the collector run without pause")
	})
}
