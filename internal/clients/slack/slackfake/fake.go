// Package slackfake is a fake Slack Web API for the tests of Slack's
// actions (and of anything that posts to Slack): slack-go's slacktest
// server with handlers that keep channels, messages and files, check the
// requests slack-go really sends (the method, the bearer token, no token
// in the form, the fields each method needs) and answer as Slack
// documents, ok:false errors and rate limits included.
package slackfake

import (
	"encoding/json"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/slack-go/slack/slacktest"
)

// Failure is an answer the fake gives instead of a method's own.
type Failure struct {
	Status int               // 200 when zero (an ok:false error)
	Error  string            // the ok:false error, when Status is 200
	Header map[string]string // Retry-After, say
	// After: the method does its work first and the failure is the
	// answer (an answer lost after Slack acted: a 503 from a proxy, a
	// dropped connection).
	After bool
}

// Call is a request the fake received.
type Call struct {
	Method string // the Web API method ("chat.postMessage") or "upload"
	HTTP   string // the HTTP method
	Auth   string // the Authorization header
	Form   url.Values
	// TokenInForm: the request carried a token field (in the form or
	// the query).
	TokenInForm bool
}

// Channel is a channel the fake knows.
type Channel struct {
	ID, Name  string
	IsPrivate bool
}

// Message is a posted message.
type Message struct {
	Channel, TS, Text, ThreadTS string
	Blocks                      string // the blocks JSON, as sent
	Metadata                    string // the metadata JSON, as sent
	Form                        url.Values
}

// File is an uploaded file.
type File struct {
	ID, Name, Title string
	Content         []byte
	Channel         string
	Completed       bool
}

// Fake is the fake Web API.
type Fake struct {
	*slacktest.Server
	// Token is the bearer token every call must carry ("" accepts any).
	Token string

	mu       sync.Mutex
	channels []Channel
	messages []Message
	files    map[string]*File
	failures map[string][]Failure
	calls    []Call
	seq      int
}

// New starts a fake with the channels given (#general, C0GENERAL01, by
// default) that wants token as the bearer token (any bearer token when
// empty). Stop it when done.
func New(token string, channels ...Channel) *Fake {
	f := &Fake{Token: token, files: map[string]*File{}, failures: map[string][]Failure{}}
	if len(channels) == 0 {
		channels = []Channel{{ID: "C0GENERAL01", Name: "general"}}
	}
	f.channels = channels
	handlers := map[string]http.HandlerFunc{
		"/chat.postMessage":             f.postMessage,
		"/conversations.history":        f.history,
		"/conversations.replies":        f.replies,
		"/chat.update":                  f.update,
		"/chat.getPermalink":            f.permalink,
		"/conversations.create":         f.create,
		"/conversations.list":           f.list,
		"/files.getUploadURLExternal":   f.uploadURL,
		"/upload/":                      f.upload,
		"/files.completeUploadExternal": f.complete,
		"/files.info":                   f.fileInfo,
		"/auth.test":                    f.authTest,
	}
	f.Server = slacktest.NewTestServer(func(c slacktest.Customize) {
		for path, h := range handlers {
			c.Handle(path, f.wrap(strings.Trim(path, "/"), h))
		}
	})
	f.Start()
	return f
}

// URL is the API root to give a connection as base_url.
func (f *Fake) URL() string { return f.GetAPIURL() }

// Fail makes the next calls of method (one per failure) answer with the
// failures, in order.
func (f *Fake) Fail(method string, fs ...Failure) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.failures[method] = append(f.failures[method], fs...)
}

// Calls lists the requests received, of method when given.
func (f *Fake) Calls(method string) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if method == "" || c.Method == method {
			out = append(out, c)
		}
	}
	return out
}

// Channels lists the channels.
func (f *Fake) Channels() []Channel {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Channel(nil), f.channels...)
}

