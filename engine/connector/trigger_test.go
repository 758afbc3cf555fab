package connector_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

var (
	noReceive = connector.ReceiverFunc(func(context.Context, *connector.Incoming) (*connector.Received, error) { return nil, nil })
	noPoll    = connector.PollerFunc(func(context.Context, *connector.PollRequest) (*connector.PollResult, error) { return nil, nil })
	noTick    = func(time.Time, time.Time) map[string]any { return nil }
	everyHour = func(connector.Values) (func(time.Time) time.Time, error) {
		return func(t time.Time) time.Time { return t.Add(time.Hour) }, nil
	}
)

// triggerSpec is a trigger spec with a path, an id expression and a
// string option, on connection type svc, declaring tr.
func triggerSpec(tr *connector.Trigger) *connector.Spec {
	return &connector.Spec{ID: "svc.thing_happened", Kind: connector.KindTrigger, Summary: "A thing happened", Connection: "svc",
		Fields:  []connector.Field{field("path", connector.String), field("id", connector.Expression), field("channel", connector.String)},
		Trigger: tr}
}

// TestRegistryAddTrigger: Registry.Add refuses a spec whose Trigger is
// malformed, saying what is wrong, and registers a well-formed one.
func TestRegistryAddTrigger(t *testing.T) {
	tests := []struct {
		name    string
		spec    func() *connector.Spec
		wantErr string
	}{
		{name: "no trigger", spec: func() *connector.Spec { return triggerSpec(nil) }},
		{name: "receive keyed by a field", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "path", Receiver: noReceive})
		}},
		{name: "receive keyed by connection", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection})
		}},
		{name: "poll keyed by options", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: noPoll})
		}},
		{name: "receive keyed by connection, polling when asked", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection, Poller: noPoll,
				PollWhen: func(connector.Values) bool { return true }})
		}},
		{name: "a channel naming its topic field", spec: func() *connector.Spec {
			s := triggerSpec(nil)
			s.Channel = &connector.ChannelUse{Name: "zapier", TopicField: s.Fields[0].Name}
			return s
		}},
		{name: "a channel naming a field the spec lacks", spec: func() *connector.Spec {
			s := triggerSpec(nil)
			s.Channel = &connector.ChannelUse{Name: "zapier", TopicField: "nope"}
			return s
		}, wantErr: `its channel names field "nope"`},
		{name: "a channel without a name", spec: func() *connector.Spec {
			s := triggerSpec(nil)
			s.Channel = &connector.ChannelUse{TopicField: s.Fields[0].Name}
			return s
		}, wantErr: "its channel has no name"},
		{name: "polling when asked, without a poller", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection,
				PollWhen: func(connector.Values) bool { return true }})
		}, wantErr: "PollWhen is for a trigger keyed by connection, with its Poller"},
		{name: "clock keyed by recipe", spec: func() *connector.Spec {
			s := triggerSpec(&connector.Trigger{Kind: connector.Clock, Key: connector.KeyRecipe, Tick: noTick})
			s.Schedule = everyHour
			return s
		}},
		{name: "dedup field that is an expression", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "path", Receiver: noReceive, DedupField: "id"})
		}},

		{name: "a key field that is not a string", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "id", Receiver: noReceive})
		}, wantErr: `the key field "id" is not a string`},
		{name: "a dedup expression on a poller", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: noPoll, DedupField: "id"})
		}, wantErr: "only a trigger keyed by a field takes a dedup expression"},
		{name: "receive keyed by a field without its receiver", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "path"})
		}, wantErr: "connector svc.thing_happened: a trigger keyed by a field needs its Receiver"},
		{name: "receive keyed by a field without KeyField", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, Receiver: noReceive})
		}, wantErr: "a trigger keyed by a field names it (KeyField)"},
		{name: "receive keyed by options", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyOptions, Receiver: noReceive})
		}, wantErr: `a received trigger is keyed by a field or by connection, not "options"`},
		{name: "receive keyed by nothing", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive})
		}, wantErr: `a received trigger is keyed by a field or by connection, not ""`},
		{name: "receive keyed by connection without a connection type", spec: func() *connector.Spec {
			s := triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection})
			s.Connection = ""
			return s
		}, wantErr: "a trigger keyed by connection names its connection type"},
		{name: "poll without a poller", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions})
		}, wantErr: "a polled trigger needs its Poller"},
		{name: "poll keyed by connection", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyConnection, Poller: noPoll})
		}, wantErr: `a polled trigger is keyed by its options, not "connection"`},
		{name: "poll keyed by a field", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyField, KeyField: "path", Poller: noPoll})
		}, wantErr: `a polled trigger is keyed by its options, not "field"`},
		{name: "poll keyed by nothing", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Poll, Poller: noPoll})
		}, wantErr: `a polled trigger is keyed by its options, not ""`},
		{name: "clock without a schedule", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Clock, Key: connector.KeyRecipe, Tick: noTick})
		}, wantErr: "a scheduled trigger needs Schedule and Tick"},
		{name: "clock without a tick", spec: func() *connector.Spec {
			s := triggerSpec(&connector.Trigger{Kind: connector.Clock, Key: connector.KeyRecipe})
			s.Schedule = everyHour
			return s
		}, wantErr: "a scheduled trigger needs Schedule and Tick"},
		{name: "clock keyed by options", spec: func() *connector.Spec {
			s := triggerSpec(&connector.Trigger{Kind: connector.Clock, Key: connector.KeyOptions, Tick: noTick})
			s.Schedule = everyHour
			return s
		}, wantErr: `a scheduled trigger is keyed by recipe, not "options"`},
		{name: "unknown kind", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: "push", Key: connector.KeyConnection})
		}, wantErr: `trigger kind "push" is not receive, poll or schedule`},
		{name: "no kind", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Key: connector.KeyConnection})
		}, wantErr: `trigger kind "" is not receive, poll or schedule`},
		{name: "key field the spec does not have", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "route", Receiver: noReceive})
		}, wantErr: `the trigger names field "route", which the spec does not have`},
		{name: "dedup field the spec does not have", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: noPoll, DedupField: "uid"})
		}, wantErr: `the trigger names field "uid", which the spec does not have`},
		{name: "dedup field that is not an expression", spec: func() *connector.Spec {
			return triggerSpec(&connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "path", Receiver: noReceive, DedupField: "channel"})
		}, wantErr: `the dedup field "channel" is not an expression`},
		{name: "trigger on an action", spec: func() *connector.Spec {
			s := triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: noPoll})
			s.Kind, s.Action = connector.KindAction, noop
			return s
		}, wantErr: "connector svc.thing_happened: an action declares no trigger"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := connector.NewRegistry()
			s := tc.spec()
			err := reg.Add(s)
			_, found := reg.Lookup(s.ID)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.False(t, found, "a spec with a malformed trigger must not be registered")
				return
			}
			require.NoError(t, err)
			require.True(t, found)
		})
	}
}

