package oauth

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/store"
)

// State is what a connection's stored token is good for.
type State string

// The states a token row records. A connection of the config with no
// stored token is "unconfigured", which is never stored.
const (
	StateOK           State = "ok"
	StateNeedsReauth  State = "needs_reauth"
	StateUnconfigured State = "unconfigured"
)

// ErrNoToken is returned for a connection with no stored token.
var ErrNoToken = errors.New("no token is stored for this connection")

// ErrUnreadable is matched by the error of a stored token that does not
// decrypt under the key it says it was sealed with: it was altered in the
// database, or copied from another connection's row.
var ErrUnreadable = errors.New("the stored token does not decrypt")

// KeyMismatchError is the error of a token stored under another master
// key than the vault's.
type KeyMismatchError struct {
	Connection string // empty for a check of every token
	Stored     string // the id of the key the token was stored with
	Current    string // the id of the vault's key
	Count      int    // tokens stored under Stored (Check)
}

func (e *KeyMismatchError) Error() string {
	what := "the token of connection " + e.Connection
	if e.Connection == "" {
		what = fmt.Sprintf("%d stored token(s)", e.Count)
	}
	return fmt.Sprintf("the master key does not match the one %s was stored with (key id %s; this key's id is %s): "+
		"set %s to the key the tokens were stored with (on a shared PostgreSQL store every process needs the same key), "+
		"or run `sous connect NAME` again for each connection. If DATA_DIR/master.key.new exists, an earlier "+
		"`sous connections rekey` stopped before it put the new key in place: run it again to finish",
		what, e.Stored, e.Current, EnvMasterKey)
}

// Meta is what is stored in clear beside a token: nothing in it is
// secret. Put records Expiry from the token and UpdatedAt itself.
type Meta struct {
	Connection string `json:"connection"`
	Type       string `json:"type"`
	// Account is who the connection acts as: the Slack team, the Google
	// email, the Jira site...
	Account string   `json:"account,omitempty"`
	Scopes  []string `json:"scopes,omitempty"`
	// Extra holds identifiers a connection type needs beside the token
	// (Slack's team id, Atlassian's cloud id): never a secret.
	Extra       map[string]string `json:"extra,omitempty"`
	Expiry      time.Time         `json:"expiry,omitzero"`
	RefreshedAt time.Time         `json:"refreshed_at,omitzero"`
	State       State             `json:"state"`
	// LastError is the last failure of the connection, redacted by
	// whoever recorded it (the vault also removes the token from it).
	LastError string    `json:"last_error,omitempty"`
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// KeyID names the master key the token is sealed with.
	KeyID string `json:"key_id"`
}

// Vault keeps connections' OAuth tokens in the store, sealed with
// AES-256-GCM under the master key, the connection's name as associated
// data: the store, its files and its tables never hold a token in clear,
// and a sealed token copied to another connection's row does not open.
// Its errors never hold a token.
type Vault struct {
	st  *store.Store
	mu  sync.RWMutex // guards key and aead (Rekey changes them)
	key Key
	gcm cipher.AEAD
	// Now is the clock (tests set it).
	Now func() time.Time
}

// sealVersion is the first byte of a sealed token: the format (GCM, a
// 12-byte random nonce, then the ciphertext and its tag).
const sealVersion = 1

// NewVault returns the vault of the store's tokens under key.
func NewVault(st *store.Store, key Key) (*Vault, error) {
	gcm, err := newGCM(key)
	if err != nil {
		return nil, err
	}
	return &Vault{st: st, key: key, gcm: gcm, Now: time.Now}, nil
}

func newGCM(key Key) (cipher.AEAD, error) {
	if key.IsZero() {
		return nil, errors.New("token vault: no master key")
	}
	block, err := aes.NewCipher(key.m.b[:])
	if err != nil {
		return nil, fmt.Errorf("token vault: %w", err)
	}
	return cipher.NewGCM(block)
}

// KeyID names the vault's master key.
func (v *Vault) KeyID() string {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.key.ID()
}

func (v *Vault) current() (Key, cipher.AEAD) {
	v.mu.RLock()
	defer v.mu.RUnlock()
	return v.key, v.gcm
}

// seal encrypts tok for the connection.
func seal(gcm cipher.AEAD, connection string, tok *oauth2.Token) ([]byte, error) {
	plain, err := json.Marshal(tok)
	if err != nil {
		return nil, fmt.Errorf("seal the token of %s: it does not encode", connection)
	}
	defer clear(plain)
	out := make([]byte, 1+gcm.NonceSize(), 1+gcm.NonceSize()+len(plain)+gcm.Overhead())
	out[0] = sealVersion
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal the token of %s: %w", connection, err)
	}
	return gcm.Seal(out, out[1:1+gcm.NonceSize()], plain, []byte(connection)), nil
}

