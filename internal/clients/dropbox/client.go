package dropbox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/httpx"
)

// Dropbox's two hosts.
const (
	DefaultBaseURL    = "https://api.dropboxapi.com/2/"
	DefaultContentURL = "https://content.dropboxapi.com/2/"
)

// FieldContentURL is the connection key of the content host's root.
const FieldContentURL = "content_url"

// HeaderArg carries a content endpoint's argument, JSON.
const HeaderArg = "Dropbox-API-Arg"

// APIError is an endpoint-specific error: Dropbox answers it 409 with
// {"error_summary": "path/not_found/..", "error": {".tag": "path", ...}}.
type APIError struct {
	Endpoint string
	Status   int
	// Summary is error_summary: the tags, slash-separated, then a
	// trailing ".." and maybe a number.
	Summary string
	// Detail is the "error" object.
	Detail json.RawMessage
}

func (e *APIError) Error() string {
	return fmt.Sprintf("dropbox %s: %d %s", e.Endpoint, e.Status, e.Summary)
}

// Matches says whether the summary starts with the tags of prefix
// ("path/not_found", "reset", "lookup_failed/incorrect_offset").
func (e *APIError) Matches(prefix string) bool {
	return e.Summary == prefix || strings.HasPrefix(e.Summary, prefix+"/") || strings.HasPrefix(e.Summary, prefix+".")
}

// AsAPIError finds an APIError in err's chain whose summary starts with
// prefix.
func AsAPIError(err error, prefix string) (*APIError, bool) {
	var ae *APIError
	if errors.As(err, &ae) && ae.Matches(prefix) {
		return ae, true
	}
	return nil, false
}

// CorrectOffset is the offset an upload session reports when a call's
// offset is not the session's (incorrect_offset, itself or under
// lookup_failed).
func (e *APIError) CorrectOffset() (int64, bool) {
	var d struct {
		Tag           string `json:".tag"`
		CorrectOffset *int64 `json:"correct_offset"`
		LookupFailed  *struct {
			Tag           string `json:".tag"`
			CorrectOffset *int64 `json:"correct_offset"`
		} `json:"lookup_failed"`
	}
	if json.Unmarshal(e.Detail, &d) != nil {
		return 0, false
	}
	switch {
	case d.Tag == "incorrect_offset" && d.CorrectOffset != nil:
		return *d.CorrectOffset, true
	case d.LookupFailed != nil && d.LookupFailed.Tag == "incorrect_offset" && d.LookupFailed.CorrectOffset != nil:
		return *d.LookupFailed.CorrectOffset, true
	}
	return 0, false
}

// BaseURL is the connection's RPC root.
func BaseURL(conn *connector.Connection) string {
	if b := conn.Values.String(connector.ConnBaseURL); b != "" {
		return b
	}
	return DefaultBaseURL
}

// ContentURL is the connection's content root: content_url, else the
// content host when base_url is Dropbox's own, else base_url.
func ContentURL(conn *connector.Connection) string {
	if c := conn.Values.String(FieldContentURL); c != "" {
		return c
	}
	if b := conn.Values.String(connector.ConnBaseURL); b != "" && strings.TrimSuffix(b, "/") != strings.TrimSuffix(DefaultBaseURL, "/") {
		return b
	}
	return DefaultContentURL
}

func endpointURL(root, endpoint string) (*url.URL, error) {
	u, err := url.Parse(root)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("dropbox root %q: %w", root, err))
	}
	if !strings.HasSuffix(u.Path, "/") {
		u.Path += "/"
	}
	return u.Parse(endpoint)
}

// Call calls an RPC endpoint (files/list_folder, say) with arg as its
// JSON body (nil sends JSON null) and decodes the answer into out.
func Call(ctx context.Context, conn *connector.Connection, endpoint string, arg, out any) error {
	if conn == nil || conn.Client == nil {
		return connector.Permanent(connector.ReasonInvalid, errors.New("dropbox: no connection"))
	}
	u, err := endpointURL(BaseURL(conn), endpoint)
	if err != nil {
		return err
	}
	body := []byte("null")
	if arg != nil {
		if body, err = json.Marshal(arg); err != nil {
			return connector.Permanent(connector.ReasonInvalid, err)
		}
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), bytes.NewReader(body))
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, err)
	}
	req.Header.Set("Content-Type", "application/json")
	return do(conn, endpoint, u, req, out)
}

