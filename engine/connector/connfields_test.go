package connector_test

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

func TestParseRate(t *testing.T) {
	tests := []struct {
		in      string
		want    connector.Rate
		wantErr string
	}{
		{in: "10/s", want: connector.Rate{PerSecond: 10, Burst: 10}},
		{in: "50/min", want: connector.Rate{PerSecond: 50.0 / 60, Burst: 1}},
		{in: "50/min burst 5", want: connector.Rate{PerSecond: 50.0 / 60, Burst: 5}},
		{in: " 3600 / hour ", want: connector.Rate{PerSecond: 1, Burst: 1}},
		{in: "0.5/s", want: connector.Rate{PerSecond: 0.5, Burst: 1}},
		{in: "10", wantErr: "is not a rate"},
		{in: "10/day", wantErr: "is not a rate"},
		{in: "0/s", wantErr: "more than 0"},
		{in: "5/s burst 0", wantErr: "at least 1"},
		{in: "-1/s", wantErr: "is not a rate"},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := connector.ParseRate(tc.in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
			require.InDelta(t, tc.want.PerSecond, got.PerSecond, 1e-9)
			require.Equal(t, tc.want.Burst, got.Burst)
		})
	}
}

func TestObjectFields(t *testing.T) {
	f := connector.OAuthField([]string{"a", "b"}, "https://auth.example/authorize", "https://auth.example/token")
	reg := connector.NewRegistry()
	require.NoError(t, reg.AddConnection(&connector.ConnectionSpec{Type: "acme", Fields: []connector.Field{f}}))
	f = reg.Connections()[0].Fields[0] // as registered: defaults coerced
	tests := []struct {
		name    string
		in      map[string]any
		want    map[string]any
		wantErr string
	}{
		{name: "defaults applied", in: map[string]any{"client_id": "cid", "client_secret": "shh-secret"},
			want: map[string]any{"client_id": "cid", "client_secret": "shh-secret", "scopes": []any{"a", "b"},
				"auth_url": "https://auth.example/authorize", "token_url": "https://auth.example/token"}},
		{name: "overrides", in: map[string]any{"client_id": "cid", "scopes": []any{"x"}, "token_url": "http://127.0.0.1:9/token"},
			want: map[string]any{"client_id": "cid", "scopes": []any{"x"}, "auth_url": "https://auth.example/authorize",
				"token_url": "http://127.0.0.1:9/token"}},
		{name: "an unknown key", in: map[string]any{"client_id": "cid", "clientsecret": "x"}, wantErr: `unknown key "clientsecret" (known: client_id, client_secret`},
		{name: "a missing required key", in: map[string]any{"client_secret": "x"}, wantErr: `missing required key "client_id"`},
		{name: "a bad url", in: map[string]any{"client_id": "cid", "auth_url": "ftp://x"}, wantErr: "auth_url: \"ftp://x\" must start with http"},
		{name: "a secret that does not fit is not echoed", in: map[string]any{"client_id": "cid", "client_secret": map[string]any{"v": "hunter2-secret"}},
			wantErr: "client_secret: the value does not fit (string)"},
		{name: "not a mapping", in: nil, wantErr: "want"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var in any = tc.in
			if tc.in == nil {
				in = "text"
			}
			got, err := f.CheckValue(in)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.NotContains(t, err.Error(), "hunter2")
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
	t.Run("keys on a field that is not an object are refused", func(t *testing.T) {
		err := connector.NewRegistry().AddConnection(&connector.ConnectionSpec{Type: "bad", Fields: []connector.Field{
			{Name: "x", Type: connector.String, Description: "d", Fields: []connector.Field{{Name: "y", Type: connector.String, Description: "d"}}}}})
		require.ErrorContains(t, err, `field "x" has keys (Fields) but is not an object`)
	})
}

func TestConnectionCheck(t *testing.T) {
	c := &connector.ConnectionSpec{Type: "acme",
		OneOf:    [][]string{{"base_url", "email", "api_token"}, {"oauth"}, {"token"}},
		Requires: map[string][]string{"subject": {"key_file"}, "email": {"api_token"}}}
	tests := []struct {
		name string
		with connector.Values
		want []string
	}{
		{"a token", connector.Values{"token": "t"}, nil},
		{"a whole set", connector.Values{"base_url": "u", "email": "e", "api_token": "a"}, nil},
		{"half a set", connector.Values{"base_url": "u", "email": "e"}, []string{
			"set base_url and email and api_token, or oauth, or token", "email: needs api_token too"}},
		{"nothing", connector.Values{}, []string{"set base_url and email and api_token, or oauth, or token"}},
		{"a field without what it needs", connector.Values{"token": "t", "subject": "s"}, []string{"subject: needs key_file too"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var got []string
			for _, fe := range c.Check(tc.with) {
				got = append(got, fe.Error())
			}
			require.Equal(t, tc.want, got)
		})
	}
}

// FuzzParseRate: any text is a rate or an error, never a panic, and a rate
// is positive with a burst of at least one.
func FuzzParseRate(f *testing.F) {
	for _, s := range []string{"10/s", "50/min burst 5", "3600 / hour", "0.5/s", "99999999999999999999999/s burst 99999999999", "/s", "1/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := connector.ParseRate(s)
		if err != nil {
			return
		}
		if !(r.PerSecond > 0) || r.Burst < 1 {
			t.Fatalf("%q gave %+v", s, r)
		}
	})
}
