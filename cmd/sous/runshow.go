package main

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/store"
)

// maxShown bounds an input or output printed by `runs show` (--json
// prints them whole).
const maxShown = 300

// writeRun prints a run as `runs show` does without --json: its summary,
// then each step with its attempts, inputs and outputs as compact JSON.
// Times are local; a time that is not set is "-".
func writeRun(w io.Writer, r *store.Run) error {
	var b strings.Builder
	status := r.Status
	if r.Error != "" {
		status += fmt.Sprintf(": %s (%s): %s", r.ErrorStep, r.Reason, printable(r.Error))
	}
	retries := ""
	if r.Retries > 0 {
		retries = fmt.Sprintf(" (%d retries)", r.Retries)
	}
	for _, kv := range [][2]string{
		{"run", r.ID},
		{"recipe", r.Recipe},
		{"event", r.EventID},
		{"input", showInput(r.Input, maxShown)},
		{"status", status},
		{"started", showTime(r.StartedAt)},
		{"finished", showTime(r.FinishedAt)},
		{"duration", showDuration(r.Duration)},
		{"attempt", fmt.Sprintf("%d%s", r.Attempt, retries)},
	} {
		fmt.Fprintf(&b, "%-9s %s\n", kv[0], kv[1])
	}
	var rec runner.Result
	hasRecord := len(r.Record) > 0 && json.Unmarshal(r.Record, &rec) == nil
	if hasRecord && len(rec.Vars) > 0 {
		fmt.Fprintf(&b, "%-9s %s\n", "vars", compact(rec.Vars))
	}
	switch {
	case hasRecord && len(rec.Steps) > 0:
		b.WriteString("\nsteps\n")
		for _, s := range rec.Steps {
			writeStep(&b, s)
		}
	case !hasRecord:
		// a run that ran no step (a recipe removed before it ran)
		fmt.Fprintf(&b, "%-9s %s\n", "record", "none")
	}
	if len(r.Deliveries) > 0 {
		b.WriteString("\nzapier deliveries\n")
		for _, d := range r.Deliveries {
			last := ""
			if d.LastCode != 0 {
				last = fmt.Sprintf(", last answer %d", d.LastCode)
			}
			if d.LastError != "" {
				last += ": " + printable(d.LastError)
			}
			fmt.Fprintf(&b, "  %-14s %s to %s: %s, %s%s\n", d.Step, d.Event, d.Target, d.Status, plural(d.Attempts, "attempt"), last)
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func writeStep(b *strings.Builder, s *runner.StepResult) {
	var total time.Duration
	for _, a := range s.Attempts {
		total += a.Duration
	}
	kind := ""
	if s.OnError {
		kind = "  (on_error)"
	}
	fmt.Fprintf(b, "  %s  %s  %s  %s  %s%s\n", s.ID, s.Action, withReason(string(s.Status), s.Reason), plural(len(s.Attempts), "attempt"), showDuration(total), kind)
	if len(s.Input) > 0 {
		fmt.Fprintf(b, "    input   %s\n", compact(s.Input))
	}
	if len(s.Output) > 0 {
		fmt.Fprintf(b, "    output  %s\n", compact(s.Output))
	}
	if s.Error != "" {
		fmt.Fprintf(b, "    error   %s\n", printable(s.Error))
	}
	for _, a := range s.Attempts {
		outcome := "ok"
		if a.Error != "" {
			retry := ""
			if a.Retryable {
				retry = ", retryable"
			}
			outcome = fmt.Sprintf("error (%s%s): %s", a.Reason, retry, printable(a.Error))
		}
		next := ""
		if a.Delay > 0 {
			next = "; next attempt in " + showDuration(a.Delay)
		}
		fmt.Fprintf(b, "    attempt %d  %s  %s  %s%s\n", a.Number, showClock(a.Started), showDuration(a.Duration), outcome, next)
	}
}

func withReason(status, reason string) string {
	if reason == "" {
		return status
	}
	return status + " (" + reason + ")"
}

func plural(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// showTime prints a time in the local zone to the millisecond, "-" when
// it is not set.
func showTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("2006-01-02 15:04:05.000 MST")
}

// showClock prints the time of day of an attempt.
func showClock(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format("15:04:05.000")
}

// showDuration rounds a duration to about three figures: 850µs, 1.5ms,
// 250ms, 1.23s, 2m3s.
func showDuration(d time.Duration) string {
	switch {
	case d <= 0:
		return "0s"
	case d < time.Millisecond:
		return d.Round(time.Microsecond).String()
	case d < 10*time.Millisecond:
		return d.Round(100 * time.Microsecond).String()
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(10 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}

// compact is v as one line of JSON, cut at maxShown characters.
// showInput is a run's input as compact JSON cut at max characters, "-"
// when there is none.
func showInput(raw json.RawMessage, max int) string {
	var v any
	if len(raw) == 0 || json.Unmarshal(raw, &v) != nil {
		return "-"
	}
	return truncate(compact(v), max)
}

func compact(v any) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false) // <, > and & as they are: this is for reading
	if err := enc.Encode(v); err != nil {
		return fmt.Sprintf("%v", v)
	}
	return truncate(printable(strings.TrimSuffix(b.String(), "\n")), maxShown)
}

// printable escapes the control characters of a text that came from
// outside (a remote's answer quoted in an error, an event's value), so
// that printing it cannot drive the terminal: an ESC [ or a C1 CSI
// would recolour, retitle or erase what is on the screen.
func printable(s string) string {
	if !strings.ContainsFunc(s, unicode.IsControl) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unicode.IsControl(r) {
			fmt.Fprintf(&b, "\\x%02x", r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}
