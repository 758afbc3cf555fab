// Package jiratest is a fake Jira Cloud for tests: an httptest server that
// checks the requests go-jira and the Jira connectors send (method, path,
// basic authentication, body fields) and answers as Jira's REST API v3
// documents: the issue search at /rest/api/3/search/jql paged by
// nextPageToken with changelogs (the old /search answers 410 Gone),
// issues, transitions, comments, user search, fields, and Jira's error
// bodies ({"errorMessages": [...], "errors": {...}}). With V2Only it is a
// Jira Data Center / Server instead, which has REST API v2 only: v2 paths
// answered as go-jira's own requests use them (plain-text descriptions and
// comment bodies, users by name), every v3 path 404.
package jiratest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
)

// Statuses is the fake's workflow: any status can go to any other.
var Statuses = []string{"To Do", "In Progress", "In Review", "Done"}

// TransitionID is the id of the transition to a status ("11", "21"...).
func TransitionID(status string) string {
	for i, s := range Statuses {
		if s == status {
			return strconv.Itoa((i+1)*10 + 1)
		}
	}
	return ""
}

// Request is a request the fake received.
type Request struct {
	Method, Path string
	Query        map[string][]string
	Body         map[string]any
	// Auth is the Authorization header's scheme (Basic, Bearer).
	Auth string
}

// Issue is one issue of the fake.
type Issue struct {
	ID, Key, Project, Type, Summary, Status string
	Description                             any
	Labels                                  []string
	Assignee                                string
	Custom                                  map[string]any
	Created, Updated                        time.Time
	Histories                               []jc.History
	Comments                                []map[string]any
}

// Fake is a fake Jira site.
type Fake struct {
	*httptest.Server
	// Email and Token are the basic credentials it accepts.
	Email, Token string
	// Users are the accounts user search finds, by email.
	Users map[string]string // email -> accountId
	// Fields are the site's fields, custom ones too (id -> name).
	Fields map[string]string
	// Projects are the known project keys.
	Projects []string
	// PageSize caps maxResults.
	PageSize int
	// AnyCredentials accepts any basic credentials (a test kit's canary),
	// as long as there are some.
	AnyCredentials bool
	// V2Only makes the fake a site with REST API v2 only (Jira Data
	// Center / Server): rest/api/2 paths answered, rest/api/3 ones 404 as
	// a site without them does; without it, rest/api/3 paths are answered
	// and of v2 only serverInfo (and the removed search's 410).
	V2Only bool
	// UserNames are the accounts' user names on a V2Only site, by email.
	UserNames map[string]string

	mu       sync.Mutex
	issues   map[string]*Issue // by key
	byID     map[string]*Issue
	nextID   int
	nextHist int
	requests []Request
	fails    []failure
	last     time.Time
}

type failure struct {
	prefix string
	status int
	header http.Header
	body   string
}

// New starts a fake with a project PROJ, an account and a custom field.
func New() *Fake {
	f := &Fake{Email: "bot@example.com", Token: "jira-token-canary-0123456789",
		Users:     map[string]string{"ada@example.com": "acc-ada"},
		UserNames: map[string]string{"ada@example.com": "ada"},
		Fields:    map[string]string{"customfield_10010": "Story Points", "summary": "Summary"},
		Projects:  []string{"PROJ", "OPS"}, PageSize: 50,
		issues: map[string]*Issue{}, byID: map[string]*Issue{}, nextID: 10000, nextHist: 20000}
	f.Server = httptest.NewServer(http.HandlerFunc(f.serve))
	return f
}

// FailNext makes the next request whose path starts with prefix answer
// status with header and body (Jira's error JSON when body is empty).
func (f *Fake) FailNext(prefix string, status int, header http.Header, body string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.fails = append(f.fails, failure{prefix, status, header, body})
}

// Requests lists the requests received so far.
func (f *Fake) Requests() []Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]Request(nil), f.requests...)
}

// now is the fake's clock, strictly increasing by at least a millisecond
// unless two changes fall on the same one by chance: Jira's times have
// millisecond precision. Callers hold mu.
func (f *Fake) now(same bool) time.Time {
	t := time.Now().UTC().Truncate(time.Millisecond)
	if same && !f.last.IsZero() {
		return f.last
	}
	if !t.After(f.last) {
		t = f.last.Add(time.Millisecond)
	}
	f.last = t
	return t
}