// Messages lists the messages posted.
func (f *Fake) Messages() []Message {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Message(nil), f.messages...)
}

// Files lists the files uploaded, by id.
func (f *Fake) Files() map[string]File {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]File{}
	for id, fl := range f.files {
		out[id] = *fl
	}
	return out
}

func reply(w http.ResponseWriter, v map[string]any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func fail(w http.ResponseWriter, code string) { reply(w, map[string]any{"ok": false, "error": code}) }

// wrap records a call, checks its credentials, and answers a queued
// failure before h.
func (f *Fake) wrap(method string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c := Call{Method: method, HTTP: r.Method, Auth: r.Header.Get("Authorization")}
		if ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); ct == "application/x-www-form-urlencoded" && r.Method == http.MethodPost {
			b, _ := io.ReadAll(r.Body)
			c.Form, _ = url.ParseQuery(string(b))
		} else {
			c.Form = url.Values{}
		}
		for k, v := range r.URL.Query() {
			c.Form[k] = append(c.Form[k], v...)
		}
		c.TokenInForm = c.Form.Has("token")
		f.mu.Lock()
		f.calls = append(f.calls, c)
		var fl *Failure
		if q := f.failures[method]; len(q) > 0 {
			fl, f.failures[method] = &q[0], q[1:]
		}
		f.mu.Unlock()
		if fl != nil && fl.After {
			r.Form = c.Form
			h(httptest.NewRecorder(), r) // done, its answer lost
		}
		if fl != nil {
			for k, v := range fl.Header {
				w.Header().Set(k, v)
			}
			if fl.Status != 0 && fl.Status != http.StatusOK {
				w.WriteHeader(fl.Status)
				_, _ = io.WriteString(w, "<html>error</html>")
				return
			}
			fail(w, fl.Error)
			return
		}
		if (f.Token != "" && c.Auth != "Bearer "+f.Token) || (f.Token == "" && len(c.Auth) <= len("Bearer ")) {
			if c.Auth == "" {
				fail(w, "not_authed")
			} else {
				fail(w, "invalid_auth")
			}
			return
		}
		r.Form = c.Form
		h(w, r)
	}
}

// channel finds a channel by id or name (with or without #).
func (f *Fake) channel(idOrName string) *Channel {
	name := strings.TrimPrefix(idOrName, "#")
	for i := range f.channels {
		if f.channels[i].ID == idOrName || f.channels[i].Name == name {
			return &f.channels[i]
		}
	}
	return nil
}

func (f *Fake) next() int { f.seq++; return f.seq }

func (f *Fake) postMessage(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		fail(w, "invalid_request")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.channel(r.Form.Get("channel"))
	if ch == nil {
		fail(w, "channel_not_found")
		return
	}
	if r.Form.Get("text") == "" && r.Form.Get("blocks") == "" {
		fail(w, "no_text")
		return
	}
	if b := r.Form.Get("blocks"); b != "" && !json.Valid([]byte(b)) {
		fail(w, "invalid_blocks")
		return
	}
	if md := r.Form.Get("metadata"); md != "" {
		var v struct {
			EventType    string         `json:"event_type"`
			EventPayload map[string]any `json:"event_payload"`
		}
		if json.Unmarshal([]byte(md), &v) != nil || v.EventType == "" || v.EventPayload == nil {
			fail(w, "invalid_metadata_format")
			return
		}
	}
	m := Message{Channel: ch.ID, TS: fmt.Sprintf("1700000000.%06d", f.next()), Text: r.Form.Get("text"),
		ThreadTS: r.Form.Get("thread_ts"), Blocks: r.Form.Get("blocks"), Metadata: r.Form.Get("metadata"), Form: r.Form}
	f.messages = append(f.messages, m)
	reply(w, map[string]any{"ok": true, "channel": m.Channel, "ts": m.TS,
		"message": map[string]any{"type": "message", "text": m.Text, "ts": m.TS, "bot_id": "B0FAKE"}})
}

