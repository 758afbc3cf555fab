package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/url"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/broker/sqlite"
	"github.com/sous-run/sous/engine/broker/sqlite/sqlqueue"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// openStore opens the embedded store of a data dir for the CLI.
func openStore(ctx context.Context, cmd *cobra.Command, f *serveFlags) (*store.Store, func(), error) {
	cfg, settings, err := f.resolve(cmd)
	if err != nil {
		return nil, nil, err
	}
	return openResolved(ctx, cfg, settings)
}

// openResolved is openStore for a config already resolved.
func openResolved(ctx context.Context, cfg *recipes.Config, settings service.Settings) (*store.Store, func(), error) {
	if settings.Broker.Type != "sqlite" && settings.Broker.Type != "memory" {
		where := "in PostgreSQL"
		if settings.Broker.Type == "nats" {
			where = "in the store of whichever sous serve ran them"
		}
		return nil, nil, &exitError{code: 1, err: fmt.Errorf("runs list, runs show and stats read the embedded store of the sqlite and memory brokers, and the %s broker keeps its runs %s: "+
			"ask the running sous serve through its REST API, with a key from api_keys: "+
			"GET /api/v1/runs?recipe=&status=&since=&until=&limit= (runs list), GET /api/v1/runs/RUN_ID (runs show), "+
			"GET /api/v1/stats?recipe=&since=24h (stats); sous runs replay does that itself", settings.Broker.Type, where)}
	}
	write, read, err := store.OpenSQLite(ctx, cfg.DataDir)
	if err != nil {
		return nil, nil, &exitError{code: 1, err: err}
	}
	st := &store.Store{DB: read, Write: write, Dialect: store.SQLite, Prefix: settings.Broker.Prefix}
	if err := st.Migrate(ctx); err != nil {
		read.Close()
		write.Close()
		return nil, nil, &exitError{code: 1, err: err}
	}
	return st, func() { read.Close(); write.Close() }, nil
}

func newRuns() *cobra.Command {
	runs := &cobra.Command{Use: "runs", Short: "Run history: list, show, replay"}
	f := &serveFlags{}
	var (
		recipe, status, since, until string
		limit                        int
		asJSON                       bool
	)
	list := &cobra.Command{
		Use:   "list",
		Short: "List runs, newest first",
		Example: `  sous runs list
  sous runs list --recipe big-orders --status failed --since 24h`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			q := url.Values{}
			for k, v := range map[string]string{"recipe": recipe, "status": status, "since": since, "until": until} {
				if v != "" {
					q.Set(k, v)
				}
			}
			if limit > 0 {
				q.Set("limit", fmt.Sprint(limit))
			}
			filter, err := server.ParseFilter(q, time.Now())
			if err != nil {
				return usageError("%v", err)
			}
			st, closeFn, err := openStore(cmd.Context(), cmd, f)
			if err != nil {
				return err
			}
			defer closeFn()
			rs, err := st.ListRuns(cmd.Context(), filter)
			if err == nil {
				err = st.RunInputs(cmd.Context(), rs)
			}
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if asJSON {
				// [] rather than null when there is none
				return writeJSONOut(cmd.OutOrStdout(), append(make([]*store.Run, 0, len(rs)), rs...))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tRECIPE\tSTATUS\tSTARTED\tDURATION\tINPUT\tERROR")
			for _, r := range rs {
				errText := ""
				if r.Error != "" {
					errText = fmt.Sprintf("%s (%s): %s", r.ErrorStep, r.Reason, truncate(printable(r.Error), 60))
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Recipe, r.Status, r.StartedAt.Local().Format(time.DateTime),
					showDuration(r.Duration), showInput(r.Input, 60), errText)
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&recipe, "recipe", "", "only runs of this recipe")
	list.Flags().StringVar(&status, "status", "", "only runs with this status: succeeded, failed, filtered, dead")
	list.Flags().StringVar(&since, "since", "", "only runs started since (RFC 3339, or a duration back such as 24h or 7d)")
	list.Flags().StringVar(&until, "until", "", "only runs started before (RFC 3339, or a duration back)")
	list.Flags().IntVar(&limit, "limit", 50, "at most this many runs")
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	f.bind(list, false)

	fs := &serveFlags{}
	var showJSON bool
	show := &cobra.Command{
		Use:   "show RUN_ID",
		Short: "Show a run: every step and attempt, with inputs (secrets redacted) and outputs",
		Long: `Show a run: its status, recipe, event, times and duration, then each step
with its status, attempts, error, and inputs and outputs as compact JSON
(cut at 300 characters). --json prints the run as the REST API does, its
durations in milliseconds (duration_ms, delay_ms) and no time that is not set.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, closeFn, err := openStore(cmd.Context(), cmd, fs)
			if err != nil {
				return err
			}
			defer closeFn()
			r, err := st.GetRun(cmd.Context(), args[0])
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("run %s: %w", args[0], err)}
			}
			if r.Deliveries, err = st.RunDeliveries(cmd.Context(), r.ID, server.RedactTarget); err == nil {
				err = st.RunInputs(cmd.Context(), []*store.Run{r})
			}
			if err != nil {
				return &exitError{code: 1, err: fmt.Errorf("run %s: %w", args[0], err)}
			}
			if showJSON {
				return writeJSONOut(cmd.OutOrStdout(), r)
			}
			return writeRun(cmd.OutOrStdout(), r)
		},
	}
	show.Flags().BoolVar(&showJSON, "json", false, "print JSON, as GET /api/v1/runs/{id} does")
	fs.bind(show, false)

	fr := &serveFlags{}
	var fromFailed bool
	replay := &cobra.Command{
		Use:   "replay RUN_ID",
		Short: "Run a finished run's recipe again for the same event",
		Long: `Queue a new run of the recipe for the event of a finished run. With
--from-failed-step, the steps before the one that failed are not called again:
their recorded outputs are reused.

On the sqlite broker the run is queued in the store of the data dir, where
the running (or next) 'sous serve' takes it up. On the memory, postgres and
nats brokers the replay is sent to the running 'sous serve', which queues it
on its broker (on memory the queue is in that process's memory; on nats it
must be the process that ran the run, which is in its own store): through
the REST API at the config's listen address with its first API key
(POST /api/v1/runs/RUN_ID/replay). It fails, saying why, when the config has
no API key, no server answers there or it has no such run.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, settings, err := fr.resolve(cmd)
			if err != nil {
				return err
			}
			if settings.Broker.Type != "sqlite" {
				return replayThroughServer(cmd.Context(), cmd.OutOrStdout(), cfg, settings.Broker.Type, args[0], fromFailed)
			}
			st, closeFn, err := openResolved(cmd.Context(), cfg, settings)
			if err != nil {
				return err
			}
			defer closeFn()
			// through the embedded broker, on the store's own queue
			b, err := sqlite.New(cmd.Context(), st, sqlqueue.Config{})
			if err != nil {
				return err
			}
			id, err := pipeline.Replay(cmd.Context(), st, b.Publisher(), args[0], fromFailed)
			b.Close()
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "queued %s (a replay of %s)\n", id, args[0])
			return nil
		},
	}
	replay.Flags().BoolVar(&fromFailed, "from-failed-step", false, "reuse the outputs of the steps before the failed one")
	fr.bind(replay, false)
	runs.AddCommand(list, show, replay)
	return runs
}

