package gcal

import (
	"crypto/sha256"
	"encoding/base32"
	"fmt"
	"strings"
	"time"

	"google.golang.org/api/calendar/v3"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/eventtime"
)

// when is the EventDateTime of a start or end value.
func when(name, s, zone string) (*calendar.EventDateTime, error) {
	_, allDay, err := eventtime.Parse(s)
	if err != nil {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("%s: %w", name, err))
	}
	s = strings.TrimSpace(s)
	if allDay {
		return &calendar.EventDateTime{Date: s, TimeZone: zone}, nil
	}
	if _, err := time.Parse(time.RFC3339, s); err != nil && zone == "" {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("%s: %q has no UTC offset: set time_zone", name, s))
	}
	return &calendar.EventDateTime{DateTime: s, TimeZone: zone}, nil
}

// attendees reads the attendees option: emails, or objects with email,
// optional and display_name.
func attendees(l []any) ([]*calendar.EventAttendee, error) {
	var out []*calendar.EventAttendee
	for i, v := range l {
		switch a := v.(type) {
		case string:
			if !strings.Contains(a, "@") {
				return nil, fmt.Errorf("attendee %d: %q is not an email address", i+1, a)
			}
			out = append(out, &calendar.EventAttendee{Email: strings.TrimSpace(a)})
		case map[string]any:
			email, _ := a["email"].(string)
			if !strings.Contains(email, "@") {
				return nil, fmt.Errorf("attendee %d: email %q is not an email address", i+1, email)
			}
			at := &calendar.EventAttendee{Email: email}
			at.Optional, _ = a["optional"].(bool)
			at.DisplayName, _ = a["display_name"].(string)
			out = append(out, at)
		default:
			return nil, fmt.Errorf("attendee %d: an email address or {email, optional, display_name}, not %T", i+1, v)
		}
	}
	return out, nil
}

// event builds the event of the fields set in with.
func event(with connector.Values) (*calendar.Event, error) {
	ev := &calendar.Event{Summary: with.String(FieldSummary), Description: with.String(FieldDescription),
		Location: with.String(FieldLocation)}
	zone := with.String(FieldTimeZone)
	var err error
	if s := with.String(FieldStart); s != "" {
		if ev.Start, err = when(FieldStart, s, zone); err != nil {
			return nil, err
		}
	}
	if s := with.String(FieldEnd); s != "" {
		if ev.End, err = when(FieldEnd, s, zone); err != nil {
			return nil, err
		}
	}
	if ev.Start != nil && ev.End != nil && (ev.Start.Date == "") != (ev.End.Date == "") {
		return nil, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("start and end must both be dates (all-day) or both date-times"))
	}
	if l, ok := with[FieldAttendees].([]any); ok {
		if ev.Attendees, err = attendees(l); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, err)
		}
	}
	return ev, nil
}

// output is an event as the actions return it.
func output(ev *calendar.Event) map[string]any {
	out := map[string]any{"id": ev.Id, "html_link": ev.HtmlLink, "status": ev.Status, "summary": ev.Summary,
		"description": ev.Description, "location": ev.Location, "start": "", "end": "", "all_day": false,
		"time_zone": "", "attendees": []any{}, "meet_link": ev.HangoutLink, "i_cal_uid": ev.ICalUID}
	if ev.Start != nil {
		out["start"] = ev.Start.DateTime + ev.Start.Date
		out["all_day"] = ev.Start.Date != ""
		out["time_zone"] = ev.Start.TimeZone
	}
	if ev.End != nil {
		out["end"] = ev.End.DateTime + ev.End.Date
	}
	list := []any{}
	for _, a := range ev.Attendees {
		list = append(list, a.Email)
	}
	out["attendees"] = list
	if out["meet_link"] == "" && ev.ConferenceData != nil {
		for _, ep := range ev.ConferenceData.EntryPoints {
			if ep.EntryPointType == "video" {
				out["meet_link"] = ep.Uri
				break
			}
		}
	}
	return out
}

// hexLower is base32hex in lower case: Google's event id alphabet (a-v, 0-9).
var hexLower = base32.NewEncoding("0123456789abcdefghijklmnopqrstuv").WithPadding(base32.NoPadding)

// EventID is the event id of a step's idempotency key: base32hex of its
// SHA-256, 52 characters of a-v and 0-9, the same on every attempt.
func EventID(key string) string {
	sum := sha256.Sum256([]byte("sous-gcal:" + key))
	return hexLower.EncodeToString(sum[:])
}
