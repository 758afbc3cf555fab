package oauth_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/oauth"
)

// keyBytes are the bytes of the key the parsing tests write in every form.
var keyBytes = func() []byte {
	b := make([]byte, oauth.KeySize)
	for i := range b {
		b[i] = byte(i*7 + 3)
	}
	return b
}()

func TestParseKey(t *testing.T) {
	want, err := oauth.ParseKey(hex.EncodeToString(keyBytes))
	require.NoError(t, err)
	good := []struct{ name, text string }{
		{"hex", hex.EncodeToString(keyBytes)},
		{"upper hex", strings.ToUpper(hex.EncodeToString(keyBytes))},
		{"base64", base64.StdEncoding.EncodeToString(keyBytes)},
		{"base64 unpadded", base64.RawStdEncoding.EncodeToString(keyBytes)},
		{"base64url", base64.URLEncoding.EncodeToString(keyBytes)},
		{"base64url unpadded", base64.RawURLEncoding.EncodeToString(keyBytes)},
		{"a file's trailing newline", base64.StdEncoding.EncodeToString(keyBytes) + "\n"},
		{"spaces around", "  " + hex.EncodeToString(keyBytes) + "\t\n"},
	}
	for _, tc := range good {
		t.Run(tc.name, func(t *testing.T) {
			k, err := oauth.ParseKey(tc.text)
			require.NoError(t, err)
			require.True(t, k.Equal(want))
			require.Equal(t, want.ID(), k.ID())
		})
	}
	bad := []struct{ name, text, says string }{
		{"empty", "", "empty"},
		{"blank", " \n", "empty"},
		{"16 bytes of base64", base64.StdEncoding.EncodeToString(keyBytes[:16]), "decodes to 16 bytes"},
		{"33 bytes of base64", base64.StdEncoding.EncodeToString(append(keyBytes, 1)), "decodes to 33 bytes"},
		{"63 hex digits", hex.EncodeToString(keyBytes)[:63], "it is 63 hex digits, and a master key is 64"},
		{"16 bytes of hex", hex.EncodeToString(keyBytes[:16]), "it is 32 hex digits"},
		{"64 characters, not hex", "zz" + hex.EncodeToString(keyBytes)[2:], "decodes to 48 bytes"},
		{"a passphrase", "correct horse battery staple!", "neither base64 nor 64 hex digits"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, err := oauth.ParseKey(tc.text)
			require.Error(t, err)
			require.Contains(t, err.Error(), tc.says)
			require.Contains(t, err.Error(), "openssl rand -", "says how to make a key")
			if s := strings.TrimSpace(tc.text); s != "" {
				require.NotContains(t, err.Error(), s, "the error does not echo the text")
				require.NotContains(t, err.Error(), s[:len(s)/2], "nor a part of it")
			}
		})
	}
	t.Run("from SOUS_MASTER_KEY", func(t *testing.T) {
		secret := "not-a-key-" + hex.EncodeToString(keyBytes[:8])
		_, _, err := oauth.FindKey(t.TempDir(), env(secret))
		require.ErrorContains(t, err, "SOUS_MASTER_KEY is not a master key")
		require.NotContains(t, err.Error(), secret)
	})
}

// env is a getenv that sets SOUS_MASTER_KEY alone (to nothing when "").
func env(masterKey string) func(string) string {
	return func(name string) string {
		if name == oauth.EnvMasterKey {
			return masterKey
		}
		return ""
	}
}

// TestKeyNeverPrints: fmt, slog and JSON show the key's id, never its
// bytes in any encoding.
func TestKeyNeverPrints(t *testing.T) {
	k, err := oauth.ParseKey(hex.EncodeToString(keyBytes))
	require.NoError(t, err)
	var logged bytes.Buffer
	slog.New(slog.NewJSONHandler(&logged, nil)).Info("loaded", "key", k)
	js, err := json.Marshal(struct{ K oauth.Key }{k})
	require.NoError(t, err)
	outputs := []string{fmt.Sprint(k), fmt.Sprintf("%v %+v %#v %s %q %x %X %d", k, k, k, k, k, k, k, k),
		fmt.Sprintf("%v", []oauth.Key{k}), fmt.Sprintf("%+v", struct{ K oauth.Key }{k}), logged.String(), string(js)}
	// fmt prints an unexported field without its methods: an address then
	hidden := fmt.Sprintf("%+v %#v", struct{ k oauth.Key }{k}, struct{ k oauth.Key }{k})
	for _, out := range outputs {
		require.Contains(t, out, k.ID())
		for _, form := range encodings(keyBytes) {
			require.NotContains(t, out, form)
		}
		require.NotContains(t, out, fmt.Sprint(keyBytes[:8]), "nor as a list of numbers")
	}
	for _, form := range encodings(keyBytes) {
		require.NotContains(t, hidden, form)
	}
	require.NotContains(t, hidden, fmt.Sprint(keyBytes[:8]))
	require.NotContains(t, hidden, fmt.Sprintf("%#v", keyBytes[:8]))
}

