package google

import (
	"crypto/md5"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"google.golang.org/api/calendar/v3"
	"google.golang.org/api/drive/v3"
)

// Fake is an httptest handler that answers the Calendar v3 and Drive v3
// calls the gcal and gdrive actions make, as Google documents them, and
// checks the requests the library sends: the method and path, the
// Authorization header (Bearer Token), the JSON body's required fields,
// multipart and resumable uploads' framing. A request it does not expect
// is answered 400 with the problem, and recorded in Problems.
//
// Serve it at the root of a connection's base_url: Calendar under
// /calendar/v3/, Drive under /drive/v3/ and /upload/drive/v3/.
type Fake struct {
	// Token is the access token every request must carry as a bearer
	// token; "" takes any (a test kit's canary).
	Token string
	// MaxPage caps a list's page (Google's own cap is 250 events), so
	// that paging shows with few items; 0 is no cap.
	MaxPage int

	mu       sync.Mutex
	events   map[string]map[string]*calendar.Event // calendar id, event id
	deleted  map[string]bool                       // calendar id + "/" + event id
	files    map[string]*FakeFile
	uploads  map[string]*fakeUpload
	perms    map[string][]*drive.Permission
	seq      int
	failures []*Failure
	feeds    syncState // events.list sync tokens and Drive's changes (fakesync.go)
	// Requests lists every request, in order.
	Requests []Recorded
	// Problems lists the requests the fake refused as malformed.
	Problems []string
}

// FakeFile is a file or folder the fake holds.
type FakeFile struct {
	drive.File
	Content []byte
}

// Recorded is one request the fake got.
type Recorded struct {
	Method, Path, Query string
	// ContentRange is an upload request's Content-Range.
	ContentRange string
	// Status is the answer's status.
	Status int
}

// Failure is an answer the fake gives instead of, or after, handling a
// matching request.
type Failure struct {
	Method string
	// Path matches a request path that ends with it ("" any).
	Path string
	// Query, when set, must be in the raw query (uploadType=resumable).
	Query string
	// Range, when set, must be the request's Content-Range prefix.
	Range string
	// Status is the answer; 0 is 503.
	Status int
	// After handles the request first (the event is created) and then
	// answers Status: the answer is lost, not the work.
	After bool
	// Header is added to the answer (Retry-After).
	Header http.Header
	// Reason is the error's reason (rateLimitExceeded, say).
	Reason string
	// Times is how many requests it fails; 0 is once.
	Times int
}

// fakeUpload is a resumable upload session.
type fakeUpload struct {
	meta     drive.File
	mimeType string
	data     []byte
	// Ranges are the byte ranges stored, in order (a retried chunk
	// appears once per attempt that was stored).
	ranges [][2]int64
	done   *FakeFile
}

// NewFake returns a fake for token.
func NewFake(token string) *Fake {
	return &Fake{Token: token, events: map[string]map[string]*calendar.Event{}, deleted: map[string]bool{},
		files: map[string]*FakeFile{}, uploads: map[string]*fakeUpload{}, perms: map[string][]*drive.Permission{},
		feeds: newSyncState()}
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

// Events returns a calendar's events, by id.
func (f *Fake) Events(cal string) map[string]*calendar.Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*calendar.Event{}
	for k, v := range f.events[cal] {
		c := *v
		out[k] = &c
	}
	return out
}

// Files returns the files and folders, by id.
func (f *Fake) Files() map[string]*FakeFile {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]*FakeFile{}
	for k, v := range f.files {
		out[k] = v
	}
	return out
}

// Permissions returns a file's permissions.
func (f *Fake) Permissions(fileID string) []*drive.Permission {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.perms[fileID])
}

// UploadRanges returns the byte ranges each resumable upload stored, in
// the order they came, by upload id.
func (f *Fake) UploadRanges() map[string][][2]int64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string][][2]int64{}
	for id, u := range f.uploads {
		out[id] = slices.Clone(u.ranges)
	}
	return out
}

// Recorded returns the requests so far.
func (f *Fake) Recorded() []Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return slices.Clone(f.Requests)
}

