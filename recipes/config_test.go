package recipes_test

import (
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/recipes"
)

func envOf(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestConfigEnv(t *testing.T) {
	env := map[string]string{"TOKEN": "t0k3n", "HOST": "api.test", "EMPTY": "", "PORT": "9090"}
	tests := []struct {
		name  string
		value string // the value of base_url, after "https://"
		want  string
		err   string
	}{
		{"variable", "${HOST}/", "https://api.test/", ""},
		{"two variables", "${HOST}:${PORT}/", "https://api.test:9090/", ""},
		{"default unused", "${HOST:-other.test}/", "https://api.test/", ""},
		{"default used", "${NOPE:-fallback.test}/", "https://fallback.test/", ""},
		{"default for an empty variable", "${EMPTY:-fallback.test}/", "https://fallback.test/", ""},
		{"empty default", "x${NOPE:-}.test/", "https://x.test/", ""},
		{"dollar escape", "api.test/$${HOST}", "https://api.test/${HOST}", ""},
		{"double dollar", "api.test/a$$b", "https://api.test/a$b", ""},
		{"lone dollar", "api.test/a$b", "https://api.test/a$b", ""},
		{"missing variable", "${NOT_SET}/", "", "environment variable NOT_SET is not set"},
		{"empty variable without default", "${EMPTY}/", "", "environment variable EMPTY is empty (write ${EMPTY:-} to allow that)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			src := "connections:\n  api:\n    type: http\n    base_url: https://" + tt.value + "\n"
			cfg, diags := recipes.ParseConfig("sous.yaml", []byte(src), envOf(env), nil)
			if tt.err != "" {
				require.Nil(t, cfg)
				require.Len(t, diags, 1, diags.Error())
				require.Equal(t, tt.err, diags[0].Message)
				require.Equal(t, recipes.Pos{File: "sous.yaml", Line: 4, Col: 15}, diags[0].Pos)
				return
			}
			require.Empty(t, diags, diags.Error())
			require.Equal(t, tt.want, cfg.Connections["api"].Values.String("base_url"))
		})
	}
}

// TestConfigEnvIsString checks that a value read from the environment is a
// string whatever it looks like, and is not parsed as YAML.
func TestConfigEnvIsString(t *testing.T) {
	env := map[string]string{"PORT": "8081", "KEY": "0123456789abcdef: yes"}
	src := "listen: ${PORT}\napi_keys: [\"${KEY}\"]\nconnections:\n  api: {type: http, bearer_token: \"${PORT}\"}\n"
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte(src), envOf(env), nil)
	require.Empty(t, diags, diags.Error())
	require.Equal(t, "8081", cfg.Listen)
	require.Equal(t, []string{"0123456789abcdef: yes"}, cfg.APIKeys)
	require.Equal(t, "8081", cfg.Connections["api"].Values.String("bearer_token"))
}

// TestConfigEnvNotInKeys: ${VAR} is read in values, not in mapping keys:
// a key written so is a name of the file's (here an unknown field, with
// its position), and its environment variable need not be set.
func TestConfigEnvNotInKeys(t *testing.T) {
	env := map[string]string{"FIELD": "base_url", "HOST": "api.test"}
	src := "connections:\n  api:\n    type: http\n    ${FIELD}: https://${HOST}/\n"
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte(src), envOf(env), nil)
	require.Nil(t, cfg)
	require.Len(t, diags, 1, diags.Error())
	require.Equal(t, recipes.Pos{File: "sous.yaml", Line: 4, Col: 5}, diags[0].Pos)
	require.Contains(t, diags[0].Message, `unknown field "${FIELD}"`)

	// a header name under a map of values stays as written too
	src = "connections:\n  api:\n    type: http\n    headers: {\"X-${NOPE}\": \"${HOST}\"}\n"
	cfg, diags = recipes.ParseConfig("sous.yaml", []byte(src), envOf(env), nil)
	require.Empty(t, diags, diags.Error())
	require.Equal(t, map[string]string{"X-${NOPE}": "api.test"}, cfg.Connections["api"].Values["headers"])
}

