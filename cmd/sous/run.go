package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/service"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// SecretPrefix names the environment variables secrets.NAME reads.
const SecretPrefix = "SOUS_SECRET_"

// secretsFromEnv reads SOUS_SECRET_* variables.
func secretsFromEnv(environ []string) map[string]string {
	out := map[string]string{}
	for _, kv := range environ {
		k, v, ok := strings.Cut(kv, "=")
		if ok && strings.HasPrefix(k, SecretPrefix) && len(k) > len(SecretPrefix) {
			out[strings.TrimPrefix(k, SecretPrefix)] = v
		}
	}
	return out
}

// envSecrets reads SOUS_SECRET_* variables and refuses those too short to
// be redacted (naming them, not their values).
func envSecrets(environ []string) (map[string]string, error) {
	secrets := secretsFromEnv(environ)
	return secrets, recipes.ShortSecretError(SecretPrefix, recipes.ShortSecrets(secrets))
}

func newRun() *cobra.Command {
	var (
		eventPath string
		dryRun    bool
		config    string
		asJSON    bool
	)
	cmd := &cobra.Command{
		Use:   "run FILE --event EVENT",
		Short: "Run a recipe once, now, in this process",
		Long: `Run one recipe once for an event read from a JSON or YAML file ('-' reads
standard input), printing each step's rendered input and its output.
With --dry-run nothing is called: steps print what they would send.
Secrets come from SOUS_SECRET_<NAME> and are redacted from the output.

Exit status: 0 when the run succeeded or was filtered, 1 when it failed,
2 on bad usage.`,
		Example: `  sous run examples/github-issues.yaml --event examples/fixtures/issue-opened.json --dry-run
  echo '{"body": {"order": {"id": 7}}}' | sous run recipes/orders.yaml --event -`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if eventPath == "" {
				return usageError("--event is required (a JSON or YAML file, or - for standard input)")
			}
			cfg, diags := loadConfig(config, cmd.Flags().Changed("config"))
			l := &recipes.Loader{Registry: connector.Default, Config: cfg}
			src, err := os.ReadFile(args[0])
			if err != nil {
				return usageError("%v", err)
			}
			rec, more := l.Parse(args[0], src)
			diags = append(diags, more...)
			if err := diags.Write(cmd.ErrOrStderr(), recipes.FormatText, 1); err != nil {
				return err
			}
			if diags.HasErrors() || rec == nil {
				return errFailed
			}
			payload, err := readEvent(eventPath, cmd.InOrStdin())
			if err != nil {
				return usageError("--event: %v", err)
			}
			secrets, err := envSecrets(os.Environ())
			if err != nil {
				return &exitError{code: 1, err: err}
			}
			out := cmd.OutOrStdout()
			// connections as sous serve resolves them: with their clients,
			// an OAuth app's through its stored token (the store is opened
			// only for one)
			var closeStore func()
			defer func() {
				if closeStore != nil {
					closeStore()
				}
			}()
			conns := &service.Connections{Config: cfg, Registry: connector.Default, Owner: "sous-run-" + strconv.Itoa(os.Getpid()),
				Store: func() (*store.Store, error) {
					settings, err := service.ParseSettings(cfg)
					if err != nil {
						return nil, err
					}
					st, closer, err := openTokenStore(cmd.Context(), cfg, settings)
					closeStore = closer
					return st, err
				}}
			if cfg != nil {
				conns.DataDir = cfg.DataDir
			}
			r := &runner.Runner{
				Secrets:    secrets,
				Redact:     cfg.SecretValues(),
				Connection: conns.Connection,
			}
			if dryRun {
				r.Invoke = func(context.Context, *recipes.Step, *connector.Request) (map[string]any, error) {
					return map[string]any{}, nil
				}
				r.Connection = func(name string) (*connector.Connection, error) {
					return &connector.Connection{Name: name}, nil
				}
			}
			if !asJSON {
				r.OnStep = func(sr *runner.StepResult) { printStep(out, sr, dryRun) }
			}
			ev := runner.Event{ID: fmt.Sprintf("cli-%d", time.Now().UnixNano()), Type: rec.Trigger.Type, ReceivedAt: time.Now(), Payload: payload}
			res := r.Run(cmd.Context(), rec, ev, ev.ID)
			if asJSON {
				raw, err := json.Marshal(res)
				if err != nil {
					return err
				}
				// as runs show --json and the API show a record: durations
				// in milliseconds, no unset time
				if err := writeJSONOut(out, store.RecordView(raw)); err != nil {
					return err
				}
			} else {
				printResult(out, res)
			}
			if res.Status == runner.StatusFailed {
				return errFailed
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&eventPath, "event", "", "the event payload: a JSON or YAML file, or - for standard input")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "render every step but call nothing")
	cmd.Flags().StringVar(&config, "config", "sous.yaml", "the config file with connections")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the run record as JSON")
	return cmd
}

func readEvent(path string, stdin io.Reader) (map[string]any, error) {
	var src []byte
	var err error
	if path == "-" {
		src, err = io.ReadAll(io.LimitReader(stdin, recipes.MaxFileSize+1))
	} else {
		src, err = os.ReadFile(path)
	}
	if err != nil {
		return nil, err
	}
	if len(src) > recipes.MaxFileSize {
		return nil, fmt.Errorf("the event is larger than %d bytes", recipes.MaxFileSize)
	}
	var v any
	if strings.HasSuffix(path, ".json") {
		err = json.Unmarshal(src, &v)
	} else {
		err = yaml.Unmarshal(src, &v)
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	m, ok := v.(map[string]any)
	if !ok {
		return nil, fmt.Errorf("%s: the event must be an object", path)
	}
	return m, nil
}

func printStep(w io.Writer, sr *runner.StepResult, dry bool) {
	label := ""
	if sr.OnError {
		label = " [on_error]"
	}
	fmt.Fprintf(w, "▶ %s (%s)%s: %s\n", sr.ID, sr.Action, label, stepStatus(sr, dry))
	if sr.Input != nil {
		fmt.Fprintf(w, "  input:\n%s", yamlBlock(sr.Input, "    "))
	}
	for _, a := range sr.Attempts {
		if a.Error != "" {
			fmt.Fprintf(w, "  attempt %d failed after %s: %s\n", a.Number, showDuration(a.Duration), a.Error)
		}
	}
	if !dry && sr.Status == runner.StatusSucceeded {
		fmt.Fprintf(w, "  output:\n%s", yamlBlock(sr.Output, "    "))
	}
	if sr.Error != "" && len(sr.Attempts) == 0 {
		fmt.Fprintf(w, "  error: %s\n", sr.Error)
	}
}

func stepStatus(sr *runner.StepResult, dry bool) string {
	if dry && sr.Status == runner.StatusSucceeded {
		return "would call (dry run)"
	}
	if sr.Status == runner.StatusSkipped {
		return "skipped (if was false)"
	}
	return string(sr.Status)
}

func printResult(w io.Writer, res *runner.Result) {
	fmt.Fprintf(w, "run %s: %s in %s\n", res.Recipe, res.Status, showDuration(res.Duration))
	if res.Error != nil {
		where := ""
		if res.Error.Step != "" {
			where = " at step " + res.Error.Step
		}
		fmt.Fprintf(w, "  failed%s (%s): %s\n", where, res.Error.Reason, res.Error.Message)
	}
}

func yamlBlock(v any, ind string) string {
	b, err := yaml.Marshal(v)
	if err != nil {
		return ind + fmt.Sprint(v) + "\n"
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	for i, l := range lines {
		lines[i] = ind + l
	}
	return strings.Join(lines, "\n") + "\n"
}
