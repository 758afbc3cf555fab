package nats

import (
	"strings"
	"testing"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/stretchr/testify/require"
)

func TestLaterState(t *testing.T) {
	const (
		oneStep     = `{"next":1,"steps":[{"id":"a"}]}`
		oneStepMore = `{"next":1,"steps":[{"id":"a"}],"attempts":[{"number":1}]}`
		twoSteps    = `{"next":2,"steps":[{"id":"a"},{"id":"b"}]}`
	)
	tests := []struct {
		name, store, carried, want string
	}{
		{name: "nothing carried", store: oneStep, want: oneStep},
		{name: "nothing stored", carried: oneStep, want: oneStep},
		{name: "carried further along", store: oneStep, carried: twoSteps, want: twoSteps},
		{name: "stored further along", store: twoSteps, carried: oneStep, want: twoSteps},
		{name: "more attempts carried", store: oneStep, carried: oneStepMore, want: oneStepMore},
		{name: "a tie keeps the store's", store: oneStep, carried: `{"next":1,"steps":[{"id":"x"}]}`, want: oneStep},
		{name: "carried unreadable", store: oneStep, carried: `{`, want: oneStep},
		{name: "stored unreadable", store: `{`, carried: oneStep, want: oneStep},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a, b []byte
			if tt.store != "" {
				a = []byte(tt.store)
			}
			if tt.carried != "" {
				b = []byte(tt.carried)
			}
			require.Equal(t, tt.want, string(laterState(a, b)))
		})
	}
}

func TestCarryState(t *testing.T) {
	for _, tt := range []struct {
		name    string
		state   []byte
		carried bool
	}{
		{name: "a checkpoint", state: []byte(`{"next":1,"outputs":{"a":{"text":"line\nbreak"}}}`), carried: true},
		{name: "none", state: nil},
		{name: "too large", state: []byte(`{"x":"` + strings.Repeat("y", maxCarriedState) + `"}`)},
	} {
		t.Run(tt.name, func(t *testing.T) {
			msg := message.NewMessage("u", nil)
			// a stale checkpoint from an earlier pause is replaced or dropped
			msg.Metadata.Set(checkpointKey, "c3RhbGU=")
			carryState(msg.Metadata.Set, func(k string) { delete(msg.Metadata, k) }, tt.state)
			if !tt.carried {
				require.Nil(t, carriedState(msg))
				return
			}
			require.Equal(t, tt.state, carriedState(msg))
			require.NotContains(t, msg.Metadata.Get(checkpointKey), "\n", "a header value holds no line break")
		})
	}
	t.Run("not base64", func(t *testing.T) {
		msg := message.NewMessage("u", nil)
		msg.Metadata.Set(checkpointKey, "%%%")
		require.Nil(t, carriedState(msg))
	})
}

func TestRedactURL(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"nats://127.0.0.1:4222", "nats://127.0.0.1:4222"},
		{"nats://sous:s3cret@127.0.0.1:4222", "nats://sous:xxxxx@127.0.0.1:4222"},
		{"nats://tok3n@nats.example:4222", "nats://xxxxx@nats.example:4222"},
		{"nats://a:pw1@h1:4222, nats://b:pw2@h2:4222", "nats://a:xxxxx@h1:4222,nats://b:xxxxx@h2:4222"},
		{"nats://a:pw@h:4222/%zz", "(an unreadable URL)"},
	} {
		t.Run(tt.in, func(t *testing.T) {
			got := RedactURL(tt.in)
			require.Equal(t, tt.want, got)
			for _, secret := range []string{"s3cret", "tok3n", "pw1", "pw2", ":pw@"} {
				require.NotContains(t, got, secret)
			}
		})
	}
}
