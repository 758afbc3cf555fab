package connector

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"sort"
	"strings"
	"sync"
	"time"
)

// Kind says whether a component starts runs or is a step in one.
type Kind string

// The component kinds.
const (
	KindTrigger Kind = "trigger"
	KindAction  Kind = "action"
)

// Type is the type of a `with` field or of a value in an event or output shape.
type Type string

// The field and shape types.
const (
	String     Type = "string"
	Int        Type = "integer"
	Number     Type = "number"
	Bool       Type = "boolean"
	Duration   Type = "duration"   // "30s", "1m30s"
	Object     Type = "object"     // a map with string keys
	StringMap  Type = "string_map" // a map of string to string (headers, labels)
	List       Type = "list"
	Expression Type = "expression" // an expr-lang expression evaluated against the event
	Any        Type = "any"
)

// Field describes one key of a component's `with` block or of a connection.
type Field struct {
	Name        string
	Type        Type
	Description string
	Required    bool
	Default     any
	Enum        []string
	Secret      bool   // never logged or recorded; in recipes it must come from secrets.NAME
	Example     any    // shown in docs and `sous connectors`
	Pattern     string // a regular expression a literal string value must match
	PatternHelp string // what Pattern means, for the error ("must start with /")
	// Check validates a literal value (already coerced to Type) at load time.
	Check func(v any) error
	// Declares, on a trigger's field, makes its value declare the shape of
	// a key of the event for the recipe that sets it (see Declaration).
	Declares *Declaration
	// Fields, on an Object field, describe its keys (a connection's oauth
	// block): each is checked as a field, unknown keys are refused, and
	// the schemas and docs list them as name.key.
	Fields []Field

	re *regexp.Regexp
}

// FieldError is a problem with one field of a `with` block.
type FieldError struct {
	Field   string // "" for the block as a whole
	Message string
}

func (e FieldError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return e.Field + ": " + e.Message
}

// Field returns the key of an object field with that name.
func (f *Field) Field(name string) (*Field, bool) {
	for i := range f.Fields {
		if f.Fields[i].Name == name {
			return &f.Fields[i], true
		}
	}
	return nil, false
}

// Spec describes one trigger or action, once.
type Spec struct {
	ID          string // <service>.<snake_case>
	Kind        Kind
	Summary     string // one line
	Description string // a paragraph for docs
	// Connection is the connection type the component uses ("" when none).
	Connection string
	// ConnectionRequired makes a recipe name a connection for this component.
	ConnectionRequired bool
	Fields             []Field
	// Shape is the event a trigger emits or the output an action returns.
	// Expressions are type-checked against it; nil means unknown (any).
	Shape *Shape
	// Validate checks the literal values of a `with` block together, after
	// each field was checked on its own. Values that are templates are absent.
	Validate func(with Values) []FieldError
	// Action runs the component; set for actions.
	Action Action
	// Schedule, for triggers that fire on a clock, returns the function
	// giving the next fire time after a time, from the trigger options.
	Schedule func(with Values) (Next func(time.Time) time.Time, err error)
	// Trigger, for triggers, says how their events come and how the index
	// keys their recipes (see the trigger contract in trigger.go). A
	// trigger without one starts runs only through the API.
	Trigger *Trigger
	// Channel ties the component to one of the runtime's delivery channels
	// (Zapier's REST hooks): an action that publishes to it (Outbox), or a
	// trigger whose recipes the channel starts. The runtime finds its
	// components by channel, never by ID.
	Channel *ChannelUse
}

// ChannelUse is how a component takes part in a delivery channel.
type ChannelUse struct {
	Name string // the channel ("zapier")
	// TopicField names the option whose literal value is the topic: what
	// an action publishes to (an event name), or what a trigger is started
	// by (an action name).
	TopicField string
	// InputsField, for a trigger, names the option declaring the input
	// fields the channel checks before it starts a run.
	InputsField string
}

// Service is the part of the ID before the dot.
func (s *Spec) Service() string {
	svc, _, _ := strings.Cut(s.ID, ".")
	return svc
}

// Field returns the field with that name.
func (s *Spec) Field(name string) (*Field, bool) {
	for i := range s.Fields {
		if s.Fields[i].Name == name {
			return &s.Fields[i], true
		}
	}
	return nil, false
}

// FieldNames lists the names of the spec's fields, in order.
func (s *Spec) FieldNames() []string {
	names := make([]string, len(s.Fields))
	for i, f := range s.Fields {
		names[i] = f.Name
	}
	return names
}

