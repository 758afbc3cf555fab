package pipeline

import (
	"encoding/json"
	"math"
	"testing"
	"time"

	"github.com/sous-run/sous/engine/runner"
)

// recordOf wraps v the way a run's record holds values: in a step's
// rendered input and output, in an attempt and in the run's vars.
func recordOf(v any, s string) *runner.Result {
	out := map[string]any{"status": int64(200), "headers": map[string]any{"Content-Type": "application/json"}, "body": s, "json": v}
	return &runner.Result{RunID: "run_" + s, Recipe: s, Status: runner.StatusFailed, Vars: map[string]any{"v": v, s: s},
		Steps: []*runner.StepResult{{ID: "a", Action: "http.request", Status: runner.StatusFailed,
			Input: map[string]any{"json": v, "url": s}, Output: out, Error: s, Reason: "server_error",
			Attempts: []runner.Attempt{{Number: 1, Started: time.Unix(1700000000, 5).UTC(), Duration: time.Millisecond, Output: out,
				Error: s, Reason: "server_error", Retryable: true, Delay: time.Second}}}},
		Error:   &runner.RunError{Step: "a", Reason: "server_error", Message: s},
		Started: time.Unix(1700000000, 0).UTC(), Duration: 2 * time.Millisecond}
}

// TestRecordEncodingMatchesStdlib holds encodeRecord to encoding/json's
// bytes on the values a record meets: stored records and the API's
// answers must not change with the encoder.
func TestRecordEncodingMatchesStdlib(t *testing.T) {
	for name, v := range map[string]any{
		"html":        "a<b>&c",
		"separators":  "\u2028\u2029",
		"invalid":     "bad\xff\xfeutf",
		"control":     "\x00\x01\x1f\x7f\t\n\"\\",
		"big":         1e21,
		"small":       1e-7,
		"negzero":     math.Copysign(0, -1),
		"int":         int64(-5),
		"nil":         nil,
		"empty":       []any{},
		"nilslice":    []any(nil),
		"nilmap":      map[string]any(nil),
		"nested":      map[string]any{"b": 1.0, "a": map[string]any{"z": nil, "\xff": 2.0, "<": []any{true, "x"}}},
		"number":      json.Number("12.50"),
		"raw":         json.RawMessage(`{"b":1,"a":2}`),
		"time":        time.Date(2026, 12, 2, 18, 0, 0, 123, time.UTC),
		"stringslice": []string{"a", "<b>"},
	} {
		t.Run(name, func(t *testing.T) { checkRecordEncoding(t, v, "x<y>\u2028") })
	}
}

func checkRecordEncoding(t *testing.T, v any, s string) {
	t.Helper()
	res := recordOf(v, s)
	want, wantErr := json.Marshal(res)
	got, err := encodeRecord(res)
	if (err == nil) != (wantErr == nil) {
		t.Fatalf("error %v, encoding/json's %v", err, wantErr)
	}
	if string(got) != string(want) {
		t.Fatalf("encoded\n%s\nencoding/json\n%s", got, want)
	}
}

// FuzzRecordEncoding decodes any JSON document as a payload would be and
// checks that its record encodes as encoding/json encodes it.
func FuzzRecordEncoding(f *testing.F) {
	for _, s := range []string{`{"a":[1,2.5,"<x>"],"b":null}`, `"\u2028"`, `[{"z":1,"a":{"\u00e9":true}}]`, `1e300`, "\"\xff\""} {
		f.Add([]byte(s), "k")
	}
	f.Fuzz(func(t *testing.T, doc []byte, s string) {
		var v any
		if json.Unmarshal(doc, &v) != nil {
			v = string(doc)
		}
		checkRecordEncoding(t, v, s)
	})
}