// TestRegistryAddReceiver: a service's receiver is registered once, under
// a snake_case service name, with an implementation and the connection
// type it verifies requests with.
func TestRegistryAddReceiver(t *testing.T) {
	good := func() *connector.ReceiverSpec {
		return &connector.ReceiverSpec{Service: "acme_chat", Connection: "acme", Receiver: noReceive}
	}
	tests := []struct {
		name    string
		mutate  func(rs *connector.ReceiverSpec)
		wantErr string
	}{
		{name: "valid", mutate: func(*connector.ReceiverSpec) {}},
		{name: "service with a dash", mutate: func(rs *connector.ReceiverSpec) { rs.Service = "acme-chat" },
			wantErr: `receiver: service "acme-chat" is not snake_case`},
		{name: "service with a slash", mutate: func(rs *connector.ReceiverSpec) { rs.Service = "acme/chat" },
			wantErr: `receiver: service "acme/chat" is not snake_case`},
		{name: "upper case service", mutate: func(rs *connector.ReceiverSpec) { rs.Service = "Acme" },
			wantErr: `receiver: service "Acme" is not snake_case`},
		{name: "no service", mutate: func(rs *connector.ReceiverSpec) { rs.Service = "" },
			wantErr: `receiver: service "" is not snake_case`},
		{name: "nil receiver", mutate: func(rs *connector.ReceiverSpec) { rs.Receiver = nil },
			wantErr: "receiver acme_chat: no implementation"},
		{name: "no connection type", mutate: func(rs *connector.ReceiverSpec) { rs.Connection = "" },
			wantErr: "receiver acme_chat: no connection type to verify requests with"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := connector.NewRegistry()
			rs := good()
			tc.mutate(rs)
			err := reg.AddReceiver(rs)
			got, found := reg.Receiver(rs.Service)
			if tc.wantErr != "" {
				require.EqualError(t, err, tc.wantErr)
				require.False(t, found, "a malformed receiver must not be registered")
				return
			}
			require.NoError(t, err)
			require.True(t, found)
			require.Same(t, rs, got)
		})
	}

	t.Run("duplicate", func(t *testing.T) {
		reg := connector.NewRegistry()
		first := good()
		require.NoError(t, reg.AddReceiver(first))
		require.EqualError(t, reg.AddReceiver(good()), "receiver acme_chat: registered twice")
		got, found := reg.Receiver("acme_chat")
		require.True(t, found)
		require.Same(t, first, got, "the first registration stays")
	})
	t.Run("unknown service", func(t *testing.T) {
		reg := connector.NewRegistry()
		require.NoError(t, reg.AddReceiver(good()))
		_, found := reg.Receiver("acme")
		require.False(t, found)
	})
}