// CreateIssue adds an issue in status To Do, as if someone created it.
func (f *Fake) CreateIssue(project, summary string) *Issue {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.create(project, "Task", summary)
}

func (f *Fake) create(project, typ, summary string) *Issue {
	f.nextID++
	n := 0
	for _, is := range f.issues {
		if is.Project == project {
			n++
		}
	}
	t := f.now(false)
	is := &Issue{ID: strconv.Itoa(f.nextID), Key: fmt.Sprintf("%s-%d", project, n+1), Project: project, Type: typ,
		Summary: summary, Status: Statuses[0], Created: t, Updated: t, Custom: map[string]any{}}
	f.issues[is.Key] = is
	f.byID[is.ID] = is
	return is
}

// Transition moves an issue to a status, recording a changelog entry; same
// gives it the time of the previous change (two changes in one
// millisecond). It returns the history id.
func (f *Fake) Transition(key, to string, same bool) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.transition(f.issues[key], to, same)
}

func (f *Fake) transition(is *Issue, to string, same bool) string {
	t := f.now(same)
	f.nextHist++
	h := jc.History{ID: strconv.Itoa(f.nextHist), Created: jc.FormatTime(t),
		Author: map[string]any{"accountId": "acc-ada", "displayName": "Ada"},
		Items: []jc.ChangeItem{{Field: "status", FieldType: "jira", FieldID: "status",
			From: statusID(is.Status), FromString: is.Status, To: statusID(to), ToString: to}}}
	is.Histories = append(is.Histories, h)
	is.Status, is.Updated = to, t
	return h.ID
}

// AddComment adds a comment to an issue, as if someone wrote it.
func (f *Fake) AddComment(key, text string) map[string]any {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.comment(f.issues[key], jc.ADF(text))
}

func (f *Fake) comment(is *Issue, body any) map[string]any {
	t := f.now(false)
	f.nextHist++
	c := map[string]any{"id": strconv.Itoa(f.nextHist), "self": f.URL + f.api() + "issue/" + is.ID + "/comment/" + strconv.Itoa(f.nextHist),
		"author": map[string]any{"accountId": "acc-ada", "displayName": "Ada"}, "body": body,
		"created": jc.FormatTime(t), "updated": jc.FormatTime(t)}
	is.Comments = append(is.Comments, c)
	is.Updated = t
	return c
}

// Issue returns a copy of an issue.
func (f *Fake) Issue(key string) (Issue, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	is, ok := f.issues[key]
	if !ok {
		return Issue{}, false
	}
	return *is, true
}

