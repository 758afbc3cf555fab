package connector

import (
	"errors"
	"fmt"
	"time"
)

// Reason labels why a connector call failed. Reasons are analytics labels.
type Reason string

// The reasons every connector uses.
const (
	ReasonRateLimited Reason = "rate_limited"
	ReasonServerError Reason = "server_error"
	ReasonAuth        Reason = "auth"
	ReasonClientError Reason = "client_error"
	ReasonTimeout     Reason = "timeout"
	ReasonNetwork     Reason = "network"
	ReasonInvalid     Reason = "invalid_input"
	// ReasonNotFound: the service has no such thing (an issue, a channel,
	// a file, an event): HTTP 404 or 410, or the service's own error for it.
	ReasonNotFound Reason = "not_found"
	// ReasonConflict: the service refused the change for the state it is
	// in (HTTP 409, a name taken).
	ReasonConflict Reason = "conflict"
)

// Error is a connector failure that says whether retrying may help.
type Error struct {
	Reason     Reason
	Retryable  bool
	RetryAfter time.Duration // a hint from the service (Retry-After); zero when none
	Err        error
}

func (e *Error) Error() string {
	kind := "permanent"
	if e.Retryable {
		kind = "retryable"
	}
	return fmt.Sprintf("%s (%s, %s)", e.Err, kind, e.Reason)
}

func (e *Error) Unwrap() error { return e.Err }

// Permanent wraps err as an error that retrying will not fix.
func Permanent(reason Reason, err error) error {
	return &Error{Reason: reason, Err: err}
}

// Retryable wraps err as an error worth retrying, after retryAfter when the
// service asked for a delay.
func Retryable(reason Reason, retryAfter time.Duration, err error) error {
	return &Error{Reason: reason, Retryable: true, RetryAfter: retryAfter, Err: err}
}

// Classify returns the connector error inside err. An error that is not a
// connector error is treated as retryable with reason "unknown", because an
// unclassified failure (a dropped connection, say) is usually transient.
func Classify(err error) *Error {
	if err == nil {
		return nil
	}
	var ce *Error
	if errors.As(err, &ce) {
		return ce
	}
	return &Error{Reason: "unknown", Retryable: true, Err: err}
}