// history answers conversations.history: the channel's messages outside
// threads (and thread parents), newest first, at most limit (100 by
// default) a page, paged by cursor; since oldest when given; with their
// metadata only when include_all_metadata is 1. It takes a channel id
// only, as Slack does.
func (f *Fake) history(w http.ResponseWriter, r *http.Request) {
	f.listMessages(w, r, func(m Message) bool { return m.ThreadTS == "" || m.ThreadTS == m.TS })
}

// replies answers conversations.replies: the thread of ts, its parent
// first then the replies, oldest first, as history pages them.
func (f *Fake) replies(w http.ResponseWriter, r *http.Request) {
	ts := r.Form.Get("ts")
	if ts == "" {
		fail(w, "invalid_arguments")
		return
	}
	f.listMessages(w, r, func(m Message) bool { return m.TS == ts || m.ThreadTS == ts })
}

func (f *Fake) listMessages(w http.ResponseWriter, r *http.Request, keep func(Message) bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.channel(r.Form.Get("channel"))
	if ch == nil || ch.ID != r.Form.Get("channel") {
		fail(w, "channel_not_found")
		return
	}
	limit, _ := strconv.Atoi(r.Form.Get("limit"))
	if limit <= 0 || limit > 1000 {
		limit = 100
	}
	oldest := r.Form.Get("oldest")
	replies := strings.HasSuffix(r.URL.Path, "conversations.replies")
	var all []Message
	for _, m := range f.messages {
		if m.Channel == ch.ID && keep(m) && (oldest == "" || m.TS > oldest) {
			all = append(all, m)
		}
	}
	if !replies {
		slices.Reverse(all) // history is newest first
	}
	start, _ := strconv.Atoi(r.Form.Get("cursor"))
	end := min(start+limit, len(all))
	out := []map[string]any{}
	for _, m := range all[min(start, end):end] {
		j := map[string]any{"type": "message", "ts": m.TS, "text": m.Text, "bot_id": "B0FAKE"}
		if m.ThreadTS != "" {
			j["thread_ts"] = m.ThreadTS
		}
		if m.Metadata != "" && r.Form.Get("include_all_metadata") == "1" {
			j["metadata"] = json.RawMessage(m.Metadata)
		}
		out = append(out, j)
	}
	next := ""
	if end < len(all) {
		next = strconv.Itoa(end)
	}
	reply(w, map[string]any{"ok": true, "messages": out, "has_more": next != "", "response_metadata": map[string]any{"next_cursor": next}})
}

func (f *Fake) update(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	ch := f.channel(r.Form.Get("channel"))
	if ch == nil || ch.ID != r.Form.Get("channel") {
		fail(w, "channel_not_found") // chat.update takes an id only
		return
	}
	for i := range f.messages {
		if m := &f.messages[i]; m.Channel == ch.ID && m.TS == r.Form.Get("ts") {
			m.Text, m.Blocks = r.Form.Get("text"), r.Form.Get("blocks")
			reply(w, map[string]any{"ok": true, "channel": ch.ID, "ts": m.TS, "text": m.Text})
			return
		}
	}
	fail(w, "message_not_found")
}

func (f *Fake) permalink(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		fail(w, "invalid_request")
		return
	}
	ch, ts := r.Form.Get("channel"), r.Form.Get("message_ts")
	if ch == "" || ts == "" {
		fail(w, "invalid_arguments")
		return
	}
	reply(w, map[string]any{"ok": true, "channel": ch,
		"permalink": "https://fake.slack.test/archives/" + ch + "/p" + strings.ReplaceAll(ts, ".", "")})
}

