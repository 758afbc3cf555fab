package service

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/runner"
	"github.com/sous-run/sous/engine/settings"
)

// TestSettingsDefaultsAgree checks that the defaults package settings
// describes are those of the runner and the pipeline, which take zero
// for their own default.
func TestSettingsDefaultsAgree(t *testing.T) {
	d := DefaultSettings()
	tests := []struct {
		name      string
		got, want any
	}{
		{"pipeline.max_retry_after", d.Pipeline.MaxRetryAfter, runner.DefaultMaxRetryAfter},
		{"settings.DefaultMaxRetryAfter", settings.DefaultMaxRetryAfter, runner.DefaultMaxRetryAfter},
		{"pipeline.max_crashes", d.Pipeline.MaxCrashes, pipeline.DefaultMaxCrashes},
		{"settings.DefaultMaxCrashes", settings.DefaultMaxCrashes, pipeline.DefaultMaxCrashes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, tt.got)
		})
	}
}
