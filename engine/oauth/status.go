package oauth

import (
	"context"
	"sort"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/store"
)

// Status is what `sous connections list` and GET /api/v1/connections say
// of a connection: nothing in it is secret.
type Status struct {
	Name string `json:"name"`
	Type string `json:"type"`
	// State is ok, needs_reauth, or unconfigured (an OAuth app with no
	// stored token: run sous connect).
	State string `json:"state"`
	// Credentials says where they come from: oauth (the token sous
	// connect stored), token (a static token in the config), config
	// (other credentials in the config: an API token, a password) or none.
	Credentials string    `json:"credentials"`
	Account     string    `json:"account,omitempty"`
	Scopes      []string  `json:"scopes,omitempty"`
	Expiry      time.Time `json:"expiry,omitzero"`
	RefreshedAt time.Time `json:"refreshed_at,omitzero"`
	LastError   string    `json:"last_error,omitempty"`
	KeyID       string    `json:"key_id,omitempty"`
}

// Statuses says, of each connection of the config, its state and where its
// credentials come from, with what the store holds of its token (read
// without the master key: only what is stored in clear).
func Statuses(ctx context.Context, st *store.Store, conns []*connector.Connection, reg *connector.Registry) ([]Status, error) {
	rows, err := st.ListTokens(ctx)
	if err != nil {
		return nil, err
	}
	stored := make(map[string]*store.TokenRow, len(rows))
	for _, r := range rows {
		stored[r.Connection] = r
	}
	out := make([]Status, 0, len(conns))
	for _, c := range conns {
		s := Status{Name: c.Name, Type: c.Type, State: string(StateOK), Credentials: "none"}
		spec, _ := reg.Connection(c.Type)
		switch {
		case c.Values.Has(connector.ConnToken):
			s.Credentials = "token"
		case spec != nil && spec.OAuth != nil && c.Values.Has(connector.ConnOAuth):
			s.Credentials = "oauth"
			r, ok := stored[c.Name]
			if !ok && seedOf(c.Values) != "" {
				s.Credentials = "refresh_token" // from the config, refreshed on first use
				break
			}
			if !ok {
				s.State = string(StateUnconfigured)
				break
			}
			s.State, s.Account, s.Scopes, s.Expiry, s.RefreshedAt, s.LastError, s.KeyID =
				r.State, r.Account, r.Scopes, r.Expiry, r.RefreshedAt, r.LastError, r.KeyID
		case spec != nil && hasSecret(spec.Fields, c.Values):
			s.Credentials = "config"
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out, nil
}

// hasSecret reports whether values set a secret field.
func hasSecret(fields []connector.Field, values connector.Values) bool {
	for _, f := range fields {
		if f.Secret && values.Has(f.Name) {
			return true
		}
	}
	return false
}
