package jira

import (
	"context"
	"errors"
	"net/http"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
	"github.com/sous-run/sous/internal/httpx"
)

// vector is ../shared/reference/vectors/jira_issue_updated.json, signed
// with secret jira_webhook_secret (PROTOCOLS.md §3).
const (
	vectorSecret = "jira_webhook_secret"
	vectorSig    = "sha256=2630a2b2a06ebcc9194b92f892ef6943ef844f9c2f010e2f037a13caae2f228f"
)

func vector(t testing.TB) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/jira_issue_updated.json")
	require.NoError(t, err)
	require.Len(t, b, 385)
	return b
}

func incoming(secret string, header http.Header, body []byte) *connector.Incoming {
	with := connector.Values{"base_url": "https://acme.atlassian.net"}
	if secret != "" {
		with[jc.FieldWebhookSecret] = secret
	}
	return &connector.Incoming{Method: http.MethodPost, Path: "/jira/jira", Header: header, Body: body,
		Connection: &connector.Connection{Name: "jira", Type: "jira", Values: with}, Now: time.Now()}
}

func TestReceiveVector(t *testing.T) {
	body := vector(t)
	h := http.Header{jc.HeaderSignature: {vectorSig}, jc.HeaderIdentifier: {"delivery-1"}}
	got, err := receiver{}.Receive(context.Background(), incoming(vectorSecret, h, body))
	require.NoError(t, err)
	require.Len(t, got.Events, 2)
	require.Equal(t, "jira.issue_updated", got.Events[0].Type)
	require.Equal(t, "jira.issue_status_changed", got.Events[1].Type)
	for _, ev := range got.Events {
		require.Equal(t, "delivery-1", ev.DedupKey)
	}
	st := got.Events[1].Payload
	require.Equal(t, map[string]any{"from": "To Do", "to": "In Progress"}, st["status"])
	require.Equal(t, "PROJ-123", st["issue"].(map[string]any)["key"])
	require.NotContains(t, got.Events[0].Payload, "status", "only the status trigger's event has status")
	require.Equal(t, http.StatusOK, got.Reply.Status)
}

func TestReceiveRejects(t *testing.T) {
	body := vector(t)
	for _, tc := range []struct {
		name, secret string
		header       http.Header
		body         []byte
		status       int
		code         string
	}{
		{"wrong signature", vectorSecret, http.Header{jc.HeaderSignature: {"sha256=" + "00" + vectorSig[9:]}}, body, 401, "bad_signature"},
		{"other secret", "another-secret", http.Header{jc.HeaderSignature: {vectorSig}}, body, 401, "bad_signature"},
		{"missing signature", vectorSecret, http.Header{}, body, 401, "missing_signature"},
		{"other method", vectorSecret, http.Header{jc.HeaderSignature: {"sha1=" + vectorSig[7:]}}, body, 401, "bad_signature"},
		{"body changed", vectorSecret, http.Header{jc.HeaderSignature: {vectorSig}}, append([]byte(" "), body...), 401, "bad_signature"},
		{"not json", "", http.Header{}, []byte("nope"), 400, "bad_body"},
		{"no event name", "", http.Header{}, []byte(`{"issue":{}}`), 400, "bad_body"},
		{"issue not an object", "", http.Header{}, []byte(`{"webhookEvent":"jira:issue_updated","issue":"x"}`), 400, "bad_body"},
		{"null", "", http.Header{}, []byte(`null`), 400, "bad_body"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := receiver{}.Receive(context.Background(), incoming(tc.secret, tc.header, tc.body))
			var rej *connector.Rejection
			require.True(t, errors.As(err, &rej), "%v", err)
			require.Equal(t, tc.status, rej.Status)
			require.Equal(t, tc.code, rej.Code)
			if tc.secret != "" {
				require.NotContains(t, rej.Message, tc.secret, "never the secret")
			}
		})
	}
}

