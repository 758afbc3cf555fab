package dropbox

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"path"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fake is an httptest handler answering the Dropbox API v2 calls the
// dropbox trigger and actions make, on both hosts, as Dropbox documents
// them, and checking their shape: POST; Authorization: Bearer (Token when
// set); an RPC call's JSON body with Content-Type application/json; a
// content call's argument in the Dropbox-API-Arg header (JSON, printable
// ASCII only), Content-Type application/octet-stream and the bytes as the
// body. Endpoint errors are 409 {"error_summary", "error"}. A request it
// does not expect is answered 400 and recorded in Problems.
//
// ServeHTTP serves both hosts' endpoints; API and Content serve one
// host's each, refusing the other's (a test with two servers checks that
// each call goes to its host).
type Fake struct {
	// Token is the bearer token every request must carry; "" takes any.
	Token string
	// PageSize caps a list_folder page (Dropbox's default limit is up to
	// 2000); 0 is no cap.
	PageSize int
	// MaxUpload is the largest files/upload body (Dropbox's is 150 MiB).
	MaxUpload int64

	mu       sync.Mutex
	files    map[string]*FakeEntry // path_lower
	log      []Metadata            // every change, in order: a cursor is a position in it
	epoch    int                   // Reset bumps it: older cursors get reset
	sessions map[string]*fakeSession
	seq      int
	failures []*Failure
	requests []Recorded
	// Problems lists the requests refused as malformed.
	Problems []string
}

// FakeEntry is a file or folder the fake holds.
type FakeEntry struct {
	Metadata
	Content []byte
}

type fakeSession struct {
	data   []byte
	closed bool
	// Appends lists the offsets of the appends stored.
	appends []int64
}

// Recorded is one request the fake got.
type Recorded struct {
	Endpoint string
	Arg      string // the Dropbox-API-Arg header or the JSON body
	Size     int    // the body's size
	Status   int
}

// Failure is an answer the fake gives instead of, or after, handling a
// matching request.
type Failure struct {
	// Endpoint is the endpoint's path ("files/upload_session/append_v2").
	Endpoint string
	// Status is the answer; 0 is 503.
	Status int
	// After handles the request first and then answers Status: the answer
	// is lost, not the work.
	After bool
	// Header is added to the answer (Retry-After).
	Header http.Header
	// Body is the answer's body (a 409's JSON); "" is a generic one.
	Body string
	// Skip lets this many matching requests through first.
	Skip int
	// Times is how many requests it fails; 0 is once.
	Times int
}

// NewFake returns an empty fake for token.
func NewFake(token string) *Fake {
	return &Fake{Token: token, MaxUpload: 150 << 20, files: map[string]*FakeEntry{}, sessions: map[string]*fakeSession{}}
}

// Fail adds an injected failure.
func (f *Fake) Fail(fl Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if fl.Times == 0 {
		fl.Times = 1
	}
	if fl.Status == 0 {
		fl.Status = http.StatusServiceUnavailable
	}
	f.failures = append(f.failures, &fl)
}

// Requests returns the requests so far.
func (f *Fake) Requests() []Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Recorded(nil), f.requests...)
}

// Count is how many requests went to endpoint.
func (f *Fake) Count(endpoint string) int {
	n := 0
	for _, r := range f.Requests() {
		if r.Endpoint == endpoint {
			n++
		}
	}
	return n
}

// Put stores a file as an upload would, and returns its metadata.
func (f *Fake) Put(p string, content []byte) Metadata {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.put(p, content).Metadata
}

// MakeFolder creates a folder.
func (f *Fake) MakeFolder(p string) Metadata {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	md := Metadata{Tag: "folder", ID: fmt.Sprintf("id:fold%06d", f.seq), Name: path.Base(p), PathLower: strings.ToLower(p), PathDisplay: p}
	f.files[md.PathLower] = &FakeEntry{Metadata: md}
	f.log = append(f.log, md)
	return md
}