// encodings are the forms a secret could be found in: as it is, base64
// and hex.
func encodings(secret []byte) []string {
	return []string{string(secret), base64.StdEncoding.EncodeToString(secret), base64.RawStdEncoding.EncodeToString(secret),
		base64.URLEncoding.EncodeToString(secret), base64.RawURLEncoding.EncodeToString(secret),
		hex.EncodeToString(secret), strings.ToUpper(hex.EncodeToString(secret))}
}

func TestLoadKey(t *testing.T) {
	t.Run("SOUS_MASTER_KEY wins and writes no file", func(t *testing.T) {
		dir := t.TempDir()
		k, err := oauth.LoadKey(dir, env(base64.StdEncoding.EncodeToString(keyBytes)))
		require.NoError(t, err)
		want, _ := oauth.ParseKey(hex.EncodeToString(keyBytes))
		require.True(t, k.Equal(want))
		_, err = os.Stat(filepath.Join(dir, oauth.KeyFile))
		require.ErrorIs(t, err, fs.ErrNotExist)
		_, src, err := oauth.FindKey(dir, env(hex.EncodeToString(keyBytes)))
		require.NoError(t, err)
		require.Equal(t, oauth.EnvMasterKey, src)
	})
	t.Run("first use creates master.key with mode 0600, then reads it", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "data") // created too
		_, _, err := oauth.FindKey(dir, env(""))
		require.ErrorIs(t, err, oauth.ErrNoKey)
		k, err := oauth.LoadKey(dir, env(""))
		require.NoError(t, err)
		path := filepath.Join(dir, oauth.KeyFile)
		fi, err := os.Stat(path)
		require.NoError(t, err)
		if runtime.GOOS != "windows" {
			require.Equal(t, os.FileMode(0o600), fi.Mode().Perm())
		}
		again, src, err := oauth.FindKey(dir, env(""))
		require.NoError(t, err)
		require.True(t, again.Equal(k))
		require.Equal(t, path, src)
		entries, err := os.ReadDir(dir)
		require.NoError(t, err)
		require.Len(t, entries, 1, "no temporary file is left")
	})
	t.Run("processes starting together share one key", func(t *testing.T) {
		dir := t.TempDir()
		keys := make([]oauth.Key, 8)
		var wg sync.WaitGroup
		for i := range keys {
			wg.Go(func() {
				k, err := oauth.LoadKey(dir, env(""))
				if err == nil {
					keys[i] = k
				}
			})
		}
		wg.Wait()
		for _, k := range keys {
			require.False(t, k.IsZero())
			require.True(t, k.Equal(keys[0]))
		}
	})
	t.Run("a key file is never replaced", func(t *testing.T) {
		dir := t.TempDir()
		k, err := oauth.LoadKey(dir, env(""))
		require.NoError(t, err)
		other, err := oauth.GenerateKey()
		require.NoError(t, err)
		err = oauth.WriteKeyFile(filepath.Join(dir, oauth.KeyFile), other)
		require.ErrorIs(t, err, fs.ErrExist)
		again, err := oauth.LoadKey(dir, env(""))
		require.NoError(t, err)
		require.True(t, again.Equal(k))
	})
	t.Run("a key file others may read is refused", func(t *testing.T) {
		if runtime.GOOS == "windows" {
			t.Skip("no Unix permissions")
		}
		for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o660} {
			dir := t.TempDir()
			path := filepath.Join(dir, oauth.KeyFile)
			text := base64.StdEncoding.EncodeToString(keyBytes)
			require.NoError(t, os.WriteFile(path, []byte(text+"\n"), 0o600))
			require.NoError(t, os.Chmod(path, mode))
			_, err := oauth.LoadKey(dir, env(""))
			require.ErrorContains(t, err, fmt.Sprintf("has mode %04o: group or others may read it", mode))
			require.ErrorContains(t, err, "chmod 600")
			require.NotContains(t, err.Error(), text)
			b, err := os.ReadFile(path)
			require.NoError(t, err)
			require.Equal(t, text+"\n", string(b), "left as it was")
		}
	})
	t.Run("a key file that is not a key", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, oauth.KeyFile)
		require.NoError(t, os.WriteFile(path, []byte("hunter2-hunter2\n"), 0o600))
		_, err := oauth.LoadKey(dir, env(""))
		require.ErrorContains(t, err, "is not a master key")
		require.NotContains(t, err.Error(), "hunter2")
		require.False(t, errors.Is(err, oauth.ErrNoKey))
	})
}
