package service

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/broker/nats/natstest"
)

// TestServeNATSStreamSettings: broker.max_age and broker.max_parked reach
// the JetStream stream, the runs bucket and the parked runs' consumer that
// `sous serve` sets up, and a process started later with other values
// changes them.
func TestServeNATSStreamSettings(t *testing.T) {
	url, prefix := natstest.NATS(t)
	nc, err := nats.Connect(url)
	require.NoError(t, err)
	defer nc.Close()
	js, err := nc.JetStream()
	require.NoError(t, err)
	for _, tc := range []struct {
		name      string
		maxAge    time.Duration
		maxParked int
	}{
		{"a new stream", 3 * 24 * time.Hour, 500},
		{"the same stream, started again with others", 10 * 24 * time.Hour, 2000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			set := testSettings()
			set.Broker = BrokerSettings{Type: "nats", URL: url, Prefix: prefix, AckWait: 30 * time.Second,
				MaxAge: tc.maxAge, MaxParked: tc.maxParked}
			r := startWith(t, t.TempDir(), t.TempDir(), set)
			defer func() { require.NoError(t, r.stop(t)) }()

			si, err := js.StreamInfo(prefix + "sous")
			require.NoError(t, err)
			require.Equal(t, tc.maxAge, si.Config.MaxAge, "the stream's MaxAge")
			kv, err := js.KeyValue(prefix + "sous_runs")
			require.NoError(t, err)
			st, err := kv.Status()
			require.NoError(t, err)
			require.Equal(t, tc.maxAge, st.TTL(), "the runs bucket's TTL")
			ci, err := js.ConsumerInfo(prefix+"sous", prefix+"sous_parked")
			require.NoError(t, err)
			require.Equal(t, tc.maxParked, ci.Config.MaxAckPending, "the parked runs' consumer")
		})
	}
}
