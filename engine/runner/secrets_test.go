package runner_test

// The shared secret-leak test of DESIGN.md convention 4: "No secret ever
// appears in an error, a log line or a run record". It iterates every action
// registered in connector.Default, so a new connector is covered as soon as
// actions/all imports it: each is run through the runner against an
// httptest server that answers 200, 500 and 401 and echoes back everything
// it received (as a careless service would), with a secret in its inputs
// and another as its connection's secret.
//
// An action is driven generically from its spec: URL-like fields point at
// the server, the connection's base_url too, secret fields and free-text
// fields carry the secret. An action that cannot be driven that way gets an
// entry in actionInputs rather than a skip; one that does not speak HTTP
// at all is in otherTransport, with the test that holds it to the same.

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/internal/logbuf"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/all"
)

const (
	// Only letters, digits and _: a secret must reach the server and come
	// back byte for byte, not percent- or JSON-escaped, for the test to
	// exercise redaction.
	inputSecret = "in_secret_Zq81XvT0"
	connSecretV = "conn_secret_Kp42MwR7"
	secretName  = "LEAK_TEST"
)

// actionInputs overrides the generated `with` of an action that the
// generic rules cannot drive; server is the test server's URL.
var actionInputs = map[string]func(server string) map[string]any{
	// content, content_base64 and url, all generated, are refused together
	// (and the search for an earlier upload, which fails here but for
	// auth, is passed by)
	"gdrive.upload": func(string) map[string]any {
		return map[string]any{"name": "notes.txt", "content": "notes " + secretTemplate()}
	},
	// q and its alias query, both generated, are refused together
	"gcal.find_events": func(string) map[string]any {
		return map[string]any{"calendar_id": "primary", "q": "standup " + secretTemplate(), "max_results": 10}
	},
	// the generated blocks are no Block Kit, and the spec's examples name
	// earlier steps' outputs
	"slack.post_message": func(string) map[string]any {
		return map[string]any{"channel": "C0LEAK0001", "text": "hello " + secretTemplate()}
	},
	"slack.update_message": func(string) map[string]any {
		return map[string]any{"channel": "C0LEAK0001", "ts": "1700000000.000100", "text": "edited " + secretTemplate()}
	},
	"slack.upload_file": func(string) map[string]any {
		return map[string]any{"channel": "C0LEAK0001", "filename": "notes" + secretTemplate() + ".txt", "content": "notes " + secretTemplate()}
	},
	"gcal.update_event": func(string) map[string]any {
		return map[string]any{"event_id": "ev1", "summary": "Standup " + secretTemplate()}
	},
	"gcal.delete_event": func(string) map[string]any {
		return map[string]any{"event_id": "ev1" + secretTemplate()}
	},
	// one content source of three; a path that is a path
	"dropbox.upload": func(string) map[string]any {
		return map[string]any{"path": "/leak/notes" + secretTemplate() + ".txt", "content": "notes " + secretTemplate()}
	},
	"gdrive.share": func(string) map[string]any {
		return map[string]any{"file_id": "f1", "email": "ada@example.com", "send_notification": true,
			"message": "shared " + secretTemplate()}
	},
}

// connectionInputs overrides the generated values of a connection type
// whose fields are alternatives (OneOf) the generic rules would all set;
// server is the test server's URL.
var connectionInputs = map[string]func(server string) map[string]any{
	// a token, not a service-account file to read
	"google": func(server string) map[string]any {
		return map[string]any{"token": connSecretV, "base_url": server + "/"}
	},
}

// noInputSecret names the actions none of whose inputs reaches the service
// as written, so that the echo cannot show the input secret: only the
// connection's is checked to have gone out.
var noInputSecret = map[string]string{
	"slack.create_channel": "its one text input, the name, is sent lower-cased as Slack wants channel names",
	"gdrive.upload":        "refused (401), its first call, the search for the file a retried step made, which carries no input, fails it before the content goes out",
}

// otherTransport names the actions that speak no HTTP, so that an echoing
// HTTP server cannot drive them, and the test that checks them for leaks
// instead (engine/connector/connectortest's secret canary, with their
// own protocol's fakes).
var otherTransport = map[string]string{
	"email.send":    "SMTP: actions/email TestKit (canary against a real SMTP server) and TestSendErrors",
	"zapier.notify": "the engine's outbox, not a service: engine/zapier's delivery tests",
}

