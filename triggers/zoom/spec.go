package zoom

import (
	"github.com/sous-run/sous/engine/connector"
	zc "github.com/sous-run/sous/internal/clients/zoom"
)

// FieldEvent is zoom.event's option: the Zoom event name.
const FieldEvent = "event"

// Events maps Zoom's event names to the triggers that have their own ID.
var Events = map[string]*connector.Spec{
	"meeting.started":            MeetingStarted,
	"meeting.ended":              MeetingEnded,
	"meeting.participant_joined": ParticipantJoined,
	"meeting.participant_left":   ParticipantLeft,
	"recording.completed":        RecordingCompleted,
}

var (
	leaf = connector.Leaf
	p    = connector.P
	obj  = connector.Obj
)

// meetingProps are the keys of a meeting's payload.object (Zoom's Rivet
// typings of meeting.started and meeting.ended).
func meetingProps() []connector.Prop {
	return []connector.Prop{
		p("id", leaf(connector.String, "The meeting id, always as a string (Zoom sends a string or a number)")),
		p("uuid", leaf(connector.String, "The meeting instance's UUID")),
		p("host_id", leaf(connector.String, "The host's user id")),
		p("topic", leaf(connector.String, "The meeting topic")),
		p("type", leaf(connector.Int, "The meeting type (1 instant, 2 scheduled, 3 recurring without a time, 8 recurring)")),
		p("start_time", leaf(connector.String, "When the meeting started (RFC 3339)")),
		p("end_time", leaf(connector.String, "When the meeting ended (RFC 3339; meeting.ended)")),
		p("timezone", leaf(connector.String, "The meeting's time zone")),
		p("duration", leaf(connector.Int, "The scheduled duration in minutes")),
	}
}

// envelope is the event around a payload.object of shape object.
func envelope(object *connector.Shape, extra ...connector.Prop) *connector.Shape {
	props := []connector.Prop{
		p("event", leaf(connector.String, "Zoom's event name (meeting.ended, ...)")),
		p("event_ts", leaf(connector.Int, "When the event happened, unix milliseconds")),
		p("payload", obj(
			p("account_id", leaf(connector.String, "The Zoom account id")),
			p("operator", leaf(connector.String, "Who caused the event, when Zoom says")),
			p("operator_id", leaf(connector.String, "The operator's user id, when Zoom says")),
			p("object", describeObject(object)),
		).Describe("Zoom's payload")),
	}
	return obj(append(props, extra...)...)
}

// describeObject gives payload.object a description when it has none.
func describeObject(s *connector.Shape) *connector.Shape {
	if s.Description == "" {
		s.Description = "What the event is about: the meeting (or its recording)"
	}
	return s
}

func participantShape(when string) *connector.Shape {
	return obj(
		p("user_id", leaf(connector.String, "The participant's id within the meeting")),
		p("user_name", leaf(connector.String, "The participant's display name")),
		p("id", leaf(connector.String, "The participant's Zoom user id (empty for guests)")),
		p("participant_uuid", leaf(connector.String, "The participant's UUID")),
		p("participant_user_id", leaf(connector.String, "The participant's user id")),
		p("email", leaf(connector.String, "The participant's email, when known")),
		p("registrant_id", leaf(connector.String, "The registrant id, for registered meetings")),
		p("customer_key", leaf(connector.String, "The customer key set by the app, when any")),
		p("phone_number", leaf(connector.String, "The phone number of a dial-in participant")),
		p(when, leaf(connector.String, "When the participant "+map[string]string{"join_time": "joined", "leave_time": "left"}[when]+" (RFC 3339)")),
		p("leave_reason", leaf(connector.String, "Why the participant left (meeting.participant_left)")),
	).Describe("The participant")
}

func recordingShape() *connector.Shape {
	file := obj(
		p("id", leaf(connector.String, "The file id")),
		p("meeting_id", leaf(connector.String, "The meeting instance's UUID")),
		p("recording_start", leaf(connector.String, "When the file's recording started")),
		p("recording_end", leaf(connector.String, "When it ended")),
		p("file_type", leaf(connector.String, "MP4, M4A, CHAT, TRANSCRIPT, ...")),
		p("file_size", leaf(connector.Int, "The file's size in bytes")),
		p("file_extension", leaf(connector.String, "MP4, M4A, TXT, VTT, ...")),
		p("file_name", leaf(connector.String, "The file's name, when given")),
		p("play_url", leaf(connector.String, "Where to play it")),
		p("download_url", leaf(connector.String, "Where to download it, with the event's download_token as a bearer token")),
		p("file_path", leaf(connector.String, "The file's path (on-premise)")),
		p("status", leaf(connector.String, "The file's status (completed)")),
		p("recording_type", leaf(connector.String, "shared_screen_with_speaker_view, audio_only, ...")),
	)
	props := append(meetingProps(),
		p("account_id", leaf(connector.String, "The Zoom account id")),
		p("password", leaf(connector.String, "The meeting passcode")),
		p("host_email", leaf(connector.String, "The host's email")),
		p("share_url", leaf(connector.String, "The recording's share link")),
		p("total_size", leaf(connector.Int, "All files' size in bytes")),
		p("recording_count", leaf(connector.Int, "How many files")),
		p("on_prem", leaf(connector.Bool, "Whether recorded on premise")),
		p("recording_play_passcode", leaf(connector.String, "The passcode to play the recording")),
		p("auto_delete", leaf(connector.Bool, "Whether the recording is deleted automatically")),
		p("auto_delete_date", leaf(connector.String, "When it will be")),
		p("recording_files", connector.ListOf(file, "The recording's files")),
		p("participant_audio_files", connector.ListOf(file, "Each participant's audio file, when recorded separately")),
	)
	return obj(props...)
}

