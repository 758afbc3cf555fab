package connector

import (
	"context"
	"encoding/base64"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"golang.org/x/time/rate"
)

// Authorize adds a connection's credentials to an outgoing request (a
// copy the client made: it may set headers).
type Authorize func(req *http.Request) error

// Client is what a connection builds once and every trigger and action on
// that connection shares: an *http.Client whose requests wait for the
// connection's rate limiter, carry its credentials and are counted. Hand
// HTTP to a service's SDK (slack.OptionHTTPClient, option.WithHTTPClient,
// jira.NewClient); a connector never reads the credentials itself.
type Client struct {
	Name    string // the connection's name
	HTTP    *http.Client
	Limiter *rate.Limiter
	// Token gives the connection's current access token, refreshed as
	// needed, for protocols that carry it themselves (XOAUTH2); nil when
	// the connection has none (no static token and no OAuth app).
	Token func(ctx context.Context) (string, error)
}

// ClientHooks observe a connection's calls; the service counts them.
// caller is the action or trigger the call was made for (Caller), "" when
// none was named.
type ClientHooks struct {
	// Call is told of each call's outcome: the HTTP status code, or
	// "error" when none came back, and how long the call took.
	Call func(conn, caller, status string, took time.Duration)
	// Wait is told how long a call waited for the rate limiter, when it
	// waited.
	Wait func(conn, caller string, waited time.Duration)
}

type callerKey struct{}

// WithCaller names the action or trigger (its ID) that calls made with
// ctx are for, so that a connection's metrics count them per caller: the
// runner names each step's action, the pollers their trigger.
func WithCaller(ctx context.Context, id string) context.Context {
	return context.WithValue(ctx, callerKey{}, id)
}

// Caller is the action or trigger WithCaller named in ctx, or "".
func Caller(ctx context.Context) string {
	id, _ := ctx.Value(callerKey{}).(string)
	return id
}

// StaticAuthorize is the Authorize of the static credentials a connection
// type describes with the shared fields: `token` as a bearer token, else
// none (a request goes out as it is).
func StaticAuthorize(with Values) (Authorize, error) {
	if tok := with.String(ConnToken); tok != "" {
		return BearerAuthorize(tok), nil
	}
	return nil, nil
}

// BearerAuthorize sends token as `Authorization: Bearer <token>`.
func BearerAuthorize(token string) Authorize {
	v := "Bearer " + token
	return func(req *http.Request) error {
		req.Header.Set("Authorization", v)
		return nil
	}
}

// BasicAuthorize sends user and password as HTTP basic authentication.
func BasicAuthorize(user, password string) Authorize {
	v := "Basic " + base64.StdEncoding.EncodeToString([]byte(user+":"+password))
	return func(req *http.Request) error {
		req.Header.Set("Authorization", v)
		return nil
	}
}

// NewClient builds the client of a connection of type spec: the rate
// limiter of its rate_limit (none when the type has no such field), the
// credentials of spec.Authorize (StaticAuthorize when nil), and hooks,
// over base (the shared transport; http.DefaultTransport when nil).
func NewClient(conn *Connection, spec *ConnectionSpec, base http.RoundTripper, hooks ClientHooks) (*Client, error) {
	if base == nil {
		base = http.DefaultTransport
	}
	authorize := spec.Authorize
	if authorize == nil {
		authorize = StaticAuthorize
	}
	auth, err := authorize(conn.Values)
	if err != nil {
		return nil, fmt.Errorf("connection %s: %w", conn.Name, err)
	}
	t := &clientTransport{name: conn.Name, base: base, auth: auth, hooks: hooks}
	if s := conn.Values.String(ConnRateLimit); s != "" {
		r, err := ParseRate(s)
		if err != nil {
			return nil, fmt.Errorf("connection %s: rate_limit: %w", conn.Name, err)
		}
		t.limiter = rate.NewLimiter(rate.Limit(r.PerSecond), r.Burst)
	}
	cl := &Client{Name: conn.Name, HTTP: &http.Client{Transport: t}, Limiter: t.limiter}
	if tok := conn.Values.String(ConnToken); tok != "" {
		cl.Token = func(context.Context) (string, error) { return tok, nil }
	}
	return cl, nil
}

// clientTransport waits for the limiter, authorizes and counts each call.
type clientTransport struct {
	name    string
	base    http.RoundTripper
	auth    Authorize
	limiter *rate.Limiter
	hooks   ClientHooks
}

// RoundTrip implements http.RoundTripper.
func (t *clientTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if t.limiter != nil {
		if err := t.wait(req.Context()); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, err
		}
	}
	if t.auth != nil {
		// a RoundTripper must not modify the request it is given
		r := req.Clone(req.Context())
		if err := t.auth(r); err != nil {
			if req.Body != nil {
				req.Body.Close()
			}
			return nil, fmt.Errorf("connection %s: %w", t.name, err)
		}
		req = r
	}
	start := time.Now()
	resp, err := t.base.RoundTrip(req)
	if t.hooks.Call != nil {
		status := "error"
		if err == nil {
			status = strconv.Itoa(resp.StatusCode)
		}
		t.hooks.Call(t.name, Caller(req.Context()), status, time.Since(start))
	}
	return resp, err
}

// wait waits for the limiter without a timer when a token is there.
func (t *clientTransport) wait(ctx context.Context) error {
	if t.limiter.Allow() {
		return nil
	}
	start := time.Now()
	if err := t.limiter.Wait(ctx); err != nil {
		return fmt.Errorf("connection %s: waiting for its rate limit: %w", t.name, err)
	}
	if t.hooks.Wait != nil {
		t.hooks.Wait(t.name, Caller(ctx), time.Since(start))
	}
	return nil
}
