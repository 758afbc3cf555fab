package schemas_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/settings"
	"github.com/sous-run/sous/recipes"
	"github.com/sous-run/sous/schemas"
)

// The config schema does not check these rules of the parser
// (recipes.ParseConfig and settings.Check); TestConfigGaps shows
// most of them, so that a change of the parser that closes one is noticed.
//
// The schema accepts what the parser refuses:
//   - a ${VAR} reference whose value does not fit or is not set (an editor
//     does not know the environment), and $${X}, which the parser reads as
//     the literal text ${X};
//   - a duration whose components add up to more than the bound
//     (max_retry_after: 144h1s, commit_delay: 1s1ms; each component is
//     checked), and a fraction of a unit larger than the bound
//     (commit_delay: 0.5m);
//   - a duration that overflows (more than about 290 years, or 106,751
//     days written in days), and a positive
//     duration that rounds down to zero (0.1ns);
//   - broker.ack_wait under its least, 1s (500ms);
//   - broker.max_age under pipeline.max_retry_after and a day (a rule
//     across two fields);
//   - commit_delay: the number 0 written 00, 0.0 or 0x0 (the parser reads
//     the text, and only "0" is a duration without a unit);
//   - a Check function of a connection field (no registered connection
//     type has one), and duplicate or merge (<<) keys, which a JSON value
//     cannot hold.
//
// The schema refuses what the parser accepts:
//   - a null or empty value of a runtime field (gc_percent: with nothing,
//     succeeded: ""), which the parser takes as unset;
//   - a ${VAR} reference as a connection's type;
//   - a number or boolean whose text matches the pattern or enum of a
//     connection field (the parser checks the text);
//   - in connection fields, Unicode spaces around a number or duration
//     given as a string (the schema takes ASCII spaces), hexadecimal floats
//     (0x1p4), and durations written -0s (zero, which commit_delay takes
//     too).

// testRegistry holds the registered connection types and test_db, a type
// with a field of every type, required fields and a secret.
func testRegistry(t *testing.T) *connector.Registry {
	t.Helper()
	reg := connector.NewRegistry()
	for _, c := range connector.Default.Connections() {
		require.NoError(t, reg.AddConnection(c))
	}
	require.NoError(t, reg.AddConnection(&connector.ConnectionSpec{
		Type:    "test_db",
		Summary: "A connection with a field of every type",
		Fields: []connector.Field{
			{Name: "host", Type: connector.String, Required: true, Description: "The host"},
			{Name: "password", Type: connector.String, Required: true, Secret: true, Description: "The password"},
			{Name: "port", Type: connector.Int, Default: 5432, Description: "The port"},
			{Name: "ratio", Type: connector.Number, Description: "A ratio"},
			{Name: "tls", Type: connector.Bool, Description: "Use TLS"},
			{Name: "timeout", Type: connector.Duration, Default: "5s", Description: "A timeout"},
			{Name: "mode", Type: connector.String, Enum: []string{"read", "write"}, Description: "The mode"},
			{Name: "dsn", Type: connector.String, Pattern: `^db://`, PatternHelp: "must start with db://", Description: "A DSN"},
			{Name: "options", Type: connector.Object, Description: "Options"},
			{Name: "labels", Type: connector.StringMap, Description: "Labels"},
			{Name: "replicas", Type: connector.List, Description: "Replicas"},
			{Name: "route", Type: connector.Expression, Description: "An expression"},
			{Name: "extra", Type: connector.Any, Description: "Anything"},
		},
	}))
	return reg
}

// noEnv is an environment that sets nothing.
func noEnv(string) (string, bool) { return "", false }

// parserVerdict is nil when `sous serve` would take the config, or the
// parser's diagnostics.
func parserVerdict(reg *connector.Registry, src string) error {
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte(src), noEnv, reg)
	if err := diags.Err(); err != nil {
		return err
	}
	return settings.Check(cfg).Err()
}

// configChecker validates config sources with the schema generated for
// reg and with the parser.
type configChecker struct {
	reg    *connector.Registry
	schema *jsonschema.Schema
}

func newConfigChecker(t *testing.T, reg *connector.Registry) configChecker {
	t.Helper()
	raw, err := schemas.GenerateConfig(reg)
	require.NoError(t, err)
	return configChecker{reg: reg, schema: compileSchema(t, schemas.ConfigID, raw)}
}

// check asserts that the schema's verdict is want and the parser's is the
// same, or the opposite when gap is set (a rule the schema cannot check).
func (c configChecker) check(t *testing.T, src string, want bool, gap string) {
	t.Helper()
	schemaErr := c.schema.Validate(fromYAML(t, src))
	parserErr := parserVerdict(c.reg, src)
	if want {
		require.NoError(t, schemaErr, "the schema refused:\n%s", src)
	} else {
		require.Error(t, schemaErr, "the schema accepted:\n%s", src)
		var ve *jsonschema.ValidationError
		require.ErrorAs(t, schemaErr, &ve)
	}
	parserWants := want
	if gap != "" {
		parserWants = !want
	}
	if parserWants {
		require.NoError(t, parserErr, "the parser refused (gap: %q):\n%s", gap, src)
	} else {
		require.Error(t, parserErr, "the parser accepted (gap: %q):\n%s", gap, src)
	}
}

