// Package all imports every action package so that each registers.
package all

import (
	_ "github.com/sous-run/sous/actions/dropbox" // dropbox.*
	_ "github.com/sous-run/sous/actions/email"   // email.send
	_ "github.com/sous-run/sous/actions/gcal"    // gcal.*
	_ "github.com/sous-run/sous/actions/gdrive"  // gdrive.*
	_ "github.com/sous-run/sous/actions/http"    // http.request
	_ "github.com/sous-run/sous/actions/jira"    // jira.*
	_ "github.com/sous-run/sous/actions/outlook" // outlook.send_mail, outlook.create_event
	_ "github.com/sous-run/sous/actions/slack"   // slack.*
	_ "github.com/sous-run/sous/actions/zapier"  // zapier.notify
)