// open decrypts a sealed token of the connection.
func open(gcm cipher.AEAD, connection string, sealed []byte) (*oauth2.Token, error) {
	n := gcm.NonceSize()
	if len(sealed) < 1+n+gcm.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("connection %s: %w: it is not a sealed token", connection, ErrUnreadable)
	}
	plain, err := gcm.Open(nil, sealed[1:1+n], sealed[1+n:], []byte(connection))
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w: it was altered, or copied from another connection", connection, ErrUnreadable)
	}
	defer clear(plain)
	tok := &oauth2.Token{}
	if err := json.Unmarshal(plain, tok); err != nil {
		// not the decoder's message: it may quote the token
		return nil, fmt.Errorf("connection %s: %w: it is not a token", connection, ErrUnreadable)
	}
	return tok, nil
}

// scrub removes the token's secrets from a text meant to be stored in
// clear (an error message): a safety net behind the caller's redaction.
func scrub(text string, tok *oauth2.Token) string {
	if text == "" || tok == nil {
		return text
	}
	for _, secret := range []string{tok.AccessToken, tok.RefreshToken} {
		if len(secret) < 4 {
			continue
		}
		for _, form := range []string{secret, base64.StdEncoding.EncodeToString([]byte(secret)), base64.URLEncoding.EncodeToString([]byte(secret))} {
			text = strings.ReplaceAll(text, form, "[redacted]")
		}
	}
	return text
}

// Put stores the connection's token and metadata, replacing what it had.
// meta.Connection and meta.Expiry are taken from the arguments; a meta
// without State is StateOK. The first row of a connection is recorded in
// the audit log as connection.created.
func (v *Vault) Put(ctx context.Context, connection string, tok *oauth2.Token, meta Meta) error {
	return v.PutTx(ctx, nil, connection, tok, meta)
}

// PutTx is Put inside tx (nil: on its own).
func (v *Vault) PutTx(ctx context.Context, tx store.Execer, connection string, tok *oauth2.Token, meta Meta) error {
	return v.put(ctx, tx, "", connection, tok, meta)
}

// put is PutTx, which records connection.created in the audit log, by
// actor ("sous" when empty), when the connection had no row before.
func (v *Vault) put(ctx context.Context, tx store.Execer, actor, connection string, tok *oauth2.Token, meta Meta) error {
	if connection == "" {
		return errors.New("store token: no connection name")
	}
	if tok == nil || (tok.AccessToken == "" && tok.RefreshToken == "") {
		return fmt.Errorf("store token of %s: the token has neither an access token nor a refresh token", connection)
	}
	key, gcm := v.current()
	sealed, err := seal(gcm, connection, tok)
	if err != nil {
		return err
	}
	if meta.State == "" {
		meta.State = StateOK
	}
	row := &store.TokenRow{
		Connection: connection, Type: meta.Type, Account: scrub(meta.Account, tok), Scopes: meta.Scopes, Extra: meta.Extra,
		Expiry: tok.Expiry, RefreshedAt: meta.RefreshedAt, State: string(meta.State), LastError: scrub(meta.LastError, tok),
		UpdatedAt: v.Now(), KeyID: key.ID(), Sealed: sealed,
	}
	created := false
	write := func(tx store.Execer) error {
		_, err := v.st.GetToken(ctx, tx, connection)
		created = errors.Is(err, store.ErrNotFound)
		if err != nil && !created {
			return fmt.Errorf("store token of %s: %w", connection, err)
		}
		return v.st.PutToken(ctx, tx, row)
	}
	if tx != nil {
		err = write(tx)
	} else {
		err = v.st.InWriteTx(ctx, write)
	}
	if err != nil {
		return err
	}
	if created {
		if actor == "" {
			actor = "sous"
		}
		// the audit log failing does not undo the connection
		_ = v.st.AddAudit(context.WithoutCancel(ctx), store.AuditEntry{Actor: actor, Action: "connection.created", Target: connection,
			Detail: "a " + meta.Type + " connection"})
	}
	return nil
}

func metaOf(r *store.TokenRow) Meta {
	return Meta{Connection: r.Connection, Type: r.Type, Account: r.Account, Scopes: r.Scopes, Extra: r.Extra,
		Expiry: r.Expiry, RefreshedAt: r.RefreshedAt, State: State(r.State), LastError: r.LastError,
		UpdatedAt: r.UpdatedAt, KeyID: r.KeyID}
}

// Get reads the connection's token and metadata: ErrNoToken when it has
// none, a *KeyMismatchError when it was stored under another master key,
// an error matching ErrUnreadable when it does not decrypt.
func (v *Vault) Get(ctx context.Context, connection string) (*oauth2.Token, Meta, error) {
	return v.GetTx(ctx, nil, connection)
}

