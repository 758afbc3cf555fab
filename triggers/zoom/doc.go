// Package zoom is Zoom's webhook triggers: zoom.meeting_started,
// zoom.meeting_ended, zoom.participant_joined, zoom.participant_left,
// zoom.recording_completed and zoom.event (any other event by name).
// One receiver, served at POST /hooks/zoom/{connection}, verifies each
// request with the connection's webhook_secret, answers Zoom's URL
// validation, and gives each delivery's event to the recipes on that
// connection. The signature, the parsing and the payload's dedup key live
// in internal/clients/zoom.
package zoom
