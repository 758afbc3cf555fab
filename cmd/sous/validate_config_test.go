package main

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

// badSettings are configs whose runtime sections `sous serve` refuses,
// each with the place and message `sous validate --config` must report.
var badSettings = []struct {
	name      string
	yaml      string
	line, col int
	message   string
}{
	{name: "max retry after beyond 6 days", yaml: "listen: 127.0.0.1:9000\npipeline: {max_retry_after: 10d}\n", line: 2, col: 29,
		message: `pipeline.max_retry_after: "10d" is not a positive duration up to 6d, such as 24h (a longer wait would outlive a NATS stream's default 7-day broker.max_age)`},
	{name: "unknown broker", yaml: "broker:\n  type: kafka\n", line: 2, col: 9,
		message: `broker.type "kafka" is not one of sqlite, memory, postgres, nats`},
	{name: "gc percent out of range", yaml: "pipeline:\n  max_in_flight: 64\n  gc_percent: 5\n", line: 3, col: 15,
		message: `pipeline.gc_percent: 5 is not from 25 to 1000`},
	{name: "retention not a duration", yaml: "retention: {failed: 30d, succeeded: abc}\n", line: 1, col: 37,
		message: `retention.succeeded: "abc" is not a positive duration such as 12h or 7d`},
	{name: "unknown key in pipeline", yaml: "pipeline:\n  run_timeout: 5m\n  max_inflight: 8\n", line: 3, col: 3,
		message: `pipeline: unknown field "max_inflight" (did you mean "max_in_flight"?)`},
	{name: "unknown key in broker", yaml: "broker: {type: memory, topic: runs}\n", line: 1, col: 24,
		message: `broker: unknown field "topic"; known fields: ack_wait, max_age, max_parked, prefix, type, url`},
	{name: "unknown key in retention", yaml: "retention:\n  kept: 7d\n", line: 2, col: 3,
		message: `retention: unknown field "kept"; known fields: dedup, failed, interval, succeeded`},
	{name: "postgres without url", yaml: "broker:\n  type: postgres\n", line: 2, col: 3,
		message: `broker.url is required for postgres`},
}

// goodSettings sets every runtime section to a value `sous serve` takes.
const goodSettings = `listen: 127.0.0.1:9000
broker: {type: memory, prefix: ci}
retention: {succeeded: 3d, failed: 30d, dedup: 7d, interval: 1h}
limits: {max_body: 2097152}
pipeline:
  max_in_flight: 64
  run_timeout: 10m
  commit_delay: 1ms
  gc_percent: 300
  max_retry_after: 6d
`

