// Package all imports every trigger package so that each registers.
package all

import (
	_ "github.com/sous-run/sous/triggers/dropbox"  // dropbox.file_changed
	_ "github.com/sous-run/sous/triggers/email"    // email.received
	_ "github.com/sous-run/sous/triggers/gcal"     // gcal.event_created
	_ "github.com/sous-run/sous/triggers/gdrive"   // gdrive.file_created
	_ "github.com/sous-run/sous/triggers/jira"     // jira.*
	_ "github.com/sous-run/sous/triggers/outlook"  // outlook.email_received
	_ "github.com/sous-run/sous/triggers/schedule" // schedule.cron
	_ "github.com/sous-run/sous/triggers/slack"    // slack.*
	_ "github.com/sous-run/sous/triggers/webhook"  // webhook.received
	_ "github.com/sous-run/sous/triggers/zapier"   // zapier.action
	_ "github.com/sous-run/sous/triggers/zoom"     // zoom.*
)