func TestReceiveKinds(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		types      []string
	}{
		{"created", `{"webhookEvent":"jira:issue_created","timestamp":1,"issue":{"id":"1","key":"A-1"}}`, []string{"jira.issue_created"}},
		{"updated without status", `{"webhookEvent":"jira:issue_updated","issue":{"id":"1"},"changelog":{"id":"5","items":[{"field":"summary"}]}}`,
			[]string{"jira.issue_updated"}},
		{"comment", `{"webhookEvent":"comment_created","issue":{"id":"1"},"comment":{"id":"9","body":"hi"}}`, []string{"jira.comment_created"}},
		{"other event", `{"webhookEvent":"jira:issue_deleted","issue":{"id":"1"}}`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := receiver{}.Receive(context.Background(), incoming("", http.Header{}, []byte(tc.body)))
			require.NoError(t, err)
			var types []string
			for _, ev := range got.Events {
				types = append(types, ev.Type)
				require.NotEmpty(t, ev.DedupKey, "a key from the body without the identifier header")
			}
			require.Equal(t, tc.types, types)
		})
	}
}

func TestSignedBySender(t *testing.T) {
	body := vector(t)
	require.Equal(t, vectorSig, httpx.SignSHA256(vectorSecret, body), "the published vector")
	require.NoError(t, jc.Verify(vectorSecret, http.Header{jc.HeaderSignature: {vectorSig}}, body))
	require.NoError(t, jc.Verify("", http.Header{}, body), "no secret: unsigned requests are accepted")
}

func TestMatch(t *testing.T) {
	ev := &connector.Event{Payload: map[string]any{
		"issue":  map[string]any{"key": "PROJ-123", "fields": map[string]any{"project": map[string]any{"key": "PROJ"}}},
		"status": map[string]any{"from": "In Progress", "to": "Done"}}}
	for _, tc := range []struct {
		name string
		with connector.Values
		want bool
	}{
		{"no options", connector.Values{}, true},
		{"project", connector.Values{FieldProject: "PROJ"}, true},
		{"project any case", connector.Values{FieldProject: "proj"}, true},
		{"other project", connector.Values{FieldProject: "OPS"}, false},
		{"to", connector.Values{FieldTo: "done"}, true},
		{"other to", connector.Values{FieldTo: "In Review"}, false},
		{"from and to", connector.Values{FieldFrom: "In Progress", FieldTo: "Done"}, true},
		{"other from", connector.Values{FieldFrom: "To Do", FieldTo: "Done"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, match(tc.with, ev))
		})
	}
	// the project from the key when the fields lack it
	require.True(t, match(connector.Values{FieldProject: "PROJ"}, &connector.Event{Payload: map[string]any{"issue": map[string]any{"key": "PROJ-1"}}}))
}

// FuzzReceive: any body and signature is an event list or a 4xx
// rejection, never a panic; a valid signature is only accepted for its
// body.
func FuzzReceive(f *testing.F) {
	f.Add(vector(f), vectorSig)
	f.Add([]byte(`{"webhookEvent":"comment_created","comment":{"id":1}}`), "sha256=00")
	f.Add([]byte(`{"webhookEvent":"jira:issue_updated","changelog":{"items":[{"field":"status","fromString":1}]}}`), "")
	f.Fuzz(func(t *testing.T, body []byte, sig string) {
		for _, secret := range []string{"", vectorSecret} {
			got, err := receiver{}.Receive(context.Background(), incoming(secret, http.Header{jc.HeaderSignature: {sig}}, body))
			if err != nil {
				var rej *connector.Rejection
				require.True(t, errors.As(err, &rej), "%v", err)
				require.True(t, rej.Status >= 400 && rej.Status < 500)
				continue
			}
			if secret != "" {
				require.Equal(t, httpx.SignSHA256(secret, body), "sha256="+sig[len("sha256="):])
			}
			for _, ev := range got.Events {
				require.NotEmpty(t, ev.Type)
			}
		}
	})
}

// FuzzParse: the payload parser never panics, and what it accepts has an
// event name.
func FuzzParse(f *testing.F) {
	f.Add(vector(f))
	f.Add([]byte(`{"webhookEvent":"x","issue":null}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d, err := jc.Parse(body)
		if err != nil {
			return
		}
		require.NotEmpty(t, d.Event)
		_ = jc.ProjectKey(d.Payload)
		_ = d.DedupKey(http.Header{})
	})
}
