package google

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strconv"
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

// TestFakePagesStable: a calendar changed while its pages are read
// loses no event from the pages that follow (a full list and an
// incremental sync), and what changed comes in the next sync, as Google's
// pages behave. The fake paged by offset before: an edit during the pages
// shifted an event the next page then skipped for good.
func TestFakePagesStable(t *testing.T) {
	f := NewFake("tok")
	f.MaxPage = 3
	srv := httptest.NewServer(f)
	defer srv.Close()
	list := func(query string) (ids []string, next, sync string) {
		req, _ := http.NewRequest(http.MethodGet, srv.URL+"/calendar/v3/calendars/primary/events?alt=json"+query, nil)
		req.Header.Set("Authorization", "Bearer tok")
		resp, err := http.DefaultClient.Do(req)
		require.NoError(t, err)
		defer resp.Body.Close()
		require.Equal(t, http.StatusOK, resp.StatusCode)
		var body struct {
			Items []struct {
				ID string `json:"id"`
			} `json:"items"`
			NextPageToken string `json:"nextPageToken"`
			NextSyncToken string `json:"nextSyncToken"`
		}
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
		for _, it := range body.Items {
			ids = append(ids, it.ID)
		}
		return ids, body.NextPageToken, body.NextSyncToken
	}
	var evs []string
	for _, s := range []string{"a", "b", "c", "d", "e", "f"} {
		evs = append(evs, f.CreateEvent("primary", s).Id)
	}

	t.Run("full list", func(t *testing.T) {
		page, next, _ := list("")
		require.Equal(t, evs[:3], page)
		f.DeleteEvent("primary", evs[0]) // before the next page: shifts nothing
		page, next, sync := list("&pageToken=" + next)
		require.Equal(t, evs[3:], page)
		require.Empty(t, next)
		changed, _, _ := list("&syncToken=" + sync)
		require.Equal(t, evs[:1], changed, "the deletion comes in the next sync")
	})

	t.Run("incremental sync", func(t *testing.T) {
		sync := "sync" + strconv.Itoa(f.feeds.calSeq) // in sync up to here
		var fresh []string
		for _, s := range []string{"g", "h", "i", "j", "k", "l"} {
			fresh = append(fresh, f.CreateEvent("primary", s).Id)
		}
		page, next, _ := list("&syncToken=" + sync)
		require.Equal(t, fresh[:3], page)
		f.UpdateEvent("primary", fresh[1], "h edited")
		page, next, sync = list("&syncToken=" + sync + "&pageToken=" + next)
		require.Equal(t, fresh[3:], page, "the page after an edit starts where the last ended")
		require.Empty(t, next)
		changed, _, _ := list("&syncToken=" + sync)
		require.Equal(t, fresh[1:2], changed, "the edit comes in the next sync")
	})
}
