package runner_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/internal/logbuf"
)

const (
	apiSecret  = "s3cr3t_api_value_81c2"  // in Runner.Secrets, used as secrets.API
	connSecret = "conn_secret_value_77ab" // in Runner.Redact, as a connection's secret
)

func newLogger(buf *logbuf.Buffer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

func requireNoSecrets(t *testing.T, res *runner.Result, logs string, secrets ...string) {
	t.Helper()
	b, err := json.Marshal(res)
	require.NoError(t, err)
	for _, s := range secrets {
		require.NotContains(t, string(b), s, "a secret is in the run record")
		require.NotContains(t, logs, s, "a secret is in the logs")
	}
}

// An action that echoes secrets everywhere it can: in its output (in every
// shape an output can take), its error and its log lines.
func leakyAnswer(ctx context.Context, step string, n int, req *connector.Request) (map[string]any, error) {
	text := req.With.String("text")
	req.Logger.Info("calling with "+text, "token", text, "err", errors.New("auth "+connSecret),
		slog.Group("g", "k", apiSecret), "obj", map[string]any{"t": []string{apiSecret}}, "n", n)
	req.Logger.With("auth", "Bearer "+connSecret).WithGroup("grp").Warn("again", "v", struct{ Token string }{apiSecret})
	out := map[string]any{
		"text":    "echo " + text,
		"n":       int64(1),
		"nested":  map[string]any{"list": []any{"a", apiSecret}},
		"strings": []string{apiSecret},
		"headers": map[string][]string{"Authorization": {"Bearer " + connSecret}},
		"smap":    map[string]string{"k": connSecret},
		"struct":  struct{ Token string }{apiSecret},
		"ptr":     &struct{ Token string }{connSecret},
		"bytes":   []byte(apiSecret),
		"err":     errors.New("echo " + connSecret),
		apiSecret: "a secret as a key",
	}
	if step == "fails" {
		return out, connector.Retryable(connector.ReasonServerError, 0, fmt.Errorf("denied for %s and %s", apiSecret, connSecret))
	}
	return out, nil
}

func TestSecretsNeverRecorded(t *testing.T) {
	rec := load(t, `
version: 1
name: secrets
trigger: {type: test.event}
vars:
  key: "{{ secrets.API }}"
steps:
  - id: first
    action: test.echo
    with: {text: "{{ secrets.API }}"}
  - id: second
    action: test.echo
    with: {text: "{{ steps.first.output.text }}|{{ vars.key }}"}
  - id: fails
    action: test.echo
    with: {text: "{{ secrets.API }}"}
    retry: {max_attempts: 2}
on_error:
  - id: alert
    action: test.echo
    with: {text: "{{ error.message }}"}
`)
	f := newFake(leakyAnswer)
	buf := &logbuf.Buffer{}
	r := newRunner(f, &sleeper{})
	r.Secrets = map[string]string{"API": apiSecret, "SHORT": "abc"}
	r.Redact = []string{connSecret}
	r.Logger = newLogger(buf)
	var recorded []*runner.StepResult
	r.OnStep = func(sr *runner.StepResult) { recorded = append(recorded, sr) }

	res := r.Run(t.Context(), rec, event(nil), "run-1")

	require.Equal(t, runner.StatusFailed, res.Status)
	require.Equal(t, "fails", res.Error.Step)
	// later steps see the real values
	second := f.callsOf("second")
	require.Len(t, second, 1)
	require.Equal(t, "echo "+apiSecret+"|"+apiSecret, second[0].With.String("text"))
	require.Equal(t, apiSecret, f.callsOf("first")[0].With.String("text"))
	// the records do not
	require.Equal(t, runner.Redacted, res.Vars["key"])
	require.Equal(t, runner.Redacted, res.Step("first").Input["text"])
	require.Equal(t, "echo "+runner.Redacted, res.Step("first").Output["text"])
	require.Contains(t, res.Error.Message, runner.Redacted)
	require.Len(t, res.Step("fails").Attempts, 2)
	alert := f.callsOf("alert")
	require.Len(t, alert, 1)
	require.NotContains(t, alert[0].With.String("text"), apiSecret, "error.message is the recorded, redacted one")
	logs := buf.String()
	require.Contains(t, logs, "calling with", "the action's log lines were captured")
	require.Contains(t, logs, "step attempt failed", "the runner's log lines were captured")
	requireNoSecrets(t, res, logs, apiSecret, connSecret)
	for _, sr := range recorded {
		b, err := json.Marshal(sr)
		require.NoError(t, err)
		require.NotContains(t, string(b), apiSecret, "OnStep sees the redacted record")
	}
}

func TestSecretsRedactedOnEveryWayOut(t *testing.T) {
	tests := []struct {
		name    string
		src     string
		payload map[string]any
		status  runner.Status
		reason  string
	}{
		{
			name: "a var fails after one that holds a secret",
			src: `
version: 1
name: secrets
trigger: {type: test.event}
vars:
  key: "{{ secrets.API }}"
  bad: "{{ int(event.s) }}"
steps:
  - id: a
    action: test.echo
`,
			payload: map[string]any{"s": "x"},
			status:  runner.StatusFailed, reason: "template_error",
		},
		{
			name: "a var's error quotes a secret",
			src: `
version: 1
name: secrets
trigger: {type: test.event}
vars:
  bad: "{{ int(secrets.API) }}"
steps:
  - id: a
    action: test.echo
`,
			status: runner.StatusFailed, reason: "template_error",
		},
		{
			name: "the filter's error quotes a secret",
			src: `
version: 1
name: secrets
trigger: {type: test.event}
filter: int(secrets.API) > 0
steps:
  - id: a
    action: test.echo
`,
			status: runner.StatusFailed, reason: "filter_error",
		},
		{
			name: "an if's error quotes a secret",
			src: `
version: 1
name: secrets
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    if: int(secrets.API) > 0
`,
			status: runner.StatusFailed, reason: "if_error",
		},
		{
			name: "an input that does not fit quotes a secret",
			src: `
version: 1
name: secrets
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    with: {n: "{{ secrets.API }}"}
`,
			status: runner.StatusFailed, reason: "invalid_input",
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			buf := &logbuf.Buffer{}
			r := newRunner(newFake(leakyAnswer), &sleeper{})
			r.Secrets = map[string]string{"API": apiSecret}
			r.Logger = newLogger(buf)
			res := r.Run(t.Context(), load(t, tc.src), event(tc.payload), "run-1")
			require.Equal(t, tc.status, res.Status)
			require.Equal(t, tc.reason, res.Error.Reason)
			requireNoSecrets(t, res, buf.String(), apiSecret)
		})
	}
}

