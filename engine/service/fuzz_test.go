package service

import (
	"regexp"
	"testing"

	"github.com/sous-run/sous/recipes"
)

// yamlBreak is what ends a line for the YAML parser, whose line numbers
// the problems carry: a lone CR too (as recipes' fuzz tests count them).
var yamlBreak = regexp.MustCompile("\r\n|\r|\n|\u0085|\u2028|\u2029")

// FuzzParseSettings: the runtime sections of any config that loads are
// read without a panic, and every problem is at a line of the file.
func FuzzParseSettings(f *testing.F) {
	for _, s := range []string{
		"broker: {type: postgres, url: \"postgres://x\", prefix: p}\n",
		"pipeline: {max_in_flight: 8, run_timeout: 1m, commit_delay: 0s, gc_percent: 200, max_retry_after: 6d}\n",
		"retention: {succeeded: 7d, failed: 30d, dedup: 1d, interval: 1h}\nlimits: {max_body: 1024}\n",
		"pipeline:\n  max_in_flight: 8\n  max_in_flight: 9\n  <<: {a: 1}\n",
		"broker: &b {type: nats}\npipeline: *b\nretention: [1, 2]\nlimits: x\n",
		"pipeline: {gc_percent: \"200\", max_retry_after: 10d, commit_delay: -1s}\nbroker: {type: kafka, nope: 1}\n",
		"retention:\n  ? [a]\n  : 1\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, src []byte) {
		// what sous validate checks: the config as far as it reads, errors
		// or not (a section with one left out)
		cfg, _ := recipes.ParseConfigPartial("sous.yaml", src, func(string) (string, bool) { return "", false }, nil)
		if cfg == nil {
			return
		}
		lines := len(yamlBreak.FindAllIndex(src, -1)) + 1
		_, err := ParseSettings(cfg)
		ds := CheckSettings(cfg)
		if (err == nil) != (len(ds) == 0) {
			t.Fatalf("ParseSettings: %v, CheckSettings: %d problems", err, len(ds))
		}
		for _, d := range ds {
			if d.Pos.File != "sous.yaml" || d.Pos.Line < 1 || d.Pos.Line > lines || d.Message == "" {
				t.Fatalf("a problem out of the file: %+v", d)
			}
		}
	})
}
