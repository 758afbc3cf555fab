package gcal

import (
	"encoding/json"
	"fmt"

	"google.golang.org/api/calendar/v3"
)

func when(t *calendar.EventDateTime) map[string]any {
	if t == nil {
		return map[string]any{"date": "", "date_time": "", "time_zone": ""}
	}
	return map[string]any{"date": t.Date, "date_time": t.DateTime, "time_zone": t.TimeZone}
}

func person(email, name string, self bool) map[string]any {
	return map[string]any{"email": email, "display_name": name, "self": self}
}

// Payload is the event of gcal.event_created for a Calendar event of the
// calendar calID. Every key of EventShape is set.
func Payload(calID string, ev *calendar.Event) map[string]any {
	out := map[string]any{"id": ev.Id, "calendar_id": calID, "summary": ev.Summary, "description": ev.Description,
		"location": ev.Location, "start": when(ev.Start), "end": when(ev.End), "all_day": ev.Start != nil && ev.Start.Date != "",
		"html_link": ev.HtmlLink, "hangout_link": ev.HangoutLink, "conference_link": ev.HangoutLink,
		"created": ev.Created, "updated": ev.Updated, "status": ev.Status, "recurring_event_id": ev.RecurringEventId,
		"i_cal_uid": ev.ICalUID, "organizer": person("", "", false), "creator": person("", "", false)}
	attendees := []any{}
	for _, a := range ev.Attendees {
		if a == nil {
			continue
		}
		attendees = append(attendees, map[string]any{"email": a.Email, "display_name": a.DisplayName,
			"response_status": a.ResponseStatus, "optional": a.Optional, "organizer": a.Organizer, "self": a.Self})
	}
	out["attendees"] = attendees
	if o := ev.Organizer; o != nil {
		out["organizer"] = person(o.Email, o.DisplayName, o.Self)
	}
	if c := ev.Creator; c != nil {
		out["creator"] = person(c.Email, c.DisplayName, c.Self)
	}
	if cd := ev.ConferenceData; cd != nil {
		for _, ep := range cd.EntryPoints {
			if ep != nil && ep.EntryPointType == "video" && ep.Uri != "" {
				out["conference_link"] = ep.Uri
				break
			}
		}
	}
	return out
}

// ParseEvent reads one event as events.list gives it (JSON) and returns
// its payload; an event without an id is an error.
func ParseEvent(calID string, raw []byte) (map[string]any, error) {
	var ev calendar.Event
	if err := json.Unmarshal(raw, &ev); err != nil {
		return nil, fmt.Errorf("calendar event: %w", err)
	}
	if ev.Id == "" {
		return nil, fmt.Errorf("calendar event without an id")
	}
	return Payload(calID, &ev), nil
}
