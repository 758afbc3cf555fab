package httpx

import (
	"io"
	"net/http"
	"time"
)

// UserAgent is the User-Agent Sous sends when a request has none. Set it
// before the first request, or at build time with
// -ldflags "-X github.com/sous-run/sous/internal/httpx.UserAgent=sous/1.2.3";
// a Transport's own UserAgent overrides it.
var UserAgent = "sous/1"

// sharedBase is the transport under every Transport without a Base:
// net/http's default one (proxy from the environment, dial and TLS
// handshake timeouts, HTTP/2) keeping enough idle connections per host for
// every run the pipeline has in flight (256 by default) to reuse one,
// rather than dial anew.
var sharedBase http.RoundTripper = func() *http.Transport {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 1024
	t.MaxIdleConnsPerHost = 256
	t.IdleConnTimeout = 90 * time.Second
	return t
}()

// NewClient returns the *http.Client a connector uses, and hands to a
// service's SDK (slack.OptionHTTPClient, option.WithHTTPClient,
// jira.NewClient): a Transport with its defaults, so every call sends
// UserAgent and reads at most DefaultMaxBody of an answer, over a
// connection pool all connectors share. It has no overall timeout: each
// call's context bounds it.
func NewClient() *http.Client {
	return &http.Client{Transport: &Transport{}}
}

// Transport is an http.RoundTripper that sets the User-Agent of a request
// that has no such header (one set, even to "", is left alone), and makes
// reading a response body past MaxBody bytes fail with an error matching
// ErrBodyTooLarge. It does not modify the request it is given.
type Transport struct {
	// Base sends the requests; nil means a pool shared by every connector.
	Base http.RoundTripper
	// UserAgent is sent when a request has none; "" means the package's
	// UserAgent.
	UserAgent string
	// MaxBody bounds a response body: 0 means DefaultMaxBody, a negative
	// value no bound.
	MaxBody int64
}

var _ http.RoundTripper = (*Transport)(nil)

// RoundTrip sends req through Base with the user agent, and bounds the
// body of its answer.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	if _, ok := req.Header["User-Agent"]; !ok {
		// a shallow copy, as a RoundTripper must not modify the request;
		// the body and context are the caller's still
		r := *req
		r.Header = make(http.Header, len(req.Header)+1)
		for k, v := range req.Header {
			r.Header[k] = v
		}
		ua := t.UserAgent
		if ua == "" {
			ua = UserAgent
		}
		r.Header["User-Agent"] = []string{ua}
		req = &r
	}
	resp, err := t.base().RoundTrip(req)
	if err != nil {
		return nil, err
	}
	limit := t.MaxBody
	if limit == 0 {
		limit = DefaultMaxBody
	}
	// a 101's body is the connection itself, read and written
	if limit > 0 && resp.Body != nil && resp.Body != http.NoBody && resp.StatusCode != http.StatusSwitchingProtocols {
		resp.Body = &limitedBody{rc: resp.Body, left: limit, limit: limit}
	}
	return resp, nil
}

// CloseIdleConnections closes Base's idle connections, for
// http.Client.CloseIdleConnections.
func (t *Transport) CloseIdleConnections() {
	if c, ok := t.base().(interface{ CloseIdleConnections() }); ok {
		c.CloseIdleConnections()
	}
}

func (t *Transport) base() http.RoundTripper {
	if t.Base != nil {
		return t.Base
	}
	return sharedBase
}

// limitedBody reads a response body until more than limit bytes came.
type limitedBody struct {
	rc       io.ReadCloser
	left     int64 // bytes that may still be read
	limit    int64
	tooLarge bool // more than limit came: every read fails
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if b.tooLarge {
		return 0, &bodyTooLargeError{limit: b.limit}
	}
	if len(p) == 0 {
		return 0, nil
	}
	if b.left <= 0 {
		// at the limit: the body is too large if anything follows
		var one [1]byte
		n, err := b.rc.Read(one[:])
		if n > 0 {
			b.tooLarge = true
			return 0, &bodyTooLargeError{limit: b.limit}
		}
		return 0, err
	}
	if int64(len(p)) > b.left {
		p = p[:b.left]
	}
	n, err := b.rc.Read(p)
	b.left -= int64(n)
	return n, err
}

func (b *limitedBody) Close() error { return b.rc.Close() }
