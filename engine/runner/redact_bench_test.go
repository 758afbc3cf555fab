package runner

import (
	"fmt"
	"strings"
	"testing"

	"github.com/sous-run/sous/engine/connector"
)

// BenchmarkRedactRecord redacts what the runner records of an http step
// (its input and output), with two secrets known, none of which is in the
// record (the common case) or one of which is, with one secret, and with a
// large answer.
func BenchmarkRedactRecord(b *testing.B) {
	const envSecret, connSecret = "s3cr3t_api_value_81c2", "conn_secret_value_77ab"
	spec := &connector.Spec{Fields: []connector.Field{{Name: "url"}, {Name: "headers"}, {Name: "json"}}}
	var page string
	record := func(with string) (map[string]any, map[string]any) {
		body := map[string]any{}
		for i := range 16 {
			body[fmt.Sprintf("field_%02d", i)] = fmt.Sprintf("an ordinary value number %d of the answer", i)
		}
		body["echo"] = "hello " + with
		body["page"] = page
		in := map[string]any{
			"url": "https://api.example.com/v1/orders/12345?expand=items", "method": "POST",
			"headers": map[string]any{"Accept": "application/json", "X-Request": "abc-123"},
			"json":    map[string]any{"order": map[string]any{"id": 12345.0, "note": strings.Repeat("note ", 20) + with}},
		}
		out := map[string]any{"status": 200.0, "headers": map[string]any{"Content-Type": "application/json"}, "body": body}
		return in, out
	}
	for _, tc := range []struct {
		name, with string
		more       []string
		page       int // bytes of text in the answer besides
	}{
		{"absent", "world", []string{connSecret}, 0},
		{"present", envSecret, []string{connSecret}, 0},
		{"one secret absent", "world", nil, 0},
		{"absent, 64 KiB page", "world", []string{connSecret}, 64 << 10},
	} {
		b.Run(tc.name, func(b *testing.B) {
			page = strings.Repeat("<p>An ordinary page of text, 0123456789.</p>\n", tc.page/48)
			secrets := map[string]string{"API": envSecret}
			more := tc.more
			in, out := record(tc.with)
			b.ReportAllocs()
			for b.Loop() {
				red := newRedactor(secrets, more)
				_ = red.input(spec, in)
				_ = red.map_(out)
			}
		})
	}
}
