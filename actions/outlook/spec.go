package outlook

import (
	"fmt"
	"strings"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/eventtime"
	"github.com/sous-run/sous/internal/clients/microsoft"
)

// Field names of outlook.send_mail.
const (
	FieldUser            = "user"
	FieldTo              = "to"
	FieldCc              = "cc"
	FieldBcc             = "bcc"
	FieldReplyTo         = "reply_to"
	FieldSubject         = "subject"
	FieldText            = "text"
	FieldHTML            = "html"
	FieldAttachments     = "attachments"
	FieldHeaders         = "headers"
	FieldSaveToSentItems = "save_to_sent_items"
)

// Field names of outlook.create_event (subject, and user, as above).
const (
	FieldSummary         = "summary"
	FieldCalendarID      = "calendar_id"
	FieldStart           = "start"
	FieldEnd             = "end"
	FieldTimeZone        = "time_zone"
	FieldAttendees       = "attendees"
	FieldBody            = "body"
	FieldDescription     = "description"
	FieldLocation        = "location"
	FieldIsOnlineMeeting = "is_online_meeting"
)

// Keys of an attachment (filename as in email.send; name as Graph calls it).
const (
	AttFilename      = "filename"
	AttName          = "name"
	AttContent       = "content"
	AttContentBase64 = "content_base64"
	AttContentType   = "content_type"
)

// IdempotencyHeader is the custom header send_mail puts on every message:
// a hash of the step's idempotency key, the same on every attempt, so
// that a message sent twice (a retry after a lost answer) can be
// recognised downstream.
const IdempotencyHeader = "X-Sous-Idempotency-Key"

var (
	leaf = connector.Leaf
	p    = connector.P
)

const recipients = "An address (\"Ada <ada@example.com>\" or ada@example.com), or a list of them"

func userField(what string) connector.Field {
	return connector.Field{Name: FieldUser, Type: connector.String, Example: "ada@contoso.com",
		Description: "The user whose " + what + " is used (a user id or principal name, through users/{user}/); the connection's own (me) when not set"}
}

// SendMail is the spec of outlook.send_mail.
var SendMail = &connector.Spec{
	ID: "outlook.send_mail", Kind: connector.KindAction, Summary: "Send an email from Outlook (Microsoft Graph)",
	Description: "Sends a message with Graph's sendMail, as the connection's user (or `user`): to, cc, bcc, reply_to, a Text or " +
		"HTML body (html wins when both are set), file attachments from content or content_base64, and custom X- headers. " +
		"Graph answers 202 Accepted (accepted for delivery, not delivered) and gives no message id. Graph has no idempotency " +
		"key for sendMail: a retry after an answer that was lost may send the message twice; every message carries the header " +
		IdempotencyHeader + ", the same on every attempt of a step, so that a duplicate can be recognised.",
	Connection: microsoft.Connection.Type, ConnectionRequired: true,
	Fields: []connector.Field{
		userField("mailbox"),
		{Name: FieldTo, Type: connector.Any, Required: true, Example: []any{"alice@example.com", "Bob <bob@example.com>"},
			Check: checkAddresses, Description: "The recipients: " + recipients},
		{Name: FieldCc, Type: connector.Any, Check: checkAddresses, Example: "team@example.com", Description: "Cc: " + recipients},
		{Name: FieldBcc, Type: connector.Any, Check: checkAddresses, Example: "audit@example.com", Description: "Bcc: " + recipients},
		{Name: FieldReplyTo, Type: connector.Any, Check: checkAddresses, Example: "support@example.com", Description: "Reply-To: " + recipients},
		{Name: FieldSubject, Type: connector.String, Required: true, Example: "Build {{ event.body.id }} failed", Description: "The subject"},
		{Name: FieldText, Type: connector.String, Example: "The build failed.", Description: "The body as text (contentType Text)"},
		{Name: FieldHTML, Type: connector.String, Example: "<p>The build failed.</p>",
			Description: "The body as HTML (contentType HTML); when text is set too, html is sent (Graph takes one body)"},
		{Name: FieldAttachments, Type: connector.List, Check: checkAttachments,
			Example:     []any{map[string]any{AttFilename: "report.csv", AttContent: "a,b\n1,2\n", AttContentType: "text/csv"}},
			Description: "Files: each {filename (or name), content | content_base64, content_type}; sent as fileAttachment (Graph takes up to 3 MB this way)"},
		{Name: FieldHeaders, Type: connector.StringMap, Check: checkHeaders, Example: map[string]any{"X-Ticket": "OPS-42"},
			Description: "Custom headers (internetMessageHeaders): names must start with X- (Graph takes no others)"},
		{Name: FieldSaveToSentItems, Type: connector.Bool, Default: true, Description: "Keep a copy in Sent Items"},
	},
	Shape: connector.Obj(
		p("accepted", connector.ListOf(leaf(connector.String, "An address"), "The recipients Graph accepted the message for (to, cc and bcc)")),
		p("status", leaf(connector.Int, "Graph's answer: 202")),
		p("message_id", leaf(connector.String, "Always empty: Graph's sendMail gives no message id")),
		p("idempotency_key", leaf(connector.String, "The "+IdempotencyHeader+" header the message carries")),
		p("note", leaf(connector.String, "What 202 means: accepted for delivery, no message id")),
	),
}

