package main

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The canaries: secrets holding characters that each encoding writes in
// its own way (space, <, &, >, ", \, +, /, =, a non-ASCII letter).
const (
	envCanary  = "tok en-42xyz<&>\"\\é+/="    // SOUS_SECRET_CANARY
	connCanary = "conn/tok+9 q<r>&\"s\\ü=end" // a connection's bearer token
	hookCanary = "hook-signing-secret-77 ö"   // the webhook's signing secret, SOUS_SECRET_HOOK
)

// canaryForms are the forms of a secret the remote echoes and a record,
// a log or the database could hold it in.
func canaryForms(s string) map[string]string {
	b := []byte(s)
	jsonOf := func(html bool) string {
		var buf bytes.Buffer
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(html)
		_ = enc.Encode(s)
		return strings.TrimSuffix(strings.TrimSuffix(buf.String(), "\n"), `"`)[1:]
	}
	ascii := func(j string) string {
		var out strings.Builder
		for _, r := range j {
			if r < 0x80 {
				out.WriteRune(r)
			} else {
				fmt.Fprintf(&out, `\u%04x`, r)
			}
		}
		return out.String()
	}
	forms := map[string]string{
		"as it is":          s,
		"query":             url.QueryEscape(s),
		"query %20":         strings.ReplaceAll(url.QueryEscape(s), "+", "%20"),
		"path segment":      url.PathEscape(s),
		"path":              (&url.URL{Path: s}).EscapedPath(),
		"base64":            base64.StdEncoding.EncodeToString(b),
		"base64 raw":        base64.RawStdEncoding.EncodeToString(b),
		"base64 url":        base64.URLEncoding.EncodeToString(b),
		"base64 url raw":    base64.RawURLEncoding.EncodeToString(b),
		"basic auth":        base64.StdEncoding.EncodeToString([]byte("user:" + s)),
		"hex":               hex.EncodeToString(b),
		"hex upper":         strings.ToUpper(hex.EncodeToString(b)),
		"json":              jsonOf(true),
		"json no html":      jsonOf(false),
		"json ascii":        ascii(jsonOf(true)),
		"json ascii, html":  ascii(jsonOf(false)),
		"text log (quoted)": strings.Trim(fmt.Sprintf("%q", s), `"`),
	}
	for _, k := range []string{"query", "query %20", "path segment", "path"} {
		forms[k+", lower-case"] = lowerPercent(forms[k])
	}
	return forms
}

// lowerPercent writes the hex digits of percent escapes in lower case.
func lowerPercent(e string) string {
	b := []byte(e)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			copy(b[i+1:i+3], strings.ToLower(string(b[i+1:i+3])))
			i += 2
		}
	}
	return string(b)
}

// echoRemote answers every request with what it received, and with every
// canary in every form: as JSON under /json/, as text under /text/, and as
// text with status 400 (a permanent failure) under /fail/.
func echoRemote(t *testing.T) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		echo := map[string]string{
			"path": r.URL.EscapedPath(), "raw_query": r.URL.RawQuery, "body": string(body),
			"x_canary": r.Header.Get("X-Canary"), "x_hook": r.Header.Get("X-Hook"), "authorization": r.Header.Get("Authorization"),
		}
		for i, c := range []string{envCanary, connCanary, hookCanary} {
			for name, f := range canaryForms(c) {
				echo[fmt.Sprintf("%d %s", i, name)] = f
			}
		}
		if strings.HasPrefix(r.URL.Path, "/json/") {
			w.Header().Set("Content-Type", "application/json")
			_ = json.NewEncoder(w).Encode(echo)
			return
		}
		var text strings.Builder
		for k, v := range echo {
			fmt.Fprintf(&text, "%s=%s\n", k, v)
		}
		w.Header().Set("Content-Type", "text/plain")
		if strings.HasPrefix(r.URL.Path, "/fail/") {
			w.WriteHeader(http.StatusBadRequest)
		}
		_, _ = io.WriteString(w, text.String())
	}))
	t.Cleanup(srv.Close)
	return srv
}

