package recipes

import (
	"fmt"
	"math"
	"time"
)

// ParsePeriod reads a duration as sous.yaml and the run filters write
// it: a Go duration (90m, 12h30m) or a whole number of days (7d). A
// number of days too large for a time.Duration is an error, not a
// duration wrapped around.
func ParsePeriod(v string) (time.Duration, error) {
	const day = 24 * time.Hour
	var n int64
	if _, err := fmt.Sscanf(v, "%dd", &n); err == nil && fmt.Sprintf("%dd", n) == v {
		if n > math.MaxInt64/int64(day) || n < math.MinInt64/int64(day) {
			return 0, fmt.Errorf("%q is out of range", v)
		}
		return time.Duration(n) * day, nil
	}
	return time.ParseDuration(v)
}