// fullConfig sets every top-level key and every key of the runtime sections.
const fullConfig = `listen: 0.0.0.0:9090
data_dir: /var/lib/sous
recipes: recipes
log_level: debug
api_keys: [0123456789abcdef, another-key-of-sixteen]
connections:
  api:
    type: http
    base_url: https://api.example.com/v1/
    headers: {X-Api-Key: k, X-Retries: 3}
    bearer_token: tok-t
  db:
    type: test_db
    host: db.internal
    password: hunter2
    port: 5433
    ratio: 0.5
    tls: true
    timeout: 1m30s
    mode: read
    dsn: db://db.internal/sous
    options: {pool: 4}
    labels: {env: prod}
    replicas: [a, b]
    route: event.region == "eu"
    extra: [1, {a: b}]
broker:
  type: postgres
  url: postgres://sous@db.internal/sous
  prefix: sous_
  ack_wait: 30s
  max_age: 7d
  max_parked: 100000
retention:
  succeeded: 7d
  failed: 30d
  dedup: 168h
  interval: 1h
limits:
  max_body: 1048576
pipeline:
  max_in_flight: 256
  run_timeout: 15m
  shutdown_timeout: 30s
  reload_interval: 1s
  commit_delay: 2ms
  gc_percent: 200
  max_retry_after: 24h
  max_crashes: 3
`

type configCase struct {
	name     string
	src      string // the whole config; empty: fullConfig with old replaced by new
	old, new string
	gap      string // why the parser disagrees with the schema (TestConfigGaps only)
}

func (tt configCase) source(t *testing.T) string {
	t.Helper()
	if tt.src != "" {
		return tt.src
	}
	if tt.old == "" {
		return fullConfig
	}
	require.Contains(t, fullConfig, tt.old, "the case must change something")
	return strings.Replace(fullConfig, tt.old, tt.new, 1)
}

func TestConfigsAccepted(t *testing.T) {
	c := newConfigChecker(t, testRegistry(t))
	example, err := os.ReadFile(filepath.Join(examplesDir, "sous.yaml"))
	require.NoError(t, err)
	tests := []configCase{
		{name: "examples/sous.yaml", src: string(example)},
		{name: "the full config"},
		{name: "an empty mapping", src: "{}\n"},
		{name: "empty sections", src: "api_keys:\nconnections:\nbroker:\nretention:\nlimits:\npipeline:\n"},
		{name: "a number read as text", old: "listen: 0.0.0.0:9090", new: "listen: 9090"},
		{name: "broker sqlite", src: "broker: {type: sqlite}\n"},
		{name: "broker memory with a prefix", src: "broker: {type: memory, prefix: t1_}\n"},
		{name: "broker nats", src: "broker: {type: nats, url: nats://127.0.0.1:4222}\n"},
		{name: "limits ignores unknown keys", src: "limits: {max_body: 2048, max_headers: 100}\n"},
		{name: "durations in Go units", src: "retention: {succeeded: 12h30m, failed: 1.5h, dedup: 90m, interval: 500ms}\n"},
		{name: "commit_delay 0s", src: "pipeline: {commit_delay: 0s}\n"},
		{name: "commit_delay 0 as a number", src: "pipeline: {commit_delay: 0}\n"},
		{name: "commit_delay 1000ms", src: "pipeline: {commit_delay: 1000ms}\n"},
		{name: "max_retry_after 6d", src: "pipeline: {max_retry_after: 6d}\n"},
		{name: "max_retry_after 144h", src: "pipeline: {max_retry_after: 144h}\n"},
		{name: "max_retry_after 90m30s", src: "pipeline: {max_retry_after: 90m30s}\n"},
		{name: "max_age 30d", old: "max_age: 7d", new: "max_age: 30d"},
		{name: "max_age 49h", old: "max_age: 7d", new: "max_age: 49h"},
		{name: "max_parked 1", old: "max_parked: 100000", new: "max_parked: 1"},
		{name: "every log level", src: "log_level: warn\n"},
		{name: "an API key of 16 characters", src: "api_keys: [abcdefghijklmnop]\n"},
		{name: "connection fields as strings", old: "    port: 5433\n    ratio: 0.5\n    tls: true\n",
			new: "    port: \"5433\"\n    ratio: \"1e-3\"\n    tls: \"false\"\n"},
		{name: "a connection name with digits and _", old: "  api:\n", new: "  api_v2:\n"},
		{name: "a connection without optional fields", src: "connections:\n  api: {type: http}\n"},

		// ${VAR} references: the parser reads the default, as nothing is set
		{name: "env in string fields", src: "listen: ${LISTEN:-127.0.0.1:9090}\ndata_dir: ${DATA:-data}\nlog_level: ${LOG_LEVEL:-error}\n"},
		{name: "env in an API key", src: "api_keys: [\"${SOUS_API_KEY:-0123456789abcdef}\"]\n"},
		{name: "env in broker", src: "broker: {type: \"${BROKER:-nats}\", url: \"${NATS_URL:-nats://nats:4222}\"}\n"},
		{name: "env in durations", src: "retention: {succeeded: \"${KEEP:-14d}\"}\npipeline: {commit_delay: \"${DELAY:-1ms}\", max_retry_after: \"${MRA:-2d}\"}\n"},
		{name: "env in connection fields", old: "    port: 5433\n    ratio: 0.5\n    tls: true\n    timeout: 1m30s\n    mode: read\n    dsn: db://db.internal/sous\n",
			new: "    port: ${DB_PORT:-5434}\n    ratio: ${DB_RATIO:-0.25}\n    tls: ${DB_TLS:-true}\n    timeout: ${DB_TIMEOUT:-10s}\n    mode: ${DB_MODE:-write}\n    dsn: ${DB_DSN:-db://x/y}\n"},
		{name: "env in the middle of a string", old: "base_url: https://api.example.com/v1/", new: "base_url: https://${API_HOST:-api.example.com}/v1/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.check(t, tt.source(t), true, "")
		})
	}
	t.Run("examples/sous.yaml names its schema", func(t *testing.T) {
		require.True(t, strings.HasPrefix(string(example), "# yaml-language-server: $schema=../schemas/config.schema.json\n"),
			"the first line points editors at the schema")
	})
}

