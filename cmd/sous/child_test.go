package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

// The sous binary the tests that start `sous serve` run, built once per
// test process (go build caches, but linking it again for every test costs
// seconds each).
var (
	sousOnce sync.Once
	sousBin  string
	sousErr  error
	sousOut  []byte
)

// buildSous returns the sous binary built from the module root, shared by
// the test process, in a folder of its own removed when the process ends
// (see TestMain).
func buildSous(t testing.TB) string {
	t.Helper()
	sousOnce.Do(func() {
		gomod, err := exec.Command("go", "env", "GOMOD").Output()
		if err != nil {
			sousErr = err
			return
		}
		root := filepath.Dir(strings.TrimSpace(string(gomod)))
		dir, err := os.MkdirTemp("", "sous-bin-")
		if err != nil {
			sousErr = err
			return
		}
		binDir = dir
		sousBin = filepath.Join(dir, "sous")
		build := exec.Command("go", "build", "-o", sousBin, "./cmd/sous")
		build.Dir = root
		sousOut, sousErr = build.CombinedOutput()
	})
	require.NoError(t, sousErr, "go build: %s", sousOut)
	return sousBin
}

// binDir is the folder of the shared binary, if built.
var binDir string

func TestMain(m *testing.M) {
	code := m.Run()
	if binDir != "" {
		_ = os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// startChild starts bin with args (and env added to the process's), its
// output going to logPath; the test's cleanup kills it.
func startChild(t testing.TB, bin, logPath string, env []string, args ...string) *child {
	t.Helper()
	c := &child{cmd: exec.Command(bin, args...), done: make(chan error, 1), log: logPath}
	if env != nil {
		c.cmd.Env = append(os.Environ(), env...)
	}
	f, err := os.Create(c.log)
	require.NoError(t, err)
	defer f.Close()
	c.cmd.Stdout, c.cmd.Stderr = f, f
	require.NoError(t, c.cmd.Start())
	exited := make(chan struct{})
	go func() { c.done <- c.cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = c.cmd.Process.Kill() // an error once it has exited
		<-exited
	})
	return c
}
