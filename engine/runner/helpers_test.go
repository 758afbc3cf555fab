package runner_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/recipes"
)

// The test connectors live in their own registry so that the runner is
// tested without any real connector.
var (
	testEvent = &connector.Spec{ID: "test.event", Kind: connector.KindTrigger, Summary: "A test event"}
	// test.echo returns its text and n; token is a secret field.
	testEcho = &connector.Spec{
		ID: "test.echo", Kind: connector.KindAction, Summary: "Echo", Connection: "test",
		Fields: []connector.Field{
			{Name: "text", Type: connector.String, Description: "Text to echo"},
			{Name: "n", Type: connector.Int, Description: "A number"},
			{Name: "token", Type: connector.String, Secret: true, Description: "A secret"},
		},
		Shape: connector.Obj(
			connector.P("text", connector.Leaf(connector.String, "")),
			connector.P("n", connector.Leaf(connector.Int, "")),
		),
		Action: connector.ActionFunc(echo),
	}
	testRegistry = func() *connector.Registry {
		reg := connector.NewRegistry()
		for _, s := range []*connector.Spec{testEvent, testEcho} {
			if err := reg.Add(s); err != nil {
				panic(err)
			}
		}
		return reg
	}()
)

func echo(_ context.Context, req *connector.Request) (map[string]any, error) {
	return map[string]any{"text": req.With.String("text"), "n": req.With.Int("n")}, nil
}

// load parses a recipe against the test registry.
func load(t *testing.T, src string) *recipes.Recipe {
	t.Helper()
	rec, diags := (&recipes.Loader{Registry: testRegistry}).Parse("test.yaml", []byte(src))
	require.Falsef(t, diags.HasErrors(), "recipe does not load:\n%s", diags.Error())
	require.NotNil(t, rec)
	return rec
}

// call is one invocation seen by a fake Invoke.
type call struct {
	Step string
	With connector.Values
	Key  string
	// Attempt is the request's attempt number
	Attempt int
	// Run is the run so far the request carries
	Run map[string]any
}

// fake records calls and answers them with a function of the step id and
// the attempt number (1-based, per step).
type fake struct {
	mu     sync.Mutex
	calls  []call
	counts map[string]int
	answer func(ctx context.Context, step string, n int, req *connector.Request) (map[string]any, error)
}

func newFake(answer func(ctx context.Context, step string, n int, req *connector.Request) (map[string]any, error)) *fake {
	return &fake{counts: map[string]int{}, answer: answer}
}

func (f *fake) invoke(ctx context.Context, step *recipes.Step, req *connector.Request) (map[string]any, error) {
	f.mu.Lock()
	f.counts[step.ID]++
	n := f.counts[step.ID]
	f.calls = append(f.calls, call{Step: step.ID, With: req.With, Key: req.IdempotencyKey, Attempt: req.Attempt, Run: req.Run})
	f.mu.Unlock()
	if f.answer == nil {
		return echo(ctx, req)
	}
	return f.answer(ctx, step.ID, n, req)
}

func (f *fake) count(step string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[step]
}

func (f *fake) callsOf(step string) []call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []call
	for _, c := range f.calls {
		if c.Step == step {
			out = append(out, c)
		}
	}
	return out
}

// sleeper records the waits between attempts without waiting.
type sleeper struct {
	mu     sync.Mutex
	waits  []time.Duration
	result error
}

func (s *sleeper) sleep(_ context.Context, d time.Duration) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.waits = append(s.waits, d)
	return s.result
}

func (s *sleeper) got() []time.Duration {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]time.Duration(nil), s.waits...)
}

func newRunner(f *fake, s *sleeper) *runner.Runner {
	return &runner.Runner{
		Invoke: f.invoke,
		Sleep:  s.sleep,
		Connection: func(name string) (*connector.Connection, error) {
			return &connector.Connection{Name: name, Type: "test", Values: connector.Values{}}, nil
		},
	}
}

func event(payload map[string]any) runner.Event {
	return runner.Event{ID: "ev-1", Type: "test.event", ReceivedAt: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC), Payload: payload}
}
