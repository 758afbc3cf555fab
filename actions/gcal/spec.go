package gcal

import (
	"fmt"
	"regexp"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/eventtime"
)

// Field names of the gcal actions.
const (
	FieldCalendarID  = "calendar_id"
	FieldEventID     = "event_id"
	FieldSummary     = "summary"
	FieldDescription = "description"
	FieldLocation    = "location"
	FieldStart       = "start"
	FieldEnd         = "end"
	FieldTimeZone    = "time_zone"
	FieldAttendees   = "attendees"
	FieldConference  = "conference"
	FieldSendUpdates = "send_updates"
	FieldTimeMin     = "time_min"
	FieldTimeMax     = "time_max"
	FieldQuery       = "q"
	FieldQueryAlias  = "query" // find_events: the same as q
	FieldMaxResults  = "max_results"
)

var (
	leaf = connector.Leaf
	p    = connector.P
)

func calendarField() connector.Field {
	return connector.Field{Name: FieldCalendarID, Type: connector.String, Default: "primary", Example: "team@group.calendar.google.com",
		Description: "The calendar: primary (the connection's own) or a calendar id"}
}

func sendUpdatesField() connector.Field {
	return connector.Field{Name: FieldSendUpdates, Type: connector.String, Default: "none", Enum: []string{"all", "externalOnly", "none"},
		Description: "Whom Google emails about the change"}
}

func timeField(name, desc string) connector.Field {
	return connector.Field{Name: name, Type: connector.String, Check: eventtime.Check, Example: map[string]string{
		FieldStart: "2026-03-02T10:00:00+01:00", FieldEnd: "2026-03-02T10:30:00+01:00"}[name], Description: desc}
}

// eventFields are the fields that describe an event, for create and update.
func eventFields(required bool) []connector.Field {
	start := timeField(FieldStart, "When it starts: an RFC 3339 date-time (2026-03-02T10:00:00+01:00, or without an offset with time_zone), or a date (2026-03-02) for an all-day event")
	end := timeField(FieldEnd, "When it ends: as start; for an all-day event, the day after the last (Google's end date is exclusive)")
	start.Required, end.Required = required, required
	return []connector.Field{
		{Name: FieldSummary, Type: connector.String, Required: required, Description: "The event's title", Example: "Standup"},
		start, end,
		{Name: FieldTimeZone, Type: connector.String, Example: "Europe/Paris", Check: checkZone,
			Description: "The IANA time zone of start and end (needed for a date-time without an offset, and for recurring events)"},
		{Name: FieldDescription, Type: connector.String, Description: "The event's description", Example: "Agenda: ..."},
		{Name: FieldLocation, Type: connector.String, Description: "Where", Example: "Room 4"},
		{Name: FieldAttendees, Type: connector.List, Check: checkAttendees, Example: []any{"ada@example.com"},
			Description: "The guests: email addresses, or objects {email, optional, display_name}"},
		sendUpdatesField(),
	}
}

func eventProps() []connector.Prop {
	return []connector.Prop{
		p("id", leaf(connector.String, "The event id")),
		p("html_link", leaf(connector.String, "The event in Google Calendar")),
		p("status", leaf(connector.String, "confirmed, tentative or cancelled")),
		p("summary", leaf(connector.String, "The title")),
		p("description", leaf(connector.String, "The description")),
		p("location", leaf(connector.String, "The location")),
		p("start", leaf(connector.String, "The start: a date-time, or a date for an all-day event")),
		p("end", leaf(connector.String, "The end, as start")),
		p("all_day", leaf(connector.Bool, "Whether it is an all-day event")),
		p("time_zone", leaf(connector.String, "The start's time zone, when set")),
		p("attendees", connector.ListOf(leaf(connector.String, "An email"), "The guests' emails")),
		p("meet_link", leaf(connector.String, "The Google Meet link, when the event has one")),
		p("i_cal_uid", leaf(connector.String, "The iCalendar UID")),
	}
}

