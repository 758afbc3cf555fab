package pipeline

import (
	"errors"
	"testing"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

func TestRetryOnError(t *testing.T) {
	errFlaky := errors.New("flaky")
	for _, tc := range []struct {
		name     string
		failures int   // calls that fail before one succeeds
		err      error // what a failing call returns
		calls    int
		wantErr  error
	}{
		{name: "succeeds at once", failures: 0, err: errFlaky, calls: 1},
		{name: "succeeds on a retry", failures: 2, err: errFlaky, calls: 3},
		{name: "gives up after the retries", failures: 10, err: errFlaky, calls: 4, wantErr: errFlaky},
		{name: "does not retry what ShouldRetry refuses", failures: 10, err: errPermanent, calls: 1, wantErr: errPermanent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			calls := 0
			var delays []time.Duration
			last := time.Now()
			h := retryOnError(middleware.Retry{MaxRetries: 3, InitialInterval: time.Millisecond, MaxInterval: 4 * time.Millisecond, Multiplier: 2,
				ShouldRetry: func(p middleware.RetryParams) bool { return !errors.Is(p.Err, errPermanent) }})(
				func(msg *message.Message) ([]*message.Message, error) {
					calls++
					delays = append(delays, time.Since(last))
					last = time.Now()
					if calls <= tc.failures {
						return nil, tc.err
					}
					return []*message.Message{msg}, nil
				})
			out, err := h(message.NewMessage("1", nil))
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil && err != nil) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			if calls != tc.calls {
				t.Fatalf("handler ran %d times, want %d", calls, tc.calls)
			}
			if tc.wantErr == nil && len(out) != 1 {
				t.Fatalf("produced %d messages, want the handler's 1", len(out))
			}
			// every retry waits for the backoff (at least half the interval
			// with the default jitter): none runs the handler twice in a row
			for i, d := range delays[1:] {
				if d < 500*time.Microsecond {
					t.Fatalf("retry %d came after %v, before its backoff", i+1, d)
				}
			}
		})
	}
}
