// Package gcal is Google Calendar's actions on a google connection:
// gcal.create_event (idempotent: the event id is derived from the step's
// idempotency key), gcal.update_event (patch semantics), gcal.delete_event
// and gcal.find_events. They call Calendar v3 through
// google.golang.org/api/calendar/v3 with the connection's client.
package gcal
