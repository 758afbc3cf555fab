package oauth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
)

// The master key's sources: the environment variable wins over the file.
const (
	// EnvMasterKey holds the master key: 32 bytes as base64 (standard or
	// URL encoding, padded or not) or as 64 hex digits.
	EnvMasterKey = "SOUS_MASTER_KEY"
	// KeyFile is the master key's file in the data directory, created
	// with mode 0600 on first use when EnvMasterKey is not set.
	KeyFile = "master.key"
	// KeySize is the master key's length in bytes (AES-256).
	KeySize = 32
)

// ErrNoKey is returned by FindKey when neither EnvMasterKey nor the key
// file is there.
var ErrNoKey = errors.New("no master key: SOUS_MASTER_KEY is not set and the data directory has no master.key")

// Key is a master key. It never prints: every fmt verb, slog and JSON
// show its id alone, and its bytes sit behind a pointer, so that even a
// Key in an unexported field, which fmt prints without asking it, shows
// as an address.
type Key struct {
	m *keyMaterial
}

type keyMaterial struct {
	b  [KeySize]byte
	id string
}

func newKey(b []byte) Key {
	m := &keyMaterial{}
	copy(m.b[:], b)
	// a fingerprint, not the key: a hash of a domain-separated
	// copy, cut to 8 bytes (a 256-bit random key cannot be found from it)
	h := sha256.Sum256(append([]byte("sous master key id\x00"), m.b[:]...))
	m.id = hex.EncodeToString(h[:8])
	return Key{m: m}
}

// ID names the key without revealing it: stored beside every token it
// sealed, so that a token read under another key gives a clear error.
func (k Key) ID() string {
	if k.m == nil {
		return ""
	}
	return k.m.id
}

// IsZero reports whether k was never set.
func (k Key) IsZero() bool { return k.m == nil }

// Equal reports whether k and o are the same key.
func (k Key) Equal(o Key) bool { return k.m != nil && o.m != nil && k.m.b == o.m.b }

// String shows the key's id only.
func (k Key) String() string { return "master key " + k.ID() }

// GoString shows the key's id only.
func (k Key) GoString() string { return k.String() }

// Format shows the key's id only, whatever the verb.
func (k Key) Format(f fmt.State, _ rune) { _, _ = f.Write([]byte(k.String())) }

// LogValue shows the key's id only.
func (k Key) LogValue() slog.Value { return slog.StringValue(k.String()) }

// MarshalJSON shows the key's id only.
func (k Key) MarshalJSON() ([]byte, error) { return []byte(`"` + k.String() + `"`), nil }

// GenerateKey returns a new random key.
func GenerateKey() (Key, error) {
	var b [KeySize]byte
	if _, err := rand.Read(b[:]); err != nil {
		return Key{}, fmt.Errorf("generate a master key: %w", err)
	}
	return newKey(b[:]), nil
}

// ParseKey reads a key written as 64 hex digits or as base64 (standard or
// URL alphabet, padded or not) of 32 bytes; spaces around it are ignored.
// The error never shows the text: it may be a key with a typo.
func ParseKey(text string) (Key, error) {
	s := strings.TrimSpace(text)
	if s == "" {
		return Key{}, errors.New("it is empty: a master key is 32 random bytes as base64 or 64 hex digits: make one with `openssl rand -base64 32`")
	}
	if strings.Trim(s, "0123456789abcdefABCDEF") == "" {
		// hex digits alone (base64 of random bytes is almost never that)
		if len(s) != 2*KeySize {
			return Key{}, fmt.Errorf("it is %d hex digits, and a master key is %d (%d random bytes): make one with `openssl rand -hex 32`", len(s), 2*KeySize, KeySize)
		}
		b, err := hex.DecodeString(s)
		if err != nil {
			return Key{}, errors.New("it is not hex")
		}
		return newKey(b), nil
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		b, err := enc.DecodeString(s)
		if err != nil {
			continue
		}
		if len(b) != KeySize {
			return Key{}, fmt.Errorf("it decodes to %d bytes, and a master key is %d random bytes: make one with `openssl rand -base64 32`", len(b), KeySize)
		}
		return newKey(b), nil
	}
	return Key{}, fmt.Errorf("it is neither base64 nor 64 hex digits (%d characters): a master key is 32 random bytes: make one with `openssl rand -base64 32`", len(s))
}

// FindKey reads the master key from EnvMasterKey when getenv gives it,
// else from DATA_DIR/master.key, and says where it found it (the
// variable's name or the file's path). It returns ErrNoKey when there is
// neither, and refuses a key file that group or others may read.
func FindKey(dataDir string, getenv func(string) string) (Key, string, error) {
	if v := getenv(EnvMasterKey); v != "" {
		k, err := ParseKey(v)
		if err != nil {
			return Key{}, "", fmt.Errorf("%s is not a master key: %w", EnvMasterKey, err)
		}
		return k, EnvMasterKey, nil
	}
	path := filepath.Join(dataDir, KeyFile)
	k, err := ReadKeyFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Key{}, "", ErrNoKey
	}
	if err != nil {
		return Key{}, "", err
	}
	return k, path, nil
}