// TestIndexKey: the index key of a recipe is what its trigger's Key says.
func TestIndexKey(t *testing.T) {
	with := connector.Values{"path": "/orders", "channel": "ops"}
	tests := []struct {
		name string
		tr   *connector.Trigger
		conn string
		want string
	}{
		{name: "keyed by field", tr: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "path"},
			conn: "acme", want: "/orders"},
		{name: "keyed by another field", tr: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyField, KeyField: "channel"},
			conn: "acme", want: "ops"},
		{name: "keyed by connection", tr: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection},
			conn: "acme", want: "acme"},
		{name: "keyed by recipe", tr: &connector.Trigger{Kind: connector.Clock, Key: connector.KeyRecipe},
			conn: "acme", want: "nightly"},
		{name: "keyed by options", tr: &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions},
			conn: "acme", want: connector.PollKey("svc.thing_happened", "acme", with)},
		{name: "keyed by connection, polling as its options ask", tr: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection,
			Poller: connector.PollerFunc(nil), PollWhen: func(w connector.Values) bool { return w.String("channel") == "ops" }},
			conn: "acme", want: connector.PollKey("svc.thing_happened", "acme", with)},
		{name: "keyed by connection, receiving as its options ask", tr: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection,
			Poller: connector.PollerFunc(nil), PollWhen: func(connector.Values) bool { return false }},
			conn: "acme", want: "acme"},
		{name: "no trigger, with a connection", conn: "acme", want: "acme"},
		{name: "no trigger, without a connection", want: ""},
		{name: "an unknown key", tr: &connector.Trigger{Kind: connector.Receive, Key: "header"}, conn: "acme", want: ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := triggerSpec(tc.tr)
			require.Equal(t, tc.want, connector.IndexKey(s, "nightly", tc.conn, with))
		})
	}
	t.Run("keyed by options leaves the secrets out", func(t *testing.T) {
		s := triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions})
		s.Fields = append(s.Fields, connector.Field{Name: "token", Type: connector.String, Secret: true, Description: "d"})
		one := connector.IndexKey(s, "nightly", "acme", connector.Values{"channel": "ops", "token": "s3cret-one"})
		two := connector.IndexKey(s, "nightly", "acme", connector.Values{"channel": "ops", "token": "s3cret-two"})
		require.Equal(t, one, two, "a rotated secret keeps the poller and its cursor")
		require.Equal(t, connector.PollKey(s.ID, "acme", connector.Values{"channel": "ops"}), one)
		require.NotEqual(t, one, connector.IndexKey(s, "nightly", "acme", connector.Values{"channel": "dev", "token": "s3cret-one"}))
	})
	t.Run("keyed by options names the type and connection", func(t *testing.T) {
		s := triggerSpec(&connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions})
		key := connector.IndexKey(s, "nightly", "acme", with)
		require.True(t, strings.HasPrefix(key, "poll:svc.thing_happened:acme:"), key)
		require.NotEqual(t, key, connector.IndexKey(s, "nightly", "acme", connector.Values{"path": "/other", "channel": "ops"}),
			"other options make another poller")
	})
}

