package oauth_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/engine/store/storetest"
)

// Distinctive secrets: the tests look for them where they must not be.
const (
	accessSecret  = "xoxb-ACCESS-7f3a9c1e5b2d4f60-secret"
	refreshSecret = "xoxe-1-REFRESH-0a8b6c4d2e9f1735-secret"
)

func secretToken() *oauth2.Token {
	return &oauth2.Token{AccessToken: accessSecret, TokenType: "Bearer", RefreshToken: refreshSecret,
		Expiry: time.Date(2031, 5, 6, 7, 8, 9, 0, time.UTC)}
}

// backend is a store of one engine, migrated, and its data dir (SQLite).
type backend struct {
	st  *store.Store
	dir string
}

// backends runs test on a fresh SQLite store and a fresh PostgreSQL one.
func backends(t *testing.T, test func(t *testing.T, b backend)) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		dir := t.TempDir()
		write, read, err := store.OpenSQLite(ctx, dir)
		require.NoError(t, err)
		t.Cleanup(func() { read.Close(); write.Close() })
		st := &store.Store{DB: read, Write: write, Dialect: store.SQLite}
		require.NoError(t, st.Migrate(ctx))
		test(t, backend{st: st, dir: dir})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		ctx := context.Background()
		db, err := store.OpenPostgres(ctx, storetest.Postgres(t))
		require.NoError(t, err)
		t.Cleanup(func() { db.Close() })
		st := &store.Store{DB: db, Dialect: store.Postgres, Prefix: "t_"}
		require.NoError(t, st.Migrate(ctx))
		require.NoError(t, st.Migrate(ctx), "migrating again changes nothing")
		test(t, backend{st: st})
	})
}

func newVault(t *testing.T, st *store.Store, key oauth.Key) *oauth.Vault {
	t.Helper()
	v, err := oauth.NewVault(st, key)
	require.NoError(t, err)
	return v
}

func genKey(t *testing.T) oauth.Key {
	t.Helper()
	k, err := oauth.GenerateKey()
	require.NoError(t, err)
	return k
}

// noSecret fails when err's message holds a secret of the test token.
func noSecret(t *testing.T, err error) {
	t.Helper()
	if err == nil {
		return
	}
	for _, s := range []string{accessSecret, refreshSecret} {
		for _, form := range encodings([]byte(s)) {
			require.NotContains(t, err.Error(), form)
		}
	}
}

// exec runs a statement on the store's write handle (tests that tamper
// with rows).
func exec(t *testing.T, st *store.Store, query string, args ...any) {
	t.Helper()
	db := st.Write
	if db == nil {
		db = st.DB
	}
	_, err := db.ExecContext(context.Background(), strings.ReplaceAll(query, "{tokens}", st.Prefix+"tokens"), args...)
	require.NoError(t, err)
}