// LoadKey is FindKey, which creates DATA_DIR/master.key with a new random
// key (mode 0600) when there is no key at all: the first use of a data
// directory. The file is written whole before it appears under its name,
// and an existing one is never replaced (two processes starting together
// end up with the same key).
func LoadKey(dataDir string, getenv func(string) string) (Key, error) {
	k, _, err := FindKey(dataDir, getenv)
	if !errors.Is(err, ErrNoKey) {
		return k, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return Key{}, fmt.Errorf("create data dir: %w", err)
	}
	k, err = GenerateKey()
	if err != nil {
		return Key{}, err
	}
	path := filepath.Join(dataDir, KeyFile)
	err = WriteKeyFile(path, k)
	if errors.Is(err, fs.ErrExist) {
		// another process created it first: use its key
		return ReadKeyFile(path)
	}
	if err != nil {
		return Key{}, err
	}
	return k, nil
}

// ReadKeyFile reads a key file, refusing one that group or others may
// read or write (on systems with Unix permissions).
func ReadKeyFile(path string) (Key, error) {
	f, err := os.Open(path)
	if err != nil {
		return Key{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return Key{}, fmt.Errorf("master key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return Key{}, fmt.Errorf("master key file %s is not a regular file", path)
	}
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return Key{}, fmt.Errorf("master key file %s has mode %04o: group or others may read it, so it is not used; "+
			"make it private with `chmod 600 %s` (and consider the key exposed)", path, fi.Mode().Perm(), path)
	}
	buf := make([]byte, 256)
	n, err := f.Read(buf)
	if err != nil {
		return Key{}, fmt.Errorf("master key file %s: %w", path, err)
	}
	k, err := ParseKey(string(buf[:n]))
	clear(buf)
	if err != nil {
		return Key{}, fmt.Errorf("master key file %s is not a master key: %w", path, err)
	}
	return k, nil
}

// WriteKeyFile writes k, base64, to a new file at path with mode 0600:
// to a temporary file first, synced, then linked under its name, so that
// the file never appears half written. It fails with an error matching
// fs.ErrExist when path exists: a key file is never replaced.
func WriteKeyFile(path string, k Key) error {
	if k.IsZero() {
		return errors.New("write master key: no key")
	}
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, ".master.key.*") // mode 0600
	if err != nil {
		return fmt.Errorf("write master key: %w", err)
	}
	defer os.Remove(tmp.Name())
	if err := tmp.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		tmp.Close()
		return fmt.Errorf("write master key: %w", err)
	}
	text := []byte(base64.StdEncoding.EncodeToString(k.m.b[:]) + "\n")
	_, err = tmp.Write(text)
	clear(text)
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("write master key: %w", err)
	}
	// a link, unlike a rename, fails rather than replace an existing file
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("write master key: %s exists: %w", path, fs.ErrExist)
		}
		return fmt.Errorf("write master key: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new name in dir durable (best effort: not every system
// can sync a directory).
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// The files of a change of key in the data directory.
const (
	// NewKeyFile holds the next key while the tokens are re-encrypted
	// under it: written before, put in place of KeyFile after.
	NewKeyFile = KeyFile + ".new"
	// OldKeyFile keeps the key KeyFile held before the last change.
	OldKeyFile = KeyFile + ".old"
)

// StageKeyFile writes next to DATA_DIR/master.key.new (mode 0600), where
// it waits while the tokens are re-encrypted under it, so that the key
// they end up under is on disk before they do. It reports whether it
// wrote the file; a file already there holding next (from a change that
// stopped) is kept; one holding another key is an error.
func StageKeyFile(dataDir string, next Key) (bool, error) {
	path := filepath.Join(dataDir, NewKeyFile)
	staged, err := ReadKeyFile(path)
	switch {
	case err == nil && staged.Equal(next):
		return false, nil
	case err == nil:
		return false, fmt.Errorf("%s holds another key, left by a change of key that stopped before it finished: "+
			"finish that one first with `sous connections rekey --generate`, which uses it", path)
	case !errors.Is(err, fs.ErrNotExist):
		return false, err
	}
	if err := os.MkdirAll(dataDir, 0o700); err != nil {
		return false, fmt.Errorf("create data dir: %w", err)
	}
	if err := WriteKeyFile(path, next); err != nil {
		return false, err
	}
	return true, nil
}

// StagedKey reads DATA_DIR/master.key.new; an error matching
// fs.ErrNotExist when there is none.
func StagedKey(dataDir string) (Key, error) {
	return ReadKeyFile(filepath.Join(dataDir, NewKeyFile))
}

// InstallKeyFile puts DATA_DIR/master.key.new in place of master.key,
// keeping the key it held as master.key.old (replacing an older one).
// master.key is never missing meanwhile: the old key is linked to its
// new name first, then the new file renamed over it.
func InstallKeyFile(dataDir string) error {
	path := filepath.Join(dataDir, KeyFile)
	old := filepath.Join(dataDir, OldKeyFile)
	if _, err := os.Stat(path); err == nil {
		if err := os.Remove(old); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("install the new master key: %w", err)
		}
		if err := os.Link(path, old); err != nil {
			return fmt.Errorf("install the new master key: keep the old one: %w", err)
		}
	}
	if err := os.Rename(filepath.Join(dataDir, NewKeyFile), path); err != nil {
		return fmt.Errorf("install the new master key: %w", err)
	}
	syncDir(dataDir)
	return nil
}