// TestValidateConfigSettings checks that `sous validate --config` reports
// the runtime sections' problems (those `sous serve` would refuse at
// start) at their line, in every output format, and fails.
func TestValidateConfigSettings(t *testing.T) {
	dir := t.TempDir()
	recipesDir := filepath.Join(dir, "recipes")
	writeFile(t, recipesDir, "greet.yaml", greetRecipe)

	t.Run("a good config passes", func(t *testing.T) {
		good := writeFile(t, dir, "good.yaml", goodSettings)
		r := sous(t, "", "validate", "--strict", "--config", good, recipesDir)
		require.Equal(t, 0, r.code, "%s", r)
		require.Empty(t, r.stdout)
		require.Contains(t, r.stderr, "ok: 1 files, 1 recipes, 0 tests, 0 errors, 0 warnings", "%s", r)
	})

	for i, tt := range badSettings {
		cfg := writeFile(t, dir, fmt.Sprintf("bad%d.yaml", i), tt.yaml)
		t.Run(tt.name, func(t *testing.T) {
			t.Run("text", func(t *testing.T) {
				r := sous(t, "", "validate", "--config", cfg, recipesDir)
				require.Equal(t, 1, r.code, "%s", r)
				want := fmt.Sprintf("%s:%d:%d: error: %s\n", cfg, tt.line, tt.col, tt.message)
				require.Equal(t, want, r.stdout, "%s", r)
				require.Contains(t, r.stderr, "FAIL: 1 files, 1 recipes, 0 tests, 1 errors, 0 warnings", "%s", r)
			})
			t.Run("json", func(t *testing.T) {
				r := sous(t, "", "validate", "--format", "json", "--config", cfg, recipesDir)
				require.Equal(t, 1, r.code, "%s", r)
				require.Empty(t, r.stderr, "json output keeps stderr quiet")
				var rep struct {
					Files       int `json:"files"`
					Errors      int `json:"errors"`
					Warnings    int `json:"warnings"`
					Diagnostics []struct {
						File     string `json:"file"`
						Line     int    `json:"line"`
						Column   int    `json:"column"`
						Severity string `json:"severity"`
						Message  string `json:"message"`
					} `json:"diagnostics"`
				}
				dec := json.NewDecoder(strings.NewReader(r.stdout))
				dec.DisallowUnknownFields()
				require.NoError(t, dec.Decode(&rep), "%s", r)
				require.Equal(t, 1, rep.Files)
				require.Equal(t, 1, rep.Errors)
				require.Len(t, rep.Diagnostics, 1)
				d := rep.Diagnostics[0]
				require.Equal(t, cfg, d.File)
				require.Equal(t, tt.line, d.Line)
				require.Equal(t, tt.col, d.Column)
				require.Equal(t, "error", d.Severity)
				require.Equal(t, tt.message, d.Message)
			})
			t.Run("github", func(t *testing.T) {
				r := sous(t, "", "validate", "--format", "github", "--config", cfg, recipesDir)
				require.Equal(t, 1, r.code, "%s", r)
				file := strings.NewReplacer("%", "%25", ":", "%3A", ",", "%2C").Replace(cfg)
				require.Equal(t, fmt.Sprintf("::error file=%s,line=%d,col=%d,title=sous validate::%s\n", file, tt.line, tt.col, tt.message), r.stdout)
			})
		})
	}

	t.Run("every problem of a config is reported, with good recipes", func(t *testing.T) {
		all := writeFile(t, dir, "all.yaml", "broker: {type: kafka}\nretention: {succeeded: abc}\npipeline:\n  gc_percent: 5\n  max_retry_after: 10d\n")
		r := sous(t, "", "validate", "--config", all, recipesDir)
		require.Equal(t, 1, r.code, "%s", r)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Equal(t, []string{
			all + `:1:16: error: broker.type "kafka" is not one of sqlite, memory, postgres, nats`,
			all + `:2:24: error: retention.succeeded: "abc" is not a positive duration such as 12h or 7d`,
			all + `:4:15: error: pipeline.gc_percent: 5 is not from 25 to 1000`,
			all + `:5:20: error: pipeline.max_retry_after: "10d" is not a positive duration up to 6d, such as 24h (a longer wait would outlive a NATS stream's default 7-day broker.max_age)`,
		}, lines, "%s", r)
		require.Contains(t, r.stderr, "FAIL: 1 files, 1 recipes, 0 tests, 4 errors, 0 warnings", "%s", r)
	})

	t.Run("sous serve refuses it with one line per problem", func(t *testing.T) {
		all := writeFile(t, dir, "serve.yaml", "broker: {type: kafka}\npipeline:\n  max_in_flight: -3\n")
		r := sous(t, "", "serve", "--config", all, "--recipes", recipesDir, "--data", t.TempDir(), "--listen", "127.0.0.1:0")
		require.Equal(t, 1, r.code, "%s", r)
		require.Equal(t, "sous: "+all+`:1:16: broker.type "kafka" is not one of sqlite, memory, postgres, nats`+"\n"+
			"sous: "+all+`:3:18: pipeline.max_in_flight: -3 is not from 1 to 65536`+"\n", r.stderr, "%s", r)
	})

	t.Run("a config with errors is checked as far as it reads", func(t *testing.T) {
		// the recipes folder holds a recipe naming a connection the config
		// could not read, and another naming one it does not have
		recs := filepath.Join(dir, "partial")
		writeFile(t, recs, "greet.yaml", greetRecipe)
		for _, conn := range []string{"broken", "missing"} {
			writeFile(t, recs, conn+".yaml", `version: 1
name: via-`+conn+`
trigger: {type: webhook.received, with: {path: /`+conn+`}}
steps:
  - id: call
    action: http.request
    connection: `+conn+`
    with: {url: v1/ping}
`)
		}
		cfg := writeFile(t, dir, "partial.yaml", "recipes: "+recs+"\n"+
			"api_key: 0123456789abcdef\n"+
			"broker: {type: postgres, url: \"${SOUS_TEST_UNSET_URL}\"}\n"+
			"connections:\n  broken: {type: htp}\n"+
			"pipeline: {gc_percent: 5}\n")
		r := sous(t, "", "validate", "--config", cfg)
		require.Equal(t, 1, r.code, "%s", r)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Equal(t, []string{
			cfg + `:2:1: error: config: unknown field "api_key" (did you mean "api_keys"?)`,
			// not also "broker.url is required": the section's error is reported once
			cfg + `:3:31: error: environment variable SOUS_TEST_UNSET_URL is not set`,
			cfg + `:5:18: error: connections.broken.type: unknown connection type "htp" (did you mean "http"?)`,
			cfg + `:6:24: error: pipeline.gc_percent: 5 is not from 25 to 1000`,
			filepath.Join(recs, "missing.yaml") + `:7:17: error: step call.connection: no connection "missing" in ` + cfg,
		}, lines, "%s", r)
		require.Contains(t, r.stderr, "FAIL: 3 files, 2 recipes, 0 tests, 5 errors", "%s", r)
	})

	t.Run("a config that is not YAML is reported alone", func(t *testing.T) {
		// the working directory holds a file that is not a recipe
		wd := t.TempDir()
		writeFile(t, wd, "workflow.yaml", "on: push\njobs: {}\n")
		t.Chdir(wd)
		cfg := writeFile(t, dir, "notyaml.yaml", "recipes: [\n")
		r := sous(t, "", "validate", "--config", cfg)
		require.Equal(t, 1, r.code, "%s", r)
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		require.Len(t, lines, 1, "%s", r)
		require.True(t, strings.HasPrefix(lines[0], cfg+":"), "%s", r)
		require.Contains(t, r.stderr, "FAIL: 0 files, 0 recipes, 0 tests, 1 errors", "%s", r)
	})

	t.Run("the config's recipes folder is checked too", func(t *testing.T) {
		cfg := writeFile(t, dir, "withrecipes.yaml", "recipes: "+recipesDir+"\npipeline: {gc_percent: 5}\n")
		r := sous(t, "", "validate", "--config", cfg)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stdout, cfg+":2:24: error: pipeline.gc_percent: 5 is not from 25 to 1000", "%s", r)
		require.Contains(t, r.stderr, "1 recipes", "%s", r)
	})
}

// TestValidateSkipsTheConfigFile: a config named other than sous.yaml, in
// the folder validated, is read as the config and not as a recipe, from
// the folder given or from the working directory; named as a file, it is
// checked as asked.
func TestValidateSkipsTheConfigFile(t *testing.T) {
	dir := t.TempDir()
	config := writeFile(t, dir, "prod.yaml", "api_keys: [\"prod-key-0123456789ab\"]\nconnections:\n  hook: {type: http, base_url: \"https://example.com\"}\n")
	writeFile(t, dir, "hello.yaml", `version: 1
name: hello
trigger: {type: webhook.received, with: {path: /hello}}
steps:
  - id: tell
    action: http.request
    connection: hook
    with: {url: /x}
`)
	r := sous(t, "", "validate", "--config", config, dir)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout+r.stderr, "1 recipes")
	t.Chdir(dir)
	r = sous(t, "", "validate", "--config", "prod.yaml")
	require.Equal(t, 0, r.code, "%s", r)
	r = sous(t, "", "validate", "--config", config, config)
	require.Equal(t, 1, r.code, "named as a file, it is checked as a recipe: %s", r)
}
