package jira

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
)

// invalid is a permanent failure of the step's input.
func invalid(format string, args ...any) error {
	return connector.Permanent(connector.ReasonInvalid, fmt.Errorf(format, args...))
}

// browseURL is an issue's page on the site: {base_url}/browse/KEY, empty
// without a base_url (OAuth through api.atlassian.com).
func browseURL(conn *connector.Connection, key string) string {
	base := strings.TrimRight(conn.Values.String(connector.ConnBaseURL), "/")
	if base == "" || key == "" {
		return ""
	}
	return base + "/browse/" + url.PathEscape(key)
}

// issueRef is an issue key or id as a path segment.
func issueRef(with connector.Values) (string, error) {
	key := strings.TrimSpace(with.String(FieldIssue))
	if key == "" {
		return "", invalid("issue is empty")
	}
	return url.PathEscape(key), nil
}

// fields builds the fields of a create or an edit from the step's values.
func fields(ctx context.Context, c *jc.API, with connector.Values) (map[string]any, error) {
	f := map[string]any{}
	if with.Has(FieldSummary) {
		s := strings.TrimSpace(with.String(FieldSummary))
		if s == "" {
			return nil, invalid("summary is empty")
		}
		f["summary"] = strings.ReplaceAll(s, "\n", " ")
	}
	if with.Has(FieldDescription) {
		f["description"] = jc.Doc(with.String(FieldDescription))
	}
	if with.Has(FieldLabels) {
		labels := []string{}
		list, _ := with[FieldLabels].([]any)
		for _, l := range list {
			s := strings.TrimSpace(fmt.Sprint(l))
			if s == "" {
				continue
			}
			if strings.ContainsAny(s, " \t\n") {
				return nil, invalid("label %q has a space, which Jira refuses", s)
			}
			labels = append(labels, s)
		}
		f["labels"] = labels
	}
	if a := strings.TrimSpace(with.String(FieldAssignee)); a != "" {
		id, err := accountID(ctx, c, a)
		if err != nil {
			return nil, err
		}
		// an account id in v3 (Jira Cloud), a user name in v2 (Data Center)
		f["assignee"] = jc.Versioned{V3: map[string]any{"accountId": id}, V2: map[string]any{"name": id}}
	}
	if pr := strings.TrimSpace(with.String(FieldPriority)); pr != "" {
		f["priority"] = map[string]any{"name": pr}
	}
	if custom := with.Map(FieldCustomFields); len(custom) > 0 {
		ids, err := fieldIDs(ctx, c, custom)
		if err != nil {
			return nil, err
		}
		for name, v := range custom {
			f[ids[name]] = v
		}
	}
	return f, nil
}

// accountID is the account id of an assignee given as an email (found with
// GET /rest/api/3/user/search?query=EMAIL), or the value as is. On REST
// API v2 (Jira Data Center / Server, which has no account ids) it is the
// user's name, found with GET /rest/api/2/user/search?username=EMAIL.
func accountID(ctx context.Context, c *jc.API, who string) (string, error) {
	if !strings.Contains(who, "@") {
		return who, nil
	}
	var users []struct {
		AccountID    string `json:"accountId"`
		Name         string `json:"name"`
		EmailAddress string `json:"emailAddress"`
		Active       *bool  `json:"active"`
	}
	if err := c.CallV2(ctx, http.MethodGet, "rest/api/3/user/search?"+url.Values{"query": {who}}.Encode(),
		"rest/api/2/user/search?"+url.Values{"username": {who}}.Encode(), nil, &users); err != nil {
		return "", err
	}
	v2 := c.V2()
	id := func(i int) string {
		if v2 {
			return users[i].Name
		}
		return users[i].AccountID
	}
	for i, u := range users {
		if strings.EqualFold(u.EmailAddress, who) && id(i) != "" {
			return id(i), nil
		}
	}
	if len(users) == 1 && id(0) != "" {
		// Jira hides emails by the users' privacy settings: the only match
		return id(0), nil
	}
	return "", connector.Permanent(connector.ReasonNotFound, fmt.Errorf("jira: no user with email %s (user search found %d)", who, len(users)))
}

// fieldIDs maps the names of custom_fields to their ids with GET
// /rest/api/3/field (names compared in any case; ids as customfield_N
// kept as they are).
func fieldIDs(ctx context.Context, c *jc.API, custom map[string]any) (map[string]string, error) {
	ids := map[string]string{}
	need := false
	for name := range custom {
		if strings.HasPrefix(name, "customfield_") {
			ids[name] = name
		} else {
			need = true
		}
	}
	if !need {
		return ids, nil
	}
	var all []struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	}
	if err := c.Call(ctx, http.MethodGet, "rest/api/3/field", nil, &all); err != nil {
		return nil, err
	}
	var unknown []string
	for name := range custom {
		if _, ok := ids[name]; ok {
			continue
		}
		for _, f := range all {
			if strings.EqualFold(f.Name, name) {
				ids[name] = f.ID
				break
			}
		}
		if _, ok := ids[name]; !ok {
			unknown = append(unknown, name)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		return nil, invalid("jira has no field named %s", strings.Join(unknown, ", "))
	}
	return ids, nil
}