// Delete removes the entry at p.
func (f *Fake) Delete(p string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.files[strings.ToLower(p)]
	if !ok {
		return
	}
	delete(f.files, e.PathLower)
	f.log = append(f.log, Metadata{Tag: "deleted", Name: e.Name, PathLower: e.PathLower, PathDisplay: e.PathDisplay})
}

// Reset makes every cursor issued so far answer reset.
func (f *Fake) Reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.epoch++
}

// File returns the entry at p.
func (f *Fake) File(p string) (*FakeEntry, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.files[strings.ToLower(p)]
	if !ok {
		return nil, false
	}
	c := *e
	return &c, true
}

// Files returns the entries, by path_lower.
func (f *Fake) Files() map[string]*FakeEntry {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*FakeEntry{}
	for k, e := range f.files {
		c := *e
		out[k] = &c
	}
	return out
}

// SessionAppends returns, per upload session, the offsets of the appends
// stored.
func (f *Fake) SessionAppends() map[string][]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][]int64{}
	for id, s := range f.sessions {
		out[id] = append([]int64(nil), s.appends...)
	}
	return out
}

func (f *Fake) put(p string, content []byte) *FakeEntry {
	f.seq++
	lower := strings.ToLower(p)
	id := fmt.Sprintf("id:file%06d", f.seq)
	if old, ok := f.files[lower]; ok && old.Tag == "file" {
		id = old.ID
	}
	md := Metadata{Tag: "file", ID: id, Name: path.Base(p), PathLower: lower, PathDisplay: p, Size: int64(len(content)),
		Rev: fmt.Sprintf("%09x", 0x100000000+f.seq), ContentHash: ContentHash(content),
		ServerModified: time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC).Add(time.Duration(f.seq) * time.Second).Format(time.RFC3339),
	}
	md.ClientModified = md.ServerModified
	e := &FakeEntry{Metadata: md, Content: append([]byte(nil), content...)}
	f.files[lower] = e
	f.log = append(f.log, md)
	return e
}

// contentEndpoints are served by the content host.
var contentEndpoints = map[string]bool{
	"files/upload": true, "files/upload_session/start": true, "files/upload_session/append_v2": true, "files/upload_session/finish": true,
}

// API serves the RPC host's endpoints only.
func (f *Fake) API() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "api") })
}

// Content serves the content host's endpoints only.
func (f *Fake) Content() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "content") })
}

// ServeHTTP serves both hosts' endpoints.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) { f.serve(w, r, "") }

type answer struct {
	status int
	header http.Header
	body   []byte
}

func jsonAnswer(status int, v any) answer {
	b, _ := json.Marshal(v)
	return answer{status: status, header: http.Header{"Content-Type": {"application/json"}}, body: b}
}

// apiErr is a 409 endpoint error.
func apiErr(summary string, detail any) answer {
	return jsonAnswer(http.StatusConflict, map[string]any{"error_summary": summary, "error": detail})
}