func TestVaultRoundTrip(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		now := time.Date(2030, 1, 2, 3, 4, 5, 6_000_000, time.UTC)
		v := newVault(t, b.st, genKey(t))
		v.Now = func() time.Time { return now }

		_, _, err := v.Get(ctx, "slack")
		require.ErrorIs(t, err, oauth.ErrNoToken)
		require.ErrorContains(t, err, "slack")

		refreshed := now.Add(-time.Hour)
		meta := oauth.Meta{Type: "slack", Account: "Acme (T0123)", Scopes: []string{"chat:write", "channels:read"},
			Extra: map[string]string{"team_id": "T0123"}, RefreshedAt: refreshed}
		require.NoError(t, v.Put(ctx, "slack", secretToken(), meta))
		tok, got, err := v.Get(ctx, "slack")
		require.NoError(t, err)
		require.Equal(t, accessSecret, tok.AccessToken)
		require.Equal(t, refreshSecret, tok.RefreshToken)
		require.Equal(t, "Bearer", tok.TokenType)
		require.True(t, tok.Expiry.Equal(secretToken().Expiry))
		require.Equal(t, oauth.Meta{Connection: "slack", Type: "slack", Account: "Acme (T0123)", Scopes: meta.Scopes,
			Extra: meta.Extra, Expiry: secretToken().Expiry, RefreshedAt: refreshed, State: oauth.StateOK,
			UpdatedAt: now.Truncate(time.Millisecond), KeyID: v.KeyID()}, got)

		// a second connection, and a replacement of the first
		require.NoError(t, v.Put(ctx, "google", &oauth2.Token{RefreshToken: "1//g-refresh"}, oauth.Meta{Type: "google", Account: "ops@example.com"}))
		rotated := secretToken()
		rotated.AccessToken, rotated.RefreshToken = "xoxb-rotated", "xoxe-rotated"
		require.NoError(t, v.Put(ctx, "slack", rotated, meta))
		tok, _, err = v.Get(ctx, "slack")
		require.NoError(t, err)
		require.Equal(t, "xoxb-rotated", tok.AccessToken)
		require.Equal(t, "xoxe-rotated", tok.RefreshToken)

		list, err := v.List(ctx)
		require.NoError(t, err)
		require.Len(t, list, 2)
		require.Equal(t, "google", list[0].Connection)
		require.Equal(t, "ops@example.com", list[0].Account)
		require.True(t, list[0].Expiry.IsZero())
		require.Equal(t, "slack", list[1].Connection)

		// state and last error, with the token scrubbed from it
		require.NoError(t, v.SetState(ctx, "slack", oauth.StateNeedsReauth, "refresh: invalid_grant for xoxe-rotated"))
		_, got, err = v.Get(ctx, "slack")
		require.NoError(t, err)
		require.Equal(t, oauth.StateNeedsReauth, got.State)
		require.Equal(t, "refresh: invalid_grant for [redacted]", got.LastError)
		require.ErrorIs(t, v.SetState(ctx, "nope", oauth.StateOK, ""), oauth.ErrNoToken)

		require.NoError(t, v.Delete(ctx, "slack"))
		_, _, err = v.Get(ctx, "slack")
		require.ErrorIs(t, err, oauth.ErrNoToken)
		require.ErrorIs(t, v.Delete(ctx, "slack"), oauth.ErrNoToken)
		require.NoError(t, v.Check(ctx))
	})
}

func TestVaultPutRefuses(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		v := newVault(t, b.st, genKey(t))
		for _, tc := range []struct {
			name, conn string
			tok        *oauth2.Token
			says       string
		}{
			{"no connection", "", secretToken(), "no connection name"},
			{"no token", "c", nil, "neither an access token nor a refresh token"},
			{"an empty token", "c", &oauth2.Token{TokenType: "Bearer"}, "neither an access token nor a refresh token"},
		} {
			t.Run(tc.name, func(t *testing.T) {
				require.ErrorContains(t, v.Put(ctx, tc.conn, tc.tok, oauth.Meta{}), tc.says)
			})
		}
	})
}

