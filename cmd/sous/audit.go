package main

import (
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/recipes"
)

func newAudit() *cobra.Command {
	f := &serveFlags{}
	var (
		since  string
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "The audit log: who connected, refreshed, revoked or re-keyed what, and what the REST API changed",
		Long: `Print the audit log, newest first: connections connected (sous connect),
refreshed or found needing a new authorization (sous serve), revoked, the
master key changed (rekey), and every change made through the REST API
(runs started, replays), with the API key's name (key- and the first 8 hex
digits of its SHA-256), never the key. GET /api/v1/audit gives the same.`,
		Example: `  sous audit --since 24h
  sous audit --json --limit 1000`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			d, err := recipes.ParsePeriod(since)
			if err != nil || d <= 0 {
				return usageError("--since must be a positive duration such as 24h or 7d")
			}
			if limit < 1 || limit > 1000 {
				return usageError("--limit must be a number from 1 to 1000")
			}
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			st, closeStore, err := openTokenStore(cmd.Context(), cfg, settings)
			if err != nil {
				return err
			}
			defer closeStore()
			entries, err := st.ListAudit(cmd.Context(), time.Now().Add(-d), limit)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), entries)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "AT\tACTOR\tACTION\tTARGET\tDETAIL")
			for _, e := range entries {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", e.At.UTC().Format(time.RFC3339), e.Actor, e.Action, e.Target, dash(e.Detail))
			}
			return tw.Flush()
		},
	}
	f.bind(cmd, false)
	cmd.Flags().StringVar(&since, "since", "7d", "how far back")
	cmd.Flags().IntVar(&limit, "limit", 100, "at most this many entries")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