// Content calls a content endpoint (files/upload, the upload session's)
// with arg in the Dropbox-API-Arg header and body as the raw bytes, and
// decodes the JSON answer into out (nil ignores it).
func Content(ctx context.Context, conn *connector.Connection, endpoint string, arg any, body io.Reader, size int64, out any) error {
	if conn == nil || conn.Client == nil {
		return connector.Permanent(connector.ReasonInvalid, errors.New("dropbox: no connection"))
	}
	u, err := endpointURL(ContentURL(conn), endpoint)
	if err != nil {
		return err
	}
	h, err := ArgHeader(arg)
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, err)
	}
	if body == nil {
		body = http.NoBody
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), body)
	if err != nil {
		return connector.Permanent(connector.ReasonInvalid, err)
	}
	if size >= 0 {
		req.ContentLength = size
	}
	req.Header.Set(HeaderArg, h)
	req.Header.Set("Content-Type", "application/octet-stream")
	return do(conn, endpoint, u, req, out)
}

func do(conn *connector.Connection, endpoint string, u *url.URL, req *http.Request, out any) error {
	resp, err := conn.Client.HTTP.Do(req)
	if err != nil {
		return httpx.TransportError(req.Method, u, err)
	}
	defer resp.Body.Close()
	raw, err := httpx.ReadBody(resp.Body, httpx.DefaultMaxBody)
	if err != nil {
		return httpx.TransportError(req.Method, u, err)
	}
	if err := classify(endpoint, u, resp, raw); err != nil {
		return err
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return connector.Permanent(connector.ReasonClientError,
			fmt.Errorf("dropbox %s: the answer is not the JSON expected", endpoint))
	}
	return nil
}

// classify maps Dropbox's answers: 409 is an endpoint error (permanent,
// an *APIError inside, its reason by endpointReason); 401 (expired_access_token, invalid_access_token)
// is auth; 429 and 503 carry Retry-After; the rest as httpx says.
func classify(endpoint string, u *url.URL, resp *http.Response, raw []byte) error {
	if resp.StatusCode < 400 {
		return nil
	}
	var body struct {
		Summary string          `json:"error_summary"`
		Error   json.RawMessage `json:"error"`
	}
	if json.Unmarshal(raw, &body) == nil && body.Summary != "" {
		ae := &APIError{Endpoint: endpoint, Status: resp.StatusCode, Summary: clean(body.Summary), Detail: body.Error}
		if resp.StatusCode == http.StatusConflict {
			return connector.Permanent(endpointReason(ae), ae)
		}
		return httpx.ClassifyStatus(resp.StatusCode, resp.Header, ae)
	}
	return httpx.StatusError(http.MethodPost, u, resp, raw)
}

// endpointReason is the reason of an endpoint error: not_found when its
// summary says a path or an id is not found (path/not_found,
// from_lookup/not_found, lookup_failed/not_found, ...), conflict when a
// path is taken (path/conflict, to/conflict), else client_error (no space,
// a malformed path, a disallowed name).
func endpointReason(ae *APIError) connector.Reason {
	for _, tag := range strings.Split(ae.Summary, "/") {
		switch tag {
		case "not_found":
			return connector.ReasonNotFound
		case "conflict":
			return connector.ReasonConflict
		}
	}
	return connector.ReasonClientError
}

// clean keeps a summary short and printable.
func clean(s string) string {
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, s)
}

// ArgHeader encodes a content endpoint's argument for the Dropbox-API-Arg
// header: JSON with every character outside printable ASCII escaped as
// \uXXXX, as Dropbox requires of HTTP headers.
func ArgHeader(arg any) (string, error) {
	b, err := json.Marshal(arg)
	if err != nil {
		return "", err
	}
	var sb strings.Builder
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		b = b[n:]
		switch {
		case r >= 0x20 && r < 0x7f:
			sb.WriteRune(r)
		case r > 0xffff:
			r -= 0x10000
			fmt.Fprintf(&sb, `\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
		default:
			fmt.Fprintf(&sb, `\u%04x`, r)
		}
	}
	return sb.String(), nil
}

// Metadata is a list_folder entry or a file's metadata: FileMetadata,
// FolderMetadata or DeletedMetadata by Tag.
type Metadata struct {
	Tag            string `json:".tag"`
	ID             string `json:"id,omitempty"`
	Name           string `json:"name"`
	PathLower      string `json:"path_lower,omitempty"`
	PathDisplay    string `json:"path_display,omitempty"`
	Size           int64  `json:"size,omitempty"`
	Rev            string `json:"rev,omitempty"`
	ContentHash    string `json:"content_hash,omitempty"`
	ServerModified string `json:"server_modified,omitempty"`
	ClientModified string `json:"client_modified,omitempty"`
}

// ListFolderResult is the answer of files/list_folder and its continue.
type ListFolderResult struct {
	Entries []Metadata `json:"entries"`
	Cursor  string     `json:"cursor"`
	HasMore bool       `json:"has_more"`
}

// GetMetadata returns the metadata at path, or nil when nothing is there
// (path/not_found).
func GetMetadata(ctx context.Context, conn *connector.Connection, path string) (*Metadata, error) {
	var md Metadata
	err := Call(ctx, conn, "files/get_metadata", map[string]any{"path": path}, &md)
	if _, ok := AsAPIError(err, "path/not_found"); ok {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return &md, nil
}