func newStats() *cobra.Command {
	f := &serveFlags{}
	var (
		recipe string
		since  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "stats",
		Short: "Run analytics: counts by status, success rate, latency percentiles, failures by step and connector, calls per action and connection",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			window, err := recipes.ParsePeriod(since)
			if err != nil || window <= 0 {
				return usageError("--since: %q is not a positive duration such as 24h or 7d", since)
			}
			st, closeFn, err := openStore(cmd.Context(), cmd, f)
			if err != nil {
				return err
			}
			defer closeFn()
			s, err := st.Stats(cmd.Context(), recipe, time.Now().Add(-window))
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), s)
			}
			out := cmd.OutOrStdout()
			scope := "all recipes"
			if recipe != "" {
				scope = recipe
			}
			fmt.Fprintf(out, "%s, last %s: %d runs", scope, since, s.Runs)
			for _, k := range []string{"succeeded", "failed", "filtered", "dead"} {
				fmt.Fprintf(out, ", %d %s", s.ByStatus[k], k)
			}
			rate := "n/a (no run succeeded, failed or went dead)"
			if s.Finished() > 0 {
				rate = fmt.Sprintf("%.1f%%", 100*s.SuccessRate)
			}
			durations := "no succeeded run to time"
			if s.Timed() {
				durations = fmt.Sprintf("duration p50 %s, p95 %s, p99 %s",
					showDuration(s.P50), showDuration(s.P95), showDuration(s.P99))
			}
			fmt.Fprintf(out, "\nsuccess rate %s; %s; %d retries, %d rate-limited\n", rate, durations, s.Retries, s.RateLimited)
			if len(s.StepFailures) > 0 {
				fmt.Fprintln(out, "failures by step:")
				for _, fc := range s.StepFailures {
					fmt.Fprintf(out, "  %-40s %-14s %d\n", fc.Key, fc.Reason, fc.Count)
				}
				fmt.Fprintln(out, "failures by connector:")
				for _, fc := range s.ConnectorFailures {
					fmt.Fprintf(out, "  %-40s %-14s %d\n", fc.Key, fc.Reason, fc.Count)
				}
			}
			printCalls(out, "action", s.Actions)
			printCalls(out, "connection", s.Connections)
			return nil
		},
	}
	cmd.Flags().StringVar(&recipe, "recipe", "", "only this recipe")
	cmd.Flags().StringVar(&since, "since", "24h", "the window, back from now (a duration such as 24h or 7d)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	f.bind(cmd, false)
	return cmd
}

// printCalls prints the calls per action or per connection of stats: a
// row each, with its errors by reason.
func printCalls(out io.Writer, by string, counts []store.CallCount) {
	if len(counts) == 0 {
		return
	}
	fmt.Fprintf(out, "by %s:\n  %-32s %7s %7s %13s %8s %7s %9s  %s\n", by, by, "calls", "errors", "rate-limited", "retries", "failed", "waited", "errors by reason")
	for _, c := range counts {
		name := c.Action
		if by == "connection" {
			name = c.Connection
		}
		reasons := make([]string, 0, len(c.ErrorsByReason))
		for r := range c.ErrorsByReason {
			reasons = append(reasons, r)
		}
		sort.Slice(reasons, func(i, j int) bool {
			a, b := reasons[i], reasons[j]
			if c.ErrorsByReason[a] != c.ErrorsByReason[b] {
				return c.ErrorsByReason[a] > c.ErrorsByReason[b]
			}
			return a < b
		})
		for i, r := range reasons {
			reasons[i] = fmt.Sprintf("%s %d", r, c.ErrorsByReason[r])
		}
		line := fmt.Sprintf("  %-32s %7d %7d %13d %8d %7d %9s  %s", name, c.Calls, c.Errors, c.RateLimited, c.Retries, c.Failed,
			showDuration(c.Waited), strings.Join(reasons, ", "))
		fmt.Fprintln(out, strings.TrimRight(line, " "))
	}
}

func writeJSONOut(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n]) + "…"
}
