package jira

import (
	"github.com/sous-run/sous/engine/connector"
	jc "github.com/sous-run/sous/internal/clients/jira"
)

// Field names of the actions.
const (
	FieldProject      = "project"
	FieldIssueType    = "issue_type"
	FieldSummary      = "summary"
	FieldDescription  = "description"
	FieldLabels       = "labels"
	FieldAssignee     = "assignee"
	FieldCustomFields = "custom_fields"
	FieldPriority     = "priority"
	FieldParent       = "parent"
	FieldIssue        = "issue"
	FieldTo           = "to"
	FieldBody         = "body"
)

var (
	leaf = connector.Leaf
	p    = connector.P
	obj  = connector.Obj
)

func issueField() connector.Field {
	return connector.Field{Name: FieldIssue, Type: connector.String, Required: true, Example: "PROJ-123",
		Description: "The issue's key or id"}
}

// fieldsFields are the issue fields create and update set.
func fieldsFields(create bool) []connector.Field {
	summary := connector.Field{Name: FieldSummary, Type: connector.String, Required: create, Example: "Customer cannot log in",
		Description: "The summary (one line)"}
	return []connector.Field{
		summary,
		{Name: FieldDescription, Type: connector.String, Example: "Reported by ada@example.com.\n\nSteps: ...",
			Description: "The description, plain text: paragraphs on blank lines, sent as an Atlassian document (as the text on REST API v2)"},
		{Name: FieldLabels, Type: connector.List, Example: []any{"customer", "p1"},
			Description: "Labels (no spaces); on update they replace the issue's"},
		{Name: FieldAssignee, Type: connector.String, Example: "ada@example.com",
			Description: "The assignee: an account id (on REST API v2, a user name), or an email looked up with user search"},
		{Name: FieldPriority, Type: connector.String, Example: "High", Description: "The priority, by name"},
		{Name: FieldCustomFields, Type: connector.Object, Example: map[string]any{"Story Points": 3},
			Description: "Other fields by name (as /rest/api/3/field lists them) or id (customfield_10010), with the values Jira takes for them"},
	}
}

// The actions.
var (
	CreateIssue = &connector.Spec{
		ID: "jira.create_issue", Kind: connector.KindAction, Summary: "Create a Jira issue",
		Description: "Creates an issue (POST /rest/api/3/issue): the description is plain text turned into an Atlassian " +
			"document, the assignee an account id or an email (found with user search), custom fields by their names " +
			"(on a connection whose api_version is 2, or auto on a v2-only site: the same on /rest/api/2, the description as plain text). " +
			"Jira has no idempotency key: a retried step whose first attempt was created but unanswered may create a second issue.",
		Connection: jc.Connection.Type, ConnectionRequired: true,
		Fields: append([]connector.Field{
			{Name: FieldProject, Type: connector.String, Required: true, Example: "PROJ", Description: "The project's key"},
			{Name: FieldIssueType, Type: connector.String, Default: "Task", Example: "Bug", Description: "The issue type, by name"},
			{Name: FieldParent, Type: connector.String, Example: "PROJ-1", Description: "The parent issue's key, for a subtask or an epic's child"},
		}, fieldsFields(true)...),
		Shape: obj(
			p("id", leaf(connector.String, "The new issue's id")),
			p("key", leaf(connector.String, "Its key (PROJ-124)")),
			p("self", leaf(connector.String, "Its API URL")),
			p("url", leaf(connector.String, "Its page ({base_url}/browse/KEY; empty with OAuth and no base_url)")),
		),
		Action: connector.ActionFunc(createIssue),
	}
	TransitionIssue = &connector.Spec{
		ID: "jira.transition_issue", Kind: connector.KindAction, Summary: "Move a Jira issue to a status",
		Description: "Finds the issue's transition to the status `to` (by the target status's name, or the transition's, any case) " +
			"and makes it. A status no transition leads to fails permanently, its message listing the ones available; an issue " +
			"already in that status succeeds with changed false (a retried step).",
		Connection: jc.Connection.Type, ConnectionRequired: true,
		Fields: []connector.Field{
			issueField(),
			{Name: FieldTo, Type: connector.String, Required: true, Example: "Done", Description: "The status to move it to, by name"},
		},
		Shape: obj(
			p("issue", leaf(connector.String, "The issue")),
			p("status", leaf(connector.String, "The status it is in now")),
			p("transition_id", leaf(connector.String, "The transition made (empty when none was needed)")),
			p("changed", leaf(connector.Bool, "Whether a transition was made")),
		),
		Action: connector.ActionFunc(transitionIssue),
	}
	AddComment = &connector.Spec{
		ID: "jira.add_comment", Kind: connector.KindAction, Summary: "Comment on a Jira issue",
		Description: "Adds a comment (POST /rest/api/3/issue/{issue}/comment), its plain-text body sent as an Atlassian document " +
			"(on REST API v2, see the connection's api_version: POST /rest/api/2/issue/{issue}/comment with the text as is).",
		Connection: jc.Connection.Type, ConnectionRequired: true,
		Fields: []connector.Field{
			issueField(),
			{Name: FieldBody, Type: connector.String, Required: true, Example: "Deployed in 1.4.2.", Description: "The comment, plain text"},
		},
		Shape: obj(
			p("id", leaf(connector.String, "The comment's id")),
			p("self", leaf(connector.String, "Its API URL")),
			p("created", leaf(connector.String, "When it was written")),
			p("url", leaf(connector.String, "The issue's page with the comment focused (empty with OAuth and no base_url)")),
		),
		Action: connector.ActionFunc(addComment),
	}
	UpdateIssue = &connector.Spec{
		ID: "jira.update_issue", Kind: connector.KindAction, Summary: "Edit a Jira issue's fields",
		Description: "Sets the given fields of an issue (PUT /rest/api/3/issue/{issue}); the ones not given are left as they are. " +
			"Its status is changed by jira.transition_issue.",
		Connection: jc.Connection.Type, ConnectionRequired: true,
		Fields: append([]connector.Field{issueField()}, fieldsFields(false)...),
		Shape: obj(
			p("issue", leaf(connector.String, "The issue")),
			p("url", leaf(connector.String, "Its page (empty with OAuth and no base_url)")),
		),
		Action: connector.ActionFunc(updateIssue),
	}
)

func init() { connector.Register(CreateIssue, TransitionIssue, AddComment, UpdateIssue) }
