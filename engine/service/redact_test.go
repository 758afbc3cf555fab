package service

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

// TestServeRedactsConnectionSecrets: a connection's secret that a service
// echoes back is redacted in the records of every run, the first and the
// later ones (the runners share one redactor), as is a secret from the
// environment.
func TestServeRedactsConnectionSecrets(t *testing.T) {
	const token, envSecret = "tok-0123456789abcdef", "env-secret-value-42"
	echo := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		w.Header().Set("Content-Type", "text/plain")
		_, _ = io.WriteString(w, "auth="+r.Header.Get("Authorization")+" body="+string(body))
	}))
	t.Cleanup(echo.Close)
	cfg, diags := recipes.ParseConfig("sous.yaml", []byte("connections:\n  api: {type: http, base_url: \""+echo.URL+"\", bearer_token: "+token+"}\n"),
		func(string) (string, bool) { return "", false }, connector.Default)
	require.False(t, diags.HasErrors(), diags.Error())
	recipesDir := t.TempDir()
	writeRecipe(t, recipesDir, "echo.yaml", `version: 1
name: echo
trigger: {type: webhook.received, with: {path: /echo}}
steps:
  - id: call
    action: http.request
    connection: api
    with: {url: /x, method: POST, body: "{{ secrets.ENV_SECRET }} {{ event.body.n }}"}
`)
	lb := &logBuffer{}
	svc, err := Open(context.Background(), Options{
		RecipesDir: recipesDir, Listen: "127.0.0.1:0", DataDir: t.TempDir(), Settings: testSettings(),
		Config: cfg, Secrets: map[string]string{"ENV_SECRET": envSecret},
		Logger: slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- svc.Run(ctx) }()
	t.Cleanup(func() { cancel(); <-done })
	r := &running{svc: svc}
	require.Eventually(t, func() bool {
		resp, err := http.Get("http://" + svc.Addr() + "/readyz")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	}, 10*time.Second, 10*time.Millisecond)

	for _, n := range []string{"1", "2", "3"} {
		require.Equal(t, http.StatusAccepted, r.post(t, "/echo", map[string]any{"n": n}))
	}
	require.Eventually(t, func() bool { return len(runsOf(t, svc.Store, "echo")) == 3 }, 10*time.Second, 10*time.Millisecond)
	for _, run := range runsOf(t, svc.Store, "echo") {
		full, err := svc.Store.GetRun(context.Background(), run.ID)
		require.NoError(t, err)
		rec := string(full.Record)
		require.Equal(t, "succeeded", full.Status, rec)
		require.Contains(t, rec, "auth=Bearer [redacted] body=[redacted] ", "the echo is recorded, redacted")
		require.NotContains(t, rec, token)
		require.NotContains(t, rec, envSecret)
	}
	require.NotContains(t, lb.String(), token)
	require.NotContains(t, lb.String(), envSecret)
	require.NotEmpty(t, lb.String(), "the service logged")
}
