package main

import (
	"fmt"
	"runtime/debug"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/catalog"
	"github.com/sous-run/sous/recipes"
	"github.com/sous-run/sous/schemas"
)

// version is set by the build (-ldflags "-X main.version=...").
var version = "dev"

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:   "sous",
		Short: "Sous: automations as code",
		Long: `Sous runs recipes: YAML files that bind a trigger (a webhook, a cron
tick, a Zoom meeting ended, a Slack message, a Jira status change, a new
email, a Zapier call...) through an expression filter to action steps (post
to Slack, create a calendar event, upload to Drive, open a Jira issue, send
mail, call any HTTP API...). 'sous connectors' lists them.

Start one with 'sous init NAME', check it with 'sous validate', test it
offline with 'sous test', try it once with 'sous run --dry-run'.`,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return usageError("%v", err) })
	root.AddCommand(newInit(), newValidate(), newTest(), newRun(), newServe(), newRuns(), newStats(), newConnect(), newConnections(), newAudit(), newZapier(), newSchema(), newConnectors(), newVersion())
	return root
}

// loadConfig reads --config when given; a missing default file is fine.
func loadConfig(path string, explicit bool) (*recipes.Config, recipes.Diagnostics) {
	return readConfig(recipes.LoadConfig, path, explicit)
}

// checkConfig is loadConfig for sous validate: a config with errors is
// returned as far as it could be read (recipes.ParseConfigPartial), so
// that its recipes folder and runtime sections are checked too.
func checkConfig(path string, explicit bool) (*recipes.Config, recipes.Diagnostics) {
	return readConfig(recipes.LoadConfigPartial, path, explicit)
}

func readConfig(load func(string, *connector.Registry) (*recipes.Config, recipes.Diagnostics), path string, explicit bool) (*recipes.Config, recipes.Diagnostics) {
	if path == "" {
		return nil, nil
	}
	cfg, diags := load(path, connector.Default)
	if !explicit && cfg == nil && len(diags) == 1 && diags[0].Line == 0 {
		return nil, nil // no sous.yaml here: nothing to check
	}
	return cfg, diags
}

func newSchema() *cobra.Command {
	return &cobra.Command{
		Use:   "schema [recipe|config]",
		Short: "Print the JSON Schema of recipe files, or of the config file",
		Long: `Print the JSON Schema of recipe files (the default), or with "config" of the
config file, sous.yaml, both generated from the connector specs.

Editors use them for completion and checks. In VS Code with the YAML extension,
put this first line in a recipe:

  # yaml-language-server: $schema=../schemas/recipe.schema.json

and this one in sous.yaml (paths are relative to the file):

  # yaml-language-server: $schema=schemas/config.schema.json`,
		Example: `  sous schema
  sous schema config`,
		Args:      cobra.MatchAll(cobra.MaximumNArgs(1), cobra.OnlyValidArgs),
		ValidArgs: []string{"recipe", "config"},
		RunE: func(cmd *cobra.Command, args []string) error {
			schema := schemas.Recipe
			if len(args) == 1 && args[0] == "config" {
				schema = schemas.Config
			}
			_, err := cmd.OutOrStdout().Write(schema)
			return err
		},
	}
}

func newConnectors() *cobra.Command {
	return &cobra.Command{
		Use:   "connectors [ID|SERVICE]",
		Short: "List the triggers and actions, or describe one, or a service's connection type and components",
		Example: `  sous connectors
  sous connectors http.request
  sous connectors slack`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return catalog.List(cmd.OutOrStdout(), connector.Default)
			}
			s, ok := connector.Default.Lookup(args[0])
			if !ok && !strings.Contains(args[0], ".") {
				if found, err := catalog.DescribeService(cmd.OutOrStdout(), connector.Default, args[0]); found || err != nil {
					return err
				}
			}
			if !ok {
				return &exitError{code: 1, err: fmt.Errorf("unknown connector %q%s", args[0], recipesSuggest(args[0], connector.Default.IDs("")))}
			}
			return catalog.Describe(cmd.OutOrStdout(), s)
		},
	}
}

func newVersion() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			v := version
			goVersion := ""
			if bi, ok := debug.ReadBuildInfo(); ok {
				goVersion = bi.GoVersion
				for _, s := range bi.Settings {
					if s.Key == "vcs.revision" && v == "dev" {
						v = "dev-" + s.Value[:min(12, len(s.Value))]
					}
				}
			}
			fmt.Fprintf(cmd.OutOrStdout(), "sous %s (%s, recipe format %d)\n", v, goVersion, recipes.Version)
			return nil
		},
	}
}

func recipesSuggest(got string, cands []string) string { return recipes.Suggest(got, cands) }
