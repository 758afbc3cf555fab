package connector

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"time"
)

// The trigger contract. A trigger's events come one of three ways, which
// its Spec.Trigger declares:
//
//   - a receiver answers HTTP requests: a webhook trigger keyed by one of
//     its options (webhook.received's path, served at /hooks<path>), or a
//     service's webhook served at POST /hooks/{service}/{connection}, whose
//     receiver (RegisterReceiver) verifies each request with the
//     connection's secrets and returns the events of any of the service's
//     triggers;
//   - a poller is called on an interval with the cursor it returned last,
//     and returns the new items as events;
//   - a schedule (Spec.Schedule) fires on a clock.
//
// The engine hosts all three: it routes requests, runs the scheduler and
// supervises the pollers (one per trigger, connection and options across
// processes, its cursor saved with the events it produced). A connector
// implements the interfaces below and never sees the store or the queue.

// TriggerKind is how a trigger's events come.
type TriggerKind string

// The trigger kinds.
const (
	// Receive: HTTP requests, through a Receiver.
	Receive TriggerKind = "receive"
	// Poll: a Poller called on an interval.
	Poll TriggerKind = "poll"
	// Clock: Spec.Schedule.
	Clock TriggerKind = "schedule"
)

// KeyBy is how the recipe index keys a trigger's recipes, which is also
// what an event of the trigger names as its source: the recipes an event
// starts are those of its type whose key is the event's.
type KeyBy string

// The index keys.
const (
	// KeyField: the value of the option Trigger.KeyField (webhook.received's
	// path). Recipes with the same value share one receiver and must agree
	// on its options (see Trigger.Compatible).
	KeyField KeyBy = "field"
	// KeyConnection: the recipe's connection. Every recipe of the trigger on
	// that connection sees each of its events.
	KeyConnection KeyBy = "connection"
	// KeyRecipe: the recipe itself (schedules: each tick is one recipe's).
	KeyRecipe KeyBy = "recipe"
	// KeyOptions: the connection and the options together (pollers): one
	// poller serves every recipe that sets the same ones.
	KeyOptions KeyBy = "options"
)

// Trigger declares how a trigger spec's events come and are indexed.
type Trigger struct {
	Kind TriggerKind
	Key  KeyBy
	// KeyField names the option keying the recipes, with Key KeyField.
	KeyField string
	// Receiver serves the requests of a trigger keyed by a field: every
	// request to that key is handed to it with the options of the recipes
	// sharing the key. A service webhook (keyed by connection) is served by
	// the receiver its service registers (RegisterReceiver) instead.
	Receiver Receiver
	// Poller is called on Interval, for Kind Poll, and for the recipes of
	// a received trigger that PollWhen says poll.
	Poller Poller
	// PollWhen, on a trigger keyed by connection (a service webhook), says
	// from a recipe's options that the recipe polls instead (it sets
	// poll_interval, say, for a site whose webhooks cannot be set up):
	// such a recipe is keyed by its connection and options as a polled
	// trigger's and served by Poller; the others receive.
	PollWhen func(with Values) bool
	// Interval is how often a poller is called, from the recipe's options
	// (its poll_interval field, say); nil or zero means DefaultPollInterval.
	Interval func(with Values) time.Duration
	// Tick is the event of a schedule tick due at scheduled, fired at fired,
	// for Kind Clock.
	Tick func(scheduled, fired time.Time) map[string]any
	// DedupField names an Expression option whose value, evaluated against
	// an event, is the event's dedup key: it takes the place of the key the
	// receiver gave.
	DedupField string
	// Compatible checks that two recipes sharing a key (Key KeyField) agree
	// on the options their shared receiver uses; nil means that every option
	// but those declaring a shape (Field.Declares) must be equal.
	Compatible func(a, b Values) error
	// Match, when set, filters a received or polled event by a recipe's
	// options before any run exists (a Slack trigger's channel, say): an
	// event a recipe does not match starts no run of it and is not stored
	// for it.
	Match func(with Values, ev *Event) bool
	// Respond, when set, gives the immediate answer to a received request
	// whose event starts a recipe, from that recipe's options (the reply a
	// recipe sets for a Slack slash command, say), when the receiver gave
	// no Reply. Of the recipes the event starts (by name), the first
	// answer that is not nil is written; none gives the engine's own
	// answer. It runs after the event is stored, within the sender's time
	// limit: it must not call out.
	Respond func(with Values, ev *Event) (*Reply, error)
}

