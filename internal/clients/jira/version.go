package jira

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"

	gojira "github.com/andygrunwald/go-jira"

	"github.com/sous-run/sous/engine/connector"
)

// The values of a connection's api_version.
const (
	APIVersion3    = "3"
	APIVersion2    = "2"
	APIVersionAuto = "auto"
)

// Versioned is a value of a request body that differs between REST API v3
// and v2 (an Atlassian document in v3, plain text in v2; an assignee's
// accountId in v3, name in v2): API.Call sends the one of the version it
// calls, wherever the value sits in the body's maps and lists.
type Versioned struct{ V3, V2 any }

// Doc is a description or comment body: an Atlassian document (ADF) in v3,
// the plain text itself in v2.
func Doc(text string) Versioned { return Versioned{V3: ADF(text), V2: text} }

// API is a connection's Jira REST API: go-jira's client over the
// connection's client, calling v3 paths or their v2 equivalents as the
// connection's api_version says.
//
//   - "3": v3 only, never v2.
//   - "2": v2 from the start (Jira Data Center / Server, which has no v3).
//   - "auto" (the default): v3, until a v3 path is answered 404. The first
//     such 404 on a connection probes the site once: GET
//     rest/api/3/serverInfo answered 404 while GET rest/api/2/serverInfo
//     answers 200 means a v2-only site. serverInfo is cheap and exists on
//     every Jira, so unlike the failed call's own 404 it cannot mean a
//     missing issue (Jira's "Issue does not exist or you do not have
//     permission to see it." is a 404 too, and must stay not_found). The
//     outcome is remembered for the connection (shared by every API of
//     its client), either way: on a v2-only site the failed call is made
//     again once on v2 with the body's Versioned values in their v2 form,
//     and later calls go to v2 at once; on a site with v3 the 404 is
//     returned as it is and later 404s probe nothing. A probe that gets
//     neither answer (a 5xx, no answer) decides nothing: the 404 is
//     returned and the next 404 probes again.
type API struct {
	Client *gojira.Client
	mode   string
	state  *versionState
}

// versionState is what a connection learned of its site's API version.
type versionState struct {
	mu     sync.Mutex
	probed bool
	v2     bool
}

// states holds each connection's versionState, keyed by its shared client
// (one per connection for the process's life; see the service's
// Connections), so that every step on a connection learns from the first
// probe.
var states sync.Map // *connector.Client → *versionState

// APIVersion is a connection's api_version, "auto" when unset.
func APIVersion(with connector.Values) string {
	if v := strings.TrimSpace(with.String(FieldAPIVersion)); v != "" {
		return v
	}
	return APIVersionAuto
}

// NewAPI is the connection's API (see NewClient for the client).
func NewAPI(conn *connector.Connection) (*API, error) {
	c, err := NewClient(conn)
	if err != nil {
		return nil, err
	}
	mode := APIVersion(conn.Values)
	switch mode {
	case APIVersion3, APIVersion2, APIVersionAuto:
	default:
		return nil, connector.Permanent(connector.ReasonInvalid,
			fmt.Errorf("jira api_version %q is not one of 3, 2, auto", mode))
	}
	st, _ := states.LoadOrStore(conn.Client, &versionState{})
	return &API{Client: c, mode: mode, state: st.(*versionState)}, nil
}

// V2 reports whether calls go to REST API v2: api_version "2", or "auto"
// on a site found to have v2 only.
func (a *API) V2() bool {
	switch a.mode {
	case APIVersion2:
		return true
	case APIVersion3:
		return false
	}
	a.state.mu.Lock()
	defer a.state.mu.Unlock()
	return a.state.v2
}

// Call makes one request of ref, a v3 path (rest/api/3/...), or of its v2
// equivalent (the same path on rest/api/2/), as V2 says; see CallV2.
func (a *API) Call(ctx context.Context, method, ref string, body, out any) error {
	return a.CallV2(ctx, method, ref, "", body, out)
}

// CallV2 is Call with the v2 path given (v2ref, when it differs by more
// than its version: other query parameters); empty, it is ref on
// rest/api/2/. The body's Versioned values are sent in the form of the
// version called; errors are Call's (the package function).
func (a *API) CallV2(ctx context.Context, method, ref, v2ref string, body, out any) error {
	if v2ref == "" {
		v2ref = toV2(ref)
	}
	if a.V2() {
		return Call(ctx, a.Client, method, v2ref, resolve(body, true), out)
	}
	err := Call(ctx, a.Client, method, ref, resolve(body, false), out)
	if a.mode != APIVersionAuto || !strings.HasPrefix(ref, "rest/api/3/") || !notFound(err) {
		return err
	}
	if !a.fallBack(ctx) {
		return err
	}
	return Call(ctx, a.Client, method, v2ref, resolve(body, true), out)
}

// fallBack probes the site once per connection (see API) and reports
// whether it has v2 only.
func (a *API) fallBack(ctx context.Context) bool {
	a.state.mu.Lock()
	defer a.state.mu.Unlock()
	if a.state.probed {
		return a.state.v2
	}
	var info map[string]any
	err := Call(ctx, a.Client, http.MethodGet, "rest/api/3/serverInfo", nil, &info)
	if err == nil {
		a.state.probed = true
		return false
	}
	if !notFound(err) {
		return false
	}
	if err := Call(ctx, a.Client, http.MethodGet, "rest/api/2/serverInfo", nil, &info); err != nil {
		return false
	}
	a.state.probed, a.state.v2 = true, true
	return true
}

// toV2 is a v3 path's v2 equivalent.
func toV2(ref string) string {
	if rest, ok := strings.CutPrefix(ref, "rest/api/3/"); ok {
		return "rest/api/2/" + rest
	}
	return ref
}

// resolve is body with its Versioned values in the form of v2 or v3.
func resolve(body any, v2 bool) any {
	switch x := body.(type) {
	case Versioned:
		if v2 {
			return x.V2
		}
		return x.V3
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, v := range x {
			out[k] = resolve(v, v2)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, v := range x {
			out[i] = resolve(v, v2)
		}
		return out
	}
	return body
}

// notFound reports whether err is a not_found connector error (a 404).
func notFound(err error) bool {
	return err != nil && connector.Classify(err).Reason == connector.ReasonNotFound
}
