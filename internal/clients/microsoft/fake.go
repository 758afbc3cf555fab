package microsoft

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Fake is an httptest handler that answers the Graph calls the outlook
// trigger and actions make, as Graph documents them, and checks their
// shape: the path, Authorization: Bearer <token>, the JSON bodies
// (sendMail's message and recipients, an event's subject and
// dateTimeTimeZone start and end), the message list's $filter, $orderby
// and $top. A list pages with @odata.nextLink (an absolute URL on the
// fake, as Graph gives). A request it does not expect is answered 400
// with Graph's error shape, and recorded in Problems.
//
// Serve it at a connection's base_url, its root or /v1.0/ (paths then start with me/
// or users/{id}/).
type Fake struct {
	// Token is the access token every request must carry as a bearer
	// token; "" takes any (a test kit's canary).
	Token string
	// PageSize caps a list's page below $top, so that paging shows with
	// few messages; 0 is no cap.
	PageSize int
	// URL is the fake's own root (the httptest server's URL), for
	// nextLink; Request's host is used when empty.
	URL string

	mu       sync.Mutex
	messages map[string][]*Message // folder (lower case) → messages
	atts     map[string][]Attachment
	events   map[string][]*Event // calendar ("" the default) → events
	sent     []SentMail
	seq      int
	failures []*Failure
	requests []Recorded
	problems []string
	// Now gives the fake's clock (receivedDateTime of added messages);
	// time.Now when nil.
	Now func() time.Time
}

// SentMail is one accepted sendMail call.
type SentMail struct {
	User            string
	Message         map[string]any
	SaveToSentItems any
}

// Recorded is one request the fake got.
type Recorded struct {
	Method, Path string
	Query        url.Values
	Status       int
}

// Failure is an answer the fake gives instead of handling a matching
// request, Times times (0: always).
type Failure struct {
	Method     string
	Path       string // a suffix of the request path; "" any
	Status     int
	RetryAfter string
	Code       string
	Times      int
	// After handles the request first, then answers the failure: the
	// call took effect but its answer was lost (a retry must not repeat
	// it).
	After bool
}

// NewFake returns a fake that takes token.
func NewFake(token string) *Fake {
	return &Fake{Token: token, messages: map[string][]*Message{}, atts: map[string][]Attachment{}, events: map[string][]*Event{}}
}

// Fail adds a failure.
func (f *Fake) Fail(fl Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures = append(f.failures, &fl)
}

// AddMessage puts m in folder (inbox, say), giving it an id, an
// internetMessageId and a receivedDateTime (now, to the second, as Graph
// stores it) when it has none; attachments are listed by the attachments
// endpoint. It returns the stored message.
func (f *Fake) AddMessage(folder string, m Message) Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seq++
	if m.ID == "" {
		m.ID = fmt.Sprintf("AAMkAD%06d=", f.seq)
	}
	if m.InternetMessageID == "" {
		m.InternetMessageID = fmt.Sprintf("<msg%d@fake.example>", f.seq)
	}
	if m.ReceivedDateTime == "" {
		m.ReceivedDateTime = f.now().UTC().Truncate(time.Second).Format(time.RFC3339)
	}
	if m.WebLink == "" {
		m.WebLink = "https://outlook.office365.com/owa/?ItemID=" + url.QueryEscape(m.ID)
	}
	for i := range m.Attachments {
		a := &m.Attachments[i]
		if a.ID == "" {
			a.ID = fmt.Sprintf("att%d-%d", f.seq, i)
		}
		if a.ODataType == "" {
			a.ODataType = FileAttachmentType
		}
		if a.Size == 0 && a.ContentBytes != "" {
			if b, err := base64.StdEncoding.DecodeString(a.ContentBytes); err == nil {
				a.Size = int64(len(b))
			}
		}
		m.HasAttachments = true
	}
	f.atts[m.ID] = m.Attachments
	m.Attachments = nil
	k := strings.ToLower(folder)
	f.messages[k] = append(f.messages[k], &m)
	return m
}

// Sent lists the accepted sendMail calls.
func (f *Fake) Sent() []SentMail {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]SentMail(nil), f.sent...)
}

// Events lists the events of a calendar ("" the default one).
func (f *Fake) Events(calendar string) []Event {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Event
	for _, e := range f.events[calendar] {
		out = append(out, *e)
	}
	return out
}