func (f *Fake) serve(w http.ResponseWriter, r *http.Request, host string) {
	endpoint := strings.TrimPrefix(r.URL.Path, "/")
	if i := strings.Index(endpoint, "files/"); i >= 0 {
		endpoint = endpoint[i:]
	} else if i := strings.Index(endpoint, "users/"); i >= 0 {
		endpoint = endpoint[i:]
	}
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	rec := Recorded{Endpoint: endpoint, Size: len(body)}
	a := func() answer {
		if r.Method != http.MethodPost {
			return f.problem("%s %s: Dropbox takes POST", r.Method, endpoint)
		}
		auth := r.Header.Get("Authorization")
		if !strings.HasPrefix(auth, "Bearer ") || (f.Token != "" && auth != "Bearer "+f.Token) {
			return jsonAnswer(http.StatusUnauthorized, map[string]any{"error_summary": "invalid_access_token/..", "error": map[string]any{".tag": "invalid_access_token"}})
		}
		isContent := contentEndpoints[endpoint]
		if (host == "api" && isContent) || (host == "content" && !isContent) {
			return f.problem("%s sent to the %s host", endpoint, host)
		}
		var arg map[string]any
		if isContent {
			h := r.Header.Get(HeaderArg)
			rec.Arg = h
			for _, c := range h {
				if c < 0x20 || c >= 0x7f {
					return f.problem("%s: the Dropbox-API-Arg header has a character outside printable ASCII", endpoint)
				}
			}
			if err := json.Unmarshal([]byte(h), &arg); err != nil || arg == nil {
				return f.problem("%s: the Dropbox-API-Arg header is not a JSON object: %q", endpoint, h)
			}
			if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
				return f.problem("%s: Content-Type %q, want application/octet-stream", endpoint, ct)
			}
		} else {
			rec.Arg = string(body)
			if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				return f.problem("%s: Content-Type %q, want application/json", endpoint, ct)
			}
			if err := json.Unmarshal(body, &arg); err != nil {
				return f.problem("%s: the body is not JSON", endpoint)
			}
		}
		fl := f.failure(endpoint)
		if fl != nil && !fl.After {
			return failAnswer(fl)
		}
		a := f.handle(endpoint, arg, body)
		if fl != nil {
			return failAnswer(fl)
		}
		return a
	}()
	rec.Status = a.status
	f.requests = append(f.requests, rec)
	for k, v := range a.header {
		w.Header()[k] = v
	}
	w.WriteHeader(a.status)
	_, _ = w.Write(a.body)
}

func failAnswer(fl *Failure) answer {
	a := answer{status: fl.Status, header: http.Header{}}
	for k, v := range fl.Header {
		a.header[k] = v
	}
	if fl.Body != "" {
		a.header.Set("Content-Type", "application/json")
		a.body = []byte(fl.Body)
	} else {
		a.header.Set("Content-Type", "text/plain")
		a.body = []byte(http.StatusText(fl.Status))
	}
	return a
}

func (f *Fake) failure(endpoint string) *Failure {
	for i, fl := range f.failures {
		if fl.Endpoint != "" && fl.Endpoint != endpoint {
			continue
		}
		if fl.Skip > 0 {
			fl.Skip--
			continue
		}
		fl.Times--
		if fl.Times <= 0 {
			f.failures = append(f.failures[:i], f.failures[i+1:]...)
		}
		return fl
	}
	return nil
}

func (f *Fake) problem(format string, args ...any) answer {
	msg := fmt.Sprintf(format, args...)
	f.Problems = append(f.Problems, msg)
	return answer{status: http.StatusBadRequest, header: http.Header{"Content-Type": {"text/plain"}}, body: []byte("Error in call to API function: " + msg)}
}

// fakeCursor is what the fake's cursors encode.
type fakeCursor struct {
	Path      string `json:"p"`
	Recursive bool   `json:"r"`
	Deleted   bool   `json:"d"`
	Pos       int    `json:"n"`
	Epoch     int    `json:"e"`
}

func encodeCursor(c fakeCursor) string {
	b, _ := json.Marshal(c)
	return "AAH" + base64.RawURLEncoding.EncodeToString(b)
}

func decodeCursor(s string) (fakeCursor, bool) {
	var c fakeCursor
	b, err := base64.RawURLEncoding.DecodeString(strings.TrimPrefix(s, "AAH"))
	return c, err == nil && strings.HasPrefix(s, "AAH") && json.Unmarshal(b, &c) == nil
}

func str(m map[string]any, k string) string { s, _ := m[k].(string); return s }
func boolean(m map[string]any, k string) bool {
	b, _ := m[k].(bool)
	return b
}

// under says whether an entry at lower is listed for a folder.
func under(folder, lower string, recursive bool) bool {
	if folder == "" {
		return recursive || strings.Count(lower, "/") == 1
	}
	if !strings.HasPrefix(lower, folder+"/") {
		return false
	}
	return recursive || !strings.Contains(lower[len(folder)+1:], "/")
}

