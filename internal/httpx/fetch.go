package httpx

import (
	"context"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"sync"

	"github.com/sous-run/sous/engine/connector"
)

// Fetched is the body of a URL an action fetched for its content (an
// attachment, a file to upload), read as a stream. Reading past its limit
// fails, and Err tells why the action's upload stopped.
type Fetched struct {
	// ContentType is the media type the server sent, "" when it sent none
	// or one that does not parse.
	ContentType string
	// Length is the Content-Length the server sent, -1 when unknown.
	Length int64

	body  io.ReadCloser
	u     *url.URL
	field string
	limit int64

	mu   sync.Mutex
	read int64
	over error
}

// Fetch GETs raw for an action's content with a client of its own (no
// connection's credentials go to that host), through the shared pool. The
// URL must be http(s); an answer other than 2xx is classified by
// StatusError, a failure to send by TransportError. Its body may hold at
// most limit bytes, which the action's option field raises: a larger
// Content-Length fails at once, and reading past limit fails with a
// permanent invalid error that names field, as Err then returns. Messages
// name the URL without its query (RedactURL). The caller closes it.
func Fetch(ctx context.Context, raw, field string, limit int64) (*Fetched, error) {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("url is not an http(s) URL"))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("url: %w", err))
	}
	resp, err := fetchClient.Do(req)
	if err != nil {
		return nil, TransportError(http.MethodGet, u, err)
	}
	if resp.StatusCode >= 300 {
		defer resp.Body.Close()
		b, _ := ReadBody(resp.Body, 4<<10)
		if err := StatusError(http.MethodGet, u, resp, b); err != nil {
			return nil, err
		}
		return nil, connector.Permanent(connector.ReasonClientError, fmt.Errorf("http GET %s: %s, not a 2xx", RedactURL(u), resp.Status))
	}
	f := &Fetched{Length: resp.ContentLength, body: resp.Body, u: u, field: field, limit: limit}
	if mt, params, err := mime.ParseMediaType(resp.Header.Get("Content-Type")); err == nil && mt != "" {
		f.ContentType = mime.FormatMediaType(mt, params)
	}
	if limit > 0 && resp.ContentLength > limit {
		resp.Body.Close()
		return nil, f.tooLarge()
	}
	return f, nil
}

// fetchClient sends Fetch's requests: no body limit of the Transport's
// (Fetched counts), no credentials.
var fetchClient = &http.Client{Transport: &Transport{MaxBody: -1}}

// tooLarge is the error of a body past the limit.
func (f *Fetched) tooLarge() error {
	return connector.Permanent(connector.ReasonInvalid,
		fmt.Errorf("%s is larger than %s (%d bytes)", RedactURL(f.u), f.field, f.limit))
}

// Read reads the body, failing once it passes the limit; a failed read
// of the connection is a TransportError.
func (f *Fetched) Read(p []byte) (int, error) {
	n, err := f.body.Read(p)
	f.mu.Lock()
	defer f.mu.Unlock()
	f.read += int64(n)
	if f.limit > 0 && f.read > f.limit {
		if f.over == nil {
			f.over = f.tooLarge()
		}
		return 0, f.over
	}
	if err != nil && err != io.EOF {
		return n, TransportError(http.MethodGet, f.u, err)
	}
	return n, err
}

// Close closes the body.
func (f *Fetched) Close() error { return f.body.Close() }

// Err is the error of a read past the limit, nil while within it: an
// upload that failed while reading says so rather than what the service's
// library made of the failed read.
func (f *Fetched) Err() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.over
}
