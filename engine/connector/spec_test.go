package connector_test

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

var noop = connector.ActionFunc(func(context.Context, *connector.Request) (map[string]any, error) { return nil, nil })

func field(name string, t connector.Type) connector.Field {
	return connector.Field{Name: name, Type: t, Description: "a field"}
}

func TestRegistryAdd(t *testing.T) {
	good := func() *connector.Spec {
		return &connector.Spec{ID: "svc.do_thing", Kind: connector.KindAction, Summary: "Do a thing", Action: noop,
			Fields: []connector.Field{field("name", connector.String)}}
	}
	tests := []struct {
		name    string
		mutate  func(s *connector.Spec)
		wantErr string
	}{
		{name: "valid action", mutate: func(*connector.Spec) {}},
		{name: "valid trigger without action", mutate: func(s *connector.Spec) { s.Kind, s.Action = connector.KindTrigger, nil }},
		{name: "id without a dot", mutate: func(s *connector.Spec) { s.ID = "svcdo" }, wantErr: `id "svcdo" is not <service>.<snake_case>`},
		{name: "id upper case", mutate: func(s *connector.Spec) { s.ID = "Svc.do" }, wantErr: "is not <service>.<snake_case>"},
		{name: "id camel case", mutate: func(s *connector.Spec) { s.ID = "svc.doThing" }, wantErr: "is not <service>.<snake_case>"},
		{name: "id with two dots", mutate: func(s *connector.Spec) { s.ID = "svc.a.b" }, wantErr: "is not <service>.<snake_case>"},
		{name: "id starting with a digit", mutate: func(s *connector.Spec) { s.ID = "svc.1a" }, wantErr: "is not <service>.<snake_case>"},
		{name: "empty id", mutate: func(s *connector.Spec) { s.ID = "" }, wantErr: "is not <service>.<snake_case>"},
		{name: "bad kind", mutate: func(s *connector.Spec) { s.Kind = "poller" }, wantErr: `kind "poller" is neither trigger nor action`},
		{name: "no summary", mutate: func(s *connector.Spec) { s.Summary = "" }, wantErr: "no summary"},
		{name: "action without implementation", mutate: func(s *connector.Spec) { s.Action = nil }, wantErr: "an action needs an implementation"},
		{name: "field name with dash", mutate: func(s *connector.Spec) { s.Fields = []connector.Field{field("bad-name", connector.String)} },
			wantErr: `field name "bad-name" is not snake_case`},
		{name: "field name camel case", mutate: func(s *connector.Spec) { s.Fields = []connector.Field{field("badName", connector.String)} },
			wantErr: `field name "badName" is not snake_case`},
		{name: "empty field name", mutate: func(s *connector.Spec) { s.Fields = []connector.Field{field("", connector.String)} },
			wantErr: `field name "" is not snake_case`},
		{name: "field declared twice", mutate: func(s *connector.Spec) {
			s.Fields = []connector.Field{field("a", connector.String), field("a", connector.Int)}
		}, wantErr: `field "a" declared twice`},
		{name: "field without type", mutate: func(s *connector.Spec) { s.Fields = []connector.Field{{Name: "a", Description: "d"}} },
			wantErr: `field "a" has no type`},
		{name: "field without description", mutate: func(s *connector.Spec) { s.Fields = []connector.Field{{Name: "a", Type: connector.String}} },
			wantErr: `field "a" has no description`},
		{name: "field with a bad pattern", mutate: func(s *connector.Spec) {
			s.Fields = []connector.Field{{Name: "a", Type: connector.String, Description: "d", Pattern: "("}}
		}, wantErr: `field "a" pattern`},
		{name: "field with a default of the wrong type", mutate: func(s *connector.Spec) {
			s.Fields = []connector.Field{{Name: "a", Type: connector.Int, Description: "d", Default: "many"}}
		}, wantErr: `field "a" default: want an integer`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := connector.NewRegistry()
			s := good()
			tc.mutate(s)
			err := reg.Add(s)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				_, found := reg.Lookup(s.ID)
				require.False(t, found, "a rejected spec must not be registered")
				return
			}
			require.NoError(t, err)
			got, found := reg.Lookup(s.ID)
			require.True(t, found)
			require.Same(t, s, got)
		})
	}
}

