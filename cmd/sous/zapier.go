package main

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/server"
	"github.com/sous-run/sous/engine/store"
)

func newZapier() *cobra.Command {
	z := &cobra.Command{Use: "zapier", Short: "Zapier's REST-hook subscriptions and their deliveries"}
	hooks := &cobra.Command{Use: "hooks", Short: "The subscriptions Zaps made to Sous events: list, delete"}
	hooks.AddCommand(newZapierHooksList(), newZapierHooksDelete())
	z.AddCommand(hooks, newZapierDeliveries())
	return z
}

// openZapierStore opens the store (embedded or PostgreSQL) with the
// Zapier tables.
func openZapierStore(cmd *cobra.Command, f *serveFlags) (*store.Store, func(), error) {
	cfg, settings, err := f.resolve(cmd)
	if err != nil {
		return nil, nil, err
	}
	st, closeFn, err := openTokenStore(cmd.Context(), cfg, settings)
	if err != nil {
		return nil, nil, err
	}
	if err := st.MigrateZapier(cmd.Context()); err != nil {
		closeFn()
		return nil, nil, &exitError{code: 1, err: err}
	}
	return st, closeFn, nil
}

func newZapierHooksList() *cobra.Command {
	f := &serveFlags{}
	var (
		event  string
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List the subscriptions, with their deliveries of the last 7 days by status",
		Long: `List the REST-hook subscriptions Zaps made (POST /api/v1/zapier/hooks): id,
event, the target's scheme and host (the rest of a Zapier hook URL is the
Zap's secret), filter, and the deliveries of the last 7 days by status.`,
		Example: `  sous zapier hooks list
  sous zapier hooks list --event order_paid --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, closeFn, err := openZapierStore(cmd, f)
			if err != nil {
				return err
			}
			defer closeFn()
			hs, err := st.ListZapierHooks(cmd.Context(), event)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			stats, err := st.ZapierStats(cmd.Context(), time.Now().Add(-7*24*time.Hour))
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			byHook := map[string]map[string]int{}
			for _, s := range stats {
				byHook[s.HookID] = s.Statuses
			}
			type row struct {
				ID         string            `json:"id"`
				Event      string            `json:"event"`
				Target     string            `json:"target"`
				Filter     map[string]string `json:"filter,omitempty"`
				CreatedAt  time.Time         `json:"created_at"`
				Deliveries map[string]int    `json:"deliveries"`
			}
			rows := make([]row, 0, len(hs))
			for _, h := range hs {
				d := byHook[h.ID]
				if d == nil {
					d = map[string]int{}
				}
				rows = append(rows, row{h.ID, h.Event, server.RedactTarget(h.Target), h.Filter, h.CreatedAt, d})
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tEVENT\tTARGET\tFILTER\tCREATED\tDELIVERED\tPENDING\tFAILED")
			for _, r := range rows {
				var fl []string
				for k, v := range r.Filter {
					fl = append(fl, k+"="+v)
				}
				sort.Strings(fl)
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%d\n", r.ID, r.Event, r.Target, dash(strings.Join(fl, ",")),
					r.CreatedAt.Local().Format(time.DateTime), r.Deliveries[store.DeliveryDelivered], r.Deliveries[store.DeliveryPending],
					r.Deliveries[store.DeliveryFailed])
			}
			return tw.Flush()
		},
	}
	f.bind(cmd, false)
	cmd.Flags().StringVar(&event, "event", "", "only the subscriptions to this event")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newZapierHooksDelete() *cobra.Command {
	f := &serveFlags{}
	cmd := &cobra.Command{
		Use:   "delete ID...",
		Short: "Delete subscriptions (their deliveries not yet sent are dropped)",
		Long: `Delete REST-hook subscriptions, as the Zap's unsubscribe does: nothing more
is sent to them, and their deliveries not yet sent are marked unsubscribed.
The Zap does not know: turn it off in Zapier too, or it stops receiving.`,
		Example: `  sous zapier hooks delete zh_0123456789abcdef01234567`,
		Args:    cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			st, closeFn, err := openZapierStore(cmd, f)
			if err != nil {
				return err
			}
			defer closeFn()
			var missing []string
			for _, id := range args {
				ok, err := st.DeleteZapierHook(cmd.Context(), id, store.DeliveryUnsubscribed, time.Now())
				if err != nil {
					return &exitError{code: 1, err: err}
				}
				if !ok {
					missing = append(missing, id)
					continue
				}
				fmt.Fprintln(cmd.OutOrStdout(), "deleted", id)
			}
			if len(missing) > 0 {
				return &exitError{code: 1, err: errors.New("no subscription " + strings.Join(missing, ", "))}
			}
			return nil
		},
	}
	f.bind(cmd, false)
	return cmd
}

func newZapierDeliveries() *cobra.Command {
	f := &serveFlags{}
	var (
		fl     store.ZapierDeliveryFilter
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "deliveries",
		Short: "List deliveries (one item to one subscriber): by run, subscription, event or status",
		Example: `  sous zapier deliveries --run RUN_ID
  sous zapier deliveries --status failed --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fl.Limit < 1 || fl.Limit > 1000 {
				return usageError("--limit must be a number from 1 to 1000")
			}
			st, closeFn, err := openZapierStore(cmd, f)
			if err != nil {
				return err
			}
			defer closeFn()
			ds, err := st.ListZapierDeliveries(cmd.Context(), fl)
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			for _, d := range ds {
				d.Target = server.RedactTarget(d.Target)
			}
			if asJSON {
				return writeJSONOut(cmd.OutOrStdout(), append(make([]*store.ZapierDelivery, 0, len(ds)), ds...))
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "DELIVERY\tRUN\tEVENT\tHOOK\tSTATUS\tATTEMPTS\tLAST\tERROR")
			for _, d := range ds {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d\t%d\t%s\n", d.ID, d.RunID, d.Event, d.HookID, d.Status, d.Attempts, d.LastCode,
					dash(truncate(printable(d.LastError), 60)))
			}
			return tw.Flush()
		},
	}
	f.bind(cmd, false)
	cmd.Flags().StringVar(&fl.RunID, "run", "", "only the deliveries of this run")
	cmd.Flags().StringVar(&fl.HookID, "hook", "", "only those to this subscription")
	cmd.Flags().StringVar(&fl.Event, "event", "", "only those of this event")
	cmd.Flags().StringVar(&fl.Status, "status", "", "only those with this status: pending, delivered, failed, gone, unsubscribed")
	cmd.Flags().IntVar(&fl.Limit, "limit", 100, "at most this many")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}
