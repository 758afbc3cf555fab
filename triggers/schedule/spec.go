package schedule

import (
	"fmt"
	"strings"
	"time"
	_ "time/tzdata" // IANA zones even on a host without a zoneinfo database

	"github.com/robfig/cron/v3"

	"github.com/sous-run/sous/engine/connector"
)

// Field names of schedule.cron.
const (
	FieldCron     = "cron"
	FieldTimezone = "timezone"
)

// Cron is the spec of schedule.cron.
var Cron = &connector.Spec{
	ID:      "schedule.cron",
	Kind:    connector.KindTrigger,
	Summary: "A cron schedule ticked",
	Description: "Fires on a standard 5-field cron expression (minute hour day-of-month month day-of-week) " +
		"or a descriptor such as @daily, @hourly or @every 5m, in an IANA time zone. Each tick runs once, " +
		"even with several processes.",
	Fields: []connector.Field{
		{Name: FieldCron, Type: connector.String, Required: true, Check: checkCron,
			Description: "The schedule: 5 cron fields or @every/@daily/@hourly...", Example: "0 9 * * 1-5"},
		{Name: FieldTimezone, Type: connector.String, Default: "UTC", Check: checkZone,
			Description: "The IANA time zone the schedule is read in", Example: "Europe/Paris"},
	},
	Shape: connector.Obj(
		connector.P("scheduled_at", connector.Leaf(connector.String, "The tick's time, RFC 3339, in the schedule's zone")),
		connector.P("fired_at", connector.Leaf(connector.String, "When the tick actually fired, RFC 3339")),
	),
}

// Parse parses a schedule in a zone ("" is UTC). Its Next times are in
// that zone, whatever the zone of the time given.
func Parse(spec, zone string) (cron.Schedule, error) {
	loc, err := loadZone(zone)
	if err != nil {
		return nil, err
	}
	if strings.HasPrefix(spec, "TZ=") || strings.HasPrefix(spec, "CRON_TZ=") {
		return nil, fmt.Errorf("set the zone with timezone, not a TZ= prefix")
	}
	s, err := cron.ParseStandard(spec)
	if err != nil {
		return nil, fmt.Errorf("invalid cron %q: %w", spec, err)
	}
	if ss, ok := s.(*cron.SpecSchedule); ok {
		ss.Location = loc
	}
	// a date that does not exist (0 0 30 2 *) never fires: cron gives the
	// zero time, which a scheduler would take as due at once, forever
	if s.Next(time.Now()).IsZero() {
		return nil, fmt.Errorf("cron %q never fires", spec)
	}
	return zoned{s, loc}, nil
}

// zoned gives a schedule's times in its zone: cron answers in the zone of
// the time it is given (the host's), and event.scheduled_at is documented
// as the tick's time in the schedule's zone.
type zoned struct {
	cron.Schedule
	loc *time.Location
}

func (z zoned) Next(t time.Time) time.Time {
	n := z.Schedule.Next(t)
	if n.IsZero() {
		return n
	}
	return n.In(z.loc)
}

// loadZone loads an IANA zone. "Local" is refused: a schedule must not
// change with the host it runs on.
func loadZone(zone string) (*time.Location, error) {
	if zone == "Local" {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/Paris)", zone)
	}
	loc, err := time.LoadLocation(zone)
	if err != nil {
		return nil, fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/Paris)", zone)
	}
	return loc, nil
}

func checkCron(v any) error {
	_, err := Parse(v.(string), "UTC")
	return err
}

func checkZone(v any) error {
	if v.(string) == "" {
		return fmt.Errorf("unknown time zone %q (use an IANA name such as Europe/Paris)", v)
	}
	_, err := loadZone(v.(string))
	return err
}

// next is the Schedule of schedule.cron.
func next(with connector.Values) (func(time.Time) time.Time, error) {
	s, err := Parse(with.String(FieldCron), with.String(FieldTimezone))
	if err != nil {
		return nil, err
	}
	return s.Next, nil
}

// tick is the event of a tick due at scheduled, fired at fired.
func tick(scheduled, fired time.Time) map[string]any {
	return map[string]any{
		"scheduled_at": scheduled.Format(time.RFC3339),
		"fired_at":     fired.UTC().Format(time.RFC3339Nano),
	}
}

func init() {
	Cron.Schedule = next
	Cron.Trigger = &connector.Trigger{Kind: connector.Clock, Key: connector.KeyRecipe, Tick: tick}
	connector.Register(Cron)
}
