package webhook

import (
	"encoding/json"
	"reflect"
	"testing"

	"github.com/sous-run/sous/internal/httpx"
)

// FuzzDecodedPayload: when intake says its parsed event is exact, it is
// what the stored payload decodes to, so that a run started from the
// handed-over value (the matcher of this process) and one started from the
// store (another process, or after a restart) see the same event.
func FuzzDecodedPayload(f *testing.F) {
	for _, s := range []struct{ ct, body string }{
		{"application/json", `{"order":{"id":"A-1","total":120,"lines":[{"sku":"x","qty":2.5}],"paid":true,"note":null}}`},
		{"application/json", `{"order":{"id":12345678901234567890}}`},
		{"application/json", `{"a":[1,2.5,-0,1e3,"é","\u00e9\ud83d\ude00"],"b":{"":{}}}`},
		{"", `[]`},
		{"", `"text"`},
		{"", ``},
		{"application/json", `9007199254740993`},
		{"application/json", `-1e400`},
		{"application/x-www-form-urlencoded", "a=1&b=%20x&c&a=2"},
		{"application/vnd.api+json", `{"data":{"id":"1"}}`},
	} {
		f.Add(s.ct, []byte(s.body), "k", "v")
	}
	f.Fuzz(func(t *testing.T, contentType string, raw []byte, hk, hv string) {
		body, exact, err := parseBody(contentType, raw)
		if err != nil {
			return
		}
		headers, query := map[string]any{hk: hv}, map[string]any{"q": hv}
		exact = roundTrips(exact, headers, query)
		payload := eventPayload(body, headers, query, "POST", "/p")
		stored, err := storedPayload(raw, body != nil && httpx.IsJSON(contentType), body, headers, query, "POST", "/p")
		if err != nil {
			return
		}
		var decoded map[string]any
		if err := json.Unmarshal(stored, &decoded); err != nil {
			t.Fatalf("stored payload %q does not decode: %v", stored, err)
		}
		if exact && !reflect.DeepEqual(payload, decoded) {
			t.Fatalf("exact, but the parsed event\n%#v\ndiffers from the stored one decoded\n%#v", payload, decoded)
		}
		if !exact && reflect.DeepEqual(payload, decoded) {
			t.Fatalf("not exact, but the parsed event is the stored one decoded: %#v", payload)
		}
	})
}
