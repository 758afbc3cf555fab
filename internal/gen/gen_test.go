package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

// TestGeneratedFilesAreFresh fails when a connector spec changed and
// `make generate` was not run.
func TestGeneratedFilesAreFresh(t *testing.T) {
	files, err := Files()
	require.NoError(t, err)
	for path, want := range files {
		t.Run(path, func(t *testing.T) {
			got, err := os.ReadFile(filepath.Join("..", "..", path))
			require.NoError(t, err, "run `make generate`")
			require.Equal(t, string(want), string(got), "%s is stale: run `make generate`", path)
		})
	}
}
