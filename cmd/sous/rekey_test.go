package main

import (
	"context"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
)

// tokenStore opens the embedded store of a data dir, or a PostgreSQL one.
func tokenStore(t *testing.T, dataDir, dsn string) *store.Store {
	t.Helper()
	ctx := context.Background()
	var st *store.Store
	if dsn != "" {
		db, err := store.OpenPostgres(ctx, dsn)
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		st = &store.Store{DB: db, Dialect: store.Postgres}
	} else {
		write, read, err := store.OpenSQLite(ctx, dataDir)
		require.NoError(t, err)
		t.Cleanup(func() { read.Close(); write.Close() })
		st = &store.Store{DB: read, Write: write, Dialect: store.SQLite}
	}
	require.NoError(t, st.Migrate(ctx))
	return st
}

var rekeyConns = []string{"dropbox", "slack"}

// seedTokens stores a token per connection of rekeyConns under key.
func seedTokens(t *testing.T, st *store.Store, key oauth.Key) {
	t.Helper()
	v, err := oauth.NewVault(st, key)
	require.NoError(t, err)
	for _, c := range rekeyConns {
		require.NoError(t, v.Put(context.Background(), c, &oauth2.Token{AccessToken: "at-" + c, RefreshToken: "rt-" + c}, oauth.Meta{Type: c}))
	}
}

// requireTokens checks that key reads every token and other reads none.
func requireTokens(t *testing.T, st *store.Store, key, other oauth.Key) {
	t.Helper()
	ctx := context.Background()
	v, err := oauth.NewVault(st, key)
	require.NoError(t, err)
	stale, err := oauth.NewVault(st, other)
	require.NoError(t, err)
	for _, c := range rekeyConns {
		tok, _, err := v.Get(ctx, c)
		require.NoError(t, err)
		require.Equal(t, "at-"+c, tok.AccessToken)
		require.Equal(t, "rt-"+c, tok.RefreshToken)
		_, _, err = stale.Get(ctx, c)
		var mismatch *oauth.KeyMismatchError
		require.ErrorAs(t, err, &mismatch)
	}
}

func knownKey(t *testing.T, seed byte) (oauth.Key, string) {
	t.Helper()
	b := make([]byte, oauth.KeySize)
	for i := range b {
		b[i] = seed + byte(i*13)
	}
	text := hex.EncodeToString(b)
	key, err := oauth.ParseKey(text)
	require.NoError(t, err)
	return key, text
}

func requireMode0600(t *testing.T, path string) {
	t.Helper()
	fi, err := os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, os.FileMode(0o600), fi.Mode().Perm(), path)
}

// TestRekeyGenerate: with the key in DATA_DIR/master.key, --generate
// re-encrypts every token under a new key that takes the file's place,
// the old one kept as master.key.old.
func TestRekeyGenerate(t *testing.T) {
	t.Setenv(oauth.EnvMasterKey, "")
	t.Setenv(envNewMasterKey, "")
	dir := t.TempDir()
	oldKey, err := oauth.LoadKey(dir, os.Getenv)
	require.NoError(t, err)
	st := tokenStore(t, dir, "")
	seedTokens(t, st, oldKey)

	r := sous(t, "", "connections", "rekey", "--data", dir, "--generate")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "re-encrypted 2 token(s) under master key ")
	require.Contains(t, r.stdout, "master.key.old")

	newKey, err := oauth.LoadKey(dir, os.Getenv)
	require.NoError(t, err)
	require.False(t, newKey.Equal(oldKey))
	require.Contains(t, r.stdout, newKey.ID())
	kept, err := oauth.ReadKeyFile(filepath.Join(dir, oauth.OldKeyFile))
	require.NoError(t, err)
	require.True(t, kept.Equal(oldKey))
	requireMode0600(t, filepath.Join(dir, oauth.KeyFile))
	requireMode0600(t, filepath.Join(dir, oauth.OldKeyFile))
	_, err = os.Stat(filepath.Join(dir, oauth.NewKeyFile))
	require.ErrorIs(t, err, os.ErrNotExist)
	requireTokens(t, st, newKey, oldKey)
	r = sous(t, "", "audit", "--data", dir)
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "keys.rekeyed")
	require.Contains(t, r.stdout, "2 token(s) from "+oldKey.ID()+" to "+newKey.ID())
}

// TestRekeyFinishesAStoppedChange: tokens re-encrypted under the staged
// master.key.new, which was never moved in place (the command stopped):
// --generate uses that key and finishes.
func TestRekeyFinishesAStoppedChange(t *testing.T) {
	t.Setenv(oauth.EnvMasterKey, "")
	t.Setenv(envNewMasterKey, "")
	dir := t.TempDir()
	oldKey, err := oauth.LoadKey(dir, os.Getenv)
	require.NoError(t, err)
	st := tokenStore(t, dir, "")
	seedTokens(t, st, oldKey)
	next, _ := knownKey(t, 42)
	staged, err := oauth.StageKeyFile(dir, next)
	require.NoError(t, err)
	require.True(t, staged)
	v, err := oauth.NewVault(st, oldKey)
	require.NoError(t, err)
	_, err = v.Rekey(context.Background(), next)
	require.NoError(t, err)

	r := sous(t, "", "connections", "rekey", "--data", dir, "--generate")
	require.Equal(t, 0, r.code, "%s", r)
	require.Contains(t, r.stdout, "re-encrypted 0 token(s) under master key "+next.ID())
	got, err := oauth.LoadKey(dir, os.Getenv)
	require.NoError(t, err)
	require.True(t, got.Equal(next))
	requireTokens(t, st, next, oldKey)
}

