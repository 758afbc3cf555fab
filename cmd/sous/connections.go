package main

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/httpx"
	"github.com/sous-run/sous/recipes"
)

// newConnections gathers the commands on connections and their stored
// OAuth tokens.
func newConnections() *cobra.Command {
	conns := &cobra.Command{Use: "connections", Short: "The config's connections and their stored OAuth tokens"}
	conns.AddCommand(newConnectionsList(), newConnectionsShow(), newConnectionsTest(), newConnectionsRevoke(), newConnectionsRekey())
	return conns
}

// connectionStatuses reads the state of the config's connections.
func connectionStatuses(cmd *cobra.Command, cfg *recipes.Config, settings service.Settings) ([]oauth.Status, error) {
	st, closeStore, err := openTokenStore(cmd.Context(), cfg, settings)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	names := make([]string, 0, len(cfg.Connections))
	for name := range cfg.Connections {
		names = append(names, name)
	}
	sort.Strings(names)
	conns := make([]*connector.Connection, 0, len(names))
	for _, name := range names {
		c, err := cfg.Connection(name)
		if err != nil {
			return nil, &exitError{code: 1, err: err}
		}
		conns = append(conns, c)
	}
	out, err := oauth.Statuses(cmd.Context(), st, conns, connector.Default)
	if err != nil {
		return nil, &exitError{code: 1, err: err}
	}
	return out, nil
}

func newConnectionsList() *cobra.Command {
	f := &serveFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the config's connections: type, state, credentials, account, expiry",
		Long: `List the connections of the config: their type, their state (ok,
needs_reauth: run 'sous connect NAME' again, or unconfigured: an OAuth app
not connected yet), where their credentials come from (oauth: the token
'sous connect' stored; token: a static token in the config; config: other
credentials in the config), and of a stored token its account, expiry and
last refresh. No secret is printed, and no master key is needed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			sts, err := connectionStatuses(cmd, cfg, settings)
			if err != nil {
				return err
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), sts)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tTYPE\tSTATE\tCREDENTIALS\tACCOUNT\tSCOPES\tEXPIRES\tREFRESHED\tLAST ERROR")
			for _, s := range sts {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", s.Name, s.Type, s.State, s.Credentials, dash(s.Account),
					dash(truncate(strings.Join(s.Scopes, ","), 40)), when(s.Expiry), when(s.RefreshedAt), dash(truncate(printable(s.LastError), 60)))
			}
			return tw.Flush()
		},
	}
	f.bind(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newConnectionsShow() *cobra.Command {
	f := &serveFlags{}
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "show NAME",
		Short: "Show one connection: state, credentials, account, scopes, expiry, last error",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			if _, err := cfg.Connection(args[0]); err != nil {
				return &exitError{code: 1, err: err}
			}
			sts, err := connectionStatuses(cmd, cfg, settings)
			if err != nil {
				return err
			}
			for _, s := range sts {
				if s.Name != args[0] {
					continue
				}
				if asJSON {
					return writeJSONOut(cmd.OutOrStdout(), s)
				}
				w := cmd.OutOrStdout()
				fmt.Fprintf(w, "connection %s (%s)\n  state:        %s\n  credentials:  %s\n", s.Name, s.Type, s.State, s.Credentials)
				if s.Credentials == "oauth" {
					fmt.Fprintf(w, "  account:      %s\n  scopes:       %s\n  expires:      %s\n  refreshed:    %s\n  master key:   %s\n",
						dash(s.Account), dash(strings.Join(s.Scopes, " ")), when(s.Expiry), when(s.RefreshedAt), dash(s.KeyID))
				}
				if s.LastError != "" {
					fmt.Fprintf(w, "  last error:   %s\n", s.LastError)
				}
				if s.State == string(oauth.StateUnconfigured) || s.State == string(oauth.StateNeedsReauth) {
					fmt.Fprintf(w, "run `sous connect %s` to authorize it\n", s.Name)
				}
				return nil
			}
			return nil
		},
	}
	f.bind(cmd, false)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func when(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.UTC().Format(time.RFC3339)
}

// configConnection is a connection of the config with its type's spec.
func configConnection(cfg *recipes.Config, name string) (*connector.Connection, *connector.ConnectionSpec, error) {
	c, err := cfg.Connection(name)
	if err != nil {
		return nil, nil, err
	}
	spec, ok := connector.Default.Connection(c.Type)
	if !ok {
		return nil, nil, fmt.Errorf("connection %s: unknown type %q", name, c.Type)
	}
	return c, spec, nil
}

// testConnection makes the connection's identity call through its client
// (the stored token for an OAuth app, refreshed when it expired) and, for
// an OAuth app, records the account beside the token.
func testConnection(ctx context.Context, cfg *recipes.Config, settings service.Settings, name string) (*connector.Identity, error) {
	c, spec, err := configConnection(cfg, name)
	if err != nil {
		return nil, err
	}
	if spec.Identity == nil {
		return nil, fmt.Errorf("connection %s: a %s connection has no identity call to test it with", name, c.Type)
	}
	st, closeStore, err := openTokenStore(ctx, cfg, settings)
	if err != nil {
		return nil, err
	}
	defer closeStore()
	var vault *oauth.Vault
	open := func() (*oauth.Vault, error) {
		if vault != nil {
			return vault, nil
		}
		key, err := oauth.LoadKey(cfg.DataDir, os.Getenv)
		if err != nil {
			return nil, err
		}
		vault, err = oauth.NewVault(st, key)
		return vault, err
	}
	owner := "sous-cli-" + strconv.Itoa(os.Getpid())
	cl, err := oauth.ClientFor(c, spec, oauth.Tokens{Vault: open, Leases: st, Owner: owner, Base: &httpx.Transport{}},
		&httpx.Transport{}, connector.ClientHooks{})
	if err != nil {
		return nil, err
	}
	id, err := spec.Identity(ctx, cl, c.Values)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", name, err)
	}
	if oauth.UsesOAuth(c, spec) {
		v, err := open()
		if err != nil {
			return nil, err
		}
		tok, meta, err := v.Get(ctx, name)
		if err != nil {
			return nil, err
		}
		meta.Account, meta.Extra = id.Account, id.Extra
		if err := v.Put(ctx, name, tok, meta); err != nil {
			return nil, err
		}
	}
	return id, nil
}

func newConnectionsTest() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "test NAME",
		Short: "Make the connection's cheapest identity call, and say who it acts as",
		Long: `Make the service's cheapest call that says who connection NAME acts as
(Slack auth.test, Google Drive about, Jira myself or accessible-resources,
Zoom users/me, Microsoft Graph me, Dropbox users/get_current_account),
through the connection's client: its rate limit, its credentials, for an
OAuth app the stored token (refreshed when it expired). The account is
recorded beside the token. Exit 1 when the call fails.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			id, err := testConnection(cmd.Context(), cfg, settings, args[0])
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "connection %s works: it acts as %s\n", args[0], id.Account)
			return nil
		},
	}
	f.bind(cmd, false)
	return cmd
}