func TestConfigsRejected(t *testing.T) {
	c := newConfigChecker(t, testRegistry(t))
	tests := []configCase{
		{name: "an empty file", src: "\n"},
		{name: "a list", src: "- listen: x\n"},
		{name: "unknown top-level key", old: "data_dir:", new: "datadir:"},
		{name: "unknown key in broker", old: "  prefix: sous_\n", new: "  prefixes: sous_\n"},
		{name: "unknown key in retention", old: "  interval: 1h\n", new: "  every: 1h\n"},
		{name: "unknown key in pipeline", old: "  gc_percent: 200\n", new: "  gogc: 200\n"},
		{name: "a section that is not a mapping", src: "broker: sqlite\n"},
		{name: "bad broker.type", old: "type: postgres", new: "type: kafka"},
		{name: "empty broker.type", src: "broker: {type: \"\"}\n"},
		{name: "postgres without url", old: "  url: postgres://sous@db.internal/sous\n", new: ""},
		{name: "nats without url", src: "broker: {type: nats}\n"},
		{name: "postgres with an empty url", old: "url: postgres://sous@db.internal/sous", new: `url: ""`},
		{name: "gc_percent 5", old: "gc_percent: 200", new: "gc_percent: 5"},
		{name: "gc_percent 1001", old: "gc_percent: 200", new: "gc_percent: 1001"},
		{name: "gc_percent from the environment", old: "gc_percent: 200", new: "gc_percent: ${GOGC_TARGET:-300}"},
		{name: "gc_percent quoted", old: "gc_percent: 200", new: `gc_percent: "300"`},
		{name: "max_in_flight 0", old: "max_in_flight: 256", new: "max_in_flight: 0"},
		{name: "max_in_flight 65537", old: "max_in_flight: 256", new: "max_in_flight: 65537"},
		{name: "max_body -1", old: "max_body: 1048576", new: "max_body: -1"},
		{name: "max_body 64 MiB + 1", old: "max_body: 1048576", new: "max_body: 67108865"},
		{name: "max_body a string", old: "max_body: 1048576", new: "max_body: 1MiB"},
		{name: "ack_wait 0s", old: "ack_wait: 30s", new: "ack_wait: 0s"},
		{name: "ack_wait not a duration", old: "ack_wait: 30s", new: "ack_wait: soon"},
		{name: "max_age 0d", old: "max_age: 7d", new: "max_age: 0d"},
		{name: "max_age not a duration", old: "max_age: 7d", new: "max_age: a week"},
		{name: "max_parked 0", old: "max_parked: 100000", new: "max_parked: 0"},
		{name: "max_parked above its bound", old: "max_parked: 100000", new: "max_parked: 10000001"},
		{name: "max_parked a string", old: "max_parked: 100000", new: "max_parked: lots"},
		{name: "commit_delay 2s", old: "commit_delay: 2ms", new: "commit_delay: 2s"},
		{name: "commit_delay 1001ms", old: "commit_delay: 2ms", new: "commit_delay: 1001ms"},
		{name: "commit_delay negative", old: "commit_delay: 2ms", new: "commit_delay: -1ms"},
		{name: "commit_delay in days", old: "commit_delay: 2ms", new: "commit_delay: 1d"},
		{name: "commit_delay a number", old: "commit_delay: 2ms", new: "commit_delay: 2"},
		{name: "max_retry_after 10d", old: "max_retry_after: 24h", new: "max_retry_after: 10d"},
		{name: "max_retry_after 7d", old: "max_retry_after: 24h", new: "max_retry_after: 7d"},
		{name: "max_retry_after 145h", old: "max_retry_after: 24h", new: "max_retry_after: 145h"},
		{name: "max_retry_after 0s", old: "max_retry_after: 24h", new: "max_retry_after: 0s"},
		{name: "max_retry_after 0d", old: "max_retry_after: 24h", new: "max_retry_after: 0d"},
		{name: "a retention of 0s", old: "succeeded: 7d", new: "succeeded: 0s"},
		{name: "a negative retention", old: "failed: 30d", new: "failed: -30d"},
		{name: "a retention in words", old: "failed: 30d", new: "failed: 30 days"},
		{name: "a retention as a number", old: "interval: 1h", new: "interval: 60"},
		{name: "days with a leading zero", old: "succeeded: 7d", new: "succeeded: 07d"},
		{name: "a run_timeout of 0", old: "run_timeout: 15m", new: "run_timeout: 0m"},
		{name: "unknown log_level", old: "log_level: debug", new: "log_level: verbose"},
		{name: "listen null", old: "listen: 0.0.0.0:9090", new: "listen:"},
		{name: "an API key of 3 characters", old: "0123456789abcdef,", new: "abc,"},
		{name: "an API key of 6 bytes but 3 characters", old: "0123456789abcdef,", new: "ééé,"},
		{name: "an API key of 16 spaces", old: "0123456789abcdef,", new: "\"                \","},
		{name: "an API key ending with a space", old: "0123456789abcdef,", new: "\"0123456789abcdef \","},
		{name: "api_keys not a list", old: "api_keys: [0123456789abcdef, another-key-of-sixteen]", new: "api_keys: 0123456789abcdef"},
		{name: "a connection with an unknown type", old: "type: http", new: "type: https"},
		{name: "a connection without a type", old: "    type: http\n", new: ""},
		{name: "a connection that is not a mapping", src: "connections:\n  api: http\n"},
		{name: "an unknown field in a connection", old: "    bearer_token: tok-t\n", new: "    token: tok-t\n"},
		{name: "a field of another connection type", old: "    bearer_token: tok-t\n", new: "    host: api.example.com\n"},
		{name: "a bad connection name", old: "  api:\n", new: "  Api-V2:\n"},
		{name: "a connection name starting with _", old: "  api:\n", new: "  _api:\n"},
		{name: "a base_url without a scheme", old: "base_url: https://api.example.com/v1/", new: "base_url: api.example.com"},
		{name: "a header that is a list", old: "X-Retries: 3", new: "X-Retries: [3]"},
		{name: "an integer field in words", old: "port: 5433", new: "port: five"},
		{name: "a fractional integer field", old: "port: 5433", new: "port: 5433.5"},
		{name: "a fractional gc_percent", old: "gc_percent: 200", new: "gc_percent: 200.5"},
		{name: "a number field in words", old: "ratio: 0.5", new: "ratio: half"},
		{name: "a boolean field as yes", old: "tls: true", new: "tls: yes"},
		{name: "a duration field in days", old: "timeout: 1m30s", new: "timeout: 1d"},
		{name: "a negative duration field", old: "timeout: 1m30s", new: "timeout: -1s"},
		{name: "a value not in the enum", old: "mode: read", new: "mode: admin"},
		{name: "a value not matching the pattern", old: "dsn: db://db.internal/sous", new: "dsn: postgres://db"},
		{name: "an object field as a list", old: "options: {pool: 4}", new: "options: [4]"},
		{name: "a string map with a mapping", old: "labels: {env: prod}", new: "labels: {env: {a: b}}"},
		{name: "a list field as a string", old: "replicas: [a, b]", new: "replicas: a"},
		{name: "an expression as a number", old: `route: event.region == "eu"`, new: "route: 3"},
		{name: "a null field", old: "labels: {env: prod}", new: "labels:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.check(t, tt.source(t), false, "")
		})
	}
}

