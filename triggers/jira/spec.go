package jira

import (
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
)

// Field names of the triggers.
const (
	FieldProject      = "project"
	FieldFrom         = "from"
	FieldTo           = "to"
	FieldJQL          = "jql"
	FieldPollInterval = "poll_interval"
)

var (
	leaf = connector.Leaf
	p    = connector.P
	obj  = connector.Obj
)

func userShape(desc string) *connector.Shape {
	return connector.OpenObj(nil,
		p("accountId", leaf(connector.String, "The account id")),
		p("displayName", leaf(connector.String, "The display name")),
		p("emailAddress", leaf(connector.String, "The email, when the site shows it")),
		p("active", leaf(connector.Bool, "Whether the account is active")),
		p("timeZone", leaf(connector.String, "The account's time zone")),
		p("self", leaf(connector.String, "The account's API URL")),
	).Describe(desc)
}

func issueShape() *connector.Shape {
	named := func(desc string) *connector.Shape {
		return connector.OpenObj(nil,
			p("id", leaf(connector.String, "Its id")),
			p("key", leaf(connector.String, "Its key, when it has one")),
			p("name", leaf(connector.String, "Its name")),
		).Describe(desc)
	}
	fields := connector.OpenObj(nil,
		p("summary", leaf(connector.String, "The summary")),
		p("description", leaf(connector.Any, "The description: wiki text in webhooks, an Atlassian document from API v3")),
		p("status", connector.OpenObj(nil,
			p("id", leaf(connector.String, "The status id")),
			p("name", leaf(connector.String, "The status name (the new one, after a change)")),
			p("statusCategory", connector.OpenObj(nil,
				p("key", leaf(connector.String, "new, indeterminate or done")),
				p("name", leaf(connector.String, "To Do, In Progress or Done")),
			).Describe("The status category")),
		).Describe("The issue's status")),
		p("project", named("The project (key PROJ)")),
		p("issuetype", named("The issue type (Task, Bug...)")),
		p("priority", named("The priority")),
		p("assignee", userShape("The assignee, null when unassigned")),
		p("reporter", userShape("The reporter")),
		p("creator", userShape("The creator")),
		p("labels", connector.ListOf(leaf(connector.String, "A label"), "The labels")),
		p("created", leaf(connector.String, "When the issue was created (2026-12-07T22:30:00.000+0000)")),
		p("updated", leaf(connector.String, "When it was last updated")),
		p("duedate", leaf(connector.String, "The due date, when set")),
		p("resolution", named("The resolution, null when unresolved")),
		p("parent", connector.OpenObj(nil, p("id", leaf(connector.String, "The parent's id")),
			p("key", leaf(connector.String, "The parent's key"))).Describe("The parent issue, for subtasks")),
	).Describe("The issue's fields, custom ones (customfield_10010...) too")
	return obj(
		p("id", leaf(connector.String, "The issue id")),
		p("key", leaf(connector.String, "The issue key (PROJ-123)")),
		p("self", leaf(connector.String, "The issue's API URL")),
		p("fields", fields),
	).Describe("The issue")
}

func changelogShape() *connector.Shape {
	item := obj(
		p("field", leaf(connector.String, "The field changed (status, assignee, summary...)")),
		p("fieldtype", leaf(connector.String, "jira or custom")),
		p("fieldId", leaf(connector.String, "The field's id")),
		p("from", leaf(connector.Any, "The old value's id")),
		p("fromString", leaf(connector.Any, "The old value as text")),
		p("to", leaf(connector.Any, "The new value's id")),
		p("toString", leaf(connector.Any, "The new value as text")),
	)
	return obj(
		p("id", leaf(connector.String, "The change's id (the changelog history id)")),
		p("items", connector.ListOf(item, "The fields the change changed")),
	).Describe("The change")
}

func commentShape() *connector.Shape {
	return connector.OpenObj(nil,
		p("id", leaf(connector.String, "The comment id")),
		p("self", leaf(connector.String, "The comment's API URL")),
		p("body", leaf(connector.Any, "The text: wiki text in webhooks, an Atlassian document from API v3")),
		p("author", userShape("Who wrote it")),
		p("updateAuthor", userShape("Who last edited it")),
		p("created", leaf(connector.String, "When it was written")),
		p("updated", leaf(connector.String, "When it was last edited")),
	).Describe("The comment")
}

// envelope is the event of a Jira webhook with the extra keys given.
func envelope(extra ...connector.Prop) *connector.Shape {
	props := []connector.Prop{
		p("timestamp", leaf(connector.Int, "When it happened, unix milliseconds")),
		p("webhookEvent", leaf(connector.String, "Jira's event name (jira:issue_updated...)")),
		p("issue_event_type_name", leaf(connector.String, "issue_created, issue_generic, issue_assigned...")),
		p("user", userShape("Who made the change")),
		p("issue", issueShape()),
	}
	return obj(append(props, extra...)...)
}

func statusShape() *connector.Shape {
	return obj(
		p("from", leaf(connector.String, "The status name before")),
		p("to", leaf(connector.String, "The status name after")),
	).Describe("The status change")
}