func meetingTrigger(id, summary, desc string, shape *connector.Shape) *connector.Spec {
	return &connector.Spec{
		ID: id, Kind: connector.KindTrigger, Summary: summary,
		Description: desc + " Received at POST /hooks/zoom/{connection}, verified with the connection's webhook_secret " +
			"(x-zm-signature over the raw body, the timestamp within signature_window); Zoom's redeliveries of one event start one run.",
		Connection: "zoom", ConnectionRequired: true,
		Shape:   shape,
		Trigger: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection},
	}
}

// The Zoom triggers.
var (
	MeetingStarted = meetingTrigger("zoom.meeting_started", "A Zoom meeting started (meeting.started)",
		"Zoom's meeting.started event.", envelope(obj(meetingProps()...)))
	MeetingEnded = meetingTrigger("zoom.meeting_ended", "A Zoom meeting ended (meeting.ended)",
		"Zoom's meeting.ended event.", envelope(obj(meetingProps()...)))
	ParticipantJoined = meetingTrigger("zoom.participant_joined", "Someone joined a Zoom meeting (meeting.participant_joined)",
		"Zoom's meeting.participant_joined event; payload.object.participant is who joined.",
		envelope(obj(append(meetingProps(), p("participant", participantShape("join_time")))...)))
	ParticipantLeft = meetingTrigger("zoom.participant_left", "Someone left a Zoom meeting (meeting.participant_left)",
		"Zoom's meeting.participant_left event; payload.object.participant is who left.",
		envelope(obj(append(meetingProps(), p("participant", participantShape("leave_time")))...)))
	RecordingCompleted = meetingTrigger("zoom.recording_completed", "A Zoom cloud recording is ready (recording.completed)",
		"Zoom's recording.completed event: payload.object.recording_files lists the files with their download_url, "+
			"and download_token (valid 24 h) is the bearer token to download them with.",
		envelope(recordingShape(), p("download_token", leaf(connector.String, "The bearer token for the files' download_url (24 h)"))))
	// Event is any Zoom event, by name.
	Event = &connector.Spec{
		ID: "zoom.event", Kind: connector.KindTrigger, Summary: "Any Zoom webhook event, by its name",
		Description: "Starts a run for each Zoom event named by `event` (webhook.deleted, meeting.created, ...), " +
			"received and verified as the other Zoom triggers. The payload is Zoom's, untyped beyond its envelope; payload.object.id, " +
			"when present, is a string.",
		Connection: "zoom", ConnectionRequired: true,
		Fields: []connector.Field{
			{Name: FieldEvent, Type: connector.String, Required: true, Pattern: `^[a-z_]+(\.[a-z_]+)+$`,
				PatternHelp: "must be a Zoom event name such as meeting.created",
				Description: "The Zoom event name", Example: "meeting.created"},
		},
		Shape: obj(
			p("event", leaf(connector.String, "Zoom's event name")),
			p("event_ts", leaf(connector.Int, "When the event happened, unix milliseconds")),
			p("payload", connector.OpenObj(nil).Describe("Zoom's payload, as sent (payload.object.id as a string)")),
			p("download_token", leaf(connector.String, "A download token, for recording events")),
		),
		Trigger: &connector.Trigger{Kind: connector.Receive, Key: connector.KeyConnection,
			Match: func(with connector.Values, ev *connector.Event) bool {
				name, _ := ev.Payload["event"].(string)
				return name == with.String(FieldEvent)
			}},
	}
)

func init() {
	connector.Register(MeetingStarted, MeetingEnded, ParticipantJoined, ParticipantLeft, RecordingCompleted, Event)
	connector.RegisterReceiver(&connector.ReceiverSpec{Service: "zoom", Connection: zc.Connection.Type, Receiver: receiver{}})
}