// Requests lists the requests, in order.
func (f *Fake) Requests() []Recorded {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Recorded(nil), f.requests...)
}

// Problems lists the requests refused as malformed.
func (f *Fake) Problems() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.problems...)
}

func (f *Fake) now() time.Time {
	if f.Now != nil {
		return f.Now()
	}
	return time.Now()
}

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

// ServeHTTP answers one Graph call.
func (f *Fake) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w}
	defer func() {
		f.mu.Lock()
		f.requests = append(f.requests, Recorded{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query(), Status: sw.status})
		f.mu.Unlock()
	}()
	auth := r.Header.Get("Authorization")
	tok, ok := strings.CutPrefix(auth, "Bearer ")
	if !ok || tok == "" || (f.Token != "" && tok != f.Token) {
		graphError(sw, http.StatusUnauthorized, "InvalidAuthenticationToken", "Access token is empty or invalid.")
		return
	}
	if fl := f.failure(r); fl != nil {
		if fl.After {
			f.route(&discardWriter{header: http.Header{}}, r)
		}
		if fl.RetryAfter != "" {
			sw.Header().Set("Retry-After", fl.RetryAfter)
		}
		code := fl.Code
		if code == "" {
			code = http.StatusText(fl.Status)
		}
		graphError(sw, fl.Status, code, "injected failure")
		return
	}
	f.route(sw, r)
}

type discardWriter struct{ header http.Header }

func (d *discardWriter) Header() http.Header         { return d.header }
func (d *discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (d *discardWriter) WriteHeader(int)             {}

func (f *Fake) failure(r *http.Request) *Failure {
	f.mu.Lock()
	defer f.mu.Unlock()
	for i, fl := range f.failures {
		if (fl.Method == "" || fl.Method == r.Method) && strings.HasSuffix(r.URL.Path, fl.Path) {
			if fl.Times > 0 {
				fl.Times--
				if fl.Times == 0 {
					f.failures = append(f.failures[:i:i], f.failures[i+1:]...)
				}
			}
			return fl
		}
	}
	return nil
}

func graphError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"error": map[string]any{"code": code, "message": msg}})
}

func (f *Fake) problem(w http.ResponseWriter, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	f.mu.Lock()
	f.problems = append(f.problems, msg)
	f.mu.Unlock()
	graphError(w, http.StatusBadRequest, "BadRequest", msg)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var (
	userRE     = `(?:me|users/([^/]+))`
	sendRE     = regexp.MustCompile(`^(?:/v1\.0)?/` + userRE + `/sendMail$`)
	eventsRE   = regexp.MustCompile(`^(?:/v1\.0)?/` + userRE + `/(?:calendar/|calendars/([^/]+)/)?events$`)
	listRE     = regexp.MustCompile(`^(?:/v1\.0)?/` + userRE + `/mailFolders/([^/]+)/messages$`)
	attListRE  = regexp.MustCompile(`^(?:/v1\.0)?/` + userRE + `/messages/([^/]+)/attachments$`)
	attGetRE   = regexp.MustCompile(`^(?:/v1\.0)?/` + userRE + `/messages/([^/]+)/attachments/([^/]+)$`)
	meRE       = regexp.MustCompile(`^(?:/v1\.0)?/` + userRE + `$`)
	filterRE   = regexp.MustCompile(`^receivedDateTime ge (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(?:\.\d+)?Z)$`)
	orderValid = map[string]bool{"receivedDateTime asc": true, "receivedDateTime desc": true}
)

func (f *Fake) route(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case r.Method == http.MethodPost && sendRE.MatchString(p):
		f.sendMail(w, r, sendRE.FindStringSubmatch(p)[1])
	case r.Method == http.MethodPost && eventsRE.MatchString(p):
		f.createEvent(w, r, eventsRE.FindStringSubmatch(p)[2])
	case r.Method == http.MethodGet && listRE.MatchString(p):
		f.listMessages(w, r, listRE.FindStringSubmatch(p)[2])
	case r.Method == http.MethodGet && attListRE.MatchString(p):
		f.listAttachments(w, r, attListRE.FindStringSubmatch(p)[2])
	case r.Method == http.MethodGet && attGetRE.MatchString(p):
		m := attGetRE.FindStringSubmatch(p)
		f.getAttachment(w, m[2], m[3])
	case r.Method == http.MethodGet && meRE.MatchString(p):
		writeJSON(w, http.StatusOK, map[string]any{"id": "u1", "mail": "ada@contoso.example", "userPrincipalName": "ada@contoso.example"})
	default:
		f.problem(w, "unexpected %s %s", r.Method, p)
	}
}

