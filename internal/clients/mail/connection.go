// Package mail is the imap and smtp connection types and, as the email
// trigger and action arrive, what they share.
package mail

import (
	"fmt"

	"github.com/sous-run/sous/engine/connector"
)

// Field names of the imap and smtp connections.
const (
	FieldHost     = "host"
	FieldPort     = "port"
	FieldTLS      = "tls"
	FieldUsername = "username"
	FieldPassword = "password"
	FieldOAuth    = "oauth_connection"
)

// TLS modes.
const (
	TLSImplicit = "implicit"
	TLSStartTLS = "starttls"
	TLSNone     = "none"
)

// tlsAliases are the other words the tls field accepts, by the mode they
// mean: plain, false and off for none; ssl, tls and true for implicit.
var tlsAliases = map[string]string{
	"plain": TLSNone, "false": TLSNone, "off": TLSNone,
	"ssl": TLSImplicit, "tls": TLSImplicit, "true": TLSImplicit,
}

// TLSMode is the mode a tls value names: implicit, starttls or none, an
// alias (see the field's description) read as its mode; another value is
// returned as it is.
func TLSMode(v string) string {
	if m, ok := tlsAliases[v]; ok {
		return m
	}
	return v
}

func fields(port int64, tls string) []connector.Field {
	return []connector.Field{
		{Name: FieldHost, Type: connector.String, Required: true, Example: "mail.example.com", Description: "The server's host name"},
		{Name: FieldPort, Type: connector.Int, Default: port, Check: checkPort, Description: "The server's port"},
		{Name: FieldTLS, Type: connector.String, Default: tls,
			Enum: []string{TLSImplicit, TLSStartTLS, TLSNone, "ssl", "tls", "true", "plain", "false", "off"},
			Description: "implicit (TLS from the start; also ssl, tls, true), starttls (upgrade), " +
				"or none (no TLS, for local servers only; also plain, false, off)"},
		{Name: FieldUsername, Type: connector.String, Example: "ops@example.com", Description: "The login"},
		{Name: FieldPassword, Type: connector.String, Secret: true, Example: "${MAIL_PASSWORD}", Description: "The password, or an app password"},
		{Name: FieldOAuth, Type: connector.String, Example: "google",
			Description: "A google or microsoft connection to log in with (XOAUTH2), instead of password"},
		connector.RateLimitField("5/s"),
	}
}

func checkPort(v any) error {
	if p := v.(int64); p < 1 || p > 65535 {
		return fmt.Errorf("%d is not a port (1-65535)", p)
	}
	return nil
}

// requires: a login needs its user name.
var requires = map[string][]string{FieldPassword: {FieldUsername}, FieldOAuth: {FieldUsername}}

// IMAP is the imap connection type: a mailbox to read new mail from.
var IMAP = &connector.ConnectionSpec{Type: "imap", Summary: "An IMAP mailbox", Fields: fields(993, TLSImplicit), Requires: requires,
	TokenFrom: FieldOAuth}

// SMTP is the smtp connection type: a server to send mail through.
var SMTP = &connector.ConnectionSpec{Type: "smtp", Summary: "An SMTP server to send mail through", Fields: fields(587, TLSStartTLS), Requires: requires,
	TokenFrom: FieldOAuth}

func init() {
	connector.RegisterConnection(IMAP)
	connector.RegisterConnection(SMTP)
}
