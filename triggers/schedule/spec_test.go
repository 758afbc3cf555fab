package schedule_test

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/recipes"
	"github.com/sous-run/sous/triggers/schedule"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		zone    string
		wantErr string
	}{
		{name: "five fields", spec: "0 9 * * 1-5", zone: "UTC"},
		{name: "steps", spec: "*/5 * * * *", zone: "UTC"},
		{name: "names", spec: "30 8 * JAN-MAR MON,FRI", zone: "UTC"},
		{name: "daily", spec: "@daily", zone: "UTC"},
		{name: "hourly", spec: "@hourly", zone: "Europe/Paris"},
		{name: "weekly", spec: "@weekly", zone: "UTC"},
		{name: "monthly", spec: "@monthly", zone: "UTC"},
		{name: "yearly", spec: "@yearly", zone: "UTC"},
		{name: "every", spec: "@every 5m", zone: "UTC"},
		{name: "empty zone is UTC", spec: "@daily", zone: ""},
		{name: "feb 29 fires in leap years", spec: "0 0 29 2 *", zone: "UTC"},

		{name: "six fields", spec: "0 0 9 * * 1", zone: "UTC", wantErr: "invalid cron"},
		{name: "four fields", spec: "0 9 * *", zone: "UTC", wantErr: "invalid cron"},
		{name: "garbage", spec: "every morning", zone: "UTC", wantErr: "invalid cron"},
		{name: "empty", spec: "", zone: "UTC", wantErr: "invalid cron"},
		{name: "minute out of range", spec: "60 * * * *", zone: "UTC", wantErr: "invalid cron"},
		{name: "unknown descriptor", spec: "@fortnightly", zone: "UTC", wantErr: "invalid cron"},
		{name: "bad every", spec: "@every soon", zone: "UTC", wantErr: "invalid cron"},
		{name: "TZ prefix", spec: "TZ=Europe/Paris 0 9 * * *", zone: "UTC", wantErr: "not a TZ= prefix"},
		{name: "CRON_TZ prefix", spec: "CRON_TZ=UTC 0 9 * * *", zone: "UTC", wantErr: "not a TZ= prefix"},
		{name: "TZ prefix alone", spec: "TZ=UTC", zone: "UTC", wantErr: "not a TZ= prefix"},
		{name: "unknown zone", spec: "@daily", zone: "Mars/Olympus_Mons", wantErr: `unknown time zone "Mars/Olympus_Mons"`},
		{name: "host zone", spec: "@daily", zone: "Local", wantErr: `unknown time zone "Local"`},
		{name: "a date that never comes", spec: "0 0 30 2 *", zone: "UTC", wantErr: "never fires"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := schedule.Parse(tc.spec, tc.zone)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				require.Nil(t, s)
				return
			}
			require.NoError(t, err)
			next := s.Next(time.Now())
			require.False(t, next.IsZero())
			require.True(t, next.After(time.Now().Add(-time.Second)))
		})
	}
}

func TestNextInZone(t *testing.T) {
	paris, err := time.LoadLocation("Europe/Paris")
	require.NoError(t, err)
	tests := []struct {
		name string
		spec string
		zone string
		from time.Time
		want time.Time
	}{
		{name: "9am in Paris in winter", spec: "0 9 * * *", zone: "Europe/Paris",
			from: time.Date(2026, 1, 15, 7, 30, 0, 0, time.UTC), want: time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC)},
		{name: "9am in Paris after the clocks went forward", spec: "0 9 * * *", zone: "Europe/Paris",
			from: time.Date(2026, 3, 29, 6, 0, 0, 0, time.UTC), want: time.Date(2026, 3, 29, 7, 0, 0, 0, time.UTC)},
		{name: "9am in Paris already passed", spec: "0 9 * * *", zone: "Europe/Paris",
			from: time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC), want: time.Date(2026, 1, 16, 8, 0, 0, 0, time.UTC)},
		{name: "9am UTC", spec: "0 9 * * *", zone: "UTC",
			from: time.Date(2026, 1, 15, 7, 30, 0, 0, time.UTC), want: time.Date(2026, 1, 15, 9, 0, 0, 0, time.UTC)},
		{name: "daily is midnight in the zone", spec: "@daily", zone: "Europe/Paris",
			from: time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC), want: time.Date(2026, 7, 1, 22, 0, 0, 0, time.UTC)},
		{name: "weekdays skip the weekend", spec: "0 9 * * 1-5", zone: "Europe/Paris",
			from: time.Date(2026, 1, 16, 9, 0, 0, 0, time.UTC),  // a Friday, after 9 in Paris
			want: time.Date(2026, 1, 19, 8, 0, 0, 0, time.UTC)}, // Monday
		{name: "every is relative", spec: "@every 5m", zone: "Europe/Paris",
			from: time.Date(2026, 1, 15, 7, 31, 0, 0, time.UTC), want: time.Date(2026, 1, 15, 7, 36, 0, 0, time.UTC)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := schedule.Parse(tc.spec, tc.zone)
			require.NoError(t, err)
			got := s.Next(tc.from)
			require.True(t, tc.want.Equal(got), "want %s, got %s", tc.want, got)
			if tc.zone == "Europe/Paris" {
				require.Equal(t, paris.String(), got.Location().String(), "the tick is in the schedule's zone")
			}
		})
	}
}

