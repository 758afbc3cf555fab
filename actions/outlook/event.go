package outlook

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/internal/clients/eventtime"
	"github.com/sous-run/sous/internal/clients/microsoft"
)

// offsetOf says whether a date-time carries its UTC offset.
func offsetOf(s string) bool {
	_, err := time.Parse(time.RFC3339, strings.TrimSpace(s))
	return err == nil
}

// when is Graph's dateTimeTimeZone of a start or end value: a date-time
// with an offset is sent in zone when zone is an IANA name, in UTC
// otherwise; one without an offset needs zone; a date is midnight in zone
// (UTC when none).
func when(name, s, zone string) (*microsoft.DateTimeTimeZone, bool, error) {
	t, allDay, err := eventtime.Parse(s)
	if err != nil {
		return nil, false, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("%s: %w", name, err))
	}
	switch {
	case allDay:
		if zone == "" {
			zone = "UTC"
		}
		return &microsoft.DateTimeTimeZone{DateTime: t.Format(eventtime.NaiveLayout), TimeZone: zone}, true, nil
	case offsetOf(s):
		if zone != "" {
			if loc, err := time.LoadLocation(zone); err == nil && zone != "Local" {
				return &microsoft.DateTimeTimeZone{DateTime: t.In(loc).Format(eventtime.NaiveLayout), TimeZone: zone}, false, nil
			}
		}
		return &microsoft.DateTimeTimeZone{DateTime: t.UTC().Format(eventtime.NaiveLayout), TimeZone: "UTC"}, false, nil
	case zone == "":
		return nil, false, connector.Permanent(connector.ReasonInvalid, fmt.Errorf("%s: %q has no UTC offset: set time_zone", name, s))
	default:
		return &microsoft.DateTimeTimeZone{DateTime: t.Format(eventtime.NaiveLayout), TimeZone: zone}, false, nil
	}
}

// attendees reads the attendees option: emails, or objects with email,
// optional and display_name.
func attendees(l []any) ([]microsoft.Attendee, error) {
	var out []microsoft.Attendee
	for i, v := range l {
		switch a := v.(type) {
		case string:
			addr, err := address(a)
			if err != nil {
				return nil, fmt.Errorf("attendee %d: %w", i+1, err)
			}
			out = append(out, microsoft.Attendee{EmailAddress: addr, Type: "required"})
		case map[string]any:
			email, _ := a["email"].(string)
			addr, err := address(email)
			if err != nil {
				return nil, fmt.Errorf("attendee %d: email: %w", i+1, err)
			}
			for k := range a {
				if k != "email" && k != "optional" && k != "display_name" {
					return nil, fmt.Errorf("attendee %d: unknown key %q (email, optional, display_name)", i+1, k)
				}
			}
			if n, ok := a["display_name"].(string); ok && n != "" {
				addr.Name = n
			}
			typ := "required"
			if opt, _ := a["optional"].(bool); opt {
				typ = "optional"
			}
			out = append(out, microsoft.Attendee{EmailAddress: addr, Type: typ})
		default:
			return nil, fmt.Errorf("attendee %d: an email address or {email, optional, display_name}, not %T", i+1, v)
		}
	}
	return out, nil
}

// eventOf builds the event of with.
func eventOf(with connector.Values) (*microsoft.Event, error) {
	ev := &microsoft.Event{Subject: with.String(FieldSubject), IsOnlineMeeting: with.Bool(FieldIsOnlineMeeting)}
	if ev.Subject == "" {
		ev.Subject = with.String(FieldSummary)
	}
	if ev.Subject == "" {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("create event: subject (or summary) is required"))
	}
	zone := with.String(FieldTimeZone)
	var sDay, eDay bool
	var err error
	if ev.Start, sDay, err = when(FieldStart, with.String(FieldStart), zone); err != nil {
		return nil, err
	}
	if ev.End, eDay, err = when(FieldEnd, with.String(FieldEnd), zone); err != nil {
		return nil, err
	}
	if sDay != eDay {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("create event: start and end must both be dates (all-day) or both date-times"))
	}
	ev.IsAllDay = sDay
	if b := with.String(FieldBody); b != "" {
		ev.Body = &microsoft.ItemBody{ContentType: "HTML", Content: b}
	} else if d := with.String(FieldDescription); d != "" {
		ev.Body = &microsoft.ItemBody{ContentType: "Text", Content: d}
	}
	if l := with.String(FieldLocation); l != "" {
		ev.Location = &microsoft.Location{DisplayName: l}
	}
	if l, ok := with[FieldAttendees].([]any); ok {
		if ev.Attendees, err = attendees(l); err != nil {
			return nil, connector.Permanent(connector.ReasonInvalid, err)
		}
	}
	return ev, nil
}

// eventsPath is the collection the event is created in.
func eventsPath(with connector.Values) string {
	p := microsoft.UserPath(with.String(FieldUser))
	if c := with.String(FieldCalendarID); c != "" {
		return p + "calendars/" + url.PathEscape(c) + "/events"
	}
	return p + "events"
}

// createEvent posts the event with the step's idempotency key as its
// transactionId: Graph does not create a second event for a transaction
// it has seen, so a retried step gets the one its earlier attempt made.
func createEvent(ctx context.Context, req *connector.Request) (map[string]any, error) {
	ev, err := eventOf(req.With)
	if err != nil {
		return nil, err
	}
	if req.IdempotencyKey == "" {
		return nil, connector.Permanent(connector.ReasonInvalid, errors.New("create event: no idempotency key"))
	}
	ev.TransactionID = TransactionID(req.IdempotencyKey)
	var got microsoft.Event
	if _, err := microsoft.Call(connector.WithCaller(ctx, CreateEvent.ID), req.Connection, http.MethodPost, eventsPath(req.With), ev, &got, nil); err != nil {
		return nil, fmt.Errorf("create event: %w", err)
	}
	if got.ID == "" {
		return nil, connector.Permanent(connector.ReasonClientError, errors.New("create event: Graph's answer has no event id"))
	}
	if req.Logger != nil {
		req.Logger.Info("outlook event", "event_id", got.ID)
	}
	return eventOutput(&got), nil
}

// eventOutput is an event as the action returns it.
func eventOutput(ev *microsoft.Event) map[string]any {
	out := map[string]any{"id": ev.ID, "web_link": ev.WebLink, "subject": ev.Subject, "start": "", "end": "", "time_zone": "",
		"all_day": ev.IsAllDay, "attendees": []any{}, "online_meeting_url": "", "i_cal_uid": ev.ICalUID}
	if ev.Start != nil {
		out["start"], out["time_zone"] = ev.Start.DateTime, ev.Start.TimeZone
	}
	if ev.End != nil {
		out["end"] = ev.End.DateTime
	}
	list := []any{}
	for _, a := range ev.Attendees {
		list = append(list, a.EmailAddress.Address)
	}
	out["attendees"] = list
	if ev.OnlineMeeting != nil {
		out["online_meeting_url"] = ev.OnlineMeeting.JoinURL
	}
	return out
}
