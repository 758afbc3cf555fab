package zoom_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/zoom"
)

func recipe(trigger, with, filter string) string {
	return `version: 1
name: zoomy
trigger:
  type: ` + trigger + `
  connection: zoom
` + with + `filter: ` + filter + `
steps:
  - id: notify
    action: http.request
    with:
      url: https://hooks.example.test/notify
      json: {topic: "{{ event.payload.object.topic }}"}
`
}

// TestEventShape: `sous validate` type-checks recipes against the Zoom
// events' declared shapes, with the line, the column and a suggestion.
func TestEventShape(t *testing.T) {
	tests := []struct {
		name, trigger, with, filter string
		want                        string
	}{
		{name: "meeting_ended fields", trigger: "zoom.meeting_ended",
			filter: `event.payload.object.duration >= 5 && event.payload.object.topic contains "Standup" && event.payload.object.id != ""`},
		{name: "a typo in payload", trigger: "zoom.meeting_ended", filter: `event.payload.objct.topic == "x"`,
			want: `6:23: error: expression: unknown field objct in event.payload (did you mean "object"?)`},
		{name: "a typo in object", trigger: "zoom.meeting_started", filter: `event.payload.object.topc == "x"`,
			want: `6:30: error: expression: unknown field topc in event.payload.object (did you mean "topic"?)`},
		{name: "id is a string", trigger: "zoom.meeting_ended", filter: `event.payload.object.id > 5`,
			want: `6:33: error: expression: invalid operation: > (mismatched types string and int)`},
		{name: "recording files", trigger: "zoom.recording_completed",
			filter: `len(event.payload.object.recording_files) > 0 && event.payload.object.recording_files[0].download_url != "" && event.download_token != ""`},
		{name: "participant", trigger: "zoom.participant_joined", filter: `event.payload.object.participant.email endsWith "@acme.test"`},
		{name: "participant left", trigger: "zoom.participant_left", filter: `event.payload.object.participant.leave_time != ""`},
		{name: "any event", trigger: "zoom.event", with: "  with: {event: meeting.created}\n", filter: `event.payload.object.whatever == 1`},
		{name: "any event needs its name", trigger: "zoom.event", filter: `true`, want: `4:3: error: trigger.with: missing required field "event" for zoom.event`},
		{name: "any event, a bad name", trigger: "zoom.event", with: "  with: {event: Meeting}\n", filter: `true`,
			want: `must be a Zoom event name`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "zoomy.yaml")
			require.NoError(t, os.WriteFile(path, []byte(recipe(tc.trigger, tc.with, tc.filter)), 0o600))
			set, diags := (&recipes.Loader{}).LoadPaths([]string{dir})
			if tc.want == "" {
				require.Empty(t, diags, diags.Error())
				require.Len(t, set.Recipes, 1)
				return
			}
			require.NotEmpty(t, diags)
			require.Contains(t, diags.Error(), tc.want)
		})
	}
}