func TestConfigDiagnostics(t *testing.T) {
	tests := []struct {
		name string
		src  string
		want []string // diagnostics, as text
		ok   bool     // the config is returned (warnings only)
	}{
		{"unknown connection type",
			"connections:\n  api: {type: htp}\n",
			[]string{`sous.yaml:2:15: error: connections.api.type: unknown connection type "htp" (did you mean "http"?)`}, false},
		{"connection without a type",
			"connections:\n  api: {base_url: https://x.test}\n",
			[]string{`sous.yaml:2:3: error: connections.api: missing required field "type"`}, false},
		{"unknown field of a connection",
			"connections:\n  api: {type: http, base_ulr: https://x.test}\n",
			[]string{`sous.yaml:2:21: error: connections.api: unknown field "base_ulr" for a http connection (did you mean "base_url"?)`}, false},
		{"bad connection name",
			"connections:\n  My-Api: {type: http}\n",
			[]string{`sous.yaml:2:3: error: connections.My-Api: the name must be lower case letters, digits and _, starting with a letter`}, false},
		{"pattern of a field",
			"connections:\n  api: {type: http, base_url: ftp://x.test}\n",
			[]string{`sous.yaml:2:31: error: connections.api.base_url: "ftp://x.test" must start with http:// or https://`}, false},
		{"secret in plain text",
			"connections:\n  api:\n    type: http\n    bearer_token: s3cr3t\n",
			[]string{`sous.yaml:4:19: warning: connections.api.bearer_token is a secret written in plain text: use ${VAR} to read it from the environment`}, true},
		{"secret map with one plain value",
			"connections:\n  api:\n    type: http\n    headers:\n      X-One: ${TOKEN}\n      X-Two: plain\n",
			[]string{`sous.yaml:6:14: warning: connections.api.headers is a secret written in plain text: use ${VAR} to read it from the environment`}, true},
		{"plain secret beside an env value on one line",
			"connections:\n  api: {type: http, base_url: \"https://${HOST}\", bearer_token: s3cr3t}\n",
			[]string{`sous.yaml:2:64: warning: connections.api.bearer_token is a secret written in plain text: use ${VAR} to read it from the environment`}, true},
		{"escaped dollar is plain text",
			"connections:\n  api: {type: http, bearer_token: \"ab$${TOKEN}\"}\n",
			[]string{`sous.yaml:2:35: warning: connections.api.bearer_token is a secret written in plain text: use ${VAR} to read it from the environment`}, true},
		{"secret from the environment",
			"connections:\n  api: {type: http, bearer_token: \"${TOKEN}\", headers: {X-Key: \"${TOKEN}\"}}\n",
			nil, true},
		{"short secret from the environment",
			"connections:\n  api: {type: http, bearer_token: \"${SHORT}\"}\n",
			[]string{`sous.yaml:2:35: error: connections.api.bearer_token: secret value is shorter than 4 characters: so short a secret cannot be redacted from run records and logs; use a longer one`}, false},
		{"a short token is the one error, not a missing one",
			"connections:\n  bot: {type: slack, token: \"${SHORT}\"}\n",
			[]string{`sous.yaml:2:29: error: connections.bot.token: secret value is shorter than 4 characters: so short a secret cannot be redacted from run records and logs; use a longer one`}, false},
		{"short values in a map of secrets",
			"connections:\n  api: {type: http, headers: {X-B: \"${SHORT}\", X-A: \"a${SHORT}\", X-C: \"${TOKEN}\"}}\n",
			[]string{`sous.yaml:2:30: warning: connections.api.headers: X-A, X-B not redacted from run records and logs (shorter than 4 characters): fine only if not secret`}, true},
		{"empty secret",
			"connections:\n  api: {type: http, bearer_token: \"${UNSET:-}\"}\n",
			nil, true},
		{"unknown top-level field",
			"listen: 127.0.0.1:1\nconections: {}\n",
			[]string{`sous.yaml:2:1: error: config: unknown field "conections" (did you mean "connections"?)`}, false},
		{"log level",
			"log_level: verbose\n",
			[]string{`sous.yaml:1:12: error: log_level: "verbose" is not one of debug, info, warn, error`}, false},
		{"short api key",
			"api_keys: [short]\n",
			[]string{`sous.yaml:1:12: warning: api_keys[0]: an API key of 5 characters is easy to guess: use at least 16 (openssl rand -hex 16)`}, true},
		{"api key of 18 bytes but 9 characters",
			"api_keys: [ééééééééé]\n",
			[]string{`sous.yaml:1:12: warning: api_keys[0]: an API key of 9 characters is easy to guess: use at least 16 (openssl rand -hex 16)`}, true},
		{"api key too short to redact",
			"api_keys: [abc]\n",
			[]string{`sous.yaml:1:12: error: api_keys[0]: an API key needs at least 4 characters (it could not be redacted from logs)`}, false},
		{"YAML syntax",
			"listen: [\n",
			[]string{`sous.yaml:1:1: error: YAML syntax: did not find expected node content`}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, diags := recipes.ParseConfig("sous.yaml", []byte(tt.src), envOf(map[string]string{"TOKEN": "tok-0123", "SHORT": "ab", "HOST": "h.test"}), nil)
			var got []string
			for _, d := range diags {
				got = append(got, d.String())
			}
			require.Equal(t, tt.want, got)
			if tt.ok {
				require.NotNil(t, cfg)
			} else {
				require.Nil(t, cfg)
			}
		})
	}
}