// kind says which of Jira's changes a trigger is about.
type kind int

const (
	kindCreated kind = iota
	kindUpdated
	kindStatus
	kindComment
)

func projectField() connector.Field {
	return connector.Field{Name: FieldProject, Type: connector.String, Example: "PROJ",
		Description: "Only issues of this project (its key); every project when unset"}
}

func statusFields() []connector.Field {
	return []connector.Field{
		{Name: FieldFrom, Type: connector.String, Example: "In Progress",
			Description: "Only changes from this status (its name, any case); any when unset"},
		{Name: FieldTo, Type: connector.String, Example: "Done",
			Description: "Only changes to this status (its name, any case); any when unset"},
	}
}

func pollFields() []connector.Field {
	return []connector.Field{
		{Name: FieldPollInterval, Type: connector.Duration, Example: "1m",
			Description: "Poll the site by JQL this often instead of receiving its webhooks (for sites where webhooks cannot be registered); unset: webhooks"},
		{Name: FieldJQL, Type: connector.String, Example: `labels = customer`,
			Description: "With poll_interval: extra JQL the issues must match, ANDed to the search (updated since the last poll)"},
	}
}

type def struct {
	id, summary, desc string
	kind              kind
	shape             *connector.Shape
}

var defs = []def{
	{"jira.issue_created", "A Jira issue was created", "Jira's jira:issue_created event.", kindCreated, envelope()},
	{"jira.issue_updated", "A Jira issue was updated",
		"Jira's jira:issue_updated event: changelog has the fields changed (Jira sends one for a new comment too, " +
			"issue_event_type_name issue_commented; the polled form sees changelog entries only).", kindUpdated,
		envelope(p("changelog", changelogShape()))},
	{"jira.issue_status_changed", "A Jira issue's status changed",
		"An issue update whose changelog changes the status: status.from and status.to are the status names, " +
			"filtered by the from and to options before any run exists.", kindStatus,
		envelope(p("changelog", changelogShape()), p("status", statusShape()))},
	{"jira.comment_created", "A comment was added to a Jira issue", "Jira's comment_created event.", kindComment,
		envelope(p("comment", commentShape()))},
}

func webhookSpec(d def) *connector.Spec {
	fields := []connector.Field{projectField()}
	if d.kind == kindStatus {
		fields = append(fields, statusFields()...)
	}
	// poll_interval has no default here: setting it is what makes a recipe
	// poll rather than receive
	fields = append(fields, pollFields()...)
	return &connector.Spec{
		ID: d.id, Kind: connector.KindTrigger, Summary: d.summary,
		Description: d.desc + " Received at POST /hooks/jira/{connection}, verified with the connection's webhook_secret " +
			"(X-Hub-Signature, sha256= HMAC of the body) when it has one; Jira's retries of one delivery " +
			"(X-Atlassian-Webhook-Identifier) start one run. With poll_interval set, the recipe finds the same changes " +
			"by JQL polling instead (rest/api/3/search/jql, `updated` since the last poll and the optional jql, with changelogs): " +
			"each change gives the event the webhook would, once.",
		Connection: jc.Connection.Type, ConnectionRequired: true,
		Fields: fields,
		Shape:  d.shape,
		Validate: func(with connector.Values) []connector.FieldError {
			if with.Has(FieldJQL) && !with.Has(FieldPollInterval) {
				return []connector.FieldError{{Field: FieldJQL, Message: "jql is for polling: set poll_interval too (webhooks are not searched)"}}
			}
			return nil
		},
		Trigger: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection, Match: match,
			Poller:   poller{kind: d.kind},
			PollWhen: func(with connector.Values) bool { return with.Has(FieldPollInterval) },
			Interval: func(with connector.Values) time.Duration { return with.Duration(FieldPollInterval) }},
	}
}

// Specs are the triggers, by ID.
var Specs = map[string]*connector.Spec{}

// byEvent maps Jira's webhookEvent names to the webhook triggers.
var byKind = map[kind]*connector.Spec{}

func init() {
	for _, d := range defs {
		w := webhookSpec(d)
		Specs[w.ID] = w
		byKind[d.kind] = w
		connector.Register(w)
	}
	connector.RegisterReceiver(&connector.ReceiverSpec{Service: "jira", Connection: jc.Connection.Type, Receiver: receiver{}})
}

// match filters an event by a recipe's project, from and to, before any
// run exists.
func match(with connector.Values, ev *connector.Event) bool {
	if pr := with.String(FieldProject); pr != "" && !strings.EqualFold(pr, jc.ProjectKey(ev.Payload)) {
		return false
	}
	if !with.Has(FieldFrom) && !with.Has(FieldTo) {
		return true
	}
	st, _ := ev.Payload["status"].(map[string]any)
	from, _ := st["from"].(string)
	to, _ := st["to"].(string)
	if f := with.String(FieldFrom); f != "" && !strings.EqualFold(f, from) {
		return false
	}
	if t := with.String(FieldTo); t != "" && !strings.EqualFold(t, to) {
		return false
	}
	return true
}