// TestVaultRefusesWhatItDidNotSeal: a token read under another key, a
// sealed token moved to another connection's row (the name is the
// associated data), and a changed byte all fail, clearly, without the
// token in the error.
func TestVaultRefusesWhatItDidNotSeal(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		key := genKey(t)
		v := newVault(t, b.st, key)
		require.NoError(t, v.Put(ctx, "slack", secretToken(), oauth.Meta{Type: "slack"}))
		require.NoError(t, v.Put(ctx, "other", &oauth2.Token{AccessToken: "other-access"}, oauth.Meta{Type: "slack"}))

		t.Run("another master key", func(t *testing.T) {
			other := newVault(t, b.st, genKey(t))
			_, _, err := other.Get(ctx, "slack")
			var mismatch *oauth.KeyMismatchError
			require.ErrorAs(t, err, &mismatch)
			require.Equal(t, key.ID(), mismatch.Stored)
			require.ErrorContains(t, err, "the master key does not match the one the token of connection slack was stored with")
			require.ErrorContains(t, err, "set SOUS_MASTER_KEY")
			noSecret(t, err)
			err = other.Check(ctx)
			require.ErrorAs(t, err, &mismatch)
			require.ErrorContains(t, err, "2 stored token(s)")
		})
		tamper := []struct {
			name string
			do   func(t *testing.T)
		}{
			{"moved to another connection", func(t *testing.T) {
				exec(t, b.st, `UPDATE {tokens} SET sealed = (SELECT sealed FROM {tokens} WHERE connection = 'slack') WHERE connection = 'other'`)
			}},
			{"a bit flipped in the ciphertext", func(t *testing.T) {
				r, err := b.st.GetToken(ctx, nil, "other")
				require.NoError(t, err)
				r.Sealed[len(r.Sealed)-20] ^= 1
				exec(t, b.st, `UPDATE {tokens} SET sealed = $1 WHERE connection = 'other'`, r.Sealed)
			}},
			{"a bit flipped in the nonce", func(t *testing.T) {
				r, err := b.st.GetToken(ctx, nil, "other")
				require.NoError(t, err)
				r.Sealed[3] ^= 0x80
				exec(t, b.st, `UPDATE {tokens} SET sealed = $1 WHERE connection = 'other'`, r.Sealed)
			}},
			{"cut short", func(t *testing.T) {
				exec(t, b.st, `UPDATE {tokens} SET sealed = $1 WHERE connection = 'other'`, []byte{1, 2, 3})
			}},
			{"an unknown format", func(t *testing.T) {
				r, err := b.st.GetToken(ctx, nil, "other")
				require.NoError(t, err)
				r.Sealed[0] = 9
				exec(t, b.st, `UPDATE {tokens} SET sealed = $1 WHERE connection = 'other'`, r.Sealed)
			}},
		}
		for _, tc := range tamper {
			t.Run(tc.name, func(t *testing.T) {
				require.NoError(t, v.Put(ctx, "other", &oauth2.Token{AccessToken: "other-access"}, oauth.Meta{Type: "slack"}))
				tc.do(t)
				tok, _, err := v.Get(ctx, "other")
				require.Nil(t, tok)
				require.ErrorIs(t, err, oauth.ErrUnreadable)
				require.ErrorContains(t, err, "connection other")
				noSecret(t, err)
				// the row it came from still opens
				tok, _, err = v.Get(ctx, "slack")
				require.NoError(t, err)
				require.Equal(t, accessSecret, tok.AccessToken)
			})
		}
	})
}

func TestVaultRekey(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		oldKey, newKey := genKey(t), genKey(t)
		v := newVault(t, b.st, oldKey)
		conns := []string{"dropbox", "google", "slack"}
		for _, c := range conns {
			tok := secretToken()
			tok.AccessToken += "-" + c
			require.NoError(t, v.Put(ctx, c, tok, oauth.Meta{Type: c, Account: c + "-account"}))
		}
		before, err := v.List(ctx)
		require.NoError(t, err)

		_, err = v.Rekey(ctx, oldKey)
		require.ErrorContains(t, err, "the new master key is the current one")

		stale := newVault(t, b.st, oldKey) // a process still on the old key
		n, err := v.Rekey(ctx, newKey)
		require.NoError(t, err)
		require.Equal(t, 3, n)
		require.Equal(t, newKey.ID(), v.KeyID())
		require.NoError(t, v.Check(ctx))

		fresh := newVault(t, b.st, newKey)
		for _, c := range conns {
			for _, reader := range []*oauth.Vault{v, fresh} {
				tok, meta, err := reader.Get(ctx, c)
				require.NoError(t, err)
				require.Equal(t, accessSecret+"-"+c, tok.AccessToken)
				require.Equal(t, refreshSecret, tok.RefreshToken)
				require.Equal(t, c+"-account", meta.Account, "the metadata is kept")
				require.Equal(t, newKey.ID(), meta.KeyID)
			}
			_, _, err := stale.Get(ctx, c)
			var mismatch *oauth.KeyMismatchError
			require.ErrorAs(t, err, &mismatch, "the old key reads none")
		}
		after, err := v.List(ctx)
		require.NoError(t, err)
		for i := range after {
			after[i].KeyID = before[i].KeyID
		}
		require.Equal(t, before, after, "only the key changed")

		// running it again (from a process on the old key) re-encrypts nothing
		n, err = stale.Rekey(ctx, newKey)
		require.NoError(t, err)
		require.Equal(t, 0, n)

		// a token under a third key fails it all, and nothing changes
		third := genKey(t)
		require.NoError(t, newVault(t, b.st, third).Put(ctx, "zoom", secretToken(), oauth.Meta{Type: "zoom"}))
		_, err = fresh.Rekey(ctx, genKey(t))
		var mismatch *oauth.KeyMismatchError
		require.ErrorAs(t, err, &mismatch)
		require.Equal(t, "zoom", mismatch.Connection)
		require.ErrorContains(t, err, "nothing was changed")
		noSecret(t, err)
		require.Equal(t, newKey.ID(), fresh.KeyID(), "the vault keeps its key")
		ids, err := b.st.TokenKeyIDs(ctx)
		require.NoError(t, err)
		require.Equal(t, map[string]int{newKey.ID(): 3, third.ID(): 1}, ids)
	})
}

