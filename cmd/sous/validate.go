package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/recipes"
)

type validateOpts struct {
	format string
	config string
	strict bool
	// outside lets a test's event_file name a file outside the folder
	outside bool
}

func newValidate() *cobra.Command {
	o := &validateOpts{}
	cmd := &cobra.Command{
		Use:   "validate [PATH...]",
		Short: "Check recipes, recipe tests and the config",
		Long: `Load and check recipes (directories are walked recursively), their tests
and, with --config, the config file, its runtime sections (broker,
retention, limits, pipeline) included. Every expression is compiled and
type-checked against the trigger's event. All problems are reported, each
as file:line:col: severity: message.

Exit status: 0 when clean, 1 on any error (or warning with --strict),
2 on bad usage.`,
		Example: `  sous validate examples/
  sous validate --config sous.yaml recipes/
  sous validate --format github recipes/   # annotations in a GitHub Actions run
  sous validate --format json recipes/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			f := recipes.Format(o.format)
			if f != recipes.FormatText && f != recipes.FormatJSON && f != recipes.FormatGitHub {
				return usageError("--format %q: use text, json or github", o.format)
			}
			cfg, diags := checkConfig(o.config, cmd.Flags().Changed("config"))
			// the runtime sections (broker, retention, limits, pipeline), as
			// `sous serve` would read them: parsed only, nothing is opened
			diags = append(diags, service.CheckSettings(cfg)...)
			if o.config != "" {
				// the secrets `sous serve` would read here
				if _, err := envSecrets(os.Environ()); err != nil {
					diags = append(diags, recipes.Diagnostic{Pos: recipes.Pos{File: "environment"}, Severity: recipes.SevError, Message: err.Error()})
				}
			}
			switch {
			case len(args) > 0:
			case cfg != nil && cfg.Recipes != "":
				args = []string{cfg.Recipes}
			case cfg == nil && diags.HasErrors():
				// a config that is not even YAML does not say where its
				// recipes are: report it alone rather than check the
				// working directory in their place
			default:
				args = []string{"."}
			}
			l := &recipes.Loader{Registry: connector.Default, Config: cfg, EventFilesAnywhere: o.outside}
			set, more := l.LoadPaths(args)
			diags = append(diags, more...)
			diags = append(diags, sharedKeys(set.Recipes)...)
			// the config's own problems and its runtime sections' in the
			// order of the file
			diags.Sort()
			if err := diags.Write(cmd.OutOrStdout(), f, set.Files); err != nil {
				return err
			}
			failed := diags.HasErrors() || (o.strict && len(diags) > 0)
			if f == recipes.FormatText {
				status := "ok"
				if failed {
					status = "FAIL"
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "%s: %d files, %d recipes, %d tests, %d errors, %d warnings\n",
					status, set.Files, len(set.Recipes), len(set.Tests), diags.Errors(), len(diags)-diags.Errors())
			}
			if failed {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&o.format, "format", "text", "output format: text, json or github")
	cmd.Flags().StringVar(&o.config, "config", "", "a config file (sous.yaml) to check, and to check connection names against")
	cmd.Flags().BoolVar(&o.strict, "strict", false, "treat warnings as errors")
	cmd.Flags().BoolVar(&o.outside, strings.TrimPrefix(recipes.EventFilesFlag, "--"), false,
		"let a recipe test's event_file name a file outside the folder being checked")
	return cmd
}
