package slack

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/slack-go/slack"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// NewAPI is slack-go's client for a connection: its requests go through
// the connection's client (rate limit, credentials, metrics) to its
// base_url. slack-go is given no token: the connection's client adds it
// as `Authorization: Bearer`, and the empty `token` slack-go would put in
// each form or query is taken out on the way. No slack.OptionRetry: the
// engine retries a step by its error's kind (see Classify).
func NewAPI(conn *connector.Connection) (*slack.Client, error) {
	if conn == nil || conn.Client == nil || conn.Client.HTTP == nil {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("slack: the step has no slack connection"))
	}
	base := conn.Values.String(connector.ConnBaseURL)
	if base == "" {
		base = DefaultBaseURL
	}
	if !strings.HasSuffix(base, "/") {
		base += "/"
	}
	return slack.New("", slack.OptionHTTPClient(tokenless{conn.Client.HTTP}), slack.OptionAPIURL(base)), nil
}

// tokenless sends slack-go's requests without the empty token it adds.
type tokenless struct{ c *http.Client }

// Do implements slack-go's httpClient.
func (t tokenless) Do(req *http.Request) (*http.Response, error) {
	if strings.TrimSpace(req.Header.Get("Authorization")) == "Bearer" {
		req.Header.Del("Authorization")
	}
	if q := req.URL.Query(); q.Has("token") && q.Get("token") == "" {
		q.Del("token")
		req.URL.RawQuery = q.Encode()
	}
	if req.Body != nil && strings.HasPrefix(req.Header.Get("Content-Type"), "application/x-www-form-urlencoded") {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		if form, err := url.ParseQuery(string(b)); err == nil && form.Has("token") && form.Get("token") == "" {
			form.Del("token")
			b = []byte(form.Encode())
		}
		req.Body = io.NopCloser(bytes.NewReader(b))
		req.ContentLength = int64(len(b))
		req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }
	}
	return t.c.Do(req)
}

// Slack's ok:false errors that say the credentials are wrong or gone.
var authErrors = map[string]bool{
	"invalid_auth": true, "not_authed": true, "token_revoked": true, "token_expired": true,
	"account_inactive": true, "missing_scope": true, "not_allowed_token_type": true, "no_permission": true,
	"ekm_access_denied": true, "org_login_required": true, "team_access_not_granted": true,
}

// Slack's ok:false errors that a later attempt may not get.
var serverErrors = map[string]bool{
	"internal_error": true, "fatal_error": true, "service_unavailable": true, "request_timeout": true,
}

// channelErrors are ok:false errors about the channel named by a call.
var channelErrors = map[string]bool{
	"channel_not_found": true, "not_in_channel": true, "is_archived": true, "restricted_action": true,
}

// Classify turns what slack-go returned for call (a Slack method) into a
// connector error: 429 and `ratelimited` are retryable rate_limited after
// Retry-After; 5xx and Slack's internal errors retryable server_error;
// invalid_auth, not_authed, token_revoked and their kind permanent auth;
// channel_not_found permanent not_found and the other channel errors
// permanent client_error, naming channel; another *_not_found (user,
// message, file) permanent not_found; name_taken and already_* permanent
// conflict; any other ok:false permanent client_error; a failed
// connection or a timeout as httpx classifies it.
func Classify(call, channel string, err error) error {
	if err == nil {
		return nil
	}
	var ce *connector.Error
	if errors.As(err, &ce) {
		return err
	}
	var rl *slack.RateLimitedError
	if errors.As(err, &rl) {
		return connector.Retryable(connector.ReasonRateLimited, rl.RetryAfter,
			fmt.Errorf("slack %s: rate limited, retry after %s", call, rl.RetryAfter))
	}
	var sc slack.StatusCodeError
	if errors.As(err, &sc) {
		return httpx.ClassifyStatus(sc.Code, nil, fmt.Errorf("slack %s: %s", call, sc.Status))
	}
	var se slack.SlackErrorResponse
	if errors.As(err, &se) {
		code := se.Err
		switch {
		case code == "ratelimited" || code == "rate_limited":
			return connector.Retryable(connector.ReasonRateLimited, 0, fmt.Errorf("slack %s: %s", call, code))
		case authErrors[code]:
			msg := code
			if se.Needed != "" {
				msg += " (needs " + se.Needed + ")"
			}
			return connector.Permanent(connector.ReasonAuth, fmt.Errorf("slack %s: %s", call, msg))
		case serverErrors[code]:
			return connector.Retryable(connector.ReasonServerError, 0, fmt.Errorf("slack %s: %s", call, code))
		case code == "channel_not_found":
			return connector.Permanent(connector.ReasonNotFound, fmt.Errorf("slack %s: %s: channel %q", call, code, channel))
		case channelErrors[code]:
			return connector.Permanent(connector.ReasonClientError, fmt.Errorf("slack %s: %s: channel %q", call, code, channel))
		case strings.HasSuffix(code, "_not_found"):
			return connector.Permanent(connector.ReasonNotFound, fmt.Errorf("slack %s: %s", call, code))
		case code == "name_taken" || strings.HasPrefix(code, "already_"):
			return connector.Permanent(connector.ReasonConflict, fmt.Errorf("slack %s: %s", call, code))
		}
		return connector.Permanent(connector.ReasonClientError, fmt.Errorf("slack %s: %s", call, code))
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return httpx.ClassifyTransport(fmt.Errorf("slack %s: %w", call, err))
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return httpx.ClassifyTransport(fmt.Errorf("slack %s: %w", call, ue.Err))
	}
	return connector.Permanent(connector.ReasonClientError, fmt.Errorf("slack %s: %w", call, err))
}

var channelID = regexp.MustCompile(`^[CGD][A-Z0-9]{6,}$`)

// IsChannelID says whether s looks like a channel id (C..., G..., D...)
// rather than a name.
func IsChannelID(s string) bool { return channelID.MatchString(s) }

// ResolveChannel returns the id of the channel named nameOrID: an id as
// it is, a name ("general" or "#general") looked up with
// conversations.list (public and private channels, paged).
func ResolveChannel(ctx context.Context, api *slack.Client, nameOrID string) (string, error) {
	if IsChannelID(nameOrID) {
		return nameOrID, nil
	}
	ch, err := FindChannel(ctx, api, nameOrID)
	if err != nil {
		return "", err
	}
	if ch == nil {
		return "", connector.Permanent(connector.ReasonNotFound,
			fmt.Errorf("slack conversations.list: channel_not_found: channel %q", nameOrID))
	}
	return ch.ID, nil
}

// FindChannel looks a channel up by name with conversations.list; nil
// when there is none.
func FindChannel(ctx context.Context, api *slack.Client, name string) (*slack.Channel, error) {
	name = strings.TrimPrefix(name, "#")
	params := &slack.GetConversationsParameters{Types: []string{"public_channel", "private_channel"}, Limit: 200}
	for {
		chans, next, err := api.GetConversationsContext(ctx, params)
		if err != nil {
			return nil, Classify("conversations.list", name, err)
		}
		for i := range chans {
			if chans[i].Name == name {
				return &chans[i], nil
			}
		}
		if next == "" {
			return nil, nil
		}
		params.Cursor = next
	}
}