// probeRecipe is a one-step recipe (a run of it stores no checkpoint)
// putting the canaries in the URL's path and query, a header and the body
// of a request to the remote under /kind/.
func probeRecipe(kind, remote string) string {
	return fmt.Sprintf(`version: 1
name: probe-%[1]s
trigger: {type: webhook.received, with: {path: /probe-%[1]s, secret: "{{ secrets.HOOK }}"}}
steps:
  - id: call
    action: http.request
    connection: api
    retry: {max_attempts: 1}
    with:
      url: "%[2]s/%[1]s/{{ secrets.CANARY }}"
      query: {q: "{{ secrets.CANARY }}", h: "{{ secrets.HOOK }}"}
      headers: {X-Canary: "{{ secrets.CANARY }}", X-Hook: "{{ secrets.HOOK }}"}
      json: {c: "{{ secrets.CANARY }}", n: "{{ event.body.n }}"}
`, kind, remote)
}

// TestServeLeaksNoSecretInAnyForm: a `sous serve` whose steps send secrets
// (from the environment, a connection, and the webhook's signing secret)
// in a URL's path and query, a header and a body, to a remote that echoes
// them back in every encoding, keeps every form of every secret out of
// the API, `sous runs show`, its log and its database file.
func TestServeLeaksNoSecretInAnyForm(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and starts a sous binary")
	}
	tmp := t.TempDir()
	bin := buildSous(t)
	remote := echoRemote(t)
	recipesDir := filepath.Join(tmp, "recipes")
	kinds := []string{"json", "text", "fail"}
	for _, k := range kinds {
		writeFile(t, recipesDir, "probe-"+k+".yaml", probeRecipe(k, remote.URL))
	}
	const apiKey = "probe-api-key-0123456789"
	dataDir := filepath.Join(tmp, "data")
	addr := freeAddr(t)
	config := writeFile(t, tmp, "sous.yaml", fmt.Sprintf(`listen: %s
data_dir: %s
recipes: %s
log_level: debug
api_keys: [%s]
connections:
  api: {type: http, bearer_token: "${PROBE_CONN_TOKEN}"}
`, addr, dataDir, recipesDir, apiKey))
	c := startChild(t, bin, filepath.Join(tmp, "serve.log"),
		[]string{"SOUS_SECRET_CANARY=" + envCanary, "SOUS_SECRET_HOOK=" + hookCanary, "PROBE_CONN_TOKEN=" + connCanary},
		"serve", "--config", config)
	base := "http://" + addr
	waitReady(t, base, c)

	client := &http.Client{Timeout: 10 * time.Second}
	for i, k := range kinds {
		body := fmt.Sprintf(`{"n": %d}`, i)
		mac := hmac.New(sha256.New, []byte(hookCanary))
		mac.Write([]byte(body))
		req, err := http.NewRequest(http.MethodPost, base+"/hooks/probe-"+k, strings.NewReader(body))
		require.NoError(t, err)
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("X-Signature-256", "sha256="+hex.EncodeToString(mac.Sum(nil)))
		resp, err := client.Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		require.Equal(t, http.StatusAccepted, resp.StatusCode, k)
	}
	api := func(path string) string {
		req, err := http.NewRequest(http.MethodGet, base+path, nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer "+apiKey)
		resp, err := client.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		require.NoError(t, err)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s", b)
		return string(b)
	}
	var runs struct {
		Runs []struct{ ID, Recipe, Status string } `json:"runs"`
	}
	require.Eventually(t, func() bool {
		require.NoError(t, json.Unmarshal([]byte(api("/api/v1/runs")), &runs))
		return len(runs.Runs) == len(kinds)
	}, 20*time.Second, 20*time.Millisecond)

	// where each form of each secret must not be
	places := map[string]string{"GET /api/v1/runs": api("/api/v1/runs")}
	for _, run := range runs.Runs {
		want := "succeeded"
		if run.Recipe == "probe-fail" {
			want = "failed"
		}
		require.Equal(t, want, run.Status, run.Recipe)
		rec := api("/api/v1/runs/" + run.ID)
		require.Contains(t, rec, "[redacted]", "the echo is recorded, redacted")
		places["GET /api/v1/runs/"+run.ID+" ("+run.Recipe+")"] = rec
	}
	dbFiles := func(when string) {
		for _, name := range []string{"sous.db", "sous.db-wal"} {
			if b, err := os.ReadFile(filepath.Join(dataDir, name)); err == nil {
				places[name+" "+when] = string(b)
			}
		}
	}
	dbFiles("while serving")
	require.NoError(t, c.cmd.Process.Signal(os.Interrupt))
	select {
	case err := <-c.done:
		require.NoError(t, err, "sous serve stops cleanly")
	case <-time.After(20 * time.Second):
		t.Fatal("sous serve did not stop in 20 s")
	}
	dbFiles("after stopping")
	require.Contains(t, places, "sous.db after stopping")
	places["log"] = c.output()
	for _, run := range runs.Runs {
		r := sous(t, "", "runs", "show", run.ID, "--data", dataDir)
		require.Equal(t, 0, r.code, "%s", r)
		require.Contains(t, r.stdout, "[redacted]", "%s", r)
		places["sous runs show "+run.ID] = r.stdout + r.stderr
	}
	r := sous(t, "", "runs", "list", "--data", dataDir, "--json")
	require.Equal(t, 0, r.code, "%s", r)
	places["sous runs list --json"] = r.stdout + r.stderr

	var leaks []string
	for i, secret := range []string{envCanary, connCanary, hookCanary} {
		for name, form := range canaryForms(secret) {
			for where, text := range places {
				if strings.Contains(text, form) {
					leaks = append(leaks, fmt.Sprintf("secret %d, %s (%q), in %s", i, name, form, where))
				}
			}
		}
	}
	sort.Strings(leaks)
	require.Empty(t, leaks)
}

