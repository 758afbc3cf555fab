// Package jira is Jira Cloud's triggers: jira.issue_created,
// jira.issue_updated, jira.issue_status_changed and jira.comment_created,
// received from the site's webhooks at POST /hooks/jira/{connection}
// (verified with the connection's webhook_secret, deduplicated by
// X-Atlassian-Webhook-Identifier), or, for a recipe that sets
// poll_interval (sites where webhooks cannot be registered), found by JQL
// polling (Trigger.PollWhen): a polled change gives the event a webhook
// would have.
package jira
