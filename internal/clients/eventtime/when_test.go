package eventtime

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	tests := []struct {
		in     string
		want   time.Time
		allDay bool
		err    bool
	}{
		{"2026-03-02T10:00:00+01:00", time.Date(2026, 3, 2, 9, 0, 0, 0, time.UTC), false, false},
		{" 2026-03-02T10:00:00 ", time.Date(2026, 3, 2, 10, 0, 0, 0, time.UTC), false, false},
		{"2026-03-02", time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC), true, false},
		{"tomorrow", time.Time{}, false, true},
		{"2026-13-02", time.Time{}, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, allDay, err := Parse(tc.in)
			if tc.err {
				require.ErrorContains(t, err, "neither an RFC 3339 date-time")
				require.Error(t, Check(tc.in))
				return
			}
			require.NoError(t, err)
			require.True(t, tc.want.Equal(got), "%s", got)
			require.Equal(t, tc.allDay, allDay)
			require.NoError(t, Check(tc.in))
		})
	}
}