func createIssue(ctx context.Context, req *connector.Request) (map[string]any, error) {
	c, err := jc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	f, err := fields(ctx, c, req.With)
	if err != nil {
		return nil, err
	}
	project := strings.TrimSpace(req.With.String(FieldProject))
	if project == "" {
		return nil, invalid("project is empty")
	}
	f["project"] = map[string]any{"key": project}
	typ := req.With.String(FieldIssueType)
	if typ == "" {
		typ = "Task"
	}
	f["issuetype"] = map[string]any{"name": typ}
	if parent := strings.TrimSpace(req.With.String(FieldParent)); parent != "" {
		f["parent"] = map[string]any{"key": parent}
	}
	var created struct {
		ID   string `json:"id"`
		Key  string `json:"key"`
		Self string `json:"self"`
	}
	if err := c.Call(ctx, http.MethodPost, "rest/api/3/issue", map[string]any{"fields": f}, &created); err != nil {
		return nil, err
	}
	if req.Logger != nil {
		req.Logger.Info("jira issue created", "key", created.Key)
	}
	return map[string]any{"id": created.ID, "key": created.Key, "self": created.Self,
		"url": browseURL(req.Connection, created.Key)}, nil
}

func updateIssue(ctx context.Context, req *connector.Request) (map[string]any, error) {
	ref, err := issueRef(req.With)
	if err != nil {
		return nil, err
	}
	c, err := jc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	f, err := fields(ctx, c, req.With)
	if err != nil {
		return nil, err
	}
	if len(f) == 0 {
		return nil, invalid("set at least one field to change (summary, description, labels, assignee, priority, custom_fields)")
	}
	if err := c.Call(ctx, http.MethodPut, "rest/api/3/issue/"+ref, map[string]any{"fields": f}, nil); err != nil {
		return nil, err
	}
	key := req.With.String(FieldIssue)
	return map[string]any{"issue": key, "url": browseURL(req.Connection, key)}, nil
}

func addComment(ctx context.Context, req *connector.Request) (map[string]any, error) {
	ref, err := issueRef(req.With)
	if err != nil {
		return nil, err
	}
	body := req.With.String(FieldBody)
	if strings.TrimSpace(body) == "" {
		return nil, invalid("body is empty")
	}
	c, err := jc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	var out struct {
		ID      string `json:"id"`
		Self    string `json:"self"`
		Created string `json:"created"`
	}
	if err := c.Call(ctx, http.MethodPost, "rest/api/3/issue/"+ref+"/comment", map[string]any{"body": jc.Doc(body)}, &out); err != nil {
		return nil, err
	}
	u := browseURL(req.Connection, req.With.String(FieldIssue))
	if u != "" {
		u += "?focusedCommentId=" + url.QueryEscape(out.ID)
	}
	return map[string]any{"id": out.ID, "self": out.Self, "created": out.Created, "url": u}, nil
}

// transition is one of an issue's available transitions.
type transition struct {
	ID   string `json:"id"`
	Name string `json:"name"`
	To   struct {
		ID   string `json:"id"`
		Name string `json:"name"`
	} `json:"to"`
}

func transitionIssue(ctx context.Context, req *connector.Request) (map[string]any, error) {
	ref, err := issueRef(req.With)
	if err != nil {
		return nil, err
	}
	to := strings.TrimSpace(req.With.String(FieldTo))
	if to == "" {
		return nil, invalid("to is empty")
	}
	c, err := jc.NewAPI(req.Connection)
	if err != nil {
		return nil, err
	}
	key := req.With.String(FieldIssue)
	var list struct {
		Transitions []transition `json:"transitions"`
	}
	if err := c.Call(ctx, http.MethodGet, "rest/api/3/issue/"+ref+"/transitions", nil, &list); err != nil {
		return nil, err
	}
	var pick *transition
	for i, tr := range list.Transitions {
		if strings.EqualFold(tr.To.Name, to) {
			pick = &list.Transitions[i]
			break
		}
	}
	for i, tr := range list.Transitions {
		if pick == nil && strings.EqualFold(tr.Name, to) {
			pick = &list.Transitions[i]
		}
	}
	if pick == nil {
		// already there (a retried step whose first attempt went
		// through): done, not an error
		var is struct {
			Fields struct {
				Status struct {
					Name string `json:"name"`
				} `json:"status"`
			} `json:"fields"`
		}
		// best effort: the unknown-name error below comes from the
		// transitions list alone, the current status only adds to it
		statusErr := c.Call(ctx, http.MethodGet, "rest/api/3/issue/"+ref+"?fields=status", nil, &is)
		if statusErr != nil {
			if ctx.Err() != nil {
				return nil, statusErr
			}
			if req.Logger != nil {
				req.Logger.Warn("jira: current status not read; reporting the unknown target from the transitions list", "issue", key, "error", statusErr)
			}
		} else if strings.EqualFold(is.Fields.Status.Name, to) {
			return map[string]any{"issue": key, "status": is.Fields.Status.Name, "transition_id": "", "changed": false}, nil
		}
		var avail []string
		for _, tr := range list.Transitions {
			avail = append(avail, fmt.Sprintf("%q (transition %q)", tr.To.Name, tr.Name))
		}
		if len(avail) == 0 {
			avail = []string{"none"}
		}
		where := "jira: issue " + key
		if statusErr == nil {
			where += " (status " + quote(is.Fields.Status.Name) + ")"
		}
		return nil, connector.Permanent(connector.ReasonClientError, errors.New(where+" has no transition to "+quote(to)+"; available: "+strings.Join(avail, ", ")))
	}
	body := map[string]any{"transition": map[string]any{"id": pick.ID}}
	if err := c.Call(ctx, http.MethodPost, "rest/api/3/issue/"+ref+"/transitions", body, nil); err != nil {
		return nil, err
	}
	status := pick.To.Name
	if status == "" {
		status = to
	}
	return map[string]any{"issue": key, "status": status, "transition_id": pick.ID, "changed": true}, nil
}

func quote(s string) string { return fmt.Sprintf("%q", s) }