// TestConfigGaps shows each rule the schema cannot check (see the comment
// at the top of this file): the schema and the parser disagree on these.
func TestConfigGaps(t *testing.T) {
	c := newConfigChecker(t, testRegistry(t))
	accepted := []configCase{ // by the schema, refused by the parser
		{name: "a missing environment variable", old: "listen: 0.0.0.0:9090", new: "listen: ${SOUS_TEST_UNSET_VAR}",
			gap: "the environment is not known"},
		{name: "an environment default that does not fit", old: "succeeded: 7d", new: "succeeded: ${KEEP:-a week}",
			gap: "the environment is not known"},
		{name: "an empty url from the environment", old: "url: postgres://sous@db.internal/sous", new: "url: ${DB_URL:-}",
			gap: "the environment is not known"},
		{name: "$$ is a literal $", old: "log_level: debug", new: "log_level: $${LEVEL:-info}",
			gap: "$$ escapes a $"},
		{name: "max_retry_after 144h1s", old: "max_retry_after: 24h", new: "max_retry_after: 144h1s",
			gap: "the components of a duration are not added up"},
		{name: "commit_delay 1s1ms", old: "commit_delay: 2ms", new: "commit_delay: 1s1ms",
			gap: "the components of a duration are not added up"},
		{name: "commit_delay 0.5m", old: "commit_delay: 2ms", new: "commit_delay: 0.5m",
			gap: "a fraction of a unit larger than the bound is not checked"},
		{name: "a duration that overflows", old: "run_timeout: 15m", new: "run_timeout: 9999999h",
			gap: "overflows are not checked"},
		{name: "a duration that rounds to zero", old: "run_timeout: 15m", new: "run_timeout: 0.1ns",
			gap: "a positive duration under 1ns is 0"},
		{name: "ack_wait under 1s", old: "ack_wait: 30s", new: "ack_wait: 500ms",
			gap: "the least of a duration is not checked"},
		{name: "max_age under max_retry_after and a day", old: "max_age: 7d", new: "max_age: 47h",
			gap: "a rule across two fields"},
		{name: "days that overflow", old: "succeeded: 7d", new: "succeeded: 213504d",
			gap: "overflows are not checked"},
		{name: "a secret too short to be redacted", old: "bearer_token: tok-t", new: "bearer_token: t",
			gap: "the length of a secret is not checked (its value mostly comes from the environment)"},
	}
	refused := []configCase{ // by the schema, taken by the parser
		{name: "a connection type from the environment", old: "type: http", new: "type: ${CONN_TYPE:-http}",
			gap: "the connection type is not read from the environment by the schema"},
	}
	for _, tt := range accepted {
		t.Run("accepted/"+tt.name, func(t *testing.T) {
			c.check(t, tt.source(t), true, tt.gap)
		})
	}
	for _, tt := range refused {
		t.Run("refused/"+tt.name, func(t *testing.T) {
			c.check(t, tt.source(t), false, tt.gap)
		})
	}
}