// The gcal actions.
var (
	CreateEvent = &connector.Spec{
		ID: "gcal.create_event", Kind: connector.KindAction, Summary: "Create a Google Calendar event",
		Description: "Creates an event, timed or all-day, with guests, a description, a location and, with `conference`, " +
			"a Google Meet link. The event id is derived from the run and step (or is `event_id`), so a retried step never " +
			"creates a second event: when Google answers that the id exists, the existing event is returned (`existed`).",
		Connection: "google", ConnectionRequired: true,
		Fields: append(append([]connector.Field{calendarField()}, eventFields(true)...),
			connector.Field{Name: FieldConference, Type: connector.Bool, Default: false, Description: "Add a Google Meet link"},
			connector.Field{Name: FieldEventID, Type: connector.String, Check: checkEventID,
				Description: "The event's id; derived from the run and step when not set"}),
		Validate: validateTimes,
		Shape:    connector.Obj(append(eventProps(), p("existed", leaf(connector.Bool, "Whether the event already existed (a retried step)")))...),
		Action:   connector.ActionFunc(createEvent),
	}
	UpdateEvent = &connector.Spec{
		ID: "gcal.update_event", Kind: connector.KindAction, Summary: "Change a Google Calendar event",
		Description: "Patches an event: only the fields set are changed, the others are kept as they are.",
		Connection:  "google", ConnectionRequired: true,
		Fields: append([]connector.Field{calendarField(),
			{Name: FieldEventID, Type: connector.String, Required: true, Description: "The event's id", Example: "{{ steps.create.output.id }}"}},
			eventFields(false)...),
		Validate: validateTimes,
		Shape:    connector.Obj(eventProps()...),
		Action:   connector.ActionFunc(updateEvent),
	}
	DeleteEvent = &connector.Spec{
		ID: "gcal.delete_event", Kind: connector.KindAction, Summary: "Delete a Google Calendar event",
		Description: "Deletes an event. An event already deleted (Google answers 410) is not an error: a retried step " +
			"succeeds, with `already_deleted`. An id that never existed fails with not_found.",
		Connection: "google", ConnectionRequired: true,
		Fields: []connector.Field{calendarField(),
			{Name: FieldEventID, Type: connector.String, Required: true, Description: "The event's id", Example: "{{ steps.create.output.id }}"},
			sendUpdatesField()},
		Shape: connector.Obj(
			p("id", leaf(connector.String, "The event id")),
			p("deleted", leaf(connector.Bool, "Always true on success")),
			p("already_deleted", leaf(connector.Bool, "Whether it was deleted before this call")),
		),
		Action: connector.ActionFunc(deleteEvent),
	}
	FindEvents = &connector.Spec{
		ID: "gcal.find_events", Kind: connector.KindAction, Summary: "Find Google Calendar events",
		Description: "Lists the events overlapping a time range, matching a free-text query, recurring events expanded " +
			"into their instances, in start order, up to max_results (pages followed).",
		Connection: "google", ConnectionRequired: true,
		Fields: []connector.Field{calendarField(),
			{Name: FieldTimeMin, Type: connector.String, Check: checkDateTime, Example: "2026-03-02T00:00:00Z",
				Description: "Events ending after this RFC 3339 date-time"},
			{Name: FieldTimeMax, Type: connector.String, Check: checkDateTime, Example: "2026-03-09T00:00:00Z",
				Description: "Events starting before this RFC 3339 date-time"},
			{Name: FieldQuery, Type: connector.String, Example: "standup", Description: "Free text matched against the events' fields"},
			{Name: FieldQueryAlias, Type: connector.String, Description: "The same as q (set one of them)"},
			{Name: FieldMaxResults, Type: connector.Int, Default: 50, Description: "At most this many events (1 to 2500)",
				Check: func(v any) error {
					if n := v.(int64); n < 1 || n > 2500 {
						return fmt.Errorf("must be 1 to 2500")
					}
					return nil
				}},
		},
		Validate: oneQuery,
		Shape: connector.Obj(
			p("events", connector.ListOf(connector.Obj(eventProps()...), "The events found")),
			p("count", leaf(connector.Int, "How many")),
		),
		Action: connector.ActionFunc(findEvents),
	}
)

func init() { connector.Register(CreateEvent, UpdateEvent, DeleteEvent, FindEvents) }

var eventIDRE = regexp.MustCompile(`^[a-v0-9]{5,}$`)

// checkEventID: Google's event ids are 5 to 1024 characters of base32hex
// (a-v, 0-9).
func checkEventID(v any) error {
	if s := v.(string); !eventIDRE.MatchString(s) || len(s) > 1024 {
		return fmt.Errorf("%q must be 5 to 1024 characters of a-v and 0-9 (Google's base32hex)", s)
	}
	return nil
}

func checkDateTime(v any) error {
	if _, err := time.Parse(time.RFC3339, v.(string)); err != nil {
		return fmt.Errorf("%q is not an RFC 3339 date-time (2026-03-02T10:00:00Z)", v)
	}
	return nil
}

func checkZone(v any) error {
	if _, err := time.LoadLocation(v.(string)); err != nil || v.(string) == "" || v.(string) == "Local" {
		return fmt.Errorf("%q is not an IANA time zone", v)
	}
	return nil
}

func checkAttendees(v any) error {
	_, err := attendees(v.([]any))
	return err
}

// validateTimes: start and end are both dates or both date-times, end
// after start.
// oneQuery: find_events takes q or its alias query, not both.
func oneQuery(with connector.Values) []connector.FieldError {
	if with.Has(FieldQuery) && with.Has(FieldQueryAlias) {
		return []connector.FieldError{{Field: FieldQueryAlias, Message: "set q or query (the same), not both"}}
	}
	return nil
}

func validateTimes(with connector.Values) []connector.FieldError {
	s, e := with.String(FieldStart), with.String(FieldEnd)
	if s == "" || e == "" {
		return nil
	}
	st, sDay, err1 := eventtime.Parse(s)
	et, eDay, err2 := eventtime.Parse(e)
	if err1 != nil || err2 != nil {
		return nil // reported on the field
	}
	if sDay != eDay {
		return []connector.FieldError{{Field: FieldEnd, Message: "start and end must both be dates (all-day) or both date-times"}}
	}
	if !et.After(st) && (!et.IsZero() && !st.IsZero()) {
		return []connector.FieldError{{Field: FieldEnd, Message: "must be after start"}}
	}
	return nil
}