// AddEvent puts an event in a calendar of the fake.
func (f *Fake) AddEvent(cal string, ev *calendar.Event) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.events[cal] == nil {
		f.events[cal] = map[string]*calendar.Event{}
	}
	if ev.Created == "" {
		ev.Created = Stamp(time.Now())
	}
	if ev.Updated == "" {
		ev.Updated = ev.Created
	}
	f.events[cal][ev.Id] = ev
	f.touchEvent(cal, ev.Id)
}

// AddFile puts a file or folder in the fake.
func (f *Fake) AddFile(file *FakeFile) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if file.CreatedTime == "" {
		file.CreatedTime = Stamp(time.Now())
	}
	f.files[file.Id] = file
	f.changed(file.Id, false)
}

// statusWriter records the status written.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

// ServeHTTP implements http.Handler.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	f.mu.Lock()
	defer f.mu.Unlock()
	idx := len(f.Requests)
	f.Requests = append(f.Requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.RawQuery, ContentRange: r.Header.Get("Content-Range")})
	defer func() { f.Requests[idx].Status = sw.status }()
	if auth := r.Header.Get("Authorization"); (f.Token != "" && auth != "Bearer "+f.Token) || !strings.HasPrefix(auth, "Bearer ") || len(auth) == len("Bearer ") {
		gerror(sw, http.StatusUnauthorized, "authError", "Request had invalid authentication credentials.")
		return
	}
	fl := f.failure(r)
	if fl != nil && !fl.After {
		_, _ = io.Copy(io.Discard, r.Body)
		failWith(sw, fl)
		return
	}
	if fl != nil {
		sw2 := &discardWriter{header: http.Header{}}
		f.route(sw2, r)
		failWith(sw, fl)
		return
	}
	f.route(sw, r)
}

// discardWriter is where the answer of a request failed after it was
// handled goes.
type discardWriter struct {
	header http.Header
}

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func (f *Fake) failure(r *http.Request) *Failure {
	for _, fl := range f.failures {
		if fl.Times <= 0 || (fl.Method != "" && fl.Method != r.Method) || !strings.HasSuffix(r.URL.Path, fl.Path) ||
			!strings.Contains(r.URL.RawQuery, fl.Query) || !strings.HasPrefix(r.Header.Get("Content-Range"), fl.Range) {
			continue
		}
		fl.Times--
		return fl
	}
	return nil
}

func failWith(w http.ResponseWriter, fl *Failure) {
	for k, v := range fl.Header {
		w.Header()[k] = v
	}
	reason := fl.Reason
	if reason == "" {
		reason = map[int]string{429: "rateLimitExceeded", 500: "backendError", 503: "backendError", 404: "notFound", 409: "duplicate"}[fl.Status]
	}
	gerror(w, fl.Status, reason, "injected "+strconv.Itoa(fl.Status))
}

// gerror writes Google's JSON error.
func gerror(w http.ResponseWriter, code int, reason, msg string) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{
		"code": code, "message": msg, "errors": []any{map[string]any{"domain": "global", "reason": reason, "message": msg}}}})
}

func (f *Fake) problem(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.Problems = append(f.Problems, msg)
	gerror(w, http.StatusBadRequest, "badRequest", msg)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=UTF-8")
	_ = json.NewEncoder(w).Encode(v)
}

var (
	eventsPath = regexp.MustCompile(`^/calendar/v3/calendars/([^/]+)/events$`)
	eventPath  = regexp.MustCompile(`^/calendar/v3/calendars/([^/]+)/events/([^/]+)$`)
	filePath   = regexp.MustCompile(`^/drive/v3/files/([^/]+)$`)
	permPath   = regexp.MustCompile(`^/drive/v3/files/([^/]+)/permissions$`)
	eventIDRE  = regexp.MustCompile(`^[a-v0-9]{5,}$`)
)