// TestTokenNotInClear: once tokens are stored, neither secret is found, in
// clear, base64 or hex, in any file of the SQLite data dir (the database,
// its WAL and shared memory) nor in any column of the PostgreSQL table.
// The account, stored in clear, is found: the search sees the data.
func TestTokenNotInClear(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		const account = "account-marker-4d1c9e" // in clear, on purpose
		v := newVault(t, b.st, genKey(t))
		require.NoError(t, v.Put(ctx, "slack", secretToken(), oauth.Meta{Type: "slack", Account: account,
			LastError: "an error that quotes " + accessSecret}))
		// rotated and back: the old versions of the row leave pages behind
		rotated := secretToken()
		rotated.AccessToken += "-2"
		require.NoError(t, v.Put(ctx, "slack", rotated, oauth.Meta{Type: "slack", Account: account}))
		require.NoError(t, v.Put(ctx, "slack", secretToken(), oauth.Meta{Type: "slack", Account: account}))
		_, err := v.Rekey(ctx, genKey(t))
		require.NoError(t, err)

		var haystacks []string
		if b.st.Dialect == store.SQLite {
			entries, err := os.ReadDir(b.dir)
			require.NoError(t, err)
			var names []string
			for _, e := range entries {
				data, err := os.ReadFile(filepath.Join(b.dir, e.Name()))
				require.NoError(t, err)
				haystacks = append(haystacks, string(data))
				names = append(names, e.Name())
			}
			require.Contains(t, names, "sous.db")
			require.Contains(t, names, "sous.db-wal", "the WAL is searched too")
		} else {
			rows, err := b.st.DB.QueryContext(ctx, `SELECT t::text FROM `+b.st.Prefix+`tokens t`)
			require.NoError(t, err)
			defer rows.Close()
			for rows.Next() {
				var row string
				require.NoError(t, rows.Scan(&row))
				haystacks = append(haystacks, row)
			}
			require.NoError(t, rows.Err())
			require.Len(t, haystacks, 1)
		}
		all := strings.Join(haystacks, "\n")
		require.True(t, strings.Contains(all, account), "the search sees what is stored in clear")
		for _, secret := range []string{accessSecret, refreshSecret, "ACCESS-7f3a9c1e5b2d4f60", "REFRESH-0a8b6c4d2e9f1735"} {
			for _, form := range encodings([]byte(secret)) {
				if strings.Contains(all, form) { // not require.NotContains: it would print the haystack
					t.Fatalf("a form of a stored token (%d bytes) is in the store in clear", len(form))
				}
			}
		}
	})
}

// TestVaultErrorsHoldNoToken: every error of the vault on a stored token
// (wrong key, tampered, missing) is free of it.
func TestVaultErrorsHoldNoToken(t *testing.T) {
	backends(t, func(t *testing.T, b backend) {
		ctx := context.Background()
		v := newVault(t, b.st, genKey(t))
		require.NoError(t, v.Put(ctx, "slack", secretToken(), oauth.Meta{Type: "slack"}))
		var errs []error
		_, _, err := newVault(t, b.st, genKey(t)).Get(ctx, "slack")
		errs = append(errs, err)
		exec(t, b.st, `UPDATE {tokens} SET key_id = 'ffffffffffffffff' WHERE connection = 'slack'`)
		_, _, err = v.Get(ctx, "slack")
		errs = append(errs, err)
		_, err = v.Rekey(ctx, genKey(t))
		errs = append(errs, err)
		exec(t, b.st, `UPDATE {tokens} SET key_id = $1, sealed = $2 WHERE connection = 'slack'`, v.KeyID(), []byte(accessSecret+refreshSecret))
		_, _, err = v.Get(ctx, "slack")
		errs = append(errs, err)
		for _, err := range errs {
			require.Error(t, err)
			noSecret(t, err)
		}
		require.True(t, errors.Is(errs[3], oauth.ErrUnreadable))
	})
}