func TestRegistryAddDuplicate(t *testing.T) {
	reg := connector.NewRegistry()
	s := &connector.Spec{ID: "svc.thing", Kind: connector.KindTrigger, Summary: "s"}
	require.NoError(t, reg.Add(s))
	err := reg.Add(&connector.Spec{ID: "svc.thing", Kind: connector.KindTrigger, Summary: "other"})
	require.ErrorContains(t, err, "svc.thing: registered twice")
	got, _ := reg.Lookup("svc.thing")
	require.Same(t, s, got, "the first registration wins")
}

func TestRegistryAddCoercesDefaults(t *testing.T) {
	reg := connector.NewRegistry()
	s := &connector.Spec{ID: "svc.thing", Kind: connector.KindTrigger, Summary: "s", Fields: []connector.Field{
		{Name: "timeout", Type: connector.Duration, Description: "d", Default: "30s"},
		{Name: "count", Type: connector.Int, Description: "d", Default: 3},
	}}
	require.NoError(t, reg.Add(s))
	f, _ := s.Field("timeout")
	require.Equal(t, 30*time.Second, f.Default)
	f, _ = s.Field("count")
	require.Equal(t, int64(3), f.Default)
}

func TestRegistryAddConnection(t *testing.T) {
	tests := []struct {
		name    string
		conn    *connector.ConnectionSpec
		wantErr string
	}{
		{name: "valid", conn: &connector.ConnectionSpec{Type: "svc", Fields: []connector.Field{field("token", connector.String)}}},
		{name: "bad type", conn: &connector.ConnectionSpec{Type: "My-Svc"}, wantErr: `connection type "My-Svc" is not snake_case`},
		{name: "bad field", conn: &connector.ConnectionSpec{Type: "svc", Fields: []connector.Field{field("Token", connector.String)}},
			wantErr: `field name "Token" is not snake_case`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := connector.NewRegistry()
			err := reg.AddConnection(tc.conn)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			got, ok := reg.Connection(tc.conn.Type)
			require.True(t, ok)
			require.Same(t, tc.conn, got)
			require.ErrorContains(t, reg.AddConnection(&connector.ConnectionSpec{Type: tc.conn.Type}), "registered twice")
		})
	}
}

func TestRegistryListing(t *testing.T) {
	reg := connector.NewRegistry()
	for _, s := range []*connector.Spec{
		{ID: "b.act", Kind: connector.KindAction, Summary: "s", Action: noop},
		{ID: "a.trig", Kind: connector.KindTrigger, Summary: "s"},
		{ID: "a.act", Kind: connector.KindAction, Summary: "s", Action: noop},
	} {
		require.NoError(t, reg.Add(s))
	}
	require.NoError(t, reg.AddConnection(&connector.ConnectionSpec{Type: "zed"}))
	require.NoError(t, reg.AddConnection(&connector.ConnectionSpec{Type: "alpha"}))
	tests := []struct {
		name string
		kind connector.Kind
		want []string
	}{
		{"all", "", []string{"a.act", "a.trig", "b.act"}},
		{"actions", connector.KindAction, []string{"a.act", "b.act"}},
		{"triggers", connector.KindTrigger, []string{"a.trig"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, reg.IDs(tc.kind))
		})
	}
	conns := reg.Connections()
	require.Len(t, conns, 2)
	require.Equal(t, "alpha", conns[0].Type)
	require.Equal(t, "zed", conns[1].Type)
}

func TestSpecHelpers(t *testing.T) {
	s := &connector.Spec{ID: "svc.thing", Fields: []connector.Field{
		field("a", connector.String),
		{Name: "token", Type: connector.String, Description: "d", Secret: true},
		field("b", connector.Int),
	}}
	require.Equal(t, "svc", s.Service())
	require.Equal(t, []string{"a", "token", "b"}, s.FieldNames())
	require.Equal(t, []string{"token"}, s.SecretFields())
	f, ok := s.Field("b")
	require.True(t, ok)
	require.Equal(t, connector.Int, f.Type)
	_, ok = s.Field("c")
	require.False(t, ok)
}

// Register panics on a malformed spec: a programming error found at init.
func TestRegisterPanics(t *testing.T) {
	require.Panics(t, func() { connector.Register(&connector.Spec{ID: "Bad"}) })
	require.Panics(t, func() { connector.RegisterConnection(&connector.ConnectionSpec{Type: "Bad Type"}) })
}
