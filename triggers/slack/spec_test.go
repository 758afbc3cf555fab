package slack_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/sous-run/sous/actions/all"
	"github.com/sous-run/sous/recipes"
	_ "github.com/sous-run/sous/triggers/slack"
)

func recipe(trigger, with, filter string) string {
	return `version: 1
name: slacky
trigger:
  type: ` + trigger + `
  connection: slack
` + with + `filter: ` + filter + `
steps:
  - id: notify
    action: http.request
    with:
      url: https://hooks.example.test/notify
      json: {ok: true}
`
}

// TestEventShape: `sous validate` type-checks recipes against the Slack
// events' declared shapes, with the line, the column and a suggestion.
func TestEventShape(t *testing.T) {
	tests := []struct {
		name, trigger, with, filter string
		want                        string
	}{
		{name: "message fields", trigger: "slack.message",
			filter: `event.channel == "C1" && event.text contains "deploy" && event.retry_num == 0 && event.thread_ts == ""`},
		{name: "a typo in a message field", trigger: "slack.message", filter: `event.txt contains "x"`,
			want: `6:15: error: expression: unknown field txt in event (did you mean "text"?)`},
		{name: "reaction item", trigger: "slack.reaction_added", filter: `event.item.channel == "C1" && event.reaction == "eyes"`},
		{name: "a typo in the reaction item", trigger: "slack.reaction_added", filter: `event.item.chanel == "C1"`,
			want: `unknown field chanel in event.item (did you mean "channel"?)`},
		{name: "slash command", trigger: "slack.slash_command", with: "  with: {command: /ticket, reply_text: On it}\n",
			filter: `event.text != "" && event.response_url != ""`},
		{name: "a typo in a slash command field", trigger: "slack.slash_command", filter: `event.comand == "/x"`,
			want: `did you mean "command"?`},
		{name: "interaction", trigger: "slack.interaction", with: "  with: {action_id: approve}\n",
			filter: `event.user.id != "" && event.actions[0].value == "yes" && event.view.state != nil`},
		{name: "any event needs its type", trigger: "slack.event", filter: `true`, want: `missing required field "type" for slack.event`},
		{name: "any event", trigger: "slack.event", with: "  with: {type: channel_created}\n", filter: `event.channel.name != ""`},
		{name: "a bad response_type", trigger: "slack.slash_command", with: "  with: {response_type: everyone}\n", filter: `true`,
			want: `response_type`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "slacky.yaml")
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