func (f *Fake) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	if r.URL.Query().Get("alt") != "json" && r.URL.Query().Get("uploadType") == "" && r.Method != http.MethodDelete {
		f.problem(w, "%s %s: the library always asks alt=json", r.Method, p)
		return
	}
	switch {
	case eventsPath.MatchString(p) && r.Method == http.MethodPost:
		f.insertEvent(w, r, eventsPath.FindStringSubmatch(p)[1])
	case eventsPath.MatchString(p) && r.Method == http.MethodGet && r.URL.Query().Get("syncToken") != "":
		f.syncEvents(w, r, eventsPath.FindStringSubmatch(p)[1])
	case eventsPath.MatchString(p) && r.Method == http.MethodGet:
		f.listEvents(w, r, eventsPath.FindStringSubmatch(p)[1])
	case eventPath.MatchString(p):
		m := eventPath.FindStringSubmatch(p)
		f.event(w, r, m[1], m[2])
	case p == "/drive/v3/changes/startPageToken" && r.Method == http.MethodGet:
		f.startPageToken(w)
	case p == "/drive/v3/changes" && r.Method == http.MethodGet:
		f.listChanges(w, r)
	case p == "/drive/v3/files" && r.Method == http.MethodGet:
		f.listFiles(w, r)
	case p == "/drive/v3/files" && r.Method == http.MethodPost:
		f.createFile(w, r)
	case p == "/upload/drive/v3/files" && r.Method == http.MethodPost && r.URL.Query().Get("uploadType") == "multipart":
		f.multipart(w, r)
	case p == "/upload/drive/v3/files" && r.URL.Query().Get("uploadType") == "resumable":
		f.resumable(w, r)
	case permPath.MatchString(p) && r.Method == http.MethodPost:
		f.share(w, r, permPath.FindStringSubmatch(p)[1])
	case filePath.MatchString(p) && r.Method == http.MethodGet:
		f.getFile(w, filePath.FindStringSubmatch(p)[1])
	default:
		f.problem(w, "unexpected %s %s", r.Method, p)
	}
}

// eventTime checks an EventDateTime: a dateTime (RFC 3339) or a date.
func eventTime(t *calendar.EventDateTime) error {
	switch {
	case t == nil:
		return fmt.Errorf("missing")
	case t.DateTime != "" && t.Date != "":
		return fmt.Errorf("both dateTime and date")
	case t.DateTime != "":
		if _, err := time.Parse(time.RFC3339, t.DateTime); err != nil {
			// without an offset, the time zone says where it is
			if _, err2 := time.Parse("2006-01-02T15:04:05", t.DateTime); err2 != nil || t.TimeZone == "" {
				return fmt.Errorf("dateTime %q is not RFC 3339 (nor local time with a timeZone)", t.DateTime)
			}
		}
	case t.Date != "":
		if _, err := time.Parse(time.DateOnly, t.Date); err != nil {
			return fmt.Errorf("date %q is not yyyy-mm-dd", t.Date)
		}
	default:
		return fmt.Errorf("neither dateTime nor date")
	}
	return nil
}

