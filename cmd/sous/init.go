package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
)

func newInit() *cobra.Command {
	var (
		trigger string
		dir     string
	)
	cmd := &cobra.Command{
		Use:   "init NAME",
		Short: "Write a starter recipe and its test",
		Long: `Write NAME.yaml, a starter recipe on the trigger --trigger (default
webhook.received), and NAME.test.yaml, its recipe test, in --dir (default
the current folder). Both pass 'sous validate' and 'sous test' as written:
edit them from there. An existing file is never overwritten.

Exit status: 0 when both files are written, 1 when one exists already,
2 on bad usage.`,
		Example: `  sous init orders
  sous init nightly-report --trigger schedule.cron --dir recipes/`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if !recipes.ValidName(name) {
				return usageError("recipe name %q: use lower case letters, digits, - and _, starting with a letter or digit, at most 63 characters", name)
			}
			spec, ok := connector.Default.Lookup(trigger)
			if !ok || spec.Kind != connector.KindTrigger {
				ids := connector.Default.IDs(connector.KindTrigger)
				return usageError("--trigger: unknown trigger %q%s; the triggers are %s", trigger,
					recipes.SuggestID(trigger, ids), strings.Join(ids, ", "))
			}
			recipe, test := starter(name, spec)
			paths := []string{filepath.Join(dir, name+".yaml"), filepath.Join(dir, name+".test.yaml")}
			for _, p := range paths {
				if _, err := os.Lstat(p); err == nil {
					return &exitError{code: 1, err: fmt.Errorf("%s exists already; init never overwrites a file", p)}
				} else if !errors.Is(err, fs.ErrNotExist) {
					return &exitError{code: 1, err: err}
				}
			}
			if err := os.MkdirAll(dir, 0o755); err != nil {
				return &exitError{code: 1, err: err}
			}
			for i, content := range []string{recipe, test} {
				if err := writeNew(paths[i], content); err != nil {
					return &exitError{code: 1, err: err}
				}
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "wrote %s and %s\n", paths[0], paths[1])
			fmt.Fprintf(out, "next: sous validate %s %s && sous test %s %s\n", paths[0], paths[1], paths[0], paths[1])
			return nil
		},
	}
	cmd.Flags().StringVar(&trigger, "trigger", "webhook.received", "the trigger of the recipe (see 'sous connectors')")
	cmd.Flags().StringVar(&dir, "dir", ".", "the folder to write the files in")
	return cmd
}

// writeNew creates a file that must not exist yet (O_EXCL: not even one
// created since it was checked).
func writeNew(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		if errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("%s exists already; init never overwrites a file", path)
		}
		return err
	}
	if _, err := f.WriteString(content); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// starter returns a starter recipe on the trigger spec and its test.
func starter(name string, spec *connector.Spec) (recipe, test string) {
	r := strings.NewReplacer("NAME", name, "SECRET", secretName(name))
	switch spec.ID {
	case "webhook.received":
		return r.Replace(webhookStarter), r.Replace(webhookStarterTest)
	case "schedule.cron":
		return r.Replace(cronStarter), r.Replace(cronStarterTest)
	}
	return genericStarter(name, spec)
}

// secretName is the name of the recipe's webhook secret: SOUS_SECRET_<it>.
func secretName(name string) string {
	return strings.ToUpper(strings.ReplaceAll(name, "-", "_")) + "_WEBHOOK"
}

const webhookStarter = `version: 1
name: NAME
description: What NAME does, in one line
trigger:
  type: webhook.received            # answers POST /hooks/NAME
  with:
    path: /NAME
    # secret: "{{ secrets.SECRET }}"   # HMAC-SHA256 of the body, from SOUS_SECRET_SECRET
    # The body's fields, type-checked: a misspelt one is an error at
    # 'sous validate'. Or a JSON file: body_schema: schemas/NAME.json,
    # or a sample payload: body_sample: fixtures/NAME.json
    body_schema:
      type: object
      properties:
        name: {type: string}
filter: event.body.name != ""
vars:
  greeting: "Hello, {{ event.body.name }}!"
steps:
  - id: notify
    action: http.request            # 'sous connectors' lists the others
    with:
      url: https://hooks.example.com/NAME
      json: {text: "{{ vars.greeting }}"}
    retry: {max_attempts: 3}
`

const webhookStarterTest = `recipe: NAME
cases:
  - name: greets by name
    event: {body: {name: Ada}}
    mocks:
      notify: {output: {status: 200}}
    expect:
      filter: true
      status: succeeded
      vars: {greeting: "Hello, Ada!"}
      steps:
        notify: {with: {json: {text: "Hello, Ada!"}}}
  - name: ignores a body without a name
    event: {body: {}}
    expect: {filter: false, status: filtered}
`

const cronStarter = `version: 1
name: NAME
description: What NAME does, in one line
trigger:
  type: schedule.cron
  with:
    cron: "0 9 * * 1-5"             # 09:00 on weekdays; or @every 1h, @daily
    timezone: UTC
steps:
  - id: notify
    action: http.request            # 'sous connectors' lists the others
    with:
      url: https://hooks.example.com/NAME
      json: {text: "NAME ran at {{ event.scheduled_at }}"}
    retry: {max_attempts: 3}
`

const cronStarterTest = `recipe: NAME
cases:
  - name: posts on each tick
    event: {scheduled_at: "2026-01-05T09:00:00Z", fired_at: "2026-01-05T09:00:00.012Z"}
    mocks:
      notify: {output: {status: 200}}
    expect:
      status: succeeded
      steps:
        notify: {with: {json: {text: "NAME ran at 2026-01-05T09:00:00Z"}}}
`

// genericStarter is a starter for a trigger without its own: its required
// options with their examples, and a step posting the trigger type.
func genericStarter(name string, spec *connector.Spec) (recipe, test string) {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: %s\ndescription: What %s does, in one line\ntrigger:\n  type: %s\n", name, name, spec.ID)
	if spec.ConnectionRequired {
		fmt.Fprintf(&b, "  connection: %s                # a connection of type %s in sous.yaml\n", spec.Connection, spec.Connection)
	}
	var with []string
	for _, f := range spec.Fields {
		if f.Required {
			with = append(with, fmt.Sprintf("    %s: %s\n", f.Name, yamlScalar(f.Example)))
		}
	}
	sort.Strings(with)
	if len(with) > 0 {
		b.WriteString("  with:\n" + strings.Join(with, ""))
	}
	fmt.Fprintf(&b, `steps:
  - id: notify
    action: http.request            # 'sous connectors' lists the others
    with:
      url: https://hooks.example.com/%s
      json: {text: "{{ trigger.type }} fired"}
    retry: {max_attempts: 3}
`, name)
	test = fmt.Sprintf(`recipe: %s
cases:
  - name: posts when the trigger fires
    event: {}
    mocks:
      notify: {output: {status: 200}}
    expect:
      status: succeeded
      steps:
        notify: {with: {json: {text: "%s fired"}}}
`, name, spec.ID)
	return b.String(), test
}

// yamlScalar writes an example value as a flow YAML value (JSON is one).
func yamlScalar(v any) string {
	b, err := json.Marshal(v)
	if err != nil || v == nil {
		return `""`
	}
	return string(b)
}