func (f *Fake) handle(endpoint string, arg map[string]any, body []byte) answer {
	switch endpoint {
	case "users/get_current_account":
		return jsonAnswer(http.StatusOK, map[string]any{"account_id": "dbid:AAH4f99T0taONIb-OurWxbNQ6ywGRopQngc", "email": "ada@example.com"})
	case "files/get_metadata":
		p := str(arg, "path")
		if e, ok := f.files[strings.ToLower(p)]; ok {
			return jsonAnswer(http.StatusOK, e.Metadata)
		}
		return apiErr("path/not_found/..", map[string]any{".tag": "path", "path": map[string]any{".tag": "not_found"}})
	case "files/list_folder", "files/list_folder/get_latest_cursor":
		p := strings.ToLower(str(arg, "path"))
		if _, ok := arg["path"].(string); !ok {
			return f.problem("%s: no path", endpoint)
		}
		if p == "/" {
			return f.problem("%s: the root is \"\", not \"/\"", endpoint)
		}
		if e, ok := f.files[p]; p != "" && (!ok || e.Tag != "folder") {
			return apiErr("path/not_found/..", map[string]any{".tag": "path", "path": map[string]any{".tag": "not_found"}})
		}
		c := fakeCursor{Path: p, Recursive: boolean(arg, "recursive"), Deleted: boolean(arg, "include_deleted"), Epoch: f.epoch}
		if endpoint == "files/list_folder/get_latest_cursor" {
			c.Pos = len(f.log)
			return jsonAnswer(http.StatusOK, map[string]any{"cursor": encodeCursor(c)})
		}
		limit := 0
		if l, ok := arg["limit"].(float64); ok {
			limit = int(l)
		}
		return f.page(c, limit)
	case "files/list_folder/continue":
		c, ok := decodeCursor(str(arg, "cursor"))
		if !ok {
			return apiErr("other/..", map[string]any{".tag": "other"})
		}
		if c.Epoch != f.epoch {
			return apiErr("reset/..", map[string]any{".tag": "reset"})
		}
		return f.page(c, 0)
	case "files/upload":
		if int64(len(body)) > f.MaxUpload {
			return f.problem("files/upload of %d bytes: over 150 MiB needs an upload session", len(body))
		}
		return f.commit(arg, body)
	case "files/upload_session/start":
		f.seq++
		id := fmt.Sprintf("pid_upload_session:%06d", f.seq)
		f.sessions[id] = &fakeSession{data: append([]byte(nil), body...), closed: boolean(arg, "close"), appends: []int64{0}}
		return jsonAnswer(http.StatusOK, map[string]any{"session_id": id})
	case "files/upload_session/append_v2":
		cur, _ := arg["cursor"].(map[string]any)
		s, off, a, ok := f.session(cur)
		if !ok {
			return a
		}
		if s.closed {
			return apiErr("closed/..", map[string]any{".tag": "closed"})
		}
		if off != int64(len(s.data)) {
			return apiErr("incorrect_offset/..", map[string]any{".tag": "incorrect_offset", "correct_offset": len(s.data)})
		}
		s.appends = append(s.appends, off)
		s.data = append(s.data, body...)
		s.closed = boolean(arg, "close")
		return answer{status: http.StatusOK, header: http.Header{"Content-Type": {"application/json"}}, body: []byte("null")}
	case "files/upload_session/finish":
		cur, _ := arg["cursor"].(map[string]any)
		s, off, a, ok := f.session(cur)
		if !ok {
			return a
		}
		if off != int64(len(s.data)) {
			return apiErr("lookup_failed/incorrect_offset/..", map[string]any{".tag": "lookup_failed",
				"lookup_failed": map[string]any{".tag": "incorrect_offset", "correct_offset": len(s.data)}})
		}
		commit, _ := arg["commit"].(map[string]any)
		if commit == nil {
			return f.problem("finish: no commit")
		}
		data := append(append([]byte(nil), s.data...), body...)
		if h := str(arg, "content_hash"); h != "" {
			commit["content_hash"] = h
		}
		return f.commit(commit, data)
	}
	return f.problem("unknown endpoint %q", endpoint)
}

