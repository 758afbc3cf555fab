package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/store"
)

// openAt opens (creating) the embedded store in dir and migrates it.
func openAt(t *testing.T, dir string) (*store.Store, func()) {
	t.Helper()
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, dir)
	require.NoError(t, err)
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(t, st.Migrate(ctx))
	closed := false
	closeFn := func() {
		if !closed {
			closed = true
			read.Close()
			write.Close()
		}
	}
	t.Cleanup(closeFn)
	return st, closeFn
}

// accept stores n events as intake does, each with its dedup key.
func accept(t *testing.T, st *store.Store, n int) {
	t.Helper()
	ctx := context.Background()
	for i := 0; i < n; i++ {
		tx, err := st.Write.BeginTx(ctx, nil)
		require.NoError(t, err)
		id := fmt.Sprintf("ev_%06d", i)
		fresh, err := st.ClaimDedup(ctx, tx, "hook:/p:"+id, id, time.Now())
		require.NoError(t, err)
		require.True(t, fresh)
		require.NoError(t, st.InsertEvent(ctx, tx, &store.Event{ID: id, Type: "webhook.received", Source: "/p", DedupKey: "hook:/p:" + id,
			ReceivedAt: time.Now(), Payload: []byte(fmt.Sprintf(`{"body":{"n":%d,"pad":"%0200d"}}`, i, i))}))
		require.NoError(t, tx.Commit())
	}
}

// TestProbeWrite: the probe commits nothing that stays, and fails when the
// store cannot take an intake's write: a full disk, a corrupt page.
func TestProbeWrite(t *testing.T) {
	ctx := context.Background()
	t.Run("leaves nothing", func(t *testing.T) {
		st, _ := openAt(t, t.TempDir())
		accept(t, st, 3)
		require.NoError(t, st.ProbeWrite(ctx))
		require.NoError(t, st.ProbeWrite(ctx))
		for _, table := range []string{"events", "dedup"} {
			var n int
			require.NoError(t, st.DB.QueryRowContext(ctx, "SELECT count(*) FROM "+table).Scan(&n))
			require.Equal(t, 3, n, table)
		}
	})
	t.Run("a full disk", func(t *testing.T) {
		dir := t.TempDir()
		if err := syscall.Mount("tmpfs", dir, "tmpfs", 0, "size=4194304"); err != nil {
			t.Skipf("cannot mount a tmpfs here (needs root): %v", err)
		}
		t.Cleanup(func() { _ = syscall.Unmount(dir, 0) })
		st, _ := openAt(t, dir)
		accept(t, st, 50)
		require.NoError(t, st.ProbeWrite(ctx))
		filler := filepath.Join(dir, "filler")
		f, err := os.Create(filler)
		require.NoError(t, err)
		for chunk := make([]byte, 64<<10); ; {
			if _, err := f.Write(chunk); err != nil {
				require.True(t, errors.Is(err, syscall.ENOSPC), "%v", err)
				if len(chunk) == 1 {
					break
				}
				chunk = chunk[:len(chunk)/2]
			}
		}
		require.NoError(t, f.Close())
		require.NoError(t, st.DB.PingContext(ctx), "the store still answers")
		err = st.ProbeWrite(ctx)
		require.Error(t, err)
		t.Logf("probe on a full disk: %v", err)
		require.NoError(t, os.Remove(filler))
		require.NoError(t, st.ProbeWrite(ctx))
	})
	t.Run("a corrupt page", func(t *testing.T) {
		dir := t.TempDir()
		st, closeFn := openAt(t, dir)
		accept(t, st, 200)
		closeFn() // the WAL goes into sous.db
		path := filepath.Join(dir, "sous.db")
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		require.NoError(t, err)
		info, err := f.Stat()
		require.NoError(t, err)
		// garbage over every page but the first (the header and the schema)
		const page = 4096
		garbage := make([]byte, page)
		for i := range garbage {
			garbage[i] = byte(i*7 + 3)
		}
		for off := int64(page); off < info.Size(); off += page {
			_, err := f.WriteAt(garbage, off)
			require.NoError(t, err)
		}
		require.NoError(t, f.Close())
		st, _ = openAt(t, dir)
		require.NoError(t, st.DB.PingContext(ctx), "the store still answers")
		err = st.ProbeWrite(ctx)
		require.Error(t, err)
		t.Logf("probe on a corrupt page: %v", err)
	})
}

// BenchmarkProbeWrite is what one /readyz probe costs on the embedded
// store (a commit with synchronous(FULL)).
func BenchmarkProbeWrite(b *testing.B) {
	ctx := context.Background()
	write, read, err := store.OpenSQLite(ctx, b.TempDir())
	require.NoError(b, err)
	defer func() { read.Close(); write.Close() }()
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	require.NoError(b, st.Migrate(ctx))
	b.ReportAllocs()
	for b.Loop() {
		if err := st.ProbeWrite(ctx); err != nil {
			b.Fatal(err)
		}
	}
}
