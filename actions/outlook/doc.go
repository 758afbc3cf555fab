// Package outlook holds the Microsoft 365 (Outlook) actions over
// Microsoft Graph: outlook.send_mail (POST me/sendMail) and
// outlook.create_event (POST me/events, idempotent through Graph's
// transactionId). They call Graph with plain JSON through the
// connection's client (internal/clients/microsoft).
package outlook