// SecretFields lists the names of the fields marked secret.
func (s *Spec) SecretFields() []string {
	var names []string
	for _, f := range s.Fields {
		if f.Secret {
			names = append(names, f.Name)
		}
	}
	return names
}

// ConnectionSpec describes a type of connection in the config file.
type ConnectionSpec struct {
	Type    string
	Summary string
	Fields  []Field
	// OneOf lists sets of fields of which one must be set whole (a token,
	// or an oauth app): the config parser and the config schema both
	// check it.
	OneOf [][]string
	// Requires lists, for a field, the fields it needs beside it (a
	// service account's subject needs its key file).
	Requires map[string][]string
	// Authorize builds, from a connection's values, what adds its
	// credentials to a request (StaticAuthorize when nil: token as a
	// bearer token). nil and no error: requests go out as they are.
	Authorize func(with Values) (Authorize, error)
	// OAuth says how the type's provider departs from the plain
	// authorization-code flow; nil for a type without an oauth block.
	OAuth *OAuthSpec
	// Identity makes the service's cheapest call that says who the
	// connection acts as (`sous connections test`), through its client.
	Identity func(ctx context.Context, client *Client, with Values) (*Identity, error)
	// TokenFrom names a field holding another connection's name whose
	// OAuth access token this one logs in with (imap and smtp's
	// oauth_connection, for XOAUTH2): the runtime sets the connection's
	// AccessToken from that connection's client.
	TokenFrom string
}

// Identity is who a connection acts as.
type Identity struct {
	// Account names it for a person: the Slack team, the Google email,
	// the Jira site and user...
	Account string
	// Extra holds identifiers the connection needs beside its token
	// (Slack's team id, Atlassian's cloud id): never a secret.
	Extra map[string]string
}

// OAuthSpec is what a provider's authorization-code flow needs beyond the
// oauth block's client, scopes and endpoints.
type OAuthSpec struct {
	// AuthParams are added to the authorization URL: Google's
	// access_type=offline and prompt=consent, Atlassian's audience,
	// Dropbox's token_access_type=offline.
	AuthParams map[string]string
	// CredentialsInHeader sends the client id and secret to the token
	// endpoint as HTTP basic authentication (Slack, Zoom); false sends
	// them in the form (Google, Microsoft, Atlassian, Dropbox). Set, not
	// detected: a detection retries a failed exchange, which would replay
	// a single-use code.
	CredentialsInHeader bool
	// Endpoints, when set, adjusts the oauth block's endpoints to the
	// connection's other values (Microsoft's tenant in place of common).
	Endpoints func(with Values, authURL, tokenURL string) (string, string)
	// SelfMinted reports whether a connection's values mint its tokens
	// without a person (Zoom's account_credentials grant, a Google service
	// account): no `sous connect`, no stored token; the type's Authorize
	// mints and renews them.
	SelfMinted func(with Values) bool
	// Revoke, where the provider has a revocation endpoint, revokes the
	// connection's grant: token is the refresh token when there is one,
	// else the access token; client carries the access token.
	Revoke func(ctx context.Context, client *Client, with Values, token string) error
}

// Check checks a connection's fields together (OneOf, Requires), after
// each was checked on its own.
func (c *ConnectionSpec) Check(with Values) []FieldError {
	var errs []FieldError
	if len(c.OneOf) > 0 {
		ok := false
		var alts []string
		for _, set := range c.OneOf {
			all := true
			for _, name := range set {
				all = all && with.Has(name)
			}
			ok = ok || all
			alts = append(alts, strings.Join(set, " and "))
		}
		if !ok {
			errs = append(errs, FieldError{Message: "set " + strings.Join(alts, ", or ")})
		}
	}
	names := make([]string, 0, len(c.Requires))
	for name := range c.Requires {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		if !with.Has(name) {
			continue
		}
		for _, need := range c.Requires[name] {
			if !with.Has(need) {
				errs = append(errs, FieldError{Field: name, Message: "needs " + need + " too"})
			}
		}
	}
	return errs
}

// Field returns the field with that name.
func (c *ConnectionSpec) Field(name string) (*Field, bool) {
	for i := range c.Fields {
		if c.Fields[i].Name == name {
			return &c.Fields[i], true
		}
	}
	return nil, false
}