// CreateEvent is the spec of outlook.create_event.
var CreateEvent = &connector.Spec{
	ID: "outlook.create_event", Kind: connector.KindAction, Summary: "Create an Outlook calendar event (Microsoft Graph)",
	Description: "Creates an event in the default calendar (or calendar_id): timed or all-day, with attendees, a body, a " +
		"location and, with is_online_meeting, an online meeting (Teams) whose join URL is returned. The step's " +
		"idempotency key is sent as Graph's transactionId, so that a retried step does not create a second event. " +
		"start and end are RFC 3339 (their offset is applied and the event is sent in UTC) or, with time_zone, a local " +
		"date-time without an offset; two dates make an all-day event (end is the day after the last).",
	Connection: microsoft.Connection.Type, ConnectionRequired: true,
	Fields: []connector.Field{
		userField("calendar"),
		{Name: FieldCalendarID, Type: connector.String, Example: "AAMkAGI2TGuLAAA=", Description: "The calendar's id; the default calendar when not set"},
		{Name: FieldSubject, Type: connector.String, Example: "Standup", Description: "The event's title (or summary, as in gcal)"},
		{Name: FieldSummary, Type: connector.String, Example: "Standup", Description: "The event's title, as gcal.create_event names it; subject wins"},
		{Name: FieldStart, Type: connector.String, Required: true, Check: eventtime.Check, Example: "2026-03-02T10:00:00+01:00",
			Description: "When it starts: an RFC 3339 date-time, a date-time without an offset with time_zone, or a date (all-day)"},
		{Name: FieldEnd, Type: connector.String, Required: true, Check: eventtime.Check, Example: "2026-03-02T10:30:00+01:00",
			Description: "When it ends: as start; for an all-day event, the day after the last"},
		{Name: FieldTimeZone, Type: connector.String, Example: "Europe/Paris",
			Description: "The time zone of start and end (IANA or Windows name, as Graph takes); needed for a date-time without an offset; UTC otherwise"},
		{Name: FieldAttendees, Type: connector.List, Check: checkAttendees, Example: []any{"ada@example.com"},
			Description: "The attendees: email addresses, or objects {email, optional, display_name}"},
		{Name: FieldBody, Type: connector.String, Example: "<p>Agenda</p>", Description: "The event's body as HTML"},
		{Name: FieldDescription, Type: connector.String, Example: "Agenda: ...", Description: "The event's body as text (as gcal names it); body wins"},
		{Name: FieldLocation, Type: connector.String, Example: "Room 4", Description: "Where"},
		{Name: FieldIsOnlineMeeting, Type: connector.Bool, Default: false, Description: "Make it an online meeting (Teams for work accounts)"},
	},
	Validate: validateEvent,
	Shape: connector.Obj(
		p("id", leaf(connector.String, "The event id")),
		p("web_link", leaf(connector.String, "The event in Outlook on the web")),
		p("subject", leaf(connector.String, "The title")),
		p("start", leaf(connector.String, "The start as Graph stores it (dateTime, in time_zone)")),
		p("end", leaf(connector.String, "The end, as start")),
		p("time_zone", leaf(connector.String, "The time zone of start and end")),
		p("all_day", leaf(connector.Bool, "Whether it is an all-day event")),
		p("attendees", connector.ListOf(leaf(connector.String, "An email"), "The attendees' emails")),
		p("online_meeting_url", leaf(connector.String, "The online meeting's join URL, when the event has one")),
		p("i_cal_uid", leaf(connector.String, "The iCalendar UID")),
	),
}

func init() {
	SendMail.Action = connector.ActionFunc(sendMail)
	CreateEvent.Action = connector.ActionFunc(createEvent)
	connector.Register(SendMail, CreateEvent)
}

func checkAddresses(v any) error {
	_, err := addressList(v)
	return err
}

func checkAttachments(v any) error {
	list, ok := v.([]any)
	if !ok {
		return fmt.Errorf("is not a list")
	}
	for i, a := range list {
		if _, err := attachmentOf(a); err != nil {
			return fmt.Errorf("attachment %d: %w", i+1, err)
		}
	}
	return nil
}

func checkHeaders(v any) error {
	var names []string
	switch m := v.(type) {
	case map[string]string:
		for k := range m {
			names = append(names, k)
		}
	case map[string]any:
		for k := range m {
			names = append(names, k)
		}
	default:
		return fmt.Errorf("is not a map of header names to values")
	}
	for _, k := range names {
		if !strings.HasPrefix(strings.ToLower(k), "x-") || strings.ContainsAny(k, " :\r\n") {
			return fmt.Errorf("header %q: Graph takes only custom headers whose names start with X-", k)
		}
	}
	return nil
}

func checkAttendees(v any) error {
	_, err := attendees(v.([]any))
	return err
}

// validateEvent: start and end both dates or both date-times,
// end after start, time_zone for a date-time without an offset.
func validateEvent(with connector.Values) []connector.FieldError {
	// subject or summary is checked when the step runs: either may be
	// a template, absent here
	var errs []connector.FieldError
	s, e := with.String(FieldStart), with.String(FieldEnd)
	if s == "" || e == "" {
		return errs
	}
	st, sDay, err1 := eventtime.Parse(s)
	et, eDay, err2 := eventtime.Parse(e)
	if err1 != nil || err2 != nil {
		return errs
	}
	switch {
	case sDay != eDay:
		errs = append(errs, connector.FieldError{Field: FieldEnd, Message: "start and end must both be dates (all-day) or both date-times"})
	case !st.IsZero() && !et.IsZero() && !et.After(st) && offsetOf(s) == offsetOf(e):
		errs = append(errs, connector.FieldError{Field: FieldEnd, Message: "must be after start"})
	}
	return errs
}
