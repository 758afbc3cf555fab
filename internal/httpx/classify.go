package httpx

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
)

// StatusError classifies an answer to method u: nil below 400, otherwise a
// connector error (see ClassifyStatus) whose message names the method, the
// URL without its query or user info (RedactURL), the status and the start
// of body, the part of the response body that was read.
func StatusError(method string, u *url.URL, resp *http.Response, body []byte) error {
	if resp.StatusCode < 400 {
		return nil
	}
	return ClassifyStatus(resp.StatusCode, resp.Header,
		fmt.Errorf("http %s %s: %s: %s", method, RedactURL(u), resp.Status, snippet(body)))
}

// ClassifyStatus wraps err, the failure of a call the service answered
// with status code and header, as a connector error: 429 is retryable
// rate_limited and 5xx retryable server_error, both after the answer's
// Retry-After; 408 is retryable timeout; 401 and 403 are permanent auth;
// 404 and 410 are permanent not_found; 409 is permanent conflict; any
// other code is permanent client_error. It is for an SDK's error that
// carries the status (a connector that sends its own requests uses
// StatusError); err's message is kept as it is.
func ClassifyStatus(code int, header http.Header, err error) error {
	switch {
	case code == http.StatusTooManyRequests:
		return connector.Retryable(connector.ReasonRateLimited, RetryAfter(header.Get("Retry-After"), time.Now()), err)
	case code >= 500:
		return connector.Retryable(connector.ReasonServerError, RetryAfter(header.Get("Retry-After"), time.Now()), err)
	case code == http.StatusUnauthorized || code == http.StatusForbidden:
		return connector.Permanent(connector.ReasonAuth, err)
	case code == http.StatusRequestTimeout:
		return connector.Retryable(connector.ReasonTimeout, 0, err)
	case code == http.StatusNotFound || code == http.StatusGone:
		return connector.Permanent(connector.ReasonNotFound, err)
	case code == http.StatusConflict:
		return connector.Permanent(connector.ReasonConflict, err)
	default:
		return connector.Permanent(connector.ReasonClientError, err)
	}
}

// RetryAfter reads a Retry-After header value, delay-seconds or an HTTP
// date (RFC 1123, RFC 850 or asctime), as the wait it asks for from now.
// It is zero when h is empty, not understood, negative, fractional or a
// date not after now; seconds too many for a time.Duration give the
// longest one rather than overflow (the runner caps it with its
// max_retry_after).
func RetryAfter(h string, now time.Time) time.Duration {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0
	}
	if secs, err := strconv.Atoi(h); err == nil {
		if secs < 0 {
			return 0
		}
		if int64(secs) > math.MaxInt64/int64(time.Second) {
			return math.MaxInt64 // rather than overflow into a short or negative wait
		}
		return time.Duration(secs) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		if d := t.Sub(now); d > 0 {
			return d
		}
	}
	return 0
}

// TransportError classifies err, the failure to send a request to method u
// or to read its answer (see ClassifyTransport), with a message that names
// the method and the URL without its query or user info, and that drops
// the full URL a *url.Error repeats (its query may hold a token).
func TransportError(method string, u *url.URL, err error) error {
	inner := unwrapURLError(err)
	var ce *connector.Error
	if errors.As(inner, &ce) {
		// classified below the transport (a token that cannot be had): its
		// kind stands, and its message is said once, not its kind twice
		return &connector.Error{Reason: ce.Reason, Retryable: ce.Retryable, RetryAfter: ce.RetryAfter,
			Err: fmt.Errorf("http %s %s: %w", method, RedactURL(u), ce.Err)}
	}
	return classifyTransport(err, fmt.Errorf("http %s %s: %w", method, RedactURL(u), inner))
}

// ClassifyTransport wraps err, a call's failure that has no HTTP status
// (an SDK's error from a request that got no answer, or from reading it),
// as a connector error: a body over its limit (ErrBodyTooLarge) is
// permanent client_error; a passed deadline or a network timeout is
// retryable timeout; a canceled context is permanent timeout, since the
// run was stopped; anything else (connection refused or reset, DNS) is
// retryable network. err's message is kept as it is: a connector whose
// URLs carry secrets uses TransportError.
func ClassifyTransport(err error) error {
	return classifyTransport(err, err)
}

// classifyTransport classifies err and returns wrapped, its message, as
// that kind.
func classifyTransport(err, wrapped error) error {
	var ne net.Error
	var ce *connector.Error
	switch {
	case errors.As(err, &ce):
		// classified below the transport already (a connection whose
		// token cannot be had): that kind stands
		if wrapped == err {
			return err
		}
		return &connector.Error{Reason: ce.Reason, Retryable: ce.Retryable, RetryAfter: ce.RetryAfter, Err: wrapped}
	case errors.Is(err, ErrBodyTooLarge):
		return connector.Permanent(connector.ReasonClientError, wrapped) // a retry gets the same body
	case errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
		return connector.Retryable(connector.ReasonTimeout, 0, wrapped)
	case errors.Is(err, context.Canceled):
		return connector.Permanent(connector.ReasonTimeout, wrapped)
	default:
		return connector.Retryable(connector.ReasonNetwork, 0, wrapped)
	}
}

// unwrapURLError drops url.Error's copy of the URL, which may hold a
// secret in its query.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// RedactURL renders u for a message without its user info, query and
// fragment, which often carry tokens (a query becomes "?…").
func RedactURL(u *url.URL) string {
	c := *u
	c.User = nil
	if c.RawQuery != "" || c.ForceQuery {
		c.RawQuery, c.ForceQuery = "…", false
	}
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// snippet quotes the start of a response body in an error.
func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "…"
	}
	if s == "" {
		return "(empty body)"
	}
	return s
}
