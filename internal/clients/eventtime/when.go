// Package eventtime is what the calendar actions of several services
// (Google Calendar, Outlook) share: how a recipe writes an event's start
// and end.
package eventtime

import (
	"fmt"
	"strings"
	"time"
)

// NaiveLayout is a date-time without an offset, read in the event's
// time_zone (Graph's dateTimeTimeZone takes this form too).
const NaiveLayout = "2006-01-02T15:04:05"

// Parse reads a start or end: an RFC 3339 date-time, a date-time
// without an offset (NaiveLayout, for time_zone), or a date (all-day).
func Parse(s string) (t time.Time, allDay bool, err error) {
	s = strings.TrimSpace(s)
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, false, nil
	}
	if t, err := time.Parse(NaiveLayout, s); err == nil {
		return t, false, nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, true, nil
	}
	return time.Time{}, false, fmt.Errorf("%q is neither an RFC 3339 date-time (2026-03-02T10:00:00+01:00) nor a date (2026-03-02)", s)
}

// Check is a Field.Check of a literal start or end (a string).
func Check(v any) error {
	_, _, err := Parse(v.(string))
	return err
}