// Connection is a configured, resolved connection handed to an action.
type Connection struct {
	Name   string
	Type   string
	Values Values
	// Client is the connection's shared client (see NewClient), when the
	// runtime built one: triggers and actions call the service through it.
	Client *Client
	// AccessToken, when set, gives a current OAuth access token for the
	// connection, refreshed as needed: for protocols that carry the token
	// themselves rather than over HTTP (IMAP and SMTP's XOAUTH2 through an
	// oauth_connection). nil when the connection has no OAuth token.
	AccessToken func(ctx context.Context) (string, error)
}

// Request is what an action is called with.
type Request struct {
	Recipe string
	RunID  string
	Step   string
	// With holds the rendered, coerced `with` values, defaults applied.
	With Values
	// Connection is nil for components that need none.
	Connection *Connection
	// IdempotencyKey is stable across the attempts of one step of one run.
	IdempotencyKey string
	// Attempt is this attempt's number, from 1. Above 1, an earlier
	// attempt of the step ran and may have reached the service with its
	// answer lost: an action whose service takes no idempotency key looks
	// for what that attempt made (by IdempotencyKey) before making it
	// again. A step a crash interrupted before its attempt was recorded
	// starts again at 1. Zero (a caller that does not count) means 1.
	Attempt int
	// Run is the run so far, as the step's templates see it, for an action
	// that forwards it (zapier.notify's forward_run): run ({id, recipe,
	// attempt}), event, trigger, vars, and steps (the earlier steps'
	// outputs and statuses). Nil outside a run. Read it, never change it.
	Run    map[string]any
	Logger *slog.Logger
}

// Action performs one operation. Errors should be built with Permanent or
// Retryable so the runner knows what to do; the output map is what
// `steps.<id>.output` exposes to later steps.
type Action interface {
	Run(ctx context.Context, req *Request) (map[string]any, error)
}

// ActionFunc adapts a function to Action.
type ActionFunc func(ctx context.Context, req *Request) (map[string]any, error)

// Run calls f.
func (f ActionFunc) Run(ctx context.Context, req *Request) (map[string]any, error) {
	return f(ctx, req)
}

var (
	idPattern    = regexp.MustCompile(`^[a-z][a-z0-9]*\.[a-z][a-z0-9_]*$`)
	fieldPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
)

// Registry holds every component and connection type. Connector packages
// register into Default from init.
type Registry struct {
	mu    sync.RWMutex
	specs map[string]*Spec
	conns map[string]*ConnectionSpec
	hooks map[string]*ReceiverSpec // by service
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{specs: map[string]*Spec{}, conns: map[string]*ConnectionSpec{}, hooks: map[string]*ReceiverSpec{}}
}

// Default is the registry the connector packages register into.
var Default = NewRegistry()

// Register adds specs to the default registry. It panics on a malformed or
// duplicate spec: that is a programming error found at init.
func Register(specs ...*Spec) {
	for _, s := range specs {
		if err := Default.Add(s); err != nil {
			panic(err)
		}
	}
}

// RegisterConnection adds a connection type to the default registry; it
// panics on a malformed or duplicate one.
func RegisterConnection(c *ConnectionSpec) {
	if err := Default.AddConnection(c); err != nil {
		panic(err)
	}
}

func checkFields(owner string, fields []Field) error {
	seen := map[string]bool{}
	for i := range fields {
		f := &fields[i]
		if !fieldPattern.MatchString(f.Name) {
			return fmt.Errorf("%s: field name %q is not snake_case", owner, f.Name)
		}
		if seen[f.Name] {
			return fmt.Errorf("%s: field %q declared twice", owner, f.Name)
		}
		seen[f.Name] = true
		if f.Type == "" {
			return fmt.Errorf("%s: field %q has no type", owner, f.Name)
		}
		if f.Description == "" {
			return fmt.Errorf("%s: field %q has no description", owner, f.Name)
		}
		if f.Pattern != "" {
			re, err := regexp.Compile(f.Pattern)
			if err != nil {
				return fmt.Errorf("%s: field %q pattern: %w", owner, f.Name, err)
			}
			f.re = re
		}
		if len(f.Fields) > 0 {
			if f.Type != Object {
				return fmt.Errorf("%s: field %q has keys (Fields) but is not an object", owner, f.Name)
			}
			if err := checkFields(owner+" field "+f.Name, f.Fields); err != nil {
				return err
			}
		}
		if f.Default != nil {
			v, err := Coerce(f.Type, f.Default)
			if err != nil {
				return fmt.Errorf("%s: field %q default: %w", owner, f.Name, err)
			}
			f.Default = v
		}
	}
	return nil
}

