package gcal

import (
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/google"
)

// Field names of the trigger.
const (
	FieldCalendarID   = "calendar_id"
	FieldPollInterval = "poll_interval"
	FieldSingleEvents = "single_events"
)

var (
	leaf = connector.Leaf
	p    = connector.P
	obj  = connector.Obj
)

func whenShape(desc string) *connector.Shape {
	return obj(
		p("date", leaf(connector.String, "The date of an all-day event (2026-03-02), else empty")),
		p("date_time", leaf(connector.String, "The RFC 3339 date-time of a timed event, else empty")),
		p("time_zone", leaf(connector.String, "The IANA time zone, when set (Europe/Paris)")),
	).Describe(desc)
}

func personShape(desc string) *connector.Shape {
	return obj(
		p("email", leaf(connector.String, "The email address")),
		p("display_name", leaf(connector.String, "The name, when known")),
		p("self", leaf(connector.Bool, "Whether it is the calendar's own account")),
	).Describe(desc)
}

// EventShape is the event of gcal.event_created.
var EventShape = obj(
	p("id", leaf(connector.String, "The event id")),
	p("calendar_id", leaf(connector.String, "The calendar watched (as the recipe names it: primary, or an id)")),
	p("summary", leaf(connector.String, "The title")),
	p("description", leaf(connector.String, "The description")),
	p("location", leaf(connector.String, "The location")),
	p("start", whenShape("The start")),
	p("end", whenShape("The end (exclusive)")),
	p("all_day", leaf(connector.Bool, "Whether it is an all-day event")),
	p("attendees", connector.ListOf(obj(
		p("email", leaf(connector.String, "The guest's email")),
		p("display_name", leaf(connector.String, "The guest's name, when known")),
		p("response_status", leaf(connector.String, "needsAction, declined, tentative or accepted")),
		p("optional", leaf(connector.Bool, "Whether the guest is optional")),
		p("organizer", leaf(connector.Bool, "Whether the guest is the organizer")),
		p("self", leaf(connector.Bool, "Whether the guest is the calendar's own account")),
	), "The guests")),
	p("organizer", personShape("The organizer")),
	p("creator", personShape("Who created it")),
	p("html_link", leaf(connector.String, "The event in Google Calendar")),
	p("hangout_link", leaf(connector.String, "The Google Meet link, when it has one")),
	p("conference_link", leaf(connector.String, "The video conference's link (Meet or another), when it has one")),
	p("created", leaf(connector.String, "When it was created, RFC 3339")),
	p("updated", leaf(connector.String, "When it was last changed, RFC 3339")),
	p("status", leaf(connector.String, "confirmed or tentative")),
	p("recurring_event_id", leaf(connector.String, "With single_events: the recurring event an instance belongs to")),
	p("i_cal_uid", leaf(connector.String, "The iCalendar UID")),
)

// EventCreated is the spec of gcal.event_created.
var EventCreated = &connector.Spec{
	ID: "gcal.event_created", Kind: connector.KindTrigger, Summary: "An event was created in a Google Calendar",
	Description: "Polls a calendar through Google's incremental sync (events.list with a sync token). The first poll " +
		"pages through the calendar to its sync token and starts no run: a new recipe starts from now. Each later poll " +
		"lists the events changed since the token; an event starts one run when it was created after the last completed " +
		"poll began (less a minute's overlap) and is not cancelled, so that edits of older events start nothing. When " +
		"Google answers 410 (the sync token expired, after a long stop), the poller syncs the calendar again in full and " +
		"starts a run for each event created since the last completed poll: nothing created in the gap is lost. Each " +
		"event is keyed by its id: one run per event, across restarts.",
	Connection: google.Connection.Type, ConnectionRequired: true,
	Fields: []connector.Field{
		{Name: FieldCalendarID, Type: connector.String, Default: "primary", Example: "team@group.calendar.google.com",
			Description: "The calendar to watch: primary (the account's own) or a calendar id"},
		{Name: FieldPollInterval, Type: connector.Duration, Default: "1m", Description: "How often to ask Google for changes"},
		{Name: FieldSingleEvents, Type: connector.Bool, Default: false,
			Description: "Expand recurring events into their instances (each instance is then an event, keyed by its own id)"},
	},
	Shape: EventShape,
}

func init() {
	EventCreated.Trigger = &connector.Trigger{Kind: connector.Poll, Key: connector.KeyOptions, Poller: connector.PollerFunc(Poll),
		Interval: func(with connector.Values) time.Duration { return with.Duration(FieldPollInterval) }}
	connector.Register(EventCreated)
}
