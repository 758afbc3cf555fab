// Package all imports every service's connection types, so that the
// binary and the generated schemas and docs know them.
package all

import (
	_ "github.com/sous-run/sous/internal/clients/dropbox"   // dropbox
	_ "github.com/sous-run/sous/internal/clients/google"    // google
	_ "github.com/sous-run/sous/internal/clients/jira"      // jira
	_ "github.com/sous-run/sous/internal/clients/mail"      // imap, smtp
	_ "github.com/sous-run/sous/internal/clients/microsoft" // microsoft
	_ "github.com/sous-run/sous/internal/clients/slack"     // slack
	_ "github.com/sous-run/sous/internal/clients/zoom"      // zoom
)
