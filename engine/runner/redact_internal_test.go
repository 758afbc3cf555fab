package runner

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// TestRedactorCopies: a map is copied when something in it changes (a
// secret, a value recorded in another form) and kept as it is otherwise.
func TestRedactorCopies(t *testing.T) {
	const secret = "s3cr3t-value-for-the-test"
	none := newRedactor(nil, nil)
	some := newRedactor(map[string]string{"API": secret}, nil)
	pin := newRedactor(nil, []string{"1234567"})
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprintf("value-%02d", i))
	}
	many := newRedactor(nil, values)
	tests := []struct {
		name string
		red  *redactor
		in   map[string]any
		same bool
		want map[string]any
	}{
		{"plain values, nothing to redact", none,
			map[string]any{"a": "x", "n": 1.5, "l": []any{true, nil, map[string]any{"b": int64(2)}}}, true,
			map[string]any{"a": "x", "n": 1.5, "l": []any{true, nil, map[string]any{"b": int64(2)}}}},
		{"an error, recorded as its text", none,
			map[string]any{"l": []any{errors.New("boom")}}, false,
			map[string]any{"l": []any{"boom"}}},
		{"a map of strings, recorded as a map", none,
			map[string]any{"h": map[string]string{"k": "v"}}, false,
			map[string]any{"h": map[string]any{"k": "v"}}},
		{"a secret deep inside", some,
			map[string]any{"l": []any{map[string]any{"t": "token " + secret}}}, false,
			map[string]any{"l": []any{map[string]any{"t": "token " + Redacted}}}},
		{"secrets known, none inside", some,
			map[string]any{"a": "x", "l": []any{map[string]any{"t": "token"}, json.Number("12")}}, true,
			map[string]any{"a": "x", "l": []any{map[string]any{"t": "token"}, json.Number("12")}}},
		{"a secret as a key", some,
			map[string]any{"m": map[string]any{secret: 1.0}}, false,
			map[string]any{"m": map[string]any{Redacted: 1.0}}},
		{"a secret in a number", pin,
			map[string]any{"n": json.Number("91234567")}, false,
			map[string]any{"n": "9" + Redacted}},
		{"many secrets, one inside", many,
			map[string]any{"a": "x", "t": "a value-07 here"}, false,
			map[string]any{"a": "x", "t": "a " + Redacted + " here"}},
		{"many secrets, none inside", many,
			map[string]any{"a": "x"}, true,
			map[string]any{"a": "x"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := tt.red.map_(tt.in)
			require.Equal(t, tt.want, got)
			require.Equal(t, tt.same, sameMap(got, tt.in))
		})
	}
}

// TestRedactorInputLeavesTheInputAlone: a secret field is redacted in the
// record, never in the rendered input the record is made from.
func TestRedactorInputLeavesTheInputAlone(t *testing.T) {
	spec := &connector.Spec{Fields: []connector.Field{{Name: "token", Secret: true}, {Name: "text"}}}
	in := map[string]any{"token": "abcdefgh", "text": "hello"}
	got := newRedactor(nil, nil).input(spec, in)
	require.Equal(t, map[string]any{"token": Redacted, "text": "hello"}, got)
	require.Equal(t, "abcdefgh", in["token"])
	plainIn := map[string]any{"text": "hello"}
	require.True(t, sameMap(newRedactor(nil, nil).input(spec, plainIn), plainIn), "nothing to redact: no copy")
}

// TestRedactorCacheKeepsSetsApart: two different sets of secrets never
// share a redactor, whatever bytes the values hold.
func TestRedactorCacheKeepsSetsApart(t *testing.T) {
	joined := newRedactor(map[string]string{"X": "abcd\x00efgh"}, nil)
	apart := newRedactor(map[string]string{"A": "abcd", "B": "efgh"}, nil)
	require.NotSame(t, joined, apart)
	require.Equal(t, "token "+Redacted+" and "+Redacted, apart.str("token abcd and efgh"))
}

