package main

import (
	"fmt"
	"log/slog"
	"net/http"
	_ "net/http/pprof" // served only with SOUS_PPROF
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/recipes"
)

// serveFlags are the flags shared by serve, runs and stats.
type serveFlags struct {
	config  string
	recipes string
	listen  string
	data    string
}

func (f *serveFlags) bind(cmd *cobra.Command, withServe bool) {
	cmd.Flags().StringVar(&f.config, "config", "sous.yaml", "the config file (connections, api_keys, broker, retention)")
	cmd.Flags().StringVar(&f.data, "data", "", "the data directory of the embedded store (overrides data_dir)")
	if withServe {
		cmd.Flags().StringVar(&f.recipes, "recipes", "", "the recipes folder (overrides recipes)")
		cmd.Flags().StringVar(&f.listen, "listen", "", "the address to serve on (overrides listen)")
	}
}

// resolve loads the config (a missing default file is fine) and applies
// the flags over it.
func (f *serveFlags) resolve(cmd *cobra.Command) (*recipes.Config, service.Settings, error) {
	cfg, diags := loadConfig(f.config, cmd.Flags().Changed("config"))
	if len(diags) > 0 {
		_ = diags.Write(cmd.ErrOrStderr(), recipes.FormatText, 1)
		if diags.HasErrors() {
			return nil, service.Settings{}, errFailed
		}
	}
	if cfg == nil {
		cfg = &recipes.Config{File: f.config, Listen: "127.0.0.1:8080", DataDir: "data", Connections: map[string]*recipes.ConnectionConfig{}}
	}
	if f.data != "" {
		cfg.DataDir = f.data
	}
	if f.recipes != "" {
		cfg.Recipes = f.recipes
	}
	if f.listen != "" {
		cfg.Listen = f.listen
	}
	settings, err := service.ParseSettings(cfg)
	if err != nil {
		return nil, settings, &exitError{code: 1, err: err}
	}
	return cfg, settings, nil
}

func newServe() *cobra.Command {
	f := &serveFlags{}
	var logFormat string
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the runtime: webhooks, schedules, the pipeline, the REST API, metrics",
		Long: `Serve the recipes folder: webhook intake under /hooks, schedules, the
pipeline that runs recipes with retries and dead letters, the REST API under
/api/v1, Prometheus /metrics, /healthz and /readyz.

The embedded default keeps everything in DATA_DIR/sous.db (SQLite, WAL):
nothing else to install. The recipes folder is watched: a changed recipe
that fails validation keeps its last good version. SIGTERM drains in-flight
runs; after a crash, accepted events and unfinished runs resume.`,
		Example: `  sous serve --recipes examples/ --data data/
  sous serve --config sous.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, settings, err := f.resolve(cmd)
			if err != nil {
				return err
			}
			if cfg.Recipes == "" {
				return usageError("no recipes folder: pass --recipes DIR or set recipes in the config")
			}
			level := new(slog.LevelVar)
			_ = level.UnmarshalText([]byte(cfg.LogLevel))
			hopts := &slog.HandlerOptions{Level: level}
			var handler slog.Handler = slog.NewTextHandler(cmd.ErrOrStderr(), hopts)
			if logFormat == "json" {
				handler = slog.NewJSONHandler(cmd.ErrOrStderr(), hopts)
			}
			log := slog.New(handler)
			secrets, err := envSecrets(os.Environ())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			setGC(settings, os.Getenv)
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			svc, err := service.Open(ctx, service.Options{
				Config: cfg, RecipesDir: cfg.Recipes, Listen: cfg.Listen, DataDir: cfg.DataDir,
				Settings: settings, Secrets: secrets, Logger: log, Registry: connector.Default,
			})
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			if addr := os.Getenv("SOUS_PPROF"); addr != "" {
				// profiling on its own listener, only when asked for
				go func() { log.Warn("pprof", "error", http.ListenAndServe(addr, nil)) }() //nolint:gosec // opt-in debugging
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sous: serving %s on http://%s (data in %s)\n", cfg.Recipes, svc.Addr(), cfg.DataDir)
			if err := svc.Run(ctx); err != nil && ctx.Err() == nil {
				return &exitError{code: 1, err: err}
			}
			return nil
		},
	}
	f.bind(cmd, true)
	cmd.Flags().StringVar(&logFormat, "log-format", "text", "log format: text or json")
	return cmd
}

// setGC sets the garbage collector's target from the settings, unless GOGC
// is in the environment.
func setGC(settings service.Settings, getenv func(string) string) {
	if pct, ok := settings.GCPercent(getenv); ok {
		debug.SetGCPercent(pct)
	}
}