// TestConfigEnums checks the values the schema lists for log_level and
// broker.type with the parser: it takes each, and refuses a near miss.
func TestConfigEnums(t *testing.T) {
	c := newConfigChecker(t, connector.Default)
	var s struct {
		Properties struct {
			LogLevel struct {
				AnyOf []struct {
					Enum []string `json:"enum"`
				} `json:"anyOf"`
			} `json:"log_level"`
		} `json:"properties"`
		Defs struct {
			Broker struct {
				Properties struct {
					Type struct {
						AnyOf []struct {
							Enum []string `json:"enum"`
						} `json:"anyOf"`
					} `json:"type"`
				} `json:"properties"`
			} `json:"broker"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(schemas.Config, &s))
	levels := s.Properties.LogLevel.AnyOf[0].Enum
	brokers := s.Defs.Broker.Properties.Type.AnyOf[0].Enum
	require.NotEmpty(t, levels)
	require.NotEmpty(t, brokers)
	for _, v := range levels {
		t.Run("log_level "+v, func(t *testing.T) {
			c.check(t, "log_level: "+v+"\n", true, "")
			c.check(t, "log_level: "+strings.ToUpper(v)+"\n", false, "")
		})
	}
	for _, v := range brokers {
		t.Run("broker "+v, func(t *testing.T) {
			c.check(t, "broker: {type: "+v+", url: x://y}\n", true, "")
			c.check(t, "broker: {type: "+v+"2, url: x://y}\n", false, "")
		})
	}
}

// sampleValue is a YAML value that a connection field takes.
func sampleValue(t *testing.T, f connector.Field) string {
	t.Helper()
	switch {
	case f.Secret && f.Type == connector.String:
		return `"s3cret"` // a secret needs at least 4 characters
	case len(f.Enum) > 0:
		return strconv.Quote(f.Enum[0])
	case f.Pattern != "":
		s, ok := f.Example.(string)
		require.True(t, ok, "field %s has a pattern: give it a string Example", f.Name)
		return strconv.Quote(s)
	}
	if f.Type == connector.Object && len(f.Fields) > 0 {
		var keys []string
		for _, sub := range f.Fields {
			if sub.Required {
				keys = append(keys, sub.Name+": "+sampleValue(t, sub))
			}
		}
		return "{" + strings.Join(keys, ", ") + "}"
	}
	switch f.Type {
	case connector.Int:
		return "1"
	case connector.Number:
		return "1.5"
	case connector.Bool:
		return "true"
	case connector.Duration:
		return "1s"
	case connector.Object, connector.StringMap:
		return "{k: v}"
	case connector.List:
		return "[a]"
	}
	return `"x"`
}

// TestConfigConnectionTypes checks every connection type with its required
// fields, without each of them and with an unknown field.
func TestConfigConnectionTypes(t *testing.T) {
	reg := testRegistry(t)
	c := newConfigChecker(t, reg)
	conns := reg.Connections()
	require.Greater(t, len(conns), 1)
	for _, spec := range conns {
		var required []connector.Field
		for _, f := range spec.Fields {
			if f.Required {
				required = append(required, f)
			}
		}
		// a type whose fields are checked together needs one set of
		// them besides (connector.ConnectionSpec.OneOf)
		var together []connector.Field
		if len(spec.OneOf) > 0 {
			for _, name := range spec.OneOf[0] {
				if f, ok := spec.Field(name); ok && !f.Required {
					together = append(together, *f)
				}
			}
		}
		conn := func(skip string, extra string) string {
			var b strings.Builder
			fmt.Fprintf(&b, "connections:\n  conn:\n    type: %s\n", spec.Type)
			for _, f := range append(required, together...) {
				if f.Name != skip {
					fmt.Fprintf(&b, "    %s: %s\n", f.Name, sampleValue(t, f))
				}
			}
			b.WriteString(extra)
			return b.String()
		}
		t.Run(spec.Type+"/with its required fields", func(t *testing.T) {
			c.check(t, conn("", ""), true, "")
		})
		for _, f := range required {
			t.Run(spec.Type+"/without "+f.Name, func(t *testing.T) {
				c.check(t, conn(f.Name, ""), false, "")
			})
		}
		t.Run(spec.Type+"/with an unknown field", func(t *testing.T) {
			c.check(t, conn("", "    no_such_field: x\n"), false, "")
		})
	}
}

// TestConfigBounds cross-checks the ranges the schema gives the runtime's
// numbers with the runtime: it takes the bounds and refuses one past them.
func TestConfigBounds(t *testing.T) {
	c := newConfigChecker(t, connector.Default)
	var s struct {
		Defs map[string]struct {
			Properties map[string]struct {
				Type    any    `json:"type"`
				Minimum *int64 `json:"minimum"`
				Maximum *int64 `json:"maximum"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(schemas.Config, &s))
	n := 0
	for _, section := range []string{"broker", "retention", "limits", "pipeline"} {
		for key, p := range s.Defs[section].Properties {
			// an integer field also takes null (unset)
			if !reflect.DeepEqual(p.Type, []any{"integer", "null"}) {
				continue
			}
			require.NotNil(t, p.Minimum, "%s.%s has a minimum", section, key)
			require.NotNil(t, p.Maximum, "%s.%s has a maximum", section, key)
			n++
			for _, v := range []struct {
				n  int64
				ok bool
			}{{*p.Minimum - 1, false}, {*p.Minimum, true}, {*p.Maximum, true}, {*p.Maximum + 1, false}} {
				t.Run(fmt.Sprintf("%s.%s=%d", section, key, v.n), func(t *testing.T) {
					c.check(t, fmt.Sprintf("%s:\n  %s: %d\n", section, key, v.n), v.ok, "")
				})
			}
		}
	}
	require.Equal(t, 5, n, "max_body, max_in_flight, gc_percent, max_crashes and max_parked")
}

// TestConfigUnsetFields checks every field of the runtime sections left
// without a value (null) or empty (""), as `${VAR:-}` leaves it: the
// schema and the parser agree. Null leaves every field at its default; ""
// does so for a duration, a URL or a prefix, and is an error for a number
// or the broker type.
func TestConfigUnsetFields(t *testing.T) {
	c := newConfigChecker(t, connector.Default)
	var s struct {
		Defs map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(schemas.Config, &s))
	emptyRefused := map[string]bool{"broker.type": true, "broker.max_parked": true, "limits.max_body": true,
		"pipeline.max_in_flight": true, "pipeline.gc_percent": true, "pipeline.max_crashes": true}
	n := 0
	for _, section := range []string{"broker", "retention", "limits", "pipeline"} {
		for key := range s.Defs[section].Properties {
			name := section + "." + key
			n++
			t.Run(name+" null", func(t *testing.T) {
				src := fmt.Sprintf("%s:\n  %s:\n", section, key)
				c.check(t, src, true, "")
				cfg, diags := recipes.ParseConfig("sous.yaml", []byte(src), noEnv, connector.Default)
				require.NoError(t, diags.Err())
				got, err := settings.Parse(cfg)
				require.NoError(t, err)
				require.Equal(t, settings.Default(), got, "null is the default")
			})
			for _, v := range []string{`""`, `"${SOUS_TEST_UNSET_VAR:-}"`} {
				t.Run(name+" "+v, func(t *testing.T) {
					src := fmt.Sprintf("%s:\n  %s: %s\n", section, key, v)
					if v != `""` && name == "broker.type" {
						// the schema takes a ${VAR} for the type, and
						// cannot know the environment: a gap
						c.check(t, src, true, "the environment is not known")
						return
					}
					c.check(t, src, !emptyRefused[name], "")
				})
			}
		}
	}
	require.Equal(t, 19, n, "the fields of the runtime sections")
	t.Run("a null url of a shared broker", func(t *testing.T) {
		c.check(t, "broker:\n  type: nats\n  url:\n", false, "")
	})
	t.Run("an empty url of a shared broker", func(t *testing.T) {
		c.check(t, "broker:\n  type: postgres\n  url: \"\"\n", false, "")
	})
}

// TestConfigDurationBounds compares the schema with the runtime on
// durations of one component around the bounds of commit_delay (1s) and
// max_retry_after (6d), in every unit: the schema checks these exactly.
func TestConfigDurationBounds(t *testing.T) {
	c := newConfigChecker(t, connector.Default)
	units := []struct {
		name string
		size time.Duration
	}{{"h", time.Hour}, {"m", time.Minute}, {"s", time.Second}, {"ms", time.Millisecond},
		{"us", time.Microsecond}, {"µs", time.Microsecond}, {"ns", time.Nanosecond}}
	for _, field := range []struct {
		name  string
		bound time.Duration
	}{{"commit_delay", time.Second}, {"max_retry_after", 6 * 24 * time.Hour}} {
		var values []string
		for _, u := range units {
			n := int64(field.bound / u.size)
			for _, v := range []int64{0, 1, 9, 10, n - 1, n, n + 1, 10 * n, 10*n + 1} {
				if v >= 0 {
					values = append(values, fmt.Sprint(v)+u.name, "0"+fmt.Sprint(v)+u.name, "+"+fmt.Sprint(v)+u.name)
				}
			}
			if field.bound%u.size == 0 && n > 0 {
				values = append(values, fmt.Sprintf("%d.5%s", n-1, u.name), fmt.Sprintf("%d.0%s", n, u.name),
					fmt.Sprintf("%d.%s", n, u.name), fmt.Sprintf("%d.01%s", n, u.name),
					// less than 1ns more, which ParseDuration truncates
					fmt.Sprintf("%d.%s1%s", n, strings.Repeat("0", len(fmt.Sprint(int64(u.size)))), u.name))
				if u.size > time.Nanosecond { // 1ns or more
					values = append(values, fmt.Sprintf("%d.%s1%s", n, strings.Repeat("0", len(fmt.Sprint(int64(u.size)))-2), u.name))
				}
			}
			// not .5ns, which is 0 (a gap for a positive duration), nor .5m
			// for 1s (a fraction of a larger unit than the bound's: a gap)
			if u.size > time.Nanosecond && field.bound%u.size == 0 {
				values = append(values, ".5"+u.name)
			}
		}
		for d := 0; d <= 8; d++ {
			values = append(values, fmt.Sprintf("%dd", d))
		}
		values = append(values, "0", "1", "-1s", "1h30m", "s", "1x")
		for _, v := range values {
			src := fmt.Sprintf("pipeline:\n  %s: %q\n", field.name, v)
			want := parserVerdict(connector.Default, src) == nil
			t.Run(field.name+"="+v, func(t *testing.T) {
				c.check(t, src, want, "")
			})
		}
	}
}

// TestConfigSectionKeys checks that the runtime sections of the schema
// have the keys of settings.Runtime, and top-level keys that the parser
// knows: fullConfig sets them all and the parser takes it.
func TestConfigSectionKeys(t *testing.T) {
	var s struct {
		Properties map[string]json.RawMessage `json:"properties"`
		Defs       map[string]struct {
			Properties map[string]json.RawMessage `json:"properties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(schemas.Config, &s))
	rt := reflect.TypeFor[settings.Runtime]()
	for i := range rt.NumField() {
		sec := rt.Field(i)
		name := strings.ToLower(sec.Name)
		require.Contains(t, s.Properties, name)
		var want []string
		for j := range sec.Type.NumField() {
			want = append(want, sec.Type.Field(j).Tag.Get("yaml"))
		}
		var got []string
		for k := range s.Defs[name].Properties {
			got = append(got, k)
		}
		sort.Strings(want)
		sort.Strings(got)
		require.Equal(t, want, got, "the keys of %s", name)
	}
	full := fromYAML(t, fullConfig).(map[string]any)
	for key := range s.Properties {
		require.Contains(t, full, key, "fullConfig sets every top-level key")
	}
	for _, name := range []string{"broker", "retention", "limits", "pipeline"} {
		for key := range s.Defs[name].Properties {
			require.Contains(t, full[name], key, "fullConfig sets every key of %s", name)
		}
	}
	require.NoError(t, parserVerdict(testRegistry(t), fullConfig))
}

// TestConfigDefaults builds a config of the schema's defaults: the runtime
// takes it and reads the default settings from it.
func TestConfigDefaults(t *testing.T) {
	var s struct {
		Properties map[string]struct {
			Default any `json:"default"`
		} `json:"properties"`
		Defs map[string]struct {
			Properties map[string]struct {
				Default any `json:"default"`
			} `json:"properties"`
		} `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(schemas.Config, &s))
	doc := map[string]any{}
	for key, p := range s.Properties {
		if p.Default != nil {
			doc[key] = p.Default
		}
	}
	for _, name := range []string{"broker", "retention", "limits", "pipeline"} {
		sec := map[string]any{}
		for key, p := range s.Defs[name].Properties {
			if p.Default != nil {
				sec[key] = p.Default
			}
		}
		doc[name] = sec
	}
	require.Contains(t, doc, "listen")
	src, err := json.Marshal(doc) // JSON is YAML
	require.NoError(t, err)
	require.NoError(t, compileSchema(t, schemas.ConfigID, schemas.Config).Validate(fromYAML(t, string(src))))
	cfg, diags := recipes.ParseConfig("sous.yaml", src, noEnv, connector.Default)
	require.NoError(t, diags.Err())
	empty, diags := recipes.ParseConfig("sous.yaml", []byte("{}"), noEnv, connector.Default)
	require.NoError(t, diags.Err())
	require.Equal(t, empty.Listen, cfg.Listen)
	require.Equal(t, empty.DataDir, cfg.DataDir)
	require.Equal(t, empty.LogLevel, cfg.LogLevel)
	got, err := settings.Parse(cfg)
	require.NoError(t, err)
	require.Equal(t, settings.Default(), got)
}

// TestConfigSchemaIsFresh fails when the committed config schema differs
// from what the connector specs and the settings generate.
func TestConfigSchemaIsFresh(t *testing.T) {
	checkFresh(t, schemas.GenerateConfig, schemas.Config, "config.schema.json")

	var s struct {
		ID   string                     `json:"$id"`
		Defs map[string]json.RawMessage `json:"$defs"`
	}
	require.NoError(t, json.Unmarshal(schemas.Config, &s))
	require.Equal(t, schemas.ConfigID, s.ID)
	require.NotEmpty(t, connector.Default.Connections())
	for _, c := range connector.Default.Connections() {
		require.Contains(t, s.Defs, "connection."+c.Type)
	}
}

func TestGenerateConfigIsDeterministic(t *testing.T) {
	reg := testRegistry(t)
	a, err := schemas.GenerateConfig(reg)
	require.NoError(t, err)
	for range 5 {
		b, err := schemas.GenerateConfig(reg)
		require.NoError(t, err)
		require.Equal(t, string(a), string(b))
	}
	_, err = schemas.GenerateConfig(nil)
	require.Error(t, err)
}

// TestConfigFieldSchema checks the schema of single connection fields.
func TestConfigFieldSchema(t *testing.T) {
	tests := []struct {
		name   string
		field  connector.Field
		accept []any
		reject []any
	}{
		{name: "plain string", field: connector.Field{Name: "s", Type: connector.String},
			accept: []any{"x", "${X}", 3, true}, reject: []any{nil, []any{"x"}}},
		{name: "secret", field: connector.Field{Name: "k", Type: connector.String, Secret: true},
			accept: []any{"${TOKEN}", "plain"}, reject: []any{nil}},
		{name: "enum", field: connector.Field{Name: "e", Type: connector.String, Enum: []string{"A", "B"}},
			accept: []any{"A", "${E:-A}"}, reject: []any{"C", "{{ vars.e }}"}},
		{name: "int", field: connector.Field{Name: "i", Type: connector.Int},
			accept: []any{3, 3.0, "3", " -3 ", "${PORT}"}, reject: []any{1.5, "3.5", "three", true}},
		{name: "number", field: connector.Field{Name: "n", Type: connector.Number},
			accept: []any{1.5, "1.5", ".5", "1e3", "${N}"}, reject: []any{"NaN", "Inf", "x", false}},
		{name: "bool", field: connector.Field{Name: "b", Type: connector.Bool},
			accept: []any{true, "false", "T", "0", "${B}"}, reject: []any{"yes", 1}},
		{name: "duration", field: connector.Field{Name: "d", Type: connector.Duration},
			accept: []any{"1h30m", "250ms", "0", "0s", ".5s", "${D}"}, reject: []any{"soon", "1d", "-1s", 30}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fs := schemas.ConfigFieldSchema(tt.field)
			require.Contains(t, fs, "description")
			if tt.field.Secret {
				require.Contains(t, fs["description"], "${VAR}")
			}
			// the field's schema with the $defs of the config schema
			var full map[string]any
			require.NoError(t, json.Unmarshal(schemas.Config, &full))
			fs["$defs"] = full["$defs"]
			checkField(t, fs, tt.accept, tt.reject)
			// and the parser agrees
			for _, v := range tt.accept {
				if str, ok := v.(string); ok && strings.Contains(str, "${") {
					continue // the environment is not set here
				}
				_, err := tt.field.CheckValue(v)
				require.NoError(t, err, "%#v", v)
			}
			for _, v := range tt.reject {
				_, err := tt.field.CheckValue(v)
				require.Error(t, err, "%#v", v)
			}
		})
	}
}