func newConnectionsRevoke() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "revoke NAME",
		Short: "Revoke an OAuth connection's grant at the provider, and delete its stored token",
		Long: `Revoke the grant of OAuth connection NAME at the provider, where it has a
revocation endpoint (Google, Zoom: the oauth block's token_url with revoke in
place of its last element; Slack auth.revoke; Dropbox auth/token/revoke), then
delete the stored token: the connection is unconfigured until 'sous connect
NAME'. Where the provider has none (Microsoft, Atlassian), or the revocation
fails, the token is deleted all the same and the command says so: revoke the
app's access in the provider's settings then.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			name := args[0]
			ctx := cmd.Context()
			c, spec, err := configConnection(cfg, name)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if !oauth.UsesOAuth(c, spec) {
				return &exitError{code: 1, err: fmt.Errorf("connection %s has no OAuth app: nothing is stored to revoke", name)}
			}
			st, closeStore, err := openTokenStore(ctx, cfg, settings)
			if err != nil {
				return err
			}
			defer closeStore()
			key, err := oauth.LoadKey(cfg.DataDir, os.Getenv)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			vault, err := oauth.NewVault(st, key)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			tok, _, err := vault.Get(ctx, name)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			revoked := "the stored token deleted; the provider has no revocation endpoint"
			switch {
			case spec.OAuth.Revoke == nil:
				fmt.Fprintf(out, "the %s provider has no revocation endpoint: revoke the app's access in its settings\n", c.Type)
			default:
				grant := tok.RefreshToken
				if grant == "" {
					grant = tok.AccessToken
				}
				cl, err := oauth.ClientFor(c, spec, oauth.Tokens{Vault: func() (*oauth.Vault, error) { return vault, nil }, Leases: st,
					Owner: "sous-cli-" + strconv.Itoa(os.Getpid()), Base: &httpx.Transport{}}, &httpx.Transport{}, connector.ClientHooks{})
				if err == nil {
					err = spec.OAuth.Revoke(ctx, cl, c.Values, grant)
				}
				if err != nil {
					fmt.Fprintf(cmd.ErrOrStderr(), "warning: the provider did not revoke the grant (%v): revoke the app's access in its settings\n", err)
					revoked = "the stored token deleted; the provider did not revoke the grant"
				} else {
					fmt.Fprintf(out, "connection %s: the grant is revoked at the provider\n", name)
					revoked = "revoked at the provider, the stored token deleted"
				}
			}
			if err := vault.Delete(ctx, name); err != nil {
				return &exitError{code: 1, err: err}
			}
			_ = st.AddAudit(ctx, store.AuditEntry{Actor: cliActor(), Action: "connection.revoked", Target: name, Detail: revoked})
			fmt.Fprintf(out, "connection %s: the stored token is deleted; run `sous connect %s` to authorize it again\n", name, name)
			return nil
		},
	}
	f.bind(cmd, false)
	return cmd
}