// TestShortSecretsRefused: a secret too short to be redacted stops `sous
// run`, `sous serve` and `sous validate --config`, which name it and do
// not show it.
func TestShortSecretsRefused(t *testing.T) {
	dir := t.TempDir()
	recipesDir := filepath.Join(dir, "recipes")
	recipe := writeFile(t, recipesDir, "greet.yaml", greetRecipe)
	event := writeFile(t, dir, "event.json", `{"body": {"name": "Ada"}}`)
	config := writeFile(t, dir, "sous.yaml", "listen: 127.0.0.1:0\napi_keys: [probe-api-key-0123456789]\n")
	connConfig := writeFile(t, dir, "conn.yaml", "connections:\n  api: {type: http, bearer_token: \"${PROBE_SHORT_TOKEN}\"}\n")
	t.Setenv("SOUS_SECRET_PIN", "q7z")
	t.Setenv("PROBE_SHORT_TOKEN", "k9w")
	const msg = "secret SOUS_SECRET_PIN is shorter than 4 characters: so short a secret cannot be redacted from run records and logs; use a longer one"
	tests := []struct {
		name string
		args []string
		want string // in stdout or stderr
	}{
		{"run", []string{"run", recipe, "--event", event, "--dry-run", "--config", ""}, msg},
		{"serve", []string{"serve", "--config", config, "--recipes", recipesDir, "--data", filepath.Join(dir, "data")}, msg},
		{"validate --config", []string{"validate", "--config", config, recipesDir}, "environment: error: " + msg},
		{"validate --config, a connection's", []string{"validate", "--config", connConfig, recipesDir},
			"connections.api.bearer_token: secret value is shorter than 4 characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := sous(t, "", tt.args...)
			require.Equal(t, 1, r.code, "%s", r)
			require.Contains(t, r.stdout+r.stderr, tt.want, "%s", r)
			require.NotContains(t, r.stdout+r.stderr, "q7z")
			require.NotContains(t, r.stdout+r.stderr, "k9w")
		})
	}
	t.Setenv("SOUS_SECRET_PIN", "")
	r := sous(t, "", "validate", "--config", config, recipesDir)
	require.Equal(t, 0, r.code, "an empty secret is unset, not short: %s", r)
}
