package recipes

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func TestParsePeriod(t *testing.T) {
	const day = 24 * time.Hour
	tests := []struct {
		in   string
		want time.Duration
		err  bool
	}{
		{in: "7d", want: 7 * day},
		{in: "0d", want: 0},
		{in: "-2d", want: -2 * day},
		{in: "90m", want: 90 * time.Minute},
		{in: "12h30m", want: 12*time.Hour + 30*time.Minute},
		{in: "106751d", want: 106751 * day},
		// 213,504 days wrapped around to 31 minutes before the check
		{in: "213504d", err: true},
		{in: "-213504d", err: true},
		{in: "99999999999999999999d", err: true},
		{in: "07d", err: true},
		{in: "1.5d", err: true},
		{in: "1d12h", err: true},
		{in: "d", err: true},
		{in: "", err: true},
		{in: "soon", err: true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParsePeriod(tc.in)
			if tc.err {
				require.Error(t, err, "got %s", got)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tc.want, got)
		})
	}
}