func (f *Fake) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		f.problem(w, "%s: Content-Type %q, want application/json", r.URL.Path, ct)
		return false
	}
	dec := json.NewDecoder(r.Body)
	if err := dec.Decode(v); err != nil {
		f.problem(w, "%s: body is not JSON: %v", r.URL.Path, err)
		return false
	}
	return true
}

func checkRecipients(v any, name string, need bool) error {
	l, ok := v.([]any)
	if v == nil && !need {
		return nil
	}
	if !ok || (need && len(l) == 0) {
		return fmt.Errorf("%s must be a list of recipients", name)
	}
	for _, x := range l {
		m, _ := x.(map[string]any)
		ea, _ := m["emailAddress"].(map[string]any)
		addr, _ := ea["address"].(string)
		if !strings.Contains(addr, "@") {
			return fmt.Errorf("%s: a recipient without emailAddress.address: %v", name, x)
		}
	}
	return nil
}

func (f *Fake) sendMail(w http.ResponseWriter, r *http.Request, user string) {
	var body map[string]any
	if !f.decode(w, r, &body) {
		return
	}
	msg, ok := body["message"].(map[string]any)
	if !ok {
		f.problem(w, "sendMail: no message object")
		return
	}
	for k := range body {
		if k != "message" && k != "saveToSentItems" {
			f.problem(w, "sendMail: unknown property %q", k)
			return
		}
	}
	if b, ok := msg["body"].(map[string]any); ok {
		if ct, _ := b["contentType"].(string); ct != "Text" && ct != "HTML" {
			f.problem(w, "sendMail: body.contentType %q, want Text or HTML", ct)
			return
		}
	}
	if err := checkRecipients(msg["toRecipients"], "toRecipients", false); err != nil {
		f.problem(w, "sendMail: %v", err)
		return
	}
	for _, k := range []string{"ccRecipients", "bccRecipients", "replyTo"} {
		if err := checkRecipients(msg[k], k, false); err != nil {
			f.problem(w, "sendMail: %v", err)
			return
		}
	}
	if msg["toRecipients"] == nil && msg["ccRecipients"] == nil && msg["bccRecipients"] == nil {
		f.problem(w, "sendMail: no recipients")
		return
	}
	if atts, ok := msg["attachments"].([]any); ok {
		for _, a := range atts {
			am, _ := a.(map[string]any)
			if am["@odata.type"] != FileAttachmentType {
				f.problem(w, "sendMail: attachment @odata.type %v", am["@odata.type"])
				return
			}
			cb, _ := am["contentBytes"].(string)
			if _, err := base64.StdEncoding.DecodeString(cb); err != nil || am["name"] == nil {
				f.problem(w, "sendMail: attachment without a name or base64 contentBytes")
				return
			}
		}
	}
	f.mu.Lock()
	f.sent = append(f.sent, SentMail{User: user, Message: msg, SaveToSentItems: body["saveToSentItems"]})
	f.mu.Unlock()
	w.WriteHeader(http.StatusAccepted)
}

func checkDTZ(d *DateTimeTimeZone, name string) error {
	if d == nil || d.DateTime == "" || d.TimeZone == "" {
		return fmt.Errorf("%s needs dateTime and timeZone", name)
	}
	if _, err := time.Parse("2006-01-02T15:04:05", strings.SplitN(d.DateTime, ".", 2)[0]); err != nil {
		return fmt.Errorf("%s.dateTime %q is not a local date-time (no offset)", name, d.DateTime)
	}
	return nil
}

