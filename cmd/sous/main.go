// Command sous is the Sous CLI: validate, test and run recipes, and (with
// the runtime) serve them.
package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	_ "time/tzdata" // time zones for schedule.cron on machines without zoneinfo

	_ "github.com/sous-run/sous/actions/all"
	_ "github.com/sous-run/sous/internal/clients/all"
	_ "github.com/sous-run/sous/triggers/all"
)

func main() {
	os.Exit(execute(os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// exitError carries an exit code out of a command: 1 for failed checks,
// 2 for bad usage.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return ""
	}
	return e.err.Error()
}

func usageError(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// errFailed ends a command with exit 1 after it printed its own report.
var errFailed = &exitError{code: 1}

func execute(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRoot()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.Execute()
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			printError(stderr, ee.err)
		}
		return ee.code
	}
	// cobra's own errors are about usage: unknown command or flag, bad args
	printError(stderr, err)
	fmt.Fprintln(stderr, "Run 'sous --help' for usage.")
	return 2
}

// printError prints err with the program's name before each of its
// lines: joined errors (every problem of a config file, say) then read
// as one message each.
func printError(w io.Writer, err error) {
	for line := range strings.SplitSeq(err.Error(), "\n") {
		fmt.Fprintln(w, "sous:", line)
	}
}
