package runner

import (
	"encoding/json"
	"errors"
	"fmt"
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
	for i := range maxScanned + 2 {
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
			map[string]any{"a": "x"}, false,
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
