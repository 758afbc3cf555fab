// Package email is the email.send action: a message built with go-mail
// (no hand-written MIME) and sent over an smtp connection.
package email
