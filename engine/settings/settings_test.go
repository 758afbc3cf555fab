package settings

import (
	"reflect"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

// TestSpecsMatchTheStructs checks that every field of Runtime is
// described once, and every description has a field of its type.
func TestSpecsMatchTheStructs(t *testing.T) {
	described := map[string]bool{}
	for _, sec := range Sections {
		for _, s := range sec.Settings {
			name := sec.Name + "." + s.Key
			t.Run(name, func(t *testing.T) {
				require.False(t, described[name], "described twice")
				described[name] = true
				require.NotEmpty(t, s.Description)
				var r Runtime
				f := field(&r, sec.Name, s.Key)
				switch s.Type {
				case connector.String:
					require.Equal(t, reflect.String, f.Kind())
				case connector.Int:
					require.Contains(t, []reflect.Kind{reflect.Int, reflect.Int64}, f.Kind())
					require.Less(t, s.Min, s.Max)
				case connector.Duration:
					require.Equal(t, reflect.TypeFor[time.Duration](), f.Type())
				default:
					require.Failf(t, "a type settings do not take", "%s", s.Type)
				}
			})
		}
	}
	rt := reflect.TypeFor[Runtime]()
	n := 0
	for i := range rt.NumField() {
		sec := rt.Field(i)
		for j := range sec.Type.NumField() {
			name := sec.Tag.Get("yaml") + "." + sec.Type.Field(j).Tag.Get("yaml")
			require.True(t, described[name], "%s has no description", name)
			n++
		}
	}
	require.Len(t, described, n)
}

// TestWithDefaults checks which zero values take their default: those
// that must be positive, not commit_delay (0 commits at once) nor
// gc_percent (GCPercent leaves Go's setting alone for it).
func TestWithDefaults(t *testing.T) {
	d := Default()
	tests := []struct {
		name string
		in   Runtime
		want func(r *Runtime)
	}{
		{name: "all zero", in: Runtime{}, want: func(r *Runtime) {
			*r = d
			r.Pipeline.CommitDelay = 0
			r.Pipeline.GCPercent = 0
		}},
		{name: "negative", in: Runtime{Retention: Retention{Failed: -time.Hour}, Pipeline: Pipeline{MaxInFlight: -1, CommitDelay: -1, GCPercent: -1}},
			want: func(r *Runtime) {
				*r = d
				r.Pipeline.CommitDelay = -1
				r.Pipeline.GCPercent = -1
			}},
		{name: "set values stay", in: Runtime{Broker: Broker{Type: "nats", URL: "nats://x", AckWait: time.Second}, Limits: Limits{MaxBody: 10}},
			want: func(r *Runtime) {
				*r = d
				r.Broker.Type, r.Broker.URL, r.Broker.AckWait = "nats", "nats://x", time.Second
				r.Limits.MaxBody = 10
				r.Pipeline.CommitDelay, r.Pipeline.GCPercent = 0, 0
			}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want Runtime
			tt.want(&want)
			require.Equal(t, want, tt.in.WithDefaults())
		})
	}
}