// TestRedactorSameSources: the redactor made for a map and a list is made
// again for another map or list, equal or not, and for the same map after
// another one was used.
func TestRedactorSameSources(t *testing.T) {
	a := map[string]string{"A": "alpha-secret"}
	b := map[string]string{"A": "bravo-secret"}
	more := []string{"charlie-secret"}
	ra := newRedactor(a, more)
	require.Same(t, ra, newRedactor(a, more))
	rb := newRedactor(b, more)
	require.Equal(t, Redacted, rb.str("bravo-secret"))
	require.Equal(t, "alpha-secret", rb.str("alpha-secret"))
	require.Equal(t, Redacted, newRedactor(a, more).str("alpha-secret"))
	require.Equal(t, "charlie-secret", newRedactor(a, more[:0]).str("charlie-secret"))
	require.Equal(t, "charlie-secret", newRedactor(a, nil).str("charlie-secret"))
	other := []string{"delta-secret"}
	require.Equal(t, Redacted, newRedactor(a, other).str("delta-secret"))
	require.Equal(t, Redacted, newRedactor(nil, nil).input(&connector.Spec{Fields: []connector.Field{{Name: "token", Secret: true}}}, map[string]any{"token": "x"})["token"])
}

// TestRedactorEncodedForms: a secret is redacted in every form a record
// may hold it in: percent-escaped, base64 (alone, and inside a longer text
// at each alignment), hex and JSON-escaped; alone and among many secrets.
func TestRedactorEncodedForms(t *testing.T) {
	b64 := func(enc *base64.Encoding, s string) string { return enc.EncodeToString([]byte(s)) }
	jsonOf := func(s string, html bool) string {
		var buf strings.Builder
		enc := json.NewEncoder(&buf)
		enc.SetEscapeHTML(html)
		require.NoError(t, enc.Encode(s))
		return strings.TrimSuffix(buf.String(), "\n")
	}
	secrets := []string{
		"tok en-42xyz",
		`pä<ss>&"wörd\+/?=🔑x`,
		"abcd",
		"abcde",
		"abcdef",
	}
	for _, secret := range secrets {
		forms := map[string]string{
			"as it is":              secret,
			"query":                 url.QueryEscape(secret),
			"query, %20":            strings.ReplaceAll(url.QueryEscape(secret), "+", "%20"),
			"path segment":          url.PathEscape(secret),
			"path":                  (&url.URL{Path: secret}).EscapedPath(),
			"url":                   (&url.URL{Scheme: "https", Host: "x.test", Path: "/a/" + secret, RawQuery: url.Values{"q": {secret}}.Encode()}).String(),
			"lower-case escapes":    strings.ToLower(url.QueryEscape(secret)),
			"base64":                b64(base64.StdEncoding, secret),
			"base64 raw":            b64(base64.RawStdEncoding, secret),
			"base64 url":            b64(base64.URLEncoding, secret),
			"base64 url raw":        b64(base64.RawURLEncoding, secret),
			"basic auth":            "Basic " + b64(base64.StdEncoding, "user:"+secret),
			"base64, 1 byte before": b64(base64.StdEncoding, "u"+secret+"tail"),
			"base64, 2 bytes after": b64(base64.StdEncoding, "us"+secret+"ta"),
			"base64 url, 3 before":  b64(base64.RawURLEncoding, "use"+secret+"t"),
			"hex":                   hex.EncodeToString([]byte(secret)),
			"hex upper":             strings.ToUpper(hex.EncodeToString([]byte(secret))),
			"json":                  jsonOf(secret, true),
			"json, html as it is":   jsonOf(secret, false),
			"json, ascii only":      strconv.QuoteToASCII(secret), // \u escapes like Python's json for these characters
		}
		for name, form := range forms {
			t.Run(secret+"/"+name, func(t *testing.T) {
				if name == "json, ascii only" && strings.ContainsAny(secret, `<>&"\`) {
					t.Skip("strconv quotes these otherwise than JSON")
				}
				text := "before " + form + " after"
				for _, red := range []*redactor{
					newRedactor(map[string]string{"S": secret}, nil),
					newRedactor(nil, append(manyValues(), secret)),
				} {
					got := red.str(text)
					require.Contains(t, got, Redacted)
					require.NotEqual(t, text, got)
					require.True(t, strings.HasPrefix(got, "before ") && strings.HasSuffix(got, " after"), got)
					require.NotContains(t, got, secret)
					if !strings.Contains(name, "before") && !strings.Contains(name, "basic") {
						require.NotContains(t, got, form)
					}
				}
			})
		}
	}
	// the ASCII-only JSON of a secret with characters JSON escapes otherwise
	red := newRedactor(map[string]string{"S": `p<ä>"\`}, nil)
	require.Equal(t, "x "+Redacted+" y", red.str(`x p<\u00e4>\"\\ y`))
	require.Equal(t, "x "+Redacted+" y", red.str(`x p\u003c\u00e4\u003e\"\\ y`))
	require.Equal(t, "x "+Redacted+" y", red.str(`x p\u003C\u00E4\u003E\"\\ y`), "upper-case hex digits")
	require.Equal(t, "x "+Redacted+" y", newRedactor(map[string]string{"S": "a/b-é-key"}, nil).str(`x a\/b-\u00e9-key y`), "as PHP writes it")
}

// TestRedactorBase64Inside: inside a longer base64 text, at each
// alignment, every character whose six bits all come from the secret is
// redacted; the characters shared with the bytes around it are left.
func TestRedactorBase64Inside(t *testing.T) {
	for _, secret := range []string{"abcd", "abcde", "abcdef", "abcdefg", "tok en-42xyz<&>\"\\é+/=", strings.Repeat("s3cr3t", 7)} {
		red := newRedactor(map[string]string{"S": secret}, nil)
		for before := range 6 {
			for after := 1; after <= 4; after++ {
				for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding} {
					text := enc.EncodeToString([]byte(strings.Repeat("\xff", before) + secret + strings.Repeat("\xfe", after)))
					// character c holds bits 6c to 6c+5 of the bytes
					first := (8*before + 5) / 6           // the first whose bits are all the secret's
					end := 8 * (before + len(secret)) / 6 // and after the last
					want := text[:first] + Redacted + text[end:]
					require.Equal(t, want, red.str(text), "%q, %d bytes before, %d after", secret, before, after)
				}
			}
		}
	}
}

// TestRedactorNoFalseForms: text holding none of a secret's forms is left
// as it is, with few secrets and with many.
func TestRedactorNoFalseForms(t *testing.T) {
	for _, red := range []*redactor{newRedactor(map[string]string{"S": "tok en-42xyz"}, nil), newRedactor(nil, manyValues())} {
		for _, text := range []string{"", "abc", "tok en-42xy", "dG9rIGVuLTQyeHl", "a plain sentence with tok and en-42", strings.Repeat("x", 1000)} {
			require.Equal(t, text, red.str(text))
			require.False(t, red.has(text))
		}
	}
}

// manyValues are many secret values.
func manyValues() []string {
	var values []string
	for i := range 10 {
		values = append(values, fmt.Sprintf("value-%02d", i))
	}
	return values
}

// TestHeadSetFindsEveryOccurrence: the one-pass look-up finds every value
// at every offset of a text, whatever the lengths of the values, and
// nothing where a look for each value one by one finds nothing.
func TestHeadSetFindsEveryOccurrence(t *testing.T) {
	sets := map[string][]string{
		"a short value among long ones": {"abcd", "a-much-longer-secret-value-0123456789", "another/secret+value=="},
		"long values":                   {"s3cr3t_api_value_81c2", "conn_secret_value_77ab"},
	}
	for i := 4; i <= 24; i += 5 {
		sets[fmt.Sprintf("one value of %d bytes", i)] = []string{strings.Repeat("q", i-1) + "z"}
	}
	for name, values := range sets {
		t.Run(name, func(t *testing.T) {
			forms := allForms(values)
			h := newHeadSet(forms)
			for _, f := range forms {
				for before := range 40 {
					for _, after := range []int{0, 1, 3, 17} {
						text := strings.Repeat(".", before) + f + strings.Repeat(",", after)
						require.True(t, h.has(text, forms), "%q in %q", f, text)
						// cut short by one byte at either end, it is not there
						// (unless a shorter form still is)
						for _, cut := range []string{text[:before+len(f)-1], text[before+1:]} {
							require.Equal(t, containsAny(cut, forms), h.has(cut, forms), "%q", cut)
						}
					}
				}
			}
			for _, text := range []string{"", "abc", strings.Repeat("x", 100), "qqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqqy"} {
				require.Equal(t, containsAny(text, forms), h.has(text, forms), "%q", text)
			}
		})
	}
}

func containsAny(s string, values []string) bool {
	for _, v := range values {
		if strings.Contains(s, v) {
			return true
		}
	}
	return false
}

// TestRedactorNumbers: a secret made of digits that a remote echoes as a
// JSON number (decoded as float64) or an action returns as an int is
// redacted like its text; other numbers are kept as they are.
func TestRedactorNumbers(t *testing.T) {
	red := newRedactor(map[string]string{"PIN": "48151623"}, nil)
	out := red.map_(map[string]any{"pin": float64(48151623), "big": float64(9048151623), "n": int64(48151623), "i": 48151623, "keep": 12.5, "id": float64(1234)})
	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.NotContains(t, string(b), "48151623")
	require.Equal(t, 12.5, out["keep"])
	require.Equal(t, float64(1234), out["id"])
	in := map[string]any{"id": float64(1234), "list": []any{1.0, 2.0}}
	require.True(t, sameMap(in, red.map_(in)), "nothing to redact: no copy")

	var logged bytes.Buffer
	log := slog.New(red.handler(slog.NewJSONHandler(&logged, nil)))
	log.Info("echo", "pin", 48151623, "u", uint64(48151623), "f", 48151623.0, "keep", 1234)
	require.NotContains(t, logged.String(), "48151623")
	require.Contains(t, logged.String(), `"keep":1234`)
}

// TestRedactorByteSlices: a value of a named byte-slice type (an SDK's
// json.RawMessage) is redacted as its JSON or its bytes, not recorded as
// a list of byte numbers that spell the secret.
func TestRedactorByteSlices(t *testing.T) {
	type (
		blob []byte
		b8   uint8
	)
	red := newRedactor(map[string]string{"S": "tok en-42xyz"}, nil)
	out := red.value(map[string]any{
		"raw":  json.RawMessage(`{"echo":"tok en-42xyz","n":1}`),
		"blob": blob("x tok en-42xyz y"),
		"b8s":  []b8{116, 111, 107, 32, 101, 110, 45, 52, 50, 120, 121, 122},
	})
	require.Equal(t, map[string]any{
		"raw":  map[string]any{"echo": Redacted, "n": 1.0},
		"blob": "x " + Redacted + " y",
		"b8s":  Redacted,
	}, out)
}

// TestHeadSetLongValues: a long secret (a key file, say) costs the head
// set a bounded number of entries per form, not one per byte, and is
// still found at every offset.
func TestHeadSetLongValues(t *testing.T) {
	long := strings.Repeat("0123456789abcdefghijklmnopqrstuvwxyz-_", 1<<10) // 38 KiB
	forms := allForms([]string{long})
	h := newHeadSet(forms)
	cands := 0
	for _, c := range h.cands {
		cands += len(c)
	}
	require.LessOrEqual(t, cands, len(forms)*maxHeadStep)
	for _, f := range forms {
		for before := range 2*maxHeadStep + 3 {
			text := strings.Repeat(".", before) + f + ","
			require.True(t, h.has(text, forms), "%d bytes before", before)
		}
	}
	for _, text := range []string{long[:len(long)-1], long[1:]} {
		require.False(t, h.has(text, forms))
	}
}
