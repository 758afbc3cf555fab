package server_test

import (
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"
)

const hookToken = "tok-5b2e91d04c"

// tokenRecipes ask the sender for a token: as a bearer token, and bare in
// a header of their own (as GitLab's X-Gitlab-Token).
var tokenRecipes = []string{`version: 1
name: bearer
trigger: {type: webhook.received, with: {path: /bearer, token: "{{ secrets.HOOK_TOKEN }}"}}
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:1/"}}]
`, `version: 1
name: gitlab
trigger: {type: webhook.received, with: {path: /gitlab, token: "{{ secrets.HOOK_TOKEN }}", token_header: X-Gitlab-Token}}
steps: [{id: s, action: http.request, with: {url: "http://127.0.0.1:1/"}}]
`}

// A webhook with a token is accepted only with it, compared whole; the
// header that carried it is not stored with the event.
func TestIntakeTokens(t *testing.T) {
	e := newEnv(t, tokenRecipes, map[string]string{"HOOK_TOKEN": hookToken}, nil)
	for _, c := range []struct {
		name, path string
		headers    map[string]string
		ok         bool
	}{
		{"bearer", "/bearer", map[string]string{"Authorization": "Bearer " + hookToken}, true},
		{"bearer, scheme in lower case", "/bearer", map[string]string{"Authorization": "bearer " + hookToken}, true},
		{"bare header", "/gitlab", map[string]string{"X-Gitlab-Token": hookToken}, true},
		{"missing", "/bearer", nil, false},
		{"no scheme", "/bearer", map[string]string{"Authorization": hookToken}, false},
		{"basic scheme", "/bearer", map[string]string{"Authorization": "Basic " + hookToken}, false},
		{"wrong token", "/bearer", map[string]string{"Authorization": "Bearer tok-5b2e91d04d"}, false},
		{"a prefix of it", "/bearer", map[string]string{"Authorization": "Bearer " + hookToken[:len(hookToken)-1]}, false},
		{"more than it", "/bearer", map[string]string{"Authorization": "Bearer " + hookToken + "x"}, false},
		{"bearer on a bare-header hook", "/gitlab", map[string]string{"Authorization": "Bearer " + hookToken}, false},
		{"bare header on a bearer hook", "/bearer", map[string]string{"X-Gitlab-Token": hookToken}, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			h := map[string]string{"Content-Type": "application/json", "X-Other": "kept"}
			for k, v := range c.headers {
				h[k] = v
			}
			before := e.rows(t)
			rec := e.do(t, req{target: "/hooks" + c.path, body: `{"a":1}`, headers: h})
			require.NotContains(t, rec.Body.String(), hookToken)
			if !c.ok {
				require.Equal(t, "bad_token", apiErr(t, rec, http.StatusUnauthorized))
				require.Equal(t, before, e.rows(t), "nothing is stored")
				return
			}
			ev, p := e.storedEvent(t, rec)
			require.NotContains(t, string(ev.Payload), hookToken, "the token is not stored")
			require.Equal(t, "kept", p.Headers["X-Other"])
			for k := range c.headers {
				require.NotContains(t, p.Headers, k)
			}
		})
	}
}