// TestPollKey: one poller per type, connection and options: the key
// changes with any of them, not with how the options were built, and does
// not hold a secret option's value.
// TestPolls: a recipe is served by its trigger's poller when the trigger
// polls, or when its options ask a received trigger with PollWhen to.
func TestPolls(t *testing.T) {
	when := func(w connector.Values) bool { return w.Has("poll_interval") }
	tests := []struct {
		name string
		tr   *connector.Trigger
		with connector.Values
		want bool
	}{
		{"a polled trigger", &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions}, nil, true},
		{"a webhook", &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection}, connector.Values{"poll_interval": "1m"}, false},
		{"a webhook that may poll, asked to", &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection,
			Poller: connector.PollerFunc(nil), PollWhen: when}, connector.Values{"poll_interval": "1m"}, true},
		{"a webhook that may poll, not asked to", &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection,
			Poller: connector.PollerFunc(nil), PollWhen: when}, connector.Values{}, false},
		{"no trigger", nil, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, connector.Polls(triggerSpec(tc.tr), tc.with))
		})
	}
}

func TestPollKey(t *testing.T) {
	const secret = "xoxb-not-to-be-seen-4242"
	base := func() connector.Values {
		return connector.Values{"channel": "ops", "limit": int64(50), "token": secret, "labels": map[string]string{"a": "1", "b": "2"}}
	}
	baseKey := connector.PollKey("svc.item_created", "acme", base())

	t.Run("same options, same key", func(t *testing.T) {
		// built in another order: map order must not matter
		other := connector.Values{}
		other["labels"] = map[string]string{"b": "2", "a": "1"}
		other["token"] = secret
		other["limit"] = int64(50)
		other["channel"] = "ops"
		for range 5 {
			require.Equal(t, baseKey, connector.PollKey("svc.item_created", "acme", other))
		}
	})

	changes := []struct {
		name string
		typ  string
		conn string
		with func(v connector.Values)
	}{
		{name: "an option's value", with: func(v connector.Values) { v["channel"] = "dev" }},
		{name: "a number", with: func(v connector.Values) { v["limit"] = int64(51) }},
		{name: "an option added", with: func(v connector.Values) { v["since"] = "2026-01-01" }},
		{name: "an option removed", with: func(v connector.Values) { delete(v, "channel") }},
		{name: "a map entry", with: func(v connector.Values) { v["labels"] = map[string]string{"a": "1", "b": "3"} }},
		{name: "the secret", with: func(v connector.Values) { v["token"] = "xoxb-rotated" }},
		{name: "the connection", conn: "acme2"},
		{name: "no connection", conn: "-"},
		{name: "the type", typ: "svc.item_updated"},
		{name: "type and connection split elsewhere", typ: "svc.item_created:ac", conn: "me"},
	}
	for _, tc := range changes {
		t.Run("changes with "+tc.name, func(t *testing.T) {
			typ, conn, with := "svc.item_created", "acme", base()
			if tc.typ != "" {
				typ = tc.typ
			}
			switch tc.conn {
			case "":
			case "-":
				conn = ""
			default:
				conn = tc.conn
			}
			if tc.with != nil {
				tc.with(with)
			}
			require.NotEqual(t, baseKey, connector.PollKey(typ, conn, with))
		})
	}

	t.Run("holds no secret", func(t *testing.T) {
		for _, key := range []string{baseKey, connector.PollKey("svc.item_created", "", connector.Values{"token": secret})} {
			require.NotContains(t, key, secret)
			require.NotContains(t, key, "xoxb")
		}
		require.True(t, strings.HasPrefix(baseKey, "poll:svc.item_created:acme:"), baseKey)
	})
}

