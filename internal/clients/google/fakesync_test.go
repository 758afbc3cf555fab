package google

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseMask(t *testing.T) {
	for _, tc := range []struct {
		fields, in, want string
	}{
		{"a", `{"a":1,"b":2}`, `{"a":1}`},
		{"a,b(c)", `{"a":1,"b":{"c":2,"d":3},"e":4}`, `{"a":1,"b":{"c":2}}`},
		{"items(id,f(x)),next", `{"items":[{"id":1,"z":2,"f":{"x":1,"y":2}},{"id":3}],"next":"t","other":1}`,
			`{"items":[{"id":1,"f":{"x":1}},{"id":3}],"next":"t"}`},
		{"*", `{"a":1}`, `{"a":1}`},
	} {
		t.Run(tc.fields, func(t *testing.T) {
			m, err := parseMask(tc.fields)
			require.NoError(t, err)
			var v any
			require.NoError(t, json.Unmarshal([]byte(tc.in), &v))
			b, err := json.Marshal(m.apply(v))
			require.NoError(t, err)
			require.JSONEq(t, tc.want, string(b))
		})
	}
	for _, bad := range []string{"", "a(", "a(b", "a,,b", "a)b", "(a)"} {
		_, err := parseMask(bad)
		require.Error(t, err, bad)
	}
}

// TestFakeSyncRefusals: the fake refuses what Google refuses: a sync
// token with a time range, an unknown sync token, an expired one (410),
// changes.list without a page token or a fields mask.
func TestFakeSyncRefusals(t *testing.T) {
	f := NewFake("tok")
	srv := httptest.NewServer(f)
	defer srv.Close()
	get := func(path string) (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+path, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		var body map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body
	}
	f.CreateEvent("primary", "a")
	code, body := get("/calendar/v3/calendars/primary/events?alt=json")
	require.Equal(t, http.StatusOK, code)
	tok, _ := body["nextSyncToken"].(string)
	require.NotEmpty(t, tok)
	code, _ = get("/calendar/v3/calendars/primary/events?alt=json&syncToken=" + tok + "&timeMin=2026-01-01T00:00:00Z")
	require.Equal(t, http.StatusBadRequest, code)
	code, _ = get("/calendar/v3/calendars/primary/events?alt=json&syncToken=bogus")
	require.Equal(t, http.StatusBadRequest, code)
	f.ExpireSyncTokens()
	code, body = get("/calendar/v3/calendars/primary/events?alt=json&syncToken=" + tok)
	require.Equal(t, http.StatusGone, code)
	require.Contains(t, body["error"].(map[string]any)["message"], "full sync")

	code, _ = get("/drive/v3/changes?alt=json&fields=changes")
	require.Equal(t, http.StatusBadRequest, code, "no pageToken")
	code, _ = get("/drive/v3/changes?alt=json&pageToken=1")
	require.Equal(t, http.StatusBadRequest, code, "no fields")
	code, _ = get("/drive/v3/changes?alt=json&pageToken=99&fields=changes")
	require.Equal(t, http.StatusBadRequest, code, "a page token beyond the feed")
	require.Len(t, f.Problems, 3, "the malformed ones are recorded: %v", f.Problems)
}
