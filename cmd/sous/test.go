package main

import (
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner/recipetest"
	"github.com/sous-run/sous/recipes"
)

func newTest() *cobra.Command {
	var (
		verbose bool
		run     string
		outside bool
	)
	cmd := &cobra.Command{
		Use:   "test [PATH...]",
		Short: "Run recipe tests (*.test.yaml) offline",
		Long: `Run the cases of recipe tests offline: each feeds an event to its recipe,
with action outputs mocked by step id, and checks the filter, the status,
vars and each step's rendered inputs (a subset match). No network is used.

A case's event_file must be inside the folder being tested (the PATH given,
or a file's own folder), symlinks resolved, unless
--allow-outside-event-files is given.

Exit status: 0 when every case passes, 1 on a failing case or an invalid
file, 2 on bad usage.`,
		Example: `  sous test examples/
  sous test -v --run 'standup/.*short' recipes/`,
		RunE: func(cmd *cobra.Command, args []string) error {
			var match *regexp.Regexp
			if run != "" {
				re, err := regexp.Compile(run)
				if err != nil {
					return usageError("--run: %v", err)
				}
				match = re
			}
			if len(args) == 0 {
				args = []string{"."}
			}
			start := time.Now()
			l := &recipes.Loader{Registry: connector.Default, EventFilesAnywhere: outside}
			set, diags := l.LoadPaths(args)
			out := cmd.OutOrStdout()
			if err := diags.Write(out, recipes.FormatText, set.Files); err != nil {
				return err
			}
			var passed, failed int
			for _, t := range set.Tests {
				if t.Recipe == nil {
					continue
				}
				p, f := recipetest.Report(out, recipetest.Run(cmd.Context(), t, recipetest.Options{Match: match}), verbose)
				passed += p
				failed += f
			}
			elapsed := time.Since(start).Seconds()
			switch {
			case diags.HasErrors() || failed > 0:
				fmt.Fprintf(out, "FAIL\n%d passed, %d failed\n", passed, failed)
				return errFailed
			case passed == 0:
				fmt.Fprintf(out, "ok\t(no test cases found) %.3fs\n", elapsed)
			default:
				fmt.Fprintf(out, "PASS\nok\t%d cases in %d files %.3fs\n", passed, len(set.Tests), elapsed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "print every case, not only failures")
	cmd.Flags().StringVar(&run, "run", "", "run only cases whose recipe/case name matches this regular expression")
	cmd.Flags().BoolVar(&outside, strings.TrimPrefix(recipes.EventFilesFlag, "--"), false,
		"let a case's event_file read a file outside the folder being tested")
	return cmd
}