// serviceAnswer names the actions whose success needs the service's own
// answer (an SDK parses it: Slack's ok:true, Google's and Jira's
// resources), which an echo is not: only their failures (500, 401, whose
// echoed bodies are where a leak would show) are driven here, and their
// success by connectortest's canary against the service's fake.
var serviceAnswer = map[string]bool{
	"slack.post_message": true, "slack.update_message": true, "slack.upload_file": true, "slack.create_channel": true,
	"gcal.create_event": true, "gcal.update_event": true, "gcal.delete_event": true, "gcal.find_events": true,
	"gdrive.upload": true, "gdrive.create_folder": true, "gdrive.share": true,
	"jira.create_issue": true, "jira.transition_issue": true, "jira.add_comment": true, "jira.update_issue": true,
	"outlook.send_mail": true, // Graph answers sendMail 202 Accepted, which an echo is not
}

// echoServer answers with status and echoes the request (method, URL,
// headers, body) in its body and headers. It remembers what it saw.
type echoServer struct {
	*httptest.Server
	mu   sync.Mutex
	seen []string
}

func newEchoServer(t *testing.T, status int) *echoServer {
	es := &echoServer{}
	es.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		var hdr strings.Builder
		for k, v := range r.Header {
			fmt.Fprintf(&hdr, "%s=%s;", k, strings.Join(v, ","))
		}
		req := fmt.Sprintf("%s %s headers:%s body:%s", r.Method, r.URL.String(), hdr.String(), body)
		if user, pass, ok := r.BasicAuth(); ok {
			// what basic authentication carries, as the service reads it
			req += " basic:" + user + ":" + pass
		}
		es.mu.Lock()
		es.seen = append(es.seen, req)
		es.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("X-Echo-Authorization", r.Header.Get("Authorization"))
		w.Header().Set("X-Echo-Url", r.URL.String())
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer error="invalid_token", token="`+r.Header.Get("Authorization")+`"`)
		}
		w.WriteHeader(status)
		// the request first, so that a short snippet of the body quotes it
		_ = json.NewEncoder(w).Encode(map[string]any{"echo": req, "ok": status < 300, "id": "x1"})
	}))
	t.Cleanup(es.Close)
	return es
}

func (es *echoServer) sawAll() string {
	es.mu.Lock()
	defer es.mu.Unlock()
	return strings.Join(es.seen, "\n")
}

func secretTemplate() string { return "{{ secrets." + secretName + " }}" }

func isURLField(f connector.Field) bool {
	if f.Name == "url" || strings.HasSuffix(f.Name, "_url") {
		return true
	}
	s, ok := f.Example.(string)
	return ok && (strings.HasPrefix(s, "http://") || strings.HasPrefix(s, "https://"))
}

// literal gives a field's example or default as a recipe would write it.
func literal(f connector.Field) (any, bool) {
	for _, v := range []any{f.Example, f.Default} {
		switch x := v.(type) {
		case nil:
			continue
		case time.Duration:
			return x.String(), true
		default:
			return x, true
		}
	}
	return nil, false
}

// inputFor builds a recipe value for one field of an action, carrying the
// secret where the field can hold free text.
func inputFor(f connector.Field, server string) (any, bool) {
	tmpl := secretTemplate()
	if f.Secret {
		return tmpl, true
	}
	lit, hasLit := literal(f)
	constrained := len(f.Enum) > 0 || f.Pattern != "" || f.Check != nil
	switch f.Type {
	case connector.String:
		switch {
		case isURLField(f):
			return server + "/leak?token=" + tmpl, true
		case len(f.Enum) > 0 && !hasLit:
			return f.Enum[0], true
		case constrained:
			return lit, hasLit
		case hasLit:
			return fmt.Sprint(lit) + " " + tmpl, true
		default:
			return "text " + tmpl, true
		}
	case connector.StringMap:
		m := map[string]any{}
		if lm, ok := lit.(map[string]any); ok {
			for k, v := range lm {
				m[k] = v
			}
		}
		if constrained {
			return m, len(m) > 0
		}
		m["X-Leak-Test"] = tmpl
		return m, true
	case connector.Object, connector.Any:
		if constrained {
			return lit, hasLit
		}
		m := map[string]any{}
		if lm, ok := lit.(map[string]any); ok {
			for k, v := range lm {
				m[k] = v
			}
		} else if hasLit {
			m["value"] = lit
		}
		m["leak_test"] = tmpl
		return m, true
	case connector.List:
		if constrained || !hasLit {
			return lit, hasLit
		}
		l, _ := lit.([]any)
		return append(slices.Clone(l), tmpl), true
	case connector.Int, connector.Number:
		if hasLit {
			return lit, true
		}
		return 1, f.Required
	case connector.Bool:
		if hasLit {
			return lit, true
		}
		return false, f.Required
	default: // duration, expression
		return lit, hasLit
	}
}

// actionWith builds the `with` block of an action: a value for every field
// it can fill, then fields that the spec's Validate rejects together are
// dropped (json and body, say) when they are optional.
func actionWith(t *testing.T, spec *connector.Spec, server string) map[string]any {
	if f, ok := actionInputs[spec.ID]; ok {
		return f(server)
	}
	with := map[string]any{}
	for _, f := range spec.Fields {
		if v, ok := inputFor(f, server); ok {
			with[f.Name] = v
		} else if f.Required {
			t.Fatalf("%s: cannot build a value for required field %q: add an entry to actionInputs", spec.ID, f.Name)
		}
	}
	if spec.Validate == nil {
		return with
	}
	for range len(spec.Fields) {
		statics := connector.Values{}
		for k, v := range with {
			fd, _ := spec.Field(k)
			if s, ok := v.(string); ok && strings.Contains(s, "{{") {
				continue // a template: absent from the load-time check
			}
			if c, err := fd.CheckValue(v); err == nil {
				statics[k] = c
			}
		}
		errs := spec.Validate(statics)
		if len(errs) == 0 {
			return with
		}
		dropped := false
		for _, fe := range errs {
			if fd, ok := spec.Field(fe.Field); ok && !fd.Required {
				delete(with, fe.Field)
				dropped = true
			}
		}
		if !dropped {
			t.Fatalf("%s: generated inputs fail validation (%v): add an entry to actionInputs", spec.ID, errs)
		}
	}
	return with
}

// connectionValues builds the connection an action uses: base_url at the
// server, every secret field holding the connection secret.
func connectionValues(t *testing.T, spec *connector.Spec, server string) *connector.Connection {
	if spec.Connection == "" {
		return nil
	}
	cs, ok := connector.Default.Connection(spec.Connection)
	require.Truef(t, ok, "%s uses connection type %q, which is not registered", spec.ID, spec.Connection)
	vals := connector.Values{}
	if f, ok := connectionInputs[cs.Type]; ok {
		for name, raw := range f(server) {
			fd, _ := fieldOf(cs.Fields, name)
			v, err := fd.CheckValue(raw)
			require.NoErrorf(t, err, "connection %s field %s", cs.Type, name)
			vals[name] = v
		}
	}
	for _, f := range cs.Fields {
		if len(connectionInputs) > 0 && connectionInputs[cs.Type] != nil {
			break
		}
		var raw any
		switch {
		case f.Name == "base_url" || strings.HasSuffix(f.Name, "_url") || f.Name == "endpoint":
			raw = server + "/"
		case f.Secret && f.Type == connector.StringMap:
			raw = map[string]any{"X-Conn-Secret": connSecretV}
		case f.Secret:
			raw = connSecretV
		default:
			lit, ok := literal(f)
			if !ok {
				continue
			}
			raw = lit
		}
		v, err := f.CheckValue(raw)
		require.NoErrorf(t, err, "connection %s field %s", cs.Type, f.Name)
		vals[f.Name] = v
	}
	conn := &connector.Connection{Name: "leaky", Type: cs.Type, Values: vals}
	// its client, as the service builds it: what actions call through
	cl, err := connector.NewClient(conn, cs, nil, connector.ClientHooks{})
	require.NoError(t, err)
	conn.Client, conn.AccessToken = cl, cl.Token
	return conn
}

func leakRecipe(t *testing.T, spec *connector.Spec, server string) *recipes.Recipe {
	step := map[string]any{"id": "act", "action": spec.ID, "with": actionWith(t, spec, server)}
	if spec.Connection != "" {
		step["connection"] = "leaky"
	}
	doc := map[string]any{
		"version": 1,
		"name":    "leak-" + strings.ReplaceAll(spec.ID, ".", "-"),
		"trigger": map[string]any{"type": "webhook.received", "with": map[string]any{"path": "/leak"}},
		"vars":    map[string]any{"token": secretTemplate()},
		"steps":   []any{step},
	}
	src, err := json.Marshal(doc) // JSON is YAML
	require.NoError(t, err)
	rec, diags := (&recipes.Loader{}).Parse(spec.ID+".yaml", src)
	require.Falsef(t, diags.HasErrors(), "%s: the generated recipe does not load (add an entry to actionInputs):\n%s\n%s", spec.ID, src, diags.Error())
	return rec
}

func TestNoConnectorLeaksSecrets(t *testing.T) {
	actions := connector.Default.Specs(connector.KindAction)
	require.NotEmpty(t, actions, "actions/all registers the actions")
	scenarios := []struct {
		name     string
		status   int
		want     runner.Status
		reason   string
		attempts int
	}{
		{name: "ok", status: http.StatusOK, want: runner.StatusSucceeded, attempts: 1},
		{name: "server error", status: http.StatusInternalServerError, want: runner.StatusFailed, reason: "server_error", attempts: 3},
		{name: "unauthorized", status: http.StatusUnauthorized, want: runner.StatusFailed, reason: "auth", attempts: 1},
	}
	for _, spec := range actions {
		t.Run(spec.ID, func(t *testing.T) {
			if why, ok := otherTransport[spec.ID]; ok {
				t.Skipf("no HTTP to echo; covered by %s", why)
			}
			for _, sc := range scenarios {
				t.Run(sc.name, func(t *testing.T) {
					if sc.status == http.StatusOK && serviceAnswer[spec.ID] {
						t.Skip("its success needs the service's answer: its TestKit runs it against the service's fake")
					}
					srv := newEchoServer(t, sc.status)
					rec := leakRecipe(t, spec, srv.URL)
					conn := connectionValues(t, spec, srv.URL)
					logs := &logbuf.Buffer{}
					r := &runner.Runner{
						Secrets: map[string]string{secretName: inputSecret},
						Redact:  []string{connSecretV}, // as the config's secret values are
						Logger:  newLogger(logs),
						Sleep:   func(context.Context, time.Duration) error { return nil },
						Connection: func(name string) (*connector.Connection, error) {
							if conn == nil || name != conn.Name {
								return nil, fmt.Errorf("no connection %q", name)
							}
							return conn, nil
						},
					}
					res := r.Run(t.Context(), rec, runner.Event{ID: "e1", Type: "webhook.received", ReceivedAt: time.Now(),
						Payload: map[string]any{"body": map[string]any{}}}, "run-leak")

					act := res.Step("act")
					require.NotNil(t, act, "run: %+v", res.Error)
					require.Equalf(t, sc.want, res.Status, "run error: %+v", res.Error)
					require.Equal(t, sc.reason, act.Reason)
					require.Len(t, act.Attempts, sc.attempts)

					// the test means something only if the secrets really went out
					saw := srv.sawAll()
					if _, ok := noInputSecret[spec.ID]; !ok {
						require.Contains(t, saw, inputSecret, "the action did not send its input secret: the test would prove nothing")
					}
					if conn != nil && slices.ContainsFunc(mustConnSpec(t, spec).Fields, func(f connector.Field) bool { return f.Secret }) {
						require.Contains(t, saw, connSecretV, "the action did not use its connection secret")
					}
					if sc.want == runner.StatusFailed {
						require.Contains(t, logs.String(), "step attempt failed", "the logs were captured")
					}
					requireNoSecrets(t, res, logs.String(), inputSecret, connSecretV)
				})
			}
		})
	}
}

func fieldOf(fields []connector.Field, name string) (*connector.Field, bool) {
	for i := range fields {
		if fields[i].Name == name {
			return &fields[i], true
		}
	}
	return nil, false
}

func mustConnSpec(t *testing.T, spec *connector.Spec) *connector.ConnectionSpec {
	cs, ok := connector.Default.Connection(spec.Connection)
	require.True(t, ok)
	return cs
}
