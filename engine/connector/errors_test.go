package connector_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

func TestClassify(t *testing.T) {
	base := errors.New("boom")
	tests := []struct {
		name       string
		err        error
		nilResult  bool
		reason     connector.Reason
		retryable  bool
		retryAfter time.Duration
		message    string
		cause      error
	}{
		{name: "nil", err: nil, nilResult: true},
		{name: "permanent", err: connector.Permanent(connector.ReasonAuth, base),
			reason: connector.ReasonAuth, message: "boom (permanent, auth)", cause: base},
		{name: "retryable with retry-after", err: connector.Retryable(connector.ReasonRateLimited, 3*time.Second, base),
			reason: connector.ReasonRateLimited, retryable: true, retryAfter: 3 * time.Second, message: "boom (retryable, rate_limited)", cause: base},
		{name: "wrapped connector error", err: fmt.Errorf("post message: %w", connector.Permanent(connector.ReasonClientError, base)),
			reason: connector.ReasonClientError, message: "boom (permanent, client_error)", cause: base},
		{name: "plain error is retryable unknown", err: base, reason: "unknown", retryable: true, message: "boom (retryable, unknown)", cause: base},
		{name: "context deadline is retryable unknown", err: context.DeadlineExceeded, reason: "unknown", retryable: true, cause: context.DeadlineExceeded},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ce := connector.Classify(tc.err)
			if tc.nilResult {
				require.Nil(t, ce)
				return
			}
			require.NotNil(t, ce)
			require.Equal(t, tc.reason, ce.Reason)
			require.Equal(t, tc.retryable, ce.Retryable)
			require.Equal(t, tc.retryAfter, ce.RetryAfter)
			if tc.cause != nil {
				require.ErrorIs(t, ce, tc.cause, "the cause stays reachable")
			}
			if tc.message != "" {
				require.Equal(t, tc.message, ce.Error())
			}
		})
	}
}

func TestErrorUnwrap(t *testing.T) {
	err := connector.Retryable(connector.ReasonTimeout, 0, fmt.Errorf("call: %w", context.DeadlineExceeded))
	require.ErrorIs(t, err, context.DeadlineExceeded)
	var ce *connector.Error
	require.ErrorAs(t, fmt.Errorf("outer: %w", err), &ce)
	require.Equal(t, connector.ReasonTimeout, ce.Reason)
}