func (f *Fake) insertEvent(w http.ResponseWriter, r *http.Request, cal string) {
	if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct != "application/json" {
		f.problem(w, "insert event: content type %q", r.Header.Get("Content-Type"))
		return
	}
	var ev calendar.Event
	if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
		f.problem(w, "insert event: %v", err)
		return
	}
	if err := eventTime(ev.Start); err != nil {
		f.problem(w, "insert event: start: %v", err)
		return
	}
	if err := eventTime(ev.End); err != nil {
		f.problem(w, "insert event: end: %v", err)
		return
	}
	if ev.Id != "" && (!eventIDRE.MatchString(ev.Id) || len(ev.Id) > 1024) {
		gerror(w, http.StatusBadRequest, "invalid", "Invalid resource id value.")
		return
	}
	if ev.ConferenceData != nil && ev.ConferenceData.CreateRequest != nil && r.URL.Query().Get("conferenceDataVersion") != "1" {
		f.problem(w, "insert event: a conference create request needs conferenceDataVersion=1")
		return
	}
	if f.events[cal] == nil {
		f.events[cal] = map[string]*calendar.Event{}
	}
	if ev.Id == "" {
		f.seq++
		ev.Id = fmt.Sprintf("ev%05d", f.seq)
	}
	if _, ok := f.events[cal][ev.Id]; ok || f.deleted[cal+"/"+ev.Id] {
		gerror(w, http.StatusConflict, "duplicate", "The requested identifier already exists.")
		return
	}
	ev.Kind, ev.Status = "calendar#event", "confirmed"
	ev.HtmlLink = "https://www.google.com/calendar/event?eid=" + ev.Id
	ev.ICalUID = ev.Id + "@google.com"
	ev.Created = Stamp(time.Now())
	ev.Updated = ev.Created
	ev.Etag = `"1"`
	if ev.ConferenceData != nil && ev.ConferenceData.CreateRequest != nil {
		link := "https://meet.google.com/" + ev.Id[:3] + "-" + ev.Id[3:5] + "-abc"
		ev.HangoutLink = link
		ev.ConferenceData = &calendar.ConferenceData{ConferenceId: ev.Id,
			CreateRequest: &calendar.CreateConferenceRequest{RequestId: ev.ConferenceData.CreateRequest.RequestId,
				ConferenceSolutionKey: ev.ConferenceData.CreateRequest.ConferenceSolutionKey,
				Status:                &calendar.ConferenceRequestStatus{StatusCode: "success"}},
			EntryPoints: []*calendar.EntryPoint{{EntryPointType: "video", Uri: link}}}
	}
	stored := ev
	f.events[cal][ev.Id] = &stored
	f.touchEvent(cal, ev.Id)
	writeJSON(w, &ev)
}

func (f *Fake) event(w http.ResponseWriter, r *http.Request, cal, id string) {
	ev, ok := f.events[cal][id]
	if !ok {
		if f.deleted[cal+"/"+id] {
			if r.Method == http.MethodDelete {
				gerror(w, http.StatusGone, "deleted", "Resource has been deleted")
				return
			}
		}
		gerror(w, http.StatusNotFound, "notFound", "Not Found")
		return
	}
	switch r.Method {
	case http.MethodGet:
		writeJSON(w, ev)
	case http.MethodPatch:
		var patch map[string]json.RawMessage
		if err := json.NewDecoder(r.Body).Decode(&patch); err != nil || len(patch) == 0 {
			f.problem(w, "patch event: an empty or bad body")
			return
		}
		cur, _ := json.Marshal(ev)
		var merged map[string]json.RawMessage
		_ = json.Unmarshal(cur, &merged)
		for k, v := range patch {
			merged[k] = v
		}
		b, _ := json.Marshal(merged)
		var next calendar.Event
		if err := json.Unmarshal(b, &next); err != nil {
			f.problem(w, "patch event: %v", err)
			return
		}
		if err := eventTime(next.Start); err != nil {
			f.problem(w, "patch event: start: %v", err)
			return
		}
		next.Updated = Stamp(time.Now())
		f.events[cal][id] = &next
		f.touchEvent(cal, id)
		writeJSON(w, &next)
	case http.MethodDelete:
		delete(f.events[cal], id)
		f.deleted[cal+"/"+id] = true
		f.cancelEvent(cal, ev)
		w.WriteHeader(http.StatusNoContent)
	default:
		f.problem(w, "unexpected %s on an event", r.Method)
	}
}