func (f *Fake) create(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name := r.Form.Get("name")
	if name == "" || strings.ToLower(name) != name || strings.ContainsAny(name, " #") {
		fail(w, "invalid_name_specials")
		return
	}
	if f.channel(name) != nil {
		fail(w, "name_taken")
		return
	}
	ch := Channel{ID: fmt.Sprintf("C0NEW%06d", f.next()), Name: name, IsPrivate: r.Form.Get("is_private") == "true"}
	f.channels = append(f.channels, ch)
	reply(w, map[string]any{"ok": true, "channel": chanJSON(ch)})
}

func chanJSON(ch Channel) map[string]any {
	return map[string]any{"id": ch.ID, "name": ch.Name, "is_channel": true, "is_private": ch.IsPrivate, "created": 1700000000}
}

// list pages the channels two at a time, whatever the limit, so that
// callers must follow next_cursor.
func (f *Fake) list(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	start, _ := strconv.Atoi(r.Form.Get("cursor"))
	end := min(start+2, len(f.channels))
	var out []map[string]any
	for _, ch := range f.channels[min(start, end):end] {
		out = append(out, chanJSON(ch))
	}
	next := ""
	if end < len(f.channels) {
		next = strconv.Itoa(end)
	}
	reply(w, map[string]any{"ok": true, "channels": out, "response_metadata": map[string]any{"next_cursor": next}})
}

func (f *Fake) uploadURL(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	name, length := r.Form.Get("filename"), r.Form.Get("length")
	if n, err := strconv.Atoi(length); name == "" || err != nil || n <= 0 {
		fail(w, "invalid_arguments")
		return
	}
	id := fmt.Sprintf("F0FAKE%06d", f.next())
	f.files[id] = &File{ID: id, Name: name}
	// the upload URL is on the host the call came to (a proxy in front of
	// the fake, say): slack-go sends the token only to the API's host
	reply(w, map[string]any{"ok": true, "file_id": id, "upload_url": "http://" + r.Host + "/upload/" + id})
}

func (f *Fake) upload(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, "/upload/")
	mr, err := r.MultipartReader()
	if err != nil {
		http.Error(w, "not multipart", http.StatusBadRequest)
		return
	}
	var content []byte
	for {
		p, err := mr.NextPart()
		if err != nil {
			break
		}
		if p.FormName() == "file" {
			content, _ = io.ReadAll(p)
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[id]
	if !ok {
		http.Error(w, "no such upload", http.StatusNotFound)
		return
	}
	fl.Content = content
	_, _ = io.WriteString(w, "OK - "+strconv.Itoa(len(content)))
}

func (f *Fake) complete(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var files []struct{ ID, Title string }
	if err := json.Unmarshal([]byte(r.Form.Get("files")), &files); err != nil || len(files) == 0 {
		fail(w, "invalid_arguments")
		return
	}
	ch := r.Form.Get("channel_id")
	if ch != "" && (f.channel(ch) == nil || f.channel(ch).ID != ch) {
		fail(w, "channel_not_found")
		return
	}
	var out []map[string]any
	for _, x := range files {
		fl, ok := f.files[x.ID]
		if !ok || fl.Content == nil {
			fail(w, "file_not_found")
			return
		}
		fl.Title, fl.Channel, fl.Completed = x.Title, ch, true
		out = append(out, map[string]any{"id": fl.ID, "title": fl.Title})
	}
	reply(w, map[string]any{"ok": true, "files": out})
}

func (f *Fake) fileInfo(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.files[r.Form.Get("file")]
	if !ok || !fl.Completed {
		fail(w, "file_not_found")
		return
	}
	reply(w, map[string]any{"ok": true, "file": map[string]any{"id": fl.ID, "name": fl.Name, "title": fl.Title,
		"size": len(fl.Content), "permalink": "https://fake.slack.test/files/" + fl.ID + "/" + fl.Name}})
}

func (f *Fake) authTest(w http.ResponseWriter, _ *http.Request) {
	reply(w, map[string]any{"ok": true, "team": "Fake", "team_id": "T0FAKE", "user": "sous", "url": "https://fake.slack.test/"})
}