// GetTx is Get inside tx (nil: on the store's read pool).
func (v *Vault) GetTx(ctx context.Context, tx store.Execer, connection string) (*oauth2.Token, Meta, error) {
	r, err := v.st.GetToken(ctx, tx, connection)
	if errors.Is(err, store.ErrNotFound) {
		return nil, Meta{}, fmt.Errorf("connection %s: %w", connection, ErrNoToken)
	}
	if err != nil {
		return nil, Meta{}, err
	}
	key, gcm := v.current()
	if r.KeyID != key.ID() {
		return nil, Meta{}, &KeyMismatchError{Connection: connection, Stored: r.KeyID, Current: key.ID()}
	}
	tok, err := open(gcm, connection, r.Sealed)
	if err != nil {
		return nil, Meta{}, err
	}
	return tok, metaOf(r), nil
}

// Delete removes the connection's token: ErrNoToken when it had none.
func (v *Vault) Delete(ctx context.Context, connection string) error {
	ok, err := v.st.DeleteToken(ctx, connection)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("connection %s: %w", connection, ErrNoToken)
	}
	return nil
}

// List returns the metadata of every stored token, by connection name:
// no secret.
func (v *Vault) List(ctx context.Context) ([]Meta, error) {
	rows, err := v.st.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Meta, 0, len(rows))
	for _, r := range rows {
		out = append(out, metaOf(r))
	}
	return out, nil
}

// SetState records the connection's state and last error (ErrNoToken
// when it has no token). lastErr should be redacted already; the token's
// own secrets are removed from it when the token can be read.
func (v *Vault) SetState(ctx context.Context, connection string, state State, lastErr string) error {
	if lastErr != "" {
		if tok, _, err := v.Get(ctx, connection); err == nil {
			lastErr = scrub(lastErr, tok)
		}
	}
	ok, err := v.st.SetTokenState(ctx, connection, string(state), lastErr, v.Now())
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("connection %s: %w", connection, ErrNoToken)
	}
	return nil
}

// Check fails with a *KeyMismatchError when a stored token was sealed
// under another master key than the vault's: what a process checks when
// it starts, rather than fail at a connection's first call.
func (v *Vault) Check(ctx context.Context) error {
	ids, err := v.st.TokenKeyIDs(ctx)
	if err != nil {
		return err
	}
	cur := v.KeyID()
	for id, n := range ids {
		if id != cur {
			return &KeyMismatchError{Stored: id, Current: cur, Count: n}
		}
	}
	return nil
}

// Rekey re-encrypts every stored token under newKey, in one transaction
// that keeps other writers of the tokens off until it commits, and makes
// newKey the vault's key. It returns how many tokens it re-encrypted. A
// token already under newKey is left as it is (running Rekey again after
// it committed changes nothing); one under neither key fails it all, and
// nothing changes.
func (v *Vault) Rekey(ctx context.Context, newKey Key) (int, error) {
	newGCM, err := newGCM(newKey)
	if err != nil {
		return 0, err
	}
	v.mu.Lock()
	defer v.mu.Unlock()
	if newKey.Equal(v.key) {
		return 0, errors.New("rekey: the new master key is the current one")
	}
	n := 0
	err = v.st.InWriteTx(ctx, func(tx store.Execer) error {
		n = 0 // counted again if the transaction is
		if err := v.st.LockTokens(ctx, tx); err != nil {
			return err
		}
		rows, err := v.st.SealedTokens(ctx, tx)
		if err != nil {
			return err
		}
		for _, r := range rows {
			switch r.KeyID {
			case newKey.ID():
				continue
			case v.key.ID():
			default:
				return &KeyMismatchError{Connection: r.Connection, Stored: r.KeyID, Current: v.key.ID()}
			}
			tok, err := open(v.gcm, r.Connection, r.Sealed)
			if err != nil {
				return err
			}
			sealed, err := seal(newGCM, r.Connection, tok)
			if err != nil {
				return err
			}
			if err := v.st.ResealToken(ctx, tx, r.Connection, newKey.ID(), sealed); err != nil {
				return err
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("rekey: %w (nothing was changed)", err)
	}
	v.key, v.gcm = newKey, newGCM
	return n, nil
}

// Audit records an entry of the audit log in the vault's store: who
// (actor) did what to which connection. It never holds a token: detail is
// scrubbed of the connection's own when it can be read.
func (v *Vault) Audit(ctx context.Context, actor, action, connection, detail string) error {
	if detail != "" {
		if tok, _, err := v.Get(ctx, connection); err == nil {
			detail = scrub(detail, tok)
		}
	}
	return v.st.AddAudit(ctx, store.AuditEntry{Actor: actor, Action: action, Target: connection, Detail: detail})
}
