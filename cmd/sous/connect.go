package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"os/user"
	"strconv"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/oauth"
	"github.com/sous-run/sous/internal/httpx"
)

// noBrowserPort is the redirect port of `sous connect --no-browser`, when
// --port does not name one: the app's redirect URL must match it.
const noBrowserPort = 8085

func newConnect() *cobra.Command {
	f := &serveFlags{}
	var (
		noBrowser bool
		port      int
		timeout   time.Duration
	)
	cmd := &cobra.Command{
		Use:   "connect NAME",
		Short: "Authorize a connection through its OAuth app, and store its token encrypted",
		Long: `Run the OAuth 2.0 authorization-code flow of connection NAME (its oauth block
in the config), with PKCE and a random state, as 'gh auth login' does: open the
printed address in a browser and authorize; the provider sends the browser back
to a listener on 127.0.0.1, and the token is stored in the store, encrypted
under the master key (SOUS_MASTER_KEY, else DATA_DIR/master.key, created on
first use).

The app's redirect URL is http://127.0.0.1:PORT/callback: with --port 0 (the
default) any free port, which providers that accept any loopback port allow;
set --port when the app's redirect URL names one.

With --no-browser (a machine without a browser, over SSH): open the address
on any machine, authorize, and paste here the address the browser was sent
to (it does not load: that is expected). Its port is --port, 8085 by default.`,
		Example: `  sous connect slack
  sous connect google --port 8085
  sous connect jira --no-browser`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			name := args[0]
			conn, spec, err := configConnection(cfg, name)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if spec.OAuth != nil && spec.OAuth.SelfMinted != nil && spec.OAuth.SelfMinted(conn.Values) {
				return &exitError{code: 1, err: fmt.Errorf("connection %s mints its own tokens (Server-to-Server OAuth, a service account): "+
					"there is nothing to authorize; `sous connections test %s` checks it", name, name)}
			}
			// the key and the store first: a bad key fails before the browser
			key, err := oauth.LoadKey(cfg.DataDir, os.Getenv)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			st, closeStore, err := openTokenStore(cmd.Context(), cfg, settings)
			if err != nil {
				return err
			}
			defer closeStore()
			vault, err := oauth.NewVault(st, key)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt)
			defer stop()
			ctx, cancel := context.WithTimeout(ctx, timeout)
			defer cancel()
			out := cmd.OutOrStdout()
			var tok *oauth2.Token
			if noBrowser {
				if port == 0 {
					port = noBrowserPort
				}
				tok, err = pasted(ctx, cmd, conn, spec, port)
			} else {
				tok, err = oauth.Loopback(ctx, conn, spec, nil, port, func(u string) {
					fmt.Fprintf(out, "Open this address in a browser to authorize connection %s:\n\n  %s\n\nWaiting for the provider's answer...\n", name, u)
				})
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			saved, err := oauth.Save(ctx, vault, conn, spec, tok, &httpx.Transport{}, cliActor(), "")
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			expiry := "no expiry"
			if !tok.Expiry.IsZero() {
				expiry = "expires " + tok.Expiry.UTC().Format(time.RFC3339)
			}
			refresh := "no refresh token"
			if tok.RefreshToken != "" {
				refresh = "with a refresh token"
			}
			fmt.Fprintf(out, "connection %s is connected: its token is stored encrypted under master key %s (%s, %s)\n",
				name, key.ID(), expiry, refresh)
			switch {
			case saved.IdentityErr != nil:
				fmt.Fprintf(cmd.ErrOrStderr(), "warning: the identity call failed (`sous connections test %s` tries again): %v\n", name, saved.IdentityErr)
			case saved.Account != "":
				fmt.Fprintf(out, "it acts as %s\n", saved.Account)
			}
			return nil
		},
	}
	f.bind(cmd, false)
	cmd.Flags().BoolVar(&noBrowser, "no-browser", false, "paste the address the browser was sent to, instead of listening for it")
	cmd.Flags().IntVar(&port, "port", 0, "the port of the redirect URL http://127.0.0.1:PORT/callback (0: any free one; 8085 with --no-browser)")
	cmd.Flags().DurationVar(&timeout, "timeout", 10*time.Minute, "how long to wait for the authorization")
	return cmd
}

// cliActor names the person running the CLI in the audit log.
func cliActor() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return "cli:" + u.Username
	}
	return "cli"
}

// pasted runs the flow with the redirect's address pasted on stdin.
func pasted(ctx context.Context, cmd *cobra.Command, conn *connector.Connection, spec *connector.ConnectionSpec, port int) (*oauth2.Token, error) {
	flow, err := oauth.NewFlow(conn, spec, "http://127.0.0.1:"+strconv.Itoa(port)+"/callback")
	if err != nil {
		return nil, err
	}
	p, err := flow.Start()
	if err != nil {
		return nil, err
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "Open this address in a browser to authorize connection %s:\n\n  %s\n\n", conn.Name, p.URL)
	fmt.Fprintf(out, "Then paste the address the browser was sent to (it starts with http://127.0.0.1:%d/callback):\n", port)
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(cmd.InOrStdin())
		sc.Buffer(make([]byte, 64<<10), 64<<10)
		for sc.Scan() {
			if line := sc.Text(); line != "" {
				lines <- line
				return
			}
		}
		close(lines)
	}()
	select {
	case <-ctx.Done():
		return nil, fmt.Errorf("connection %s: no address pasted: %w", conn.Name, ctx.Err())
	case line, ok := <-lines:
		if !ok {
			return nil, errors.New("no address was pasted")
		}
		answer, err := oauth.ParseRedirect(line)
		if err != nil {
			return nil, err
		}
		return flow.Finish(ctx, p, answer)
	}
}