func (f *Fake) createEvent(w http.ResponseWriter, r *http.Request, calendar string) {
	var ev Event
	if !f.decode(w, r, &ev) {
		return
	}
	if ev.Subject == "" {
		f.problem(w, "event: no subject")
		return
	}
	if err := checkDTZ(ev.Start, "start"); err != nil {
		f.problem(w, "event: %v", err)
		return
	}
	if err := checkDTZ(ev.End, "end"); err != nil {
		f.problem(w, "event: %v", err)
		return
	}
	if ev.IsAllDay && (!strings.HasSuffix(ev.Start.DateTime, "T00:00:00") || !strings.HasSuffix(ev.End.DateTime, "T00:00:00")) {
		f.problem(w, "event: an all-day event starts and ends at midnight")
		return
	}
	for _, a := range ev.Attendees {
		if !strings.Contains(a.EmailAddress.Address, "@") || (a.Type != "required" && a.Type != "optional" && a.Type != "resource") {
			f.problem(w, "event: attendee %+v", a)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if ev.TransactionID != "" {
		for _, e := range f.events[calendar] {
			if e.TransactionID == ev.TransactionID {
				// the same transaction again: no second event
				writeJSON(w, http.StatusCreated, e)
				return
			}
		}
	}
	f.seq++
	ev.ID = fmt.Sprintf("AAMkEV%06d=", f.seq)
	ev.WebLink = "https://outlook.office365.com/owa/?itemid=" + url.QueryEscape(ev.ID) + "&path=/calendar/item"
	ev.ICalUID = fmt.Sprintf("040000008200E00074C5B7101A82E008%08d", f.seq)
	if ev.IsOnlineMeeting {
		ev.OnlineMeeting = &OnlineMeeting{JoinURL: fmt.Sprintf("https://teams.microsoft.com/l/meetup-join/%d", f.seq)}
		if ev.OnlineMeetingProvider == "" {
			ev.OnlineMeetingProvider = "teamsForBusiness"
		}
	}
	f.events[calendar] = append(f.events[calendar], &ev)
	writeJSON(w, http.StatusCreated, &ev)
}

func (f *Fake) listMessages(w http.ResponseWriter, r *http.Request, folder string) {
	q := r.URL.Query()
	var since time.Time
	if flt := q.Get("$filter"); flt != "" {
		m := filterRE.FindStringSubmatch(flt)
		if m == nil {
			f.problem(w, "messages: $filter %q is not receivedDateTime ge <UTC date-time>", flt)
			return
		}
		since, _ = time.Parse(time.RFC3339Nano, m[1])
	}
	order := q.Get("$orderby")
	if order == "" || !orderValid[order] {
		f.problem(w, "messages: $orderby %q", order)
		return
	}
	top := 10 // Graph's default page
	if s := q.Get("$top"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 1000 {
			f.problem(w, "messages: $top %q", s)
			return
		}
		top = n
	}
	skip, _ := strconv.Atoi(q.Get("$skip"))
	if f.PageSize > 0 && top > f.PageSize {
		top = f.PageSize
	}
	f.mu.Lock()
	var all []Message
	for _, m := range f.messages[strings.ToLower(folder)] {
		t, _ := time.Parse(time.RFC3339Nano, m.ReceivedDateTime)
		if !t.Before(since) {
			all = append(all, *m)
		}
	}
	f.mu.Unlock()
	sort.SliceStable(all, func(i, j int) bool {
		a, b := all[i].ReceivedDateTime, all[j].ReceivedDateTime
		if order == "receivedDateTime desc" {
			return a > b
		}
		return a < b
	})
	page := MessagePage{Value: []Message{}}
	if skip < len(all) {
		end := min(skip+top, len(all))
		page.Value = all[skip:end]
		if end < len(all) {
			root := f.URL
			if root == "" {
				root = "http://" + r.Host
			}
			nq := url.Values{}
			for k, v := range q {
				nq[k] = v
			}
			nq.Set("$skip", strconv.Itoa(end))
			nq.Set("$top", q.Get("$top"))
			page.NextLink = strings.TrimSuffix(root, "/") + r.URL.Path + "?" + nq.Encode()
		}
	}
	writeJSON(w, http.StatusOK, page)
}

func (f *Fake) listAttachments(w http.ResponseWriter, r *http.Request, id string) {
	f.mu.Lock()
	atts, ok := f.atts[id]
	f.mu.Unlock()
	if !ok {
		graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
		return
	}
	withContent := !strings.Contains(r.URL.Query().Get("$select"), "name") // a $select leaves contentBytes out
	out := []Attachment{}
	for _, a := range atts {
		if !withContent {
			a.ContentBytes = ""
		}
		out = append(out, a)
	}
	writeJSON(w, http.StatusOK, map[string]any{"value": out})
}

func (f *Fake) getAttachment(w http.ResponseWriter, msg, id string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, a := range f.atts[msg] {
		if a.ID == id {
			writeJSON(w, http.StatusOK, a)
			return
		}
	}
	graphError(w, http.StatusNotFound, "ErrorItemNotFound", "The specified object was not found in the store.")
}