func (f *Fake) listEvents(w http.ResponseWriter, r *http.Request, cal string) {
	q := r.URL.Query()
	var tmin, tmax time.Time
	var err error
	if s := q.Get("timeMin"); s != "" {
		if tmin, err = time.Parse(time.RFC3339, s); err != nil {
			f.problem(w, "list events: timeMin %q", s)
			return
		}
	}
	if s := q.Get("timeMax"); s != "" {
		if tmax, err = time.Parse(time.RFC3339, s); err != nil {
			f.problem(w, "list events: timeMax %q", s)
			return
		}
	}
	var all []*calendar.Event
	for _, ev := range f.events[cal] {
		start := eventStart(ev.Start)
		end := eventStart(ev.End)
		if !tmin.IsZero() && !end.After(tmin) {
			continue
		}
		if !tmax.IsZero() && !start.Before(tmax) {
			continue
		}
		if s := strings.ToLower(q.Get("q")); s != "" && !strings.Contains(strings.ToLower(ev.Summary+" "+ev.Description+" "+ev.Location), s) {
			continue
		}
		all = append(all, ev)
	}
	sort.Slice(all, func(i, j int) bool {
		a, b := eventStart(all[i].Start), eventStart(all[j].Start)
		if a.Equal(b) {
			return all[i].Id < all[j].Id
		}
		return a.Before(b)
	})
	size := 250
	if n, err := strconv.Atoi(q.Get("maxResults")); err == nil && n > 0 {
		size = n
	}
	if f.MaxPage > 0 && size > f.MaxPage {
		size = f.MaxPage
	}
	// a page token names the list's state when its first page was read
	// and the last event given: the pages after it start past that event
	// however the calendar changed meanwhile, and the last page's sync
	// token is the first page's, so what changed while the pages were
	// read comes in the next incremental sync (as Google's pages are
	// stable)
	seq, from := f.feeds.calSeq, 0
	if t := q.Get("pageToken"); t != "" {
		var nano int64
		var after string
		if _, err := fmt.Sscanf(t, "lp%d_%d_%s", &seq, &nano, &after); err != nil || seq > f.feeds.calSeq {
			f.problem(w, "list events: pageToken %q", t)
			return
		}
		last := time.Unix(0, nano)
		from = sort.Search(len(all), func(i int) bool {
			st := eventStart(all[i].Start)
			return st.After(last) || (st.Equal(last) && all[i].Id > after)
		})
	}
	out := &calendar.Events{Kind: "calendar#events", Summary: cal}
	for i := from; i < len(all) && i < from+size; i++ {
		out.Items = append(out.Items, all[i])
	}
	if from+size < len(all) {
		last := all[from+size-1]
		out.NextPageToken = fmt.Sprintf("lp%d_%d_%s", seq, eventStart(last.Start).UnixNano(), last.Id)
	} else {
		// the last page of a full list carries the token of an
		// incremental sync from its first page
		out.NextSyncToken = "sync" + strconv.Itoa(seq)
	}
	writeJSON(w, out)
}

func eventStart(t *calendar.EventDateTime) time.Time {
	if t == nil {
		return time.Time{}
	}
	if t.DateTime != "" {
		v, _ := time.Parse(time.RFC3339, t.DateTime)
		return v
	}
	v, _ := time.Parse(time.DateOnly, t.Date)
	return v
}

var (
	qName    = regexp.MustCompile(`name\s*=\s*'((?:[^'\\]|\\.)*)'`)
	qMime    = regexp.MustCompile(`mimeType\s*=\s*'((?:[^'\\]|\\.)*)'`)
	qParent  = regexp.MustCompile(`'((?:[^'\\]|\\.)*)'\s+in\s+parents`)
	qAppProp = regexp.MustCompile(`appProperties\s+has\s+\{\s*key\s*=\s*'((?:[^'\\]|\\.)*)'\s+and\s+value\s*=\s*'((?:[^'\\]|\\.)*)'\s*\}`)
)