func TestConfigDefaults(t *testing.T) {
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte("retention: {runs: 30d}\nconnections:\n  api: {type: http}\n"), noEnv, nil)
	require.Empty(t, diags, diags.Error())
	require.Equal(t, "127.0.0.1:8080", cfg.Listen)
	require.Equal(t, "data", cfg.DataDir)
	require.Equal(t, "info", cfg.LogLevel)
	require.Equal(t, "sous.yaml", cfg.File)
	require.Contains(t, cfg.Extra, "retention")
	require.NotContains(t, cfg.Extra, "broker")
	api := cfg.Connections["api"]
	require.Equal(t, "api", api.Name)
	require.Equal(t, "http", api.Type)
	require.Equal(t, recipes.Pos{File: "sous.yaml", Line: 3, Col: 3}, api.Pos)
	require.NotNil(t, api.Spec)
}

func TestSecretValues(t *testing.T) {
	env := map[string]string{"A": "alpha-token", "B": "beta-key", "C": "gamma-key"}
	src := `connections:
  one:
    type: http
    base_url: https://one.test/
    bearer_token: ${A}
  two:
    type: http
    base_url: https://two.test/
    headers: {X-B: "${B}", X-C: "${C}"}
  three: {type: http, base_url: https://three.test/}
`
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte(src), envOf(env), nil)
	require.Empty(t, diags, diags.Error())
	got := cfg.SecretValues()
	sort.Strings(got)
	require.Equal(t, []string{"alpha-token", "beta-key", "gamma-key"}, got)
	for _, v := range got {
		require.NotContains(t, v, "https://", "a base_url is not secret")
	}
	var nilCfg *recipes.Config
	require.Nil(t, nilCfg.SecretValues())

	conn, err := cfg.Connection("one")
	require.NoError(t, err)
	require.Equal(t, "http", conn.Type)
	require.Equal(t, "alpha-token", conn.Values.String("bearer_token"))
	_, err = cfg.Connection("four")
	require.ErrorContains(t, err, `connection "four" is not in sous.yaml`)
	_, err = nilCfg.Connection("one")
	require.ErrorContains(t, err, "no config file")
}

func TestLoadConfig(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "sous.yaml")
	t.Setenv("SOUS_TEST_CONFIG_TOKEN", "from-env")
	require.NoError(t, os.WriteFile(path, []byte("connections:\n  api: {type: http, bearer_token: \"${SOUS_TEST_CONFIG_TOKEN}\"}\n"), 0o644))
	cfg, diags := recipes.LoadConfig(path, nil)
	require.Empty(t, diags, diags.Error())
	require.Equal(t, "from-env", cfg.Connections["api"].Values.String("bearer_token"))

	_, diags = recipes.LoadConfig(filepath.Join(dir, "missing.yaml"), nil)
	require.Len(t, diags, 1)
	require.True(t, strings.Contains(diags[0].Message, "missing.yaml"), diags[0].Message)
}