func (f *Fake) session(cur map[string]any) (*fakeSession, int64, answer, bool) {
	if cur == nil {
		return nil, 0, f.problem("no cursor"), false
	}
	off, ok := cur["offset"].(float64)
	if !ok {
		return nil, 0, f.problem("the cursor has no offset"), false
	}
	s, ok := f.sessions[str(cur, "session_id")]
	if !ok {
		return nil, 0, apiErr("not_found/..", map[string]any{".tag": "not_found"}), false
	}
	return s, int64(off), answer{}, true
}

// commit stores an upload as its arguments say (mode add or overwrite,
// autorename, content_hash).
func (f *Fake) commit(arg map[string]any, data []byte) answer {
	p := str(arg, "path")
	if !strings.HasPrefix(p, "/") || strings.HasSuffix(p, "/") {
		return apiErr("path/malformed_path/..", map[string]any{".tag": "path", "reason": map[string]any{".tag": "malformed_path"}})
	}
	if h := str(arg, "content_hash"); h != "" && h != ContentHash(data) {
		return apiErr("content_hash_mismatch/..", map[string]any{".tag": "content_hash_mismatch"})
	}
	mode := "add"
	switch m := arg["mode"].(type) {
	case string:
		mode = m
	case map[string]any:
		mode = str(m, ".tag")
	case nil:
	default:
		return f.problem("mode %v", m)
	}
	if mode != "add" && mode != "overwrite" {
		return f.problem("mode %q", mode)
	}
	if _, ok := f.files[strings.ToLower(p)]; ok && mode == "add" {
		if !boolean(arg, "autorename") {
			return apiErr("path/conflict/file/..", map[string]any{".tag": "path",
				"reason": map[string]any{".tag": "conflict", "conflict": map[string]any{".tag": "file"}}, "upload_session_id": ""})
		}
		ext := path.Ext(p)
		stem := strings.TrimSuffix(p, ext)
		for i := 1; ; i++ {
			cand := stem + " (" + strconv.Itoa(i) + ")" + ext
			if _, taken := f.files[strings.ToLower(cand)]; !taken {
				p = cand
				break
			}
		}
	}
	return jsonAnswer(http.StatusOK, f.put(p, data).Metadata)
}

// page answers a list from cursor c: the changes since its position under
// its folder, at most PageSize (or limit), and the cursor after them.
func (f *Fake) page(c fakeCursor, limit int) answer {
	max := f.PageSize
	if limit > 0 && (max == 0 || limit < max) {
		max = limit
	}
	var entries []Metadata
	pos := c.Pos
	for ; pos < len(f.log); pos++ {
		if max > 0 && len(entries) == max {
			break
		}
		md := f.log[pos]
		if !under(c.Path, md.PathLower, c.Recursive) || (md.Tag == "deleted" && !c.Deleted) {
			continue
		}
		entries = append(entries, md)
	}
	more := false
	for q := pos; q < len(f.log); q++ {
		if under(c.Path, f.log[q].PathLower, c.Recursive) && (f.log[q].Tag != "deleted" || c.Deleted) {
			more = true
			break
		}
	}
	c.Pos = pos
	if entries == nil {
		entries = []Metadata{}
	}
	return jsonAnswer(http.StatusOK, ListFolderResult{Entries: entries, Cursor: encodeCursor(c), HasMore: more})
}

// SortedPaths lists the fake's paths, sorted (for test messages).
func (f *Fake) SortedPaths() []string {
	var out []string
	for k := range f.Files() {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