func statusID(name string) string {
	for i, s := range Statuses {
		if s == name {
			return strconv.Itoa(10000 + i)
		}
	}
	return ""
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json;charset=UTF-8")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// jiraError answers Jira's error body.
func jiraError(w http.ResponseWriter, status int, messages []string, errs map[string]string) {
	if messages == nil {
		messages = []string{}
	}
	if errs == nil {
		errs = map[string]string{}
	}
	writeJSON(w, status, map[string]any{"errorMessages": messages, "errors": errs})
}

var (
	issuePath = regexp.MustCompile(`^/rest/api/3/issue/([^/]+)(/transitions|/comment)?$`)
	versionRe = regexp.MustCompile(`^/rest/api/([23])/`)
	updatedRe = regexp.MustCompile(`updated\s*>=\s*"?-(\d+)m"?`)
	projectRe = regexp.MustCompile(`project\s*=\s*"?([A-Z][A-Z0-9]*)"?`)
)

func (f *Fake) serve(w http.ResponseWriter, r *http.Request) {
	req := Request{Method: r.Method, Path: r.URL.Path, Query: r.URL.Query()}
	req.Auth, _, _ = strings.Cut(r.Header.Get("Authorization"), " ")
	if r.Body != nil && (r.Method == http.MethodPost || r.Method == http.MethodPut) {
		if err := json.NewDecoder(r.Body).Decode(&req.Body); err != nil {
			jiraError(w, http.StatusBadRequest, []string{"Unexpected character: the body is not JSON"}, nil)
			return
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.requests = append(f.requests, req)
	user, pass, ok := r.BasicAuth()
	if !ok || user == "" || pass == "" || (!f.AnyCredentials && (user != f.Email || pass != f.Token)) {
		w.Header().Set("WWW-Authenticate", `Basic realm="protected-area"`)
		jiraError(w, http.StatusUnauthorized, []string{"Client must be authenticated to access this resource."}, nil)
		return
	}
	for i, fl := range f.fails {
		if strings.HasPrefix(r.URL.Path, fl.prefix) {
			f.fails = append(f.fails[:i], f.fails[i+1:]...)
			for k, v := range fl.header {
				w.Header()[k] = v
			}
			if fl.body != "" {
				w.Header().Set("Content-Type", "application/json")
				w.WriteHeader(fl.status)
				_, _ = w.Write([]byte(fl.body))
				return
			}
			jiraError(w, fl.status, []string{http.StatusText(fl.status)}, nil)
			return
		}
	}
	p := r.URL.Path
	if m := versionRe.FindStringSubmatch(p); m != nil && p != "/rest/api/2/search" {
		if strings.HasSuffix(p, "/serverInfo") && r.Method == http.MethodGet && (m[1] == "2" || !f.V2Only) {
			writeJSON(w, http.StatusOK, map[string]any{"baseUrl": f.URL, "version": "9.12.0", "deploymentType": f.deployment()})
			return
		}
		if (m[1] == "3") == f.V2Only {
			// what a Jira answers for a REST path it does not have
			writeJSON(w, http.StatusNotFound, map[string]any{"message": "null for uri: " + f.URL + p, "status-code": 404})
			return
		}
		// served below as the v3 path
		p = "/rest/api/3/" + strings.TrimPrefix(p, m[0])
	}
	switch {
	case p == "/rest/api/2/search" || p == "/rest/api/3/search" || p == "/rest/api/latest/search":
		jiraError(w, http.StatusGone, []string{"The requested API has been removed. Please migrate to the /rest/api/3/search/jql API. A full migration guideline is available at https://developer.atlassian.com/changelog/#CHANGE-2046"}, nil)
	case p == "/rest/api/3/search/jql" && (r.Method == http.MethodGet || r.Method == http.MethodPost):
		f.search(w, r, req)
	case p == "/rest/api/3/issue" && r.Method == http.MethodPost:
		f.createIssue(w, req.Body)
	case p == "/rest/api/3/user/search" && r.Method == http.MethodGet:
		out := []map[string]any{}
		if f.V2Only {
			q := r.URL.Query().Get("username")
			if name, ok := f.UserNames[strings.ToLower(q)]; ok {
				out = append(out, map[string]any{"name": name, "key": "JIRAUSER-" + name, "emailAddress": q, "displayName": q, "active": true})
			}
			writeJSON(w, http.StatusOK, out)
			return
		}
		q := r.URL.Query().Get("query")
		if id, ok := f.Users[strings.ToLower(q)]; ok {
			out = append(out, map[string]any{"accountId": id, "emailAddress": q, "displayName": q, "active": true, "accountType": "atlassian"})
		}
		writeJSON(w, http.StatusOK, out)
	case p == "/rest/api/3/myself" && r.Method == http.MethodGet:
		if f.V2Only {
			writeJSON(w, http.StatusOK, map[string]any{"name": "bot", "key": "JIRAUSER-bot", "emailAddress": user, "displayName": "Bot"})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"accountId": "acc-bot", "emailAddress": user, "displayName": "Bot"})
	case p == "/rest/api/3/field" && r.Method == http.MethodGet:
		out := []map[string]any{}
		ids := make([]string, 0, len(f.Fields))
		for id := range f.Fields {
			ids = append(ids, id)
		}
		sort.Strings(ids)
		for _, id := range ids {
			out = append(out, map[string]any{"id": id, "key": id, "name": f.Fields[id], "custom": strings.HasPrefix(id, "customfield_")})
		}
		writeJSON(w, http.StatusOK, out)
	case issuePath.MatchString(p):
		m := issuePath.FindStringSubmatch(p)
		is := f.issues[m[1]]
		if is == nil {
			is = f.byID[m[1]]
		}
		if is == nil {
			jiraError(w, http.StatusNotFound, []string{"Issue does not exist or you do not have permission to see it."}, nil)
			return
		}
		f.issue(w, r, req, is, m[2])
	default:
		jiraError(w, http.StatusNotFound, []string{"No endpoint " + r.Method + " " + p + " in the fake"}, nil)
	}
}

func (f *Fake) issue(w http.ResponseWriter, r *http.Request, req Request, is *Issue, sub string) {
	switch {
	case sub == "" && r.Method == http.MethodGet:
		writeJSON(w, http.StatusOK, f.render(is, true, true))
	case sub == "" && r.Method == http.MethodPut:
		fields, _ := req.Body["fields"].(map[string]any)
		if fields == nil {
			jiraError(w, http.StatusBadRequest, []string{"No fields to update"}, nil)
			return
		}
		if errs := f.apply(is, fields); len(errs) > 0 {
			jiraError(w, http.StatusBadRequest, nil, errs)
			return
		}
		is.Updated = f.now(false)
		w.WriteHeader(http.StatusNoContent)
	case sub == "/transitions" && r.Method == http.MethodGet:
		trs := []map[string]any{}
		for _, s := range Statuses {
			if s == is.Status {
				continue
			}
			trs = append(trs, map[string]any{"id": TransitionID(s), "name": "Move to " + s, "hasScreen": false,
				"to": map[string]any{"id": statusID(s), "name": s}})
		}
		writeJSON(w, http.StatusOK, map[string]any{"expand": "transitions", "transitions": trs})
	case sub == "/transitions" && r.Method == http.MethodPost:
		tr, _ := req.Body["transition"].(map[string]any)
		id, _ := tr["id"].(string)
		for _, s := range Statuses {
			if TransitionID(s) == id && s != is.Status {
				f.transition(is, s, false)
				w.WriteHeader(http.StatusNoContent)
				return
			}
		}
		jiraError(w, http.StatusBadRequest, []string{"Transition id '" + id + "' is not valid for this issue."}, nil)
	case sub == "/comment" && r.Method == http.MethodPost:
		if f.V2Only {
			text, ok := req.Body["body"].(string)
			if !ok || text == "" {
				jiraError(w, http.StatusBadRequest, nil, map[string]string{"comment": "Comment body can not be empty!"})
				return
			}
			writeJSON(w, http.StatusCreated, f.comment(is, text))
			return
		}
		body, ok := req.Body["body"].(map[string]any)
		if !ok || body["type"] != "doc" {
			jiraError(w, http.StatusBadRequest, nil, map[string]string{"comment": "Comment body is not valid! Operation value must be an Atlassian Document (see the Atlassian Document Format)"})
			return
		}
		writeJSON(w, http.StatusCreated, f.comment(is, body))
	default:
		jiraError(w, http.StatusMethodNotAllowed, []string{"method not allowed"}, nil)
	}
}

// apply sets fields on an issue, as create and edit do; it returns Jira's
// field errors.
func (f *Fake) apply(is *Issue, fields map[string]any) map[string]string {
	errs := map[string]string{}
	for k, v := range fields {
		switch k {
		case "summary":
			s, _ := v.(string)
			if s == "" {
				errs["summary"] = "You must specify a summary of the issue."
			}
			is.Summary = s
		case "description":
			if f.V2Only {
				if _, ok := v.(string); !ok {
					errs["description"] = "Operation value must be a string"
				}
			} else if m, ok := v.(map[string]any); !ok || m["type"] != "doc" {
				errs["description"] = "Operation value must be an Atlassian Document (see the Atlassian Document Format)"
			}
			is.Description = v
		case "labels":
			is.Labels = nil
			list, _ := v.([]any)
			for _, l := range list {
				s, _ := l.(string)
				if strings.ContainsAny(s, " \t") {
					errs["labels"] = "The label '" + s + "' contains spaces which is invalid."
				}
				is.Labels = append(is.Labels, s)
			}
		case "assignee":
			m, _ := v.(map[string]any)
			id, _ := m["accountId"].(string)
			users := f.Users
			if f.V2Only {
				id, _ = m["name"].(string)
				users = f.UserNames
			}
			found := false
			for _, acc := range users {
				found = found || acc == id
			}
			if !found {
				errs["assignee"] = "Specified user does not exist or you do not have required permissions"
			}
			is.Assignee = id
		case "project", "issuetype":
		default:
			if _, ok := f.Fields[k]; !ok || !strings.HasPrefix(k, "customfield_") {
				errs[k] = "Field '" + k + "' cannot be set. It is not on the appropriate screen, or unknown."
				continue
			}
			is.Custom[k] = v
		}
	}
	return errs
}

func (f *Fake) createIssue(w http.ResponseWriter, body map[string]any) {
	fields, _ := body["fields"].(map[string]any)
	proj, _ := fields["project"].(map[string]any)
	key, _ := proj["key"].(string)
	typ, _ := fields["issuetype"].(map[string]any)
	typName, _ := typ["name"].(string)
	errs := map[string]string{}
	known := false
	for _, p := range f.Projects {
		known = known || p == key
	}
	if !known {
		errs["project"] = "valid project is required"
	}
	if typName == "" {
		errs["issuetype"] = "valid issue type is required"
	}
	if _, ok := fields["summary"]; !ok {
		errs["summary"] = "You must specify a summary of the issue."
	}
	probe := &Issue{Custom: map[string]any{}}
	for k, v := range f.apply(probe, fields) {
		errs[k] = v
	}
	if len(errs) > 0 {
		jiraError(w, http.StatusBadRequest, nil, errs)
		return
	}
	is := f.create(key, typName, probe.Summary)
	is.Description, is.Labels, is.Assignee, is.Custom = probe.Description, probe.Labels, probe.Assignee, probe.Custom
	writeJSON(w, http.StatusCreated, map[string]any{"id": is.ID, "key": is.Key, "self": f.URL + f.api() + "issue/" + is.ID})
}

// render is an issue as the API shows it.
func (f *Fake) render(is *Issue, allFields, changelog bool) map[string]any {
	out := map[string]any{"id": is.ID, "key": is.Key, "self": f.URL + f.api() + "issue/" + is.ID}
	if allFields {
		comments := make([]any, 0, len(is.Comments))
		for _, c := range is.Comments {
			comments = append(comments, c)
		}
		fields := map[string]any{
			"summary":     is.Summary,
			"status":      map[string]any{"id": statusID(is.Status), "name": is.Status},
			"project":     map[string]any{"id": "1" + is.Project, "key": is.Project, "name": is.Project},
			"issuetype":   map[string]any{"name": is.Type},
			"labels":      append([]string{}, is.Labels...),
			"created":     jc.FormatTime(is.Created),
			"updated":     jc.FormatTime(is.Updated),
			"description": is.Description,
			"creator":     map[string]any{"accountId": "acc-ada", "displayName": "Ada"},
			"comment":     map[string]any{"comments": comments, "total": len(comments), "startAt": 0, "maxResults": len(comments)},
		}
		if is.Assignee != "" {
			fields["assignee"] = map[string]any{"accountId": is.Assignee}
		} else {
			fields["assignee"] = nil
		}
		for k, v := range is.Custom {
			fields[k] = v
		}
		out["fields"] = fields
	}
	if changelog {
		hs := append([]jc.History{}, is.Histories...)
		out["changelog"] = map[string]any{"startAt": 0, "maxResults": len(hs), "total": len(hs), "histories": hs}
	}
	return out
}

// search serves /rest/api/3/search/jql: issues matching `updated >= -Nm`
// and `project = KEY` (the clauses the fake understands), ordered by
// updated then id, a page at a time; the page token is the (updated, id)
// of the last issue given, so that an issue updated while a client pages
// moves after it rather than making it skip another.
func (f *Fake) search(w http.ResponseWriter, r *http.Request, req Request) {
	q := r.URL.Query()
	jql, token, fields, expand := q.Get("jql"), q.Get("nextPageToken"), q.Get("fields"), q.Get("expand")
	max, _ := strconv.Atoi(q.Get("maxResults"))
	if r.Method == http.MethodPost {
		jql, _ = req.Body["jql"].(string)
		token, _ = req.Body["nextPageToken"].(string)
		if fs, ok := req.Body["fields"].([]any); ok && len(fs) > 0 {
			fields = fmt.Sprint(fs[0])
		}
		expand, _ = req.Body["expand"].(string)
		if m, ok := req.Body["maxResults"].(float64); ok {
			max = int(m)
		}
	}
	if jql == "" {
		jiraError(w, http.StatusBadRequest, []string{"Unbounded JQL queries are not allowed here. Please add a search restriction to your query."}, nil)
		return
	}
	if max <= 0 || max > f.PageSize {
		max = f.PageSize
	}
	var since time.Time
	if m := updatedRe.FindStringSubmatch(jql); m != nil {
		n, _ := strconv.Atoi(m[1])
		since = time.Now().Add(-time.Duration(n) * time.Minute)
	}
	project := ""
	if m := projectRe.FindStringSubmatch(jql); m != nil {
		project = m[1]
	}
	var afterT time.Time
	afterID := -1
	if token != "" {
		raw, err := base64.RawURLEncoding.DecodeString(token)
		ts, id, ok := strings.Cut(string(raw), ":")
		n, err2 := strconv.ParseInt(ts, 10, 64)
		if err != nil || !ok || err2 != nil {
			jiraError(w, http.StatusBadRequest, []string{"The provided next page token is invalid or expired."}, nil)
			return
		}
		afterT = time.UnixMilli(n).UTC()
		afterID, _ = strconv.Atoi(id)
	}
	var match []*Issue
	for _, is := range f.issues {
		if is.Updated.Before(since) || (project != "" && is.Project != project) {
			continue
		}
		id, _ := strconv.Atoi(is.ID)
		if token != "" && (is.Updated.Before(afterT) || (is.Updated.Equal(afterT) && id <= afterID)) {
			continue
		}
		match = append(match, is)
	}
	sort.Slice(match, func(i, j int) bool {
		if !match[i].Updated.Equal(match[j].Updated) {
			return match[i].Updated.Before(match[j].Updated)
		}
		a, _ := strconv.Atoi(match[i].ID)
		b, _ := strconv.Atoi(match[j].ID)
		return a < b
	})
	page := map[string]any{}
	issues := []any{}
	for i, is := range match {
		if i == max {
			last := match[i-1]
			page["nextPageToken"] = base64.RawURLEncoding.EncodeToString([]byte(strconv.FormatInt(last.Updated.UnixMilli(), 10) + ":" + last.ID))
			break
		}
		issues = append(issues, f.render(is, fields != "" && fields != "id", strings.Contains(expand, "changelog")))
	}
	page["issues"] = issues
	page["isLast"] = page["nextPageToken"] == nil
	writeJSON(w, http.StatusOK, page)
}

// Connection is a jira connection to the fake with its credentials, and
// its client built as the runtime builds it (basic authentication).
func (f *Fake) Connection() (*connector.Connection, error) {
	conn := &connector.Connection{Name: "jira", Type: jc.Connection.Type, Values: connector.Values{
		connector.ConnBaseURL: f.URL, jc.FieldEmail: f.Email, jc.FieldAPIToken: f.Token}}
	cl, err := connector.NewClient(conn, jc.Connection, nil, connector.ClientHooks{})
	if err != nil {
		return nil, err
	}
	conn.Client = cl
	return conn, nil
}

// api is the root of the fake's REST API: rest/api/3/, or rest/api/2/ when
// V2Only. Callers hold mu.
func (f *Fake) api() string {
	if f.V2Only {
		return "/rest/api/2/"
	}
	return "/rest/api/3/"
}

// deployment is serverInfo's deploymentType. Callers hold mu.
func (f *Fake) deployment() string {
	if f.V2Only {
		return "Server"
	}
	return "Cloud"
}

// Probes counts the serverInfo requests (of either version) received so
// far: how often a client probed the site's API version.
func (f *Fake) Probes() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := 0
	for _, r := range f.requests {
		if strings.HasSuffix(r.Path, "/serverInfo") {
			n++
		}
	}
	return n
}
