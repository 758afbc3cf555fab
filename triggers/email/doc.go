// Package email is the email.received trigger: new mail in an IMAP
// mailbox, polled over an imap connection (UIDVALIDITY and UIDNEXT as the
// cursor, IDLE when the server offers it), parsed from MIME into an event
// with the bodies and the attachments.
package email
