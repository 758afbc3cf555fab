package google

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	"google.golang.org/api/calendar/v3"
	"google.golang.org/api/drive/v3"
	"google.golang.org/api/googleapi"
	"google.golang.org/api/option"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// DefaultBaseURL is the APIs' root when a connection sets no base_url.
const DefaultBaseURL = "https://www.googleapis.com/"

// Endpoint is the root of one API under a connection's base_url (the
// APIs' root, https://www.googleapis.com/ by default): base_url +
// "calendar/v3/" or "drive/v3/". Drive's uploads go to /upload/drive/v3/
// at base_url's host (the library resolves that path from the host), so
// a base_url with a path of its own applies to API calls only.
func Endpoint(with connector.Values, api string) (string, error) {
	base := with.String(connector.ConnBaseURL)
	if base == "" {
		base = DefaultBaseURL
	}
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", connector.Permanent(connector.ReasonInvalid, fmt.Errorf("base_url %q is not an http(s) URL", base))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	u.RawQuery, u.Fragment = "", ""
	return u.String() + strings.Trim(api, "/") + "/", nil
}

// options are the client options of a connection: its client (limiter,
// credentials, metrics) and its endpoint for api.
func options(conn *connector.Connection, api string) ([]option.ClientOption, error) {
	if conn == nil || conn.Client == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("a google connection is needed"))
	}
	ep, err := Endpoint(conn.Values, api)
	if err != nil {
		return nil, err
	}
	return []option.ClientOption{option.WithHTTPClient(conn.Client.HTTP), option.WithEndpoint(ep)}, nil
}

// Calendar is the Calendar API of a connection, through its client.
func Calendar(ctx context.Context, conn *connector.Connection) (*calendar.Service, error) {
	opts, err := options(conn, "calendar/v3")
	if err != nil {
		return nil, err
	}
	s, err := calendar.NewService(ctx, opts...)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("calendar client: %w", err))
	}
	return s, nil
}

// Drive is the Drive API of a connection, through its client.
func Drive(ctx context.Context, conn *connector.Connection) (*drive.Service, error) {
	opts, err := options(conn, "drive/v3")
	if err != nil {
		return nil, err
	}
	s, err := drive.NewService(ctx, opts...)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("drive client: %w", err))
	}
	return s, nil
}

// rateLimitReasons are the reasons of a 403 that asks to slow down.
var rateLimitReasons = map[string]bool{"rateLimitExceeded": true, "userRateLimitExceeded": true, "quotaExceeded": false}

// Classify turns a Google API call's error into a connector error, its
// message prefixed by what: 429, and a 403 whose reason is
// rateLimitExceeded or userRateLimitExceeded, are retryable rate_limited
// (after Retry-After when given); 5xx retryable server_error; 408
// retryable timeout; 401 and any other 403 permanent auth; 404 permanent
// not_found; 409 permanent conflict; other 4xx permanent client_error
// (httpx.ClassifyStatus). An
// error without an answer is classified as httpx.ClassifyTransport does.
func Classify(what string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connector.Error
	if errors.As(err, &ce) {
		return &connector.Error{Reason: ce.Reason, Retryable: ce.Retryable, RetryAfter: ce.RetryAfter, Err: fmt.Errorf("%s: %w", what, ce.Err)}
	}
	var ge *googleapi.Error
	if !errors.As(err, &ge) {
		var ue *url.Error
		if errors.As(err, &ue) {
			// the URL may carry a page token or a file's query: keep the op
			// and the cause
			err = fmt.Errorf("%s: %w", ue.Op, ue.Err)
		}
		return httpx.ClassifyTransport(fmt.Errorf("%s: %w", what, err))
	}
	msg := ge.Message
	var reasons []string
	for _, it := range ge.Errors {
		if it.Reason != "" {
			reasons = append(reasons, it.Reason)
		}
		if msg == "" {
			msg = it.Message
		}
	}
	if msg == "" {
		msg = http.StatusText(ge.Code)
	}
	wrapped := fmt.Errorf("%s: google answered %d: %s", what, ge.Code, msg)
	if len(reasons) > 0 {
		wrapped = fmt.Errorf("%s: google answered %d (%s): %s", what, ge.Code, strings.Join(reasons, ", "), msg)
	}
	retryAfter := httpx.RetryAfter(ge.Header.Get("Retry-After"), time.Now())
	switch {
	case ge.Code == http.StatusTooManyRequests:
		return connector.Retryable(connector.ReasonRateLimited, retryAfter, wrapped)
	case ge.Code == http.StatusForbidden && anyOf(reasons, rateLimitReasons):
		return connector.Retryable(connector.ReasonRateLimited, retryAfter, wrapped)
	default:
		return httpx.ClassifyStatus(ge.Code, ge.Header, wrapped)
	}
}

func anyOf(reasons []string, set map[string]bool) bool {
	for _, r := range reasons {
		if set[r] {
			return true
		}
	}
	return false
}

// Code is the HTTP status of a Google API error, 0 when it has none.
func Code(err error) int {
	var ge *googleapi.Error
	if errors.As(err, &ge) {
		return ge.Code
	}
	return 0
}

// OldestFirst orders a poll's events by their items' creation times (at,
// one per event), keeping the order of equal times: the calendar and
// Drive pollers start runs in the order things were made.
func OldestFirst(evs []connector.Event, at []time.Time) {
	sort.Stable(byTime{evs, at})
}

type byTime struct {
	evs []connector.Event
	at  []time.Time
}

func (b byTime) Len() int           { return len(b.evs) }
func (b byTime) Less(i, j int) bool { return b.at[i].Before(b.at[j]) }
func (b byTime) Swap(i, j int) {
	b.evs[i], b.evs[j] = b.evs[j], b.evs[i]
	b.at[i], b.at[j] = b.at[j], b.at[i]
}