// TestDefaultCompatible: recipes sharing a receiver must set the same
// options, but for those declaring the event's shape.
func TestDefaultCompatible(t *testing.T) {
	s := &connector.Spec{ID: "svc.received", Kind: connector.KindTrigger, Summary: "Received",
		Fields: []connector.Field{
			field("path", connector.String),
			{Name: "secret", Type: connector.String, Secret: true, Description: "Signing secret"},
			{Name: "headers", Type: connector.StringMap, Description: "Headers"},
			{Name: "body_schema", Type: connector.Any, Description: "Body schema", Declares: &connector.Declaration{Key: "body"}},
			{Name: "body_sample", Type: connector.Any, Description: "Body sample", Declares: &connector.Declaration{Key: "body", Sample: true}},
		}}
	compatible := connector.DefaultCompatible(s)
	base := func() connector.Values {
		return connector.Values{"path": "/orders", "secret": "s1", "headers": map[string]string{"x": "1"},
			"body_schema": map[string]any{"type": "object"}, "body_sample": map[string]any{"a": 1.0}}
	}
	tests := []struct {
		name    string
		mutate  func(v connector.Values)
		wantErr string
	}{
		{name: "equal", mutate: func(connector.Values) {}},
		{name: "a declared schema differs", mutate: func(v connector.Values) { v["body_schema"] = map[string]any{"type": "array"} }},
		{name: "a declared sample differs", mutate: func(v connector.Values) { v["body_sample"] = []any{"x"} }},
		{name: "a declaring field is unset", mutate: func(v connector.Values) { delete(v, "body_schema") }},
		{name: "an option outside the spec differs", mutate: func(v connector.Values) { v["extra"] = true }},
		{name: "the secret differs", mutate: func(v connector.Values) { v["secret"] = "s2" }, wantErr: "their secret options differ"},
		{name: "a map differs", mutate: func(v connector.Values) { v["headers"] = map[string]string{"x": "2"} },
			wantErr: "their headers options differ"},
		{name: "an option is unset", mutate: func(v connector.Values) { delete(v, "headers") }, wantErr: "their headers options differ"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := base()
			tc.mutate(b)
			for _, pair := range [][2]connector.Values{{base(), b}, {b, base()}} {
				err := compatible(pair[0], pair[1])
				if tc.wantErr != "" {
					require.EqualError(t, err, tc.wantErr)
				} else {
					require.NoError(t, err)
				}
			}
		})
	}
}

// TestReject: a Rejection carries its status, code and formatted message,
// reads as "code: message", and is found through wrapping.
func TestReject(t *testing.T) {
	tests := []struct {
		name    string
		rej     *connector.Rejection
		status  int
		code    string
		message string
	}{
		{name: "formatted", rej: connector.Reject(http.StatusUnauthorized, "bad_signature", "the %s signature does not match", "X-Sig"),
			status: 401, code: "bad_signature", message: "the X-Sig signature does not match"},
		{name: "no arguments", rej: connector.Reject(http.StatusBadRequest, "bad_body", "the body is empty"),
			status: 400, code: "bad_body", message: "the body is empty"},
		{name: "a literal percent", rej: connector.Reject(http.StatusRequestEntityTooLarge, "too_large", "over %d%%", 100),
			status: 413, code: "too_large", message: "over 100%"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.status, tc.rej.Status)
			require.Equal(t, tc.code, tc.rej.Code)
			require.Equal(t, tc.message, tc.rej.Message)
			require.Nil(t, tc.rej.Header)
			require.EqualError(t, tc.rej, tc.code+": "+tc.message)
			var err error = fmt.Errorf("receive: %w", tc.rej)
			var got *connector.Rejection
			require.True(t, errors.As(err, &got))
			require.Same(t, tc.rej, got)
		})
	}
}

// TestJSONReply: a JSON reply carries its status, content type and the
// value's JSON; a value that does not encode is an error.
func TestJSONReply(t *testing.T) {
	tests := []struct {
		name   string
		status int
		v      any
		body   string
	}{
		{name: "object", status: http.StatusOK, v: map[string]string{"challenge": "abc"}, body: `{"challenge":"abc"}`},
		{name: "other status", status: http.StatusAccepted, v: []int{1, 2}, body: `[1,2]`},
		{name: "zero status stays zero", status: 0, v: "ok", body: `"ok"`},
		{name: "null", status: http.StatusOK, v: nil, body: `null`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reply, err := connector.JSONReply(tc.status, tc.v)
			require.NoError(t, err)
			require.Equal(t, tc.status, reply.Status)
			require.Equal(t, "application/json", reply.Header.Get("Content-Type"))
			require.JSONEq(t, tc.body, string(reply.Body))
		})
	}
	t.Run("a value JSON cannot hold", func(t *testing.T) {
		reply, err := connector.JSONReply(http.StatusOK, map[string]any{"c": make(chan int)})
		require.ErrorContains(t, err, "encode reply")
		require.Nil(t, reply)
	})
}
