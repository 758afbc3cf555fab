package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// A recipe test's event_file stays inside the folder being tested unless
// --allow-outside-event-files is given: a test in a pull request must not
// print the files a CI job can read into its log.
func TestTestEventFileOutside(t *testing.T) {
	const secret = "TOPSECRET-creds-1d9a"
	base := t.TempDir()
	creds := writeFile(t, base, "outside/creds.json", `{"body": {"name": "`+secret+`"}}`)
	dir := filepath.Join(base, "recipes")
	writeFile(t, dir, "greet.yaml", greetRecipe)
	writeFile(t, dir, "fixtures/ok.json", `{"body": {"name": "Ada"}}`)
	require.NoError(t, os.Symlink(creds, filepath.Join(dir, "fixtures", "link.json")))
	require.NoError(t, os.Symlink(filepath.Join(dir, "fixtures", "ok.json"), filepath.Join(dir, "fixtures", "inner.json")))
	// one case per test file: line 3, column 17 is the event_file's value
	testFile := func(t *testing.T, eventFile string) string {
		return writeFile(t, dir, "greet.test.yaml", `recipe: greet
cases:
  - event_file: `+eventFile+`
    name: greets
    expect:
      status: succeeded
`)
	}
	tests := []struct {
		name      string
		eventFile string
		flags     []string
		code      int
		stdout    []string
	}{
		{name: "a relative path out", eventFile: "../outside/creds.json", code: 1,
			stdout: []string{":3:17: error: case \"greets\".event_file:", "is outside " + dir, "--allow-outside-event-files allows it"}},
		{name: "a symlink inside pointing out", eventFile: "fixtures/link.json", code: 1,
			stdout: []string{":3:17: error:", "fixtures/link.json is outside " + dir, "(symlinks resolved)"}},
		{name: "a file inside", eventFile: "fixtures/ok.json", code: 0, stdout: []string{"--- PASS: greet/greets"}},
		{name: "a symlink inside pointing inside", eventFile: "fixtures/inner.json", code: 0, stdout: []string{"--- PASS: greet/greets"}},
		{name: "out, with the flag", eventFile: "../outside/creds.json", flags: []string{"--allow-outside-event-files"}, code: 0,
			stdout: []string{"--- PASS: greet/greets"}},
		{name: "a symlink out, with the flag", eventFile: "fixtures/link.json", flags: []string{"--allow-outside-event-files"}, code: 0,
			stdout: []string{"--- PASS: greet/greets"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := testFile(t, tc.eventFile)
			for _, args := range [][]string{
				append([]string{"test", "-v", dir}, tc.flags...),
				// the folder of a file given by name
				append([]string{"test", "-v", filepath.Join(dir, "greet.yaml"), path}, tc.flags...),
			} {
				r := sous(t, "", args...)
				require.Equal(t, tc.code, r.code, "%s", r)
				for _, s := range tc.stdout {
					require.Contains(t, r.stdout, s, "%s", r)
				}
				if tc.code != 0 {
					require.Contains(t, r.stdout, path+":3:17:", "%s", r)
					require.NotContains(t, r.stdout+r.stderr, secret, "%s", r)
				}
			}
		})
	}
	t.Run("sous validate", func(t *testing.T) {
		testFile(t, "../outside/creds.json")
		r := sous(t, "", "validate", dir)
		require.Equal(t, 1, r.code, "%s", r)
		require.Contains(t, r.stdout, "is outside "+dir, "%s", r)
		r = sous(t, "", "validate", "--allow-outside-event-files", dir)
		require.Equal(t, 0, r.code, "%s", r)
	})
}