// TestRekeyFromTheEnvironment: SOUS_MASTER_KEY to SOUS_NEW_MASTER_KEY on
// the embedded store and on PostgreSQL; no key file is written.
func TestRekeyFromTheEnvironment(t *testing.T) {
	for _, engine := range []string{"sqlite", "postgres"} {
		t.Run(engine, func(t *testing.T) {
			dir := t.TempDir()
			args := []string{"connections", "rekey", "--data", dir}
			dsn := ""
			if engine == "postgres" {
				dsn = storetest.Postgres(t)
				args = append(args, "--config", writeFile(t, dir, "sous.yaml", fmt.Sprintf("broker: {type: postgres, url: %q}\n", dsn)))
			}
			oldKey, oldText := knownKey(t, 1)
			newKey, newText := knownKey(t, 2)
			st := tokenStore(t, dir, dsn)
			seedTokens(t, st, oldKey)
			t.Setenv(oauth.EnvMasterKey, oldText)
			t.Setenv(envNewMasterKey, newText)

			r := sous(t, "", args...)
			require.Equal(t, 0, r.code, "%s", r)
			require.Contains(t, r.stdout, "re-encrypted 2 token(s) under master key "+newKey.ID())
			require.Contains(t, r.stdout, "Set SOUS_MASTER_KEY to the new key")
			for _, text := range []string{oldText, newText} {
				require.NotContains(t, r.stdout+r.stderr, text)
			}
			requireTokens(t, st, newKey, oldKey)
			for _, name := range []string{oauth.KeyFile, oauth.NewKeyFile, oauth.OldKeyFile} {
				_, err := os.Stat(filepath.Join(dir, name))
				require.ErrorIs(t, err, os.ErrNotExist, name)
			}

			// again: the tokens are under the new key already, and the old
			// key is still SOUS_MASTER_KEY: nothing to do
			r = sous(t, "", args...)
			require.Equal(t, 0, r.code, "%s", r)
			require.Contains(t, r.stdout, "re-encrypted 0 token(s)")

			// the wrong current key changes nothing
			other, otherText := knownKey(t, 3)
			t.Setenv(oauth.EnvMasterKey, otherText)
			t.Setenv(envNewMasterKey, oldText)
			r = sous(t, "", args...)
			require.Equal(t, 1, r.code, "%s", r)
			require.Contains(t, r.stderr, "the master key does not match")
			require.Contains(t, r.stderr, "nothing was changed")
			requireTokens(t, st, newKey, other)
		})
	}
}

// TestRekeyNewKeyFile: the new key from a private file, into master.key.
func TestRekeyNewKeyFile(t *testing.T) {
	t.Setenv(oauth.EnvMasterKey, "")
	t.Setenv(envNewMasterKey, "")
	dir := t.TempDir()
	oldKey, err := oauth.LoadKey(dir, os.Getenv)
	require.NoError(t, err)
	st := tokenStore(t, dir, "")
	seedTokens(t, st, oldKey)
	next, text := knownKey(t, 7)
	keyFile := filepath.Join(t.TempDir(), "next.key")
	require.NoError(t, os.WriteFile(keyFile, []byte(text+"\n"), 0o644))

	r := sous(t, "", "connections", "rekey", "--data", dir, "--new-key-file", keyFile)
	require.Equal(t, 1, r.code, "%s", r)
	require.Contains(t, r.stderr, "group or others may read it")
	require.NotContains(t, r.stderr, text)
	requireTokens(t, st, oldKey, next)

	require.NoError(t, os.Chmod(keyFile, 0o600))
	r = sous(t, "", "connections", "rekey", "--data", dir, "--new-key-file", keyFile)
	require.Equal(t, 0, r.code, "%s", r)
	got, err := oauth.LoadKey(dir, os.Getenv)
	require.NoError(t, err)
	require.True(t, got.Equal(next), "the new key took master.key's place")
	requireTokens(t, st, next, oldKey)
}

func TestRekeyRefuses(t *testing.T) {
	_, oldText := knownKey(t, 1)
	tests := []struct {
		name         string
		master, next string
		args         []string
		code         int
		says         string
		noEcho       []string
	}{
		{name: "no new key", code: 2, says: "give the new key in one way"},
		{name: "two new keys", next: oldText, args: []string{"--generate"}, code: 2, says: "give the new key in one way"},
		{name: "--generate under SOUS_MASTER_KEY", master: oldText, args: []string{"--generate"}, code: 2,
			says: "--generate writes DATA_DIR/master.key, which SOUS_MASTER_KEY overrides"},
		{name: "a bad new key", master: oldText, next: "hunter2-is-not-a-key", code: 1,
			says: "SOUS_NEW_MASTER_KEY is not a master key", noEcho: []string{"hunter2"}},
		{name: "a bad current key", master: "hunter3-is-not-a-key", next: oldText, code: 1,
			says: "SOUS_MASTER_KEY is not a master key", noEcho: []string{"hunter3", oldText}},
		{name: "the same key", master: oldText, next: oldText, code: 1, says: "the new master key is the current one"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv(oauth.EnvMasterKey, tc.master)
			t.Setenv(envNewMasterKey, tc.next)
			dir := t.TempDir()
			r := sous(t, "", append([]string{"connections", "rekey", "--data", dir}, tc.args...)...)
			require.Equal(t, tc.code, r.code, "%s", r)
			require.Contains(t, r.stderr, tc.says)
			for _, s := range tc.noEcho {
				require.NotContains(t, r.stdout+r.stderr, s)
			}
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			for _, e := range entries {
				require.NotContains(t, e.Name(), "master.key", "no key file written")
			}
		})
	}
}