// DefaultPollInterval is the interval of a poller that sets none.
const DefaultPollInterval = time.Minute

// Event is one occurrence a trigger reports.
type Event struct {
	// Type is the trigger type the event is for ("" for the trigger that
	// produced it); a service receiver sets it, since one request may
	// carry any of its service's triggers.
	Type string
	// DedupKey is stable across redeliveries of the same occurrence: the
	// same key within the retention window yields one event. Empty: the
	// event is always new.
	DedupKey string
	// Payload is the event as recipes see it (`event`). It may be nil when
	// JSON is set: the engine decodes it.
	Payload map[string]any
	// JSON, when set, is what the engine stores; decoded with
	// encoding/json it must give Payload (or Payload is nil). A receiver
	// that has the body's JSON at hand saves an encoding.
	JSON json.RawMessage
	// Exact, with both Payload and JSON set, says that Payload is what
	// decoding JSON with encoding/json gives, so that the matcher may take
	// it as is. When false, Payload serves the dedup expression only and
	// the matcher decodes JSON (a payload keeping an integer too large for
	// a float64 as json.Number, say).
	Exact bool
}

// Receiver turns an HTTP request into events.
type Receiver interface {
	// Receive verifies and parses a request. An error built with Reject is
	// answered with its status and nothing is stored; another error is a
	// 500. A Reply, when set, answers the request (a URL-validation
	// handshake, an immediate reply), after the events, if any, are stored.
	Receive(ctx context.Context, req *Incoming) (*Received, error)
}

// ReceiverFunc adapts a function to Receiver.
type ReceiverFunc func(ctx context.Context, req *Incoming) (*Received, error)

// Receive calls f.
func (f ReceiverFunc) Receive(ctx context.Context, req *Incoming) (*Received, error) {
	return f(ctx, req)
}

// Incoming is a request a receiver is handed. The body is read whole, up to
// the server's size limit, before the receiver sees it.
type Incoming struct {
	Method string
	// Path is the request path under /hooks: "/orders" for a webhook
	// keyed by path, "/zoom/acme" for a service webhook.
	Path   string
	Header http.Header
	Query  url.Values
	Body   []byte
	// With holds the options of the recipes sharing the key, secrets
	// rendered, but the key field itself (Path has it), for a trigger keyed
	// by a field; nil for a service webhook. It is shared: read it only.
	With Values
	// Connection is the connection a service webhook is for; nil for a
	// trigger keyed by a field.
	Connection *Connection
	// Now is the time the request arrived (for signature windows).
	Now time.Time
}

// Received is what a receiver made of a request.
type Received struct {
	Events []Event
	// Reply answers the request instead of the engine's own answer.
	Reply *Reply
	// Ignored, when set, answers the request when no recipe listens to
	// its events, instead of the engine's JSON "ignored" (Slack shows a
	// slash command's answer to the user, and an interaction's must be
	// empty).
	Ignored *Reply
}

// Reply is an answer a receiver writes itself.
type Reply struct {
	Status int // 200 when zero
	Header http.Header
	Body   []byte
}

// JSONReply is a Reply carrying v as JSON.
func JSONReply(status int, v any) (*Reply, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode reply: %w", err)
	}
	return &Reply{Status: status, Header: http.Header{"Content-Type": {"application/json"}}, Body: b}, nil
}

