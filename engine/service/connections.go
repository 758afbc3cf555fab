package service

import (
	"fmt"
	"os"
	"sync"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/httpx"
	"github.com/sous-run/sous/recipes"
)

// Connections resolves a config's connections by name, each with its
// client: built once per connection and shared by every trigger and action
// on it (one rate limiter, one connection pool), an OAuth app's through
// its stored token, kept fresh. `sous serve` and `sous run` both use it.
type Connections struct {
	Config   *recipes.Config
	Registry *connector.Registry
	// DataDir holds the master key file (SOUS_MASTER_KEY overrides it).
	DataDir string
	// Store holds the tokens and the refresh leases; it is asked for on
	// the first OAuth connection only (a run without one opens nothing).
	Store func() (*store.Store, error)
	// Owner names this process in the refresh leases.
	Owner string
	// Hooks count each connection's calls and waits; Refreshed is told
	// of each refresh's outcome. Both may be zero.
	Hooks     connector.ClientHooks
	Refreshed func(conn, outcome string)

	clients   sync.Map // name → *connector.Client
	vaultOnce sync.Once
	vault     *oauth.Vault
	vaultErr  error
}

// Connection resolves the connection called name, with its client.
func (cs *Connections) Connection(name string) (*connector.Connection, error) {
	if cs.Config == nil {
		return nil, fmt.Errorf("connection %q: no config loaded", name)
	}
	c, err := cs.Config.Connection(name)
	if err != nil {
		return nil, err
	}
	spec, ok := cs.Registry.Connection(c.Type)
	if !ok {
		return nil, fmt.Errorf("connection %s: unknown type %q", name, c.Type)
	}
	if cl, ok := cs.clients.Load(name); ok {
		c.Client = cl.(*connector.Client)
		return cs.withToken(c, spec)
	}
	tokens := oauth.Tokens{Vault: cs.Vault, Owner: cs.Owner, Base: &httpx.Transport{}, Refreshed: cs.Refreshed}
	if oauth.UsesOAuth(c, spec) {
		st, err := cs.Store()
		if err != nil {
			return nil, fmt.Errorf("connection %s: %w", name, err)
		}
		tokens.Leases = st
	}
	cl, err := oauth.ClientFor(c, spec, tokens, &httpx.Transport{}, cs.Hooks)
	if err != nil {
		return nil, err
	}
	got, _ := cs.clients.LoadOrStore(name, cl)
	c.Client = got.(*connector.Client)
	return cs.withToken(c, spec)
}

// withToken sets a connection's AccessToken: its own client's token, or,
// for a type that logs in with another connection's (ConnectionSpec.
// TokenFrom), that connection's, which must have a token of its own.
func (cs *Connections) withToken(c *connector.Connection, spec *connector.ConnectionSpec) (*connector.Connection, error) {
	from := ""
	if spec.TokenFrom != "" {
		from = c.Values.String(spec.TokenFrom)
	}
	if from == "" {
		c.AccessToken = c.Client.Token
		return c, nil
	}
	if cfg, err := cs.Config.Connection(from); err == nil {
		if other, ok := cs.Registry.Connection(cfg.Type); from == c.Name || (ok && other.TokenFrom != "" && cfg.Values.String(other.TokenFrom) != "") {
			return nil, fmt.Errorf("connection %s: %s %q must name a connection with a token of its own", c.Name, spec.TokenFrom, from)
		}
	}
	other, err := cs.Connection(from)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %s: %w", c.Name, spec.TokenFrom, err)
	}
	if other.Client.Token == nil {
		return nil, fmt.Errorf("connection %s: %s: connection %s has no OAuth app or token to log in with", c.Name, spec.TokenFrom, from)
	}
	c.AccessToken = other.Client.Token
	return c, nil
}

// Vault is the vault of the OAuth connections' tokens, opened on first
// need: the master key is read (or created) then.
func (cs *Connections) Vault() (*oauth.Vault, error) {
	cs.vaultOnce.Do(func() {
		key, err := oauth.LoadKey(cs.DataDir, os.Getenv)
		if err != nil {
			cs.vaultErr = err
			return
		}
		st, err := cs.Store()
		if err != nil {
			cs.vaultErr = err
			return
		}
		cs.vault, cs.vaultErr = oauth.NewVault(st, key)
	})
	return cs.vault, cs.vaultErr
}