// Add registers a spec.
func (r *Registry) Add(s *Spec) error {
	if !idPattern.MatchString(s.ID) {
		return fmt.Errorf("connector: id %q is not <service>.<snake_case>", s.ID)
	}
	if s.Kind != KindTrigger && s.Kind != KindAction {
		return fmt.Errorf("connector %s: kind %q is neither trigger nor action", s.ID, s.Kind)
	}
	if s.Summary == "" {
		return fmt.Errorf("connector %s: no summary", s.ID)
	}
	if s.Kind == KindAction && s.Action == nil {
		return fmt.Errorf("connector %s: an action needs an implementation", s.ID)
	}
	if err := checkFields("connector "+s.ID, s.Fields); err != nil {
		return err
	}
	if err := checkTrigger(s); err != nil {
		return err
	}
	if c := s.Channel; c != nil {
		if c.Name == "" {
			return fmt.Errorf("connector %s: its channel has no name", s.ID)
		}
		for _, name := range []string{c.TopicField, c.InputsField} {
			if _, ok := s.Field(name); name != "" && !ok {
				return fmt.Errorf("connector %s: its channel names field %q, which the spec does not have", s.ID, name)
			}
		}
		if c.TopicField == "" {
			return fmt.Errorf("connector %s: its channel names no topic field", s.ID)
		}
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.specs[s.ID]; dup {
		return fmt.Errorf("connector %s: registered twice", s.ID)
	}
	r.specs[s.ID] = s
	return nil
}

// AddConnection registers a connection type.
func (r *Registry) AddConnection(c *ConnectionSpec) error {
	if !fieldPattern.MatchString(c.Type) {
		return fmt.Errorf("connection type %q is not snake_case", c.Type)
	}
	if err := checkFields("connection type "+c.Type, c.Fields); err != nil {
		return err
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.conns[c.Type]; dup {
		return fmt.Errorf("connection type %s: registered twice", c.Type)
	}
	r.conns[c.Type] = c
	return nil
}

// RegisterReceiver adds a service's webhook receiver to the default
// registry; it panics on a malformed or duplicate one.
func RegisterReceiver(rs *ReceiverSpec) {
	if err := Default.AddReceiver(rs); err != nil {
		panic(err)
	}
}

// AddReceiver registers the receiver of a service's webhooks.
func (r *Registry) AddReceiver(rs *ReceiverSpec) error {
	if !fieldPattern.MatchString(rs.Service) {
		return fmt.Errorf("receiver: service %q is not snake_case", rs.Service)
	}
	if rs.Receiver == nil {
		return fmt.Errorf("receiver %s: no implementation", rs.Service)
	}
	if rs.Connection == "" {
		return fmt.Errorf("receiver %s: no connection type to verify requests with", rs.Service)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.hooks[rs.Service]; dup {
		return fmt.Errorf("receiver %s: registered twice", rs.Service)
	}
	r.hooks[rs.Service] = rs
	return nil
}

// Receiver finds the webhook receiver of a service.
func (r *Registry) Receiver(service string) (*ReceiverSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	rs, ok := r.hooks[service]
	return rs, ok
}

// Lookup finds a spec by ID.
func (r *Registry) Lookup(id string) (*Spec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	s, ok := r.specs[id]
	return s, ok
}

// Connection finds a connection type.
func (r *Registry) Connection(typ string) (*ConnectionSpec, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	c, ok := r.conns[typ]
	return c, ok
}

// Specs lists the specs of a kind ("" for all), sorted by ID.
func (r *Registry) Specs(kind Kind) []*Spec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	var out []*Spec
	for _, s := range r.specs {
		if kind == "" || s.Kind == kind {
			out = append(out, s)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// IDs lists the IDs of a kind ("" for all), sorted.
func (r *Registry) IDs(kind Kind) []string {
	specs := r.Specs(kind)
	ids := make([]string, len(specs))
	for i, s := range specs {
		ids[i] = s.ID
	}
	return ids
}

// Connections lists the connection types, sorted.
func (r *Registry) Connections() []*ConnectionSpec {
	r.mu.RLock()
	defer r.mu.RUnlock()
	out := make([]*ConnectionSpec, 0, len(r.conns))
	for _, c := range r.conns {
		out = append(out, c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}