func TestSpecSchedule(t *testing.T) {
	spec, ok := connector.Default.Lookup("schedule.cron")
	require.True(t, ok, "schedule.cron is registered")
	require.Same(t, schedule.Cron, spec)
	require.NotNil(t, spec.Schedule)

	next, err := spec.Schedule(connector.Values{schedule.FieldCron: "0 9 * * *", schedule.FieldTimezone: "Europe/Paris"})
	require.NoError(t, err)
	from := time.Date(2026, 1, 15, 7, 30, 0, 0, time.UTC)
	require.True(t, time.Date(2026, 1, 15, 8, 0, 0, 0, time.UTC).Equal(next(from)))

	_, err = spec.Schedule(connector.Values{schedule.FieldCron: "0 9 * * *", schedule.FieldTimezone: "Nowhere/City"})
	require.ErrorContains(t, err, "unknown time zone")
}

func TestFieldChecks(t *testing.T) {
	tests := []struct {
		name    string
		field   string
		value   any
		wantErr string
	}{
		{name: "cron ok", field: schedule.FieldCron, value: "*/15 * * * *"},
		{name: "cron descriptor", field: schedule.FieldCron, value: "@every 1h"},
		{name: "cron bad", field: schedule.FieldCron, value: "* * *", wantErr: "invalid cron"},
		{name: "cron with seconds", field: schedule.FieldCron, value: "0 0 9 * * *", wantErr: "invalid cron"},
		{name: "cron not a string", field: schedule.FieldCron, value: []any{"x"}, wantErr: "want a string"},
		{name: "zone ok", field: schedule.FieldTimezone, value: "America/New_York"},
		{name: "zone empty", field: schedule.FieldTimezone, value: "", wantErr: "unknown time zone"},
		{name: "zone unknown", field: schedule.FieldTimezone, value: "Paris", wantErr: "use an IANA name"},
		{name: "zone local", field: schedule.FieldTimezone, value: "Local", wantErr: "unknown time zone"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, ok := schedule.Cron.Field(tc.field)
			require.True(t, ok)
			_, err := f.CheckValue(tc.value)
			if tc.wantErr != "" {
				require.ErrorContains(t, err, tc.wantErr)
				return
			}
			require.NoError(t, err)
		})
	}
}

func TestRecipeWithSchedule(t *testing.T) {
	tests := []struct {
		name    string
		with    string
		wantErr string
	}{
		{name: "valid", with: `{cron: "0 9 * * 1-5", timezone: Europe/Paris}`},
		{name: "default zone", with: `{cron: "@daily"}`},
		{name: "bad cron", with: `{cron: "0 0 9 * * *"}`, wantErr: "invalid cron"},
		{name: "tz prefix", with: `{cron: "TZ=Europe/Paris 0 9 * * *"}`, wantErr: "not a TZ= prefix"},
		{name: "bad zone", with: `{cron: "@daily", timezone: Europe/Atlantis}`, wantErr: "unknown time zone"},
		{name: "no cron", with: `{timezone: UTC}`, wantErr: `missing required field "cron"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			src := "version: 1\nname: tick\ntrigger:\n  type: schedule.cron\n  with: " + tc.with +
				"\nsteps:\n  - id: a\n    action: http.request\n    with: {url: \"https://example.test/{{ event.scheduled_at }}\"}\n"
			rec, diags := (&recipes.Loader{}).Parse("tick.yaml", []byte(src))
			if tc.wantErr != "" {
				require.True(t, diags.HasErrors())
				require.Contains(t, diags.Error(), tc.wantErr)
				return
			}
			require.Falsef(t, diags.HasErrors(), "%s", diags.Error())
			opts, err := rec.Trigger.Options(nil)
			require.NoError(t, err)
			next, err := rec.Trigger.Spec.Schedule(opts)
			require.NoError(t, err)
			require.False(t, next(time.Now()).IsZero())
			if tc.name == "default zone" {
				require.Equal(t, "UTC", opts.String(schedule.FieldTimezone))
			}
		})
	}
}