func TestSecretFieldsRedactedInInput(t *testing.T) {
	const token = "plain_token_not_a_known_secret"
	rec := load(t, `
version: 1
name: secret-field
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    with: {text: visible, token: "{{ event.tok }}"}
`)
	f := newFake(nil)
	res := newRunner(f, &sleeper{}).Run(t.Context(), rec, event(map[string]any{"tok": token}), "run-1")
	require.Equal(t, runner.StatusSucceeded, res.Status)
	require.Equal(t, token, f.callsOf("a")[0].With.String("token"), "the action gets the real value")
	in := res.Step("a").Input
	require.Equal(t, runner.Redacted, in["token"])
	require.Equal(t, "visible", in["text"])
	b, err := json.Marshal(res)
	require.NoError(t, err)
	require.NotContains(t, string(b), token)
}

// Values shorter than four characters are not treated as secrets: they
// would mangle ordinary text in every record.
func TestShortSecretsAreNotRedacted(t *testing.T) {
	rec := load(t, `
version: 1
name: short
trigger: {type: test.event}
steps:
  - id: a
    action: test.echo
    with: {text: "a cat"}
`)
	r := newRunner(newFake(nil), &sleeper{})
	r.Secrets = map[string]string{"S": "a"} // one letter would mangle every record
	res := r.Run(t.Context(), rec, event(nil), "run-1")
	require.Equal(t, "a cat", res.Step("a").Input["text"])
}