// Rejection is a request a receiver refuses: it is answered with Status
// (a 4xx) and a JSON error with Code and Message, and nothing is stored.
type Rejection struct {
	Status  int
	Code    string // a snake_case reason, also the intake reject metric's label
	Message string // for the sender: never a secret
	Header  http.Header
}

func (r *Rejection) Error() string { return r.Code + ": " + r.Message }

// Reject builds a Rejection.
func Reject(status int, code, format string, args ...any) *Rejection {
	return &Rejection{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// ReceiverSpec registers the webhook endpoint of a service.
type ReceiverSpec struct {
	// Service is the path segment: requests to /hooks/{Service}/{name} are
	// handed to Receiver with the connection called name.
	Service string
	// Connection is the connection type the receiver verifies with; a
	// request for a connection of another type is refused.
	Connection string
	Receiver   Receiver
}

// Poller fetches what is new since a cursor.
type Poller interface {
	Poll(ctx context.Context, req *PollRequest) (*PollResult, error)
}

// PollerFunc adapts a function to Poller.
type PollerFunc func(ctx context.Context, req *PollRequest) (*PollResult, error)

// Poll calls f.
func (f PollerFunc) Poll(ctx context.Context, req *PollRequest) (*PollResult, error) {
	return f(ctx, req)
}

// PollRequest is what a poller is called with.
type PollRequest struct {
	Type string // the trigger type
	// With holds the options of the recipes the poller serves, secrets
	// rendered.
	With       Values
	Connection *Connection // nil when the trigger needs none
	// Cursor is what the last poll returned as Next, nil on the first poll:
	// a poller then usually returns no events and a cursor at "now", so
	// that a new recipe does not replay the service's history.
	Cursor json.RawMessage
	Logger *slog.Logger
}

// PollResult is one poll's outcome.
type PollResult struct {
	// Events are the new items, oldest first. Each should have a DedupKey:
	// a poll cut short by a crash is made again from the saved cursor.
	Events []Event
	// Next is the cursor to poll from next time; it is saved in the same
	// transaction as Events. nil keeps the current one.
	Next json.RawMessage
	// More asks to be polled again at once (a page limit was reached).
	More bool
}

// checkTrigger checks what a spec's Trigger declares.
func checkTrigger(s *Spec) error {
	t := s.Trigger
	if t == nil {
		return nil
	}
	if s.Kind != KindTrigger {
		return fmt.Errorf("connector %s: an action declares no trigger", s.ID)
	}
	switch t.Kind {
	case Receive:
		if t.Key == KeyField && t.Receiver == nil {
			return fmt.Errorf("connector %s: a trigger keyed by a field needs its Receiver", s.ID)
		}
		if t.Key != KeyField && t.Key != KeyConnection {
			return fmt.Errorf("connector %s: a received trigger is keyed by a field or by connection, not %q", s.ID, t.Key)
		}
		if t.Key == KeyConnection && s.Connection == "" {
			return fmt.Errorf("connector %s: a trigger keyed by connection names its connection type", s.ID)
		}
		if t.PollWhen != nil && (t.Key != KeyConnection || t.Poller == nil) {
			return fmt.Errorf("connector %s: PollWhen is for a trigger keyed by connection, with its Poller", s.ID)
		}
	case Poll:
		if t.Poller == nil {
			return fmt.Errorf("connector %s: a polled trigger needs its Poller", s.ID)
		}
		if t.Key != KeyOptions {
			return fmt.Errorf("connector %s: a polled trigger is keyed by its options, not %q", s.ID, t.Key)
		}
	case Clock:
		if s.Schedule == nil || t.Tick == nil {
			return fmt.Errorf("connector %s: a scheduled trigger needs Schedule and Tick", s.ID)
		}
		if t.Key != KeyRecipe {
			return fmt.Errorf("connector %s: a scheduled trigger is keyed by recipe, not %q", s.ID, t.Key)
		}
	default:
		return fmt.Errorf("connector %s: trigger kind %q is not receive, poll or schedule", s.ID, t.Kind)
	}
	for _, name := range []string{t.KeyField, t.DedupField} {
		if name == "" {
			continue
		}
		if _, ok := s.Field(name); !ok {
			return fmt.Errorf("connector %s: the trigger names field %q, which the spec does not have", s.ID, name)
		}
	}
	if t.Key == KeyField && t.KeyField == "" {
		return fmt.Errorf("connector %s: a trigger keyed by a field names it (KeyField)", s.ID)
	}
	if f, ok := s.Field(t.KeyField); ok && f.Type != String {
		return fmt.Errorf("connector %s: the key field %q is not a string", s.ID, t.KeyField)
	}
	if t.DedupField != "" && t.Key != KeyField {
		return fmt.Errorf("connector %s: only a trigger keyed by a field takes a dedup expression (DedupField); a %s trigger gives each event's DedupKey", s.ID, t.Kind)
	}
	if f, ok := s.Field(t.DedupField); ok && f.Type != Expression {
		return fmt.Errorf("connector %s: the dedup field %q is not an expression", s.ID, t.DedupField)
	}
	return nil
}

// IndexKey is the key under which the index files a recipe of spec s
// with connection conn and options with (secrets rendered); recipe is the
// recipe's name. Events of the trigger name the same key as their source.
func IndexKey(s *Spec, recipe, conn string, with Values) string {
	t := s.Trigger
	if t == nil {
		if conn != "" {
			return conn
		}
		return ""
	}
	switch t.Key {
	case KeyField:
		return with.String(t.KeyField)
	case KeyConnection:
		if t.PollWhen != nil && t.PollWhen(with) {
			return optionsKey(s, conn, with)
		}
		return conn
	case KeyRecipe:
		return recipe
	case KeyOptions:
		return optionsKey(s, conn, with)
	}
	return ""
}

// Polls reports whether a recipe of spec with options with is served by
// the trigger's Poller: a polled trigger's, or a received trigger's whose
// PollWhen says so.
func Polls(s *Spec, with Values) bool {
	t := s.Trigger
	return t != nil && (t.Kind == Poll || (t.PollWhen != nil && t.Poller != nil && t.PollWhen(with)))
}

// optionsKey is the key of a poller: the connection and the options,
// without the secrets, so that a rotated token keeps the poller and its
// cursor, and the key (in logs, as events' source) holds no hash of one.
func optionsKey(s *Spec, conn string, with Values) string {
	if secret := s.SecretFields(); len(secret) > 0 {
		rest := make(Values, len(with))
		for k, v := range with {
			if !slices.Contains(secret, k) {
				rest[k] = v
			}
		}
		with = rest
	}
	return PollKey(s.ID, conn, with)
}

// PollKey names one poller: a trigger type, a connection and options
// (a hash of their JSON, which sorts map keys). Secret options are hashed
// with the rest, so that the key changes with them but does not hold them.
func PollKey(typ, conn string, with Values) string {
	b, _ := json.Marshal(with)
	sum := sha256.Sum256(append([]byte(typ+"\x00"+conn+"\x00"), b...))
	return "poll:" + typ + ":" + conn + ":" + hex.EncodeToString(sum[:12])
}

// DefaultCompatible is Trigger.Compatible when a trigger sets none: every
// option but those declaring a shape must be equal.
func DefaultCompatible(s *Spec) func(a, b Values) error {
	return func(a, b Values) error {
		for _, f := range s.Fields {
			if f.Declares != nil {
				continue
			}
			ja, _ := json.Marshal(a[f.Name])
			jb, _ := json.Marshal(b[f.Name])
			if string(ja) != string(jb) {
				return fmt.Errorf("their %s options differ", f.Name)
			}
		}
		return nil
	}
}