func unq(s string) string {
	return strings.NewReplacer(`\'`, `'`, `\\`, `\`).Replace(s)
}

// listFiles answers a search by the query forms the actions use: name,
// mimeType, a parent, an app property, and trashed = false.
func (f *Fake) listFiles(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query().Get("q")
	if q == "" || !strings.Contains(q, "trashed = false") {
		f.problem(w, "list files: a query without trashed = false: %q", q)
		return
	}
	var out []*drive.File
	for _, file := range f.files {
		if m := qName.FindStringSubmatch(q); m != nil && file.Name != unq(m[1]) {
			continue
		}
		if m := qMime.FindStringSubmatch(q); m != nil && file.MimeType != unq(m[1]) {
			continue
		}
		if m := qParent.FindStringSubmatch(q); m != nil && !slices.Contains(file.Parents, unq(m[1])) {
			continue
		}
		if m := qAppProp.FindStringSubmatch(q); m != nil && file.AppProperties[unq(m[1])] != unq(m[2]) {
			continue
		}
		c := file.File
		out = append(out, &c)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Id < out[j].Id })
	writeJSON(w, &drive.FileList{Kind: "drive#fileList", Files: out})
}

func (f *Fake) newFile(meta drive.File, content []byte) *FakeFile {
	f.seq++
	file := &FakeFile{File: meta, Content: content}
	file.Id = fmt.Sprintf("f%05d", f.seq)
	file.Kind = "drive#file"
	if file.MimeType == "" {
		file.MimeType = "application/octet-stream"
	}
	if len(file.Parents) == 0 {
		file.Parents = []string{"root"}
	}
	file.WebViewLink = "https://drive.google.com/file/d/" + file.Id + "/view"
	file.CreatedTime = Stamp(time.Now())
	file.ModifiedTime = file.CreatedTime
	if len(file.Owners) == 0 {
		file.Owners = []*drive.User{{Kind: "drive#user", DisplayName: "Fake Owner", EmailAddress: "owner@example.com", Me: true}}
	}
	if file.MimeType == "application/vnd.google-apps.folder" {
		file.WebViewLink = "https://drive.google.com/drive/folders/" + file.Id
	} else {
		sum := md5.Sum(content)
		file.Md5Checksum = hex.EncodeToString(sum[:])
		file.Size = int64(len(content))
	}
	f.files[file.Id] = file
	f.changed(file.Id, false)
	return file
}

func (f *Fake) createFile(w http.ResponseWriter, r *http.Request) {
	var meta drive.File
	if err := json.NewDecoder(r.Body).Decode(&meta); err != nil || meta.Name == "" {
		f.problem(w, "create file: a body without a name")
		return
	}
	writeJSON(w, &f.newFile(meta, nil).File)
}

func (f *Fake) multipart(w http.ResponseWriter, r *http.Request) {
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || mt != "multipart/related" {
		f.problem(w, "multipart upload: content type %q", r.Header.Get("Content-Type"))
		return
	}
	mr := multipart.NewReader(r.Body, params["boundary"])
	part, err := mr.NextPart()
	if err != nil || !strings.HasPrefix(part.Header.Get("Content-Type"), "application/json") {
		f.problem(w, "multipart upload: the first part is not the JSON metadata")
		return
	}
	var meta drive.File
	if err := json.NewDecoder(part).Decode(&meta); err != nil || meta.Name == "" {
		f.problem(w, "multipart upload: metadata without a name")
		return
	}
	part, err = mr.NextPart()
	if err != nil {
		f.problem(w, "multipart upload: no media part")
		return
	}
	content, err := io.ReadAll(part)
	if err != nil {
		f.problem(w, "multipart upload: %v", err)
		return
	}
	if meta.MimeType == "" {
		meta.MimeType = part.Header.Get("Content-Type")
	}
	writeJSON(w, &f.newFile(meta, content).File)
}

var contentRange = regexp.MustCompile(`^bytes (?:(\d+)-(\d+)|\*)/(\d+|\*)$`)

// resumable serves the resumable protocol: a POST without upload_id
// starts a session (its Location); a request to the session carries a
// chunk (Content-Range: bytes A-B/TOTAL or A-B/*), or asks how far it is
// (an empty body with bytes */TOTAL). An incomplete session answers 308
// with Range: bytes=0-N (or, when the request says X-GUploader-No-308,
// 200 with X-Http-Status-Code-Override: 308, as Google does).
func (f *Fake) resumable(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("upload_id")
	if id == "" {
		if r.Method != http.MethodPost {
			f.problem(w, "resumable: a session starts with a POST")
			return
		}
		var meta drive.File
		if err := json.NewDecoder(r.Body).Decode(&meta); err != nil || meta.Name == "" {
			f.problem(w, "resumable: metadata without a name")
			return
		}
		f.seq++
		id = fmt.Sprintf("up%05d", f.seq)
		f.uploads[id] = &fakeUpload{meta: meta, mimeType: r.Header.Get("X-Upload-Content-Type")}
		scheme := "http"
		if r.TLS != nil {
			scheme = "https"
		}
		w.Header().Set("Location", scheme+"://"+r.Host+"/upload/drive/v3/files?uploadType=resumable&upload_id="+id)
		w.WriteHeader(http.StatusOK)
		return
	}
	u, ok := f.uploads[id]
	if !ok {
		gerror(w, http.StatusNotFound, "notFound", "no such upload session")
		return
	}
	if r.Method != http.MethodPut && r.Method != http.MethodPost {
		f.problem(w, "resumable: %s to a session", r.Method)
		return
	}
	if u.done != nil {
		writeJSON(w, &u.done.File)
		return
	}
	m := contentRange.FindStringSubmatch(r.Header.Get("Content-Range"))
	if m == nil {
		f.problem(w, "resumable: Content-Range %q", r.Header.Get("Content-Range"))
		return
	}
	total := int64(-1)
	if m[3] != "*" {
		total, _ = strconv.ParseInt(m[3], 10, 64)
	}
	if m[1] != "" {
		start, _ := strconv.ParseInt(m[1], 10, 64)
		end, _ := strconv.ParseInt(m[2], 10, 64)
		if start > int64(len(u.data)) {
			f.problem(w, "resumable: a chunk at %d leaves a gap after %d", start, len(u.data))
			return
		}
		var h hash.Hash = md5.New()
		body, err := io.ReadAll(io.TeeReader(r.Body, h))
		if err != nil || int64(len(body)) != end-start+1 {
			f.problem(w, "resumable: the chunk %d-%d holds %d bytes", start, end, len(body))
			return
		}
		u.data = append(u.data[:start], body...)
		u.ranges = append(u.ranges, [2]int64{start, end})
	}
	if total >= 0 && int64(len(u.data)) == total {
		meta := u.meta
		if meta.MimeType == "" {
			meta.MimeType = u.mimeType
		}
		u.done = f.newFile(meta, u.data)
		u.data = nil
		writeJSON(w, &u.done.File)
		return
	}
	if len(u.data) > 0 {
		w.Header().Set("Range", fmt.Sprintf("bytes=0-%d", len(u.data)-1))
	}
	if r.Header.Get("X-GUploader-No-308") == "yes" {
		w.Header().Set("X-Http-Status-Code-Override", "308")
		w.WriteHeader(http.StatusOK)
		return
	}
	w.WriteHeader(http.StatusPermanentRedirect)
}

func (f *Fake) getFile(w http.ResponseWriter, id string) {
	file, ok := f.files[id]
	if !ok {
		gerror(w, http.StatusNotFound, "notFound", "File not found: "+id+".")
		return
	}
	writeJSON(w, &file.File)
}

func (f *Fake) share(w http.ResponseWriter, r *http.Request, id string) {
	if _, ok := f.files[id]; !ok {
		gerror(w, http.StatusNotFound, "notFound", "File not found: "+id+".")
		return
	}
	var p drive.Permission
	if err := json.NewDecoder(r.Body).Decode(&p); err != nil {
		f.problem(w, "share: %v", err)
		return
	}
	roles := []string{"owner", "organizer", "fileOrganizer", "writer", "commenter", "reader"}
	switch {
	case !slices.Contains(roles, p.Role):
		f.problem(w, "share: role %q", p.Role)
		return
	case p.Type == "anyone" && p.EmailAddress != "":
		f.problem(w, "share: anyone with an email")
		return
	case (p.Type == "user" || p.Type == "group") && p.EmailAddress == "":
		f.problem(w, "share: a %s without an email", p.Type)
		return
	case p.Type != "anyone" && p.Type != "user" && p.Type != "group" && p.Type != "domain":
		f.problem(w, "share: type %q", p.Type)
		return
	}
	for _, old := range f.perms[id] {
		if old.Type == p.Type && old.EmailAddress == p.EmailAddress {
			old.Role = p.Role
			writeJSON(w, old)
			return
		}
	}
	f.seq++
	p.Id = fmt.Sprintf("perm%05d", f.seq)
	if p.Type == "anyone" {
		p.Id = "anyoneWithLink"
	}
	p.Kind = "drive#permission"
	f.perms[id] = append(f.perms[id], &p)
	writeJSON(w, &p)
}
