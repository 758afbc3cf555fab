package service

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/recipes"
)

// The development API key, which examples/sous.yaml (and so `make run`)
// falls back to, is served with a warning on a loopback address and
// refused on one other hosts can reach.
func TestDevAPIKey(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("..", "..", "examples", "sous.yaml"))
	require.NoError(t, err)
	example, diags := recipes.ParseConfig("sous.yaml", src, func(string) (string, bool) { return "", false }, nil)
	require.False(t, diags.HasErrors(), "%v", diags)
	require.Equal(t, []string{DevAPIKey}, example.APIKeys, "without SOUS_API_KEY, the example config serves the development key")
	own := &recipes.Config{File: "sous.yaml", APIKeys: []string{"a-key-of-my-own-0123"}}

	const warning = "the development API key is in use"
	tests := []struct {
		name    string
		cfg     *recipes.Config
		listen  string
		refused bool
		warns   bool
	}{
		{name: "dev key on loopback", cfg: example, listen: "127.0.0.1:0", warns: true},
		{name: "dev key on IPv6 loopback", cfg: example, listen: "[::1]:0", warns: true},
		{name: "dev key on every interface", cfg: example, listen: ":0", refused: true},
		{name: "dev key on 0.0.0.0", cfg: example, listen: "0.0.0.0:0", refused: true},
		{name: "own key on every interface", cfg: own, listen: ":0"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			lb := &logBuffer{}
			svc, err := Open(context.Background(), Options{
				Config: tc.cfg, Listen: tc.listen, DataDir: t.TempDir(), Settings: testSettings(),
				Logger: slog.New(slog.NewTextHandler(lb, nil)),
			})
			if tc.refused {
				require.ErrorContains(t, err, "the development API key ("+DevAPIKey+", from examples/sous.yaml) is refused on")
				require.ErrorContains(t, err, "set SOUS_API_KEY or api_keys to a key of your own")
				return
			}
			if err != nil && tc.listen == "[::1]:0" {
				t.Skipf("no IPv6 loopback here: %v", err)
			}
			require.NoError(t, err)
			require.NoError(t, svc.Run(canceled()))
			require.Equal(t, tc.warns, lb.count(warning) == 1, "log:\n%s", lb.String())
		})
	}
}

// canceled is a context already done: Run returns at once, closing what
// Open opened.
func canceled() context.Context {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	return ctx
}
