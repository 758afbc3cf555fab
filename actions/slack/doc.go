// Package slack is Slack's actions: slack.post_message,
// slack.update_message, slack.upload_file (the external-upload flow) and
// slack.create_channel (idempotent by name). Each calls the Web API with
// slack-go over the step's connection client (its rate limit, its token
// as a bearer token, its metrics), built in internal/clients/slack, which
// also classifies Slack's errors into the engine's kinds.
package slack
