package broker

import (
	"encoding/json"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"

	"github.com/sous-run/sous/engine/store"
)

// Topics of the pipeline.
const (
	TopicEvents      = "events"
	TopicRuns        = "runs"
	TopicDeadLetters = "dead_letters"
)

// EventMsg is the payload of a message on the events topic.
type EventMsg struct {
	ID         string    `json:"id"`
	Type       string    `json:"type"`
	Source     string    `json:"source"`
	ReceivedAt time.Time `json:"received_at"`
	// Recipes names the recipes the event was accepted for.
	Recipes []string `json:"recipes,omitempty"`
	// Payload is left out by lean brokers: the consumer reads it from the
	// store's events table (or gets it in memory from its own intake).
	Payload json.RawMessage `json:"payload,omitempty"`
}

// LocalEvent is what intake hands over in memory with an event message
// (see WithLocal): the message as sent (not decoded again), the payload,
// and the payload decoded when intake had it so. For an event claimed
// from the queue table with others (Claimed), it is the message decoded
// and the payload read with theirs: such an event may have been
// delivered before.
type LocalEvent struct {
	Msg     EventMsg
	Payload json.RawMessage
	Decoded map[string]any
	Claimed bool
}

// NewMessage is a Watermill message with v, as JSON, as its payload.
func NewMessage(v any) (*message.Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return message.NewMessage(uuid.NewString(), b), nil
}

// EventMessage is the message of ev on the events topic, payload
// included.
func EventMessage(ev *store.Event) (*message.Message, error) {
	return NewMessage(EventMsg{ID: ev.ID, Type: ev.Type, Source: ev.Source, ReceivedAt: ev.ReceivedAt, Recipes: ev.Recipes, Payload: ev.Payload})
}

// RunIDKey is the metadata key of a run message's run id, set by a
// broker that needs it when it publishes (see RunIDOf).
const RunIDKey = "sous_run_id"

// RunIDOf returns the run id of a run message: from its metadata, else
// from its payload; "" when it has none.
func RunIDOf(m *message.Message) string {
	if id := m.Metadata.Get(RunIDKey); id != "" {
		return id
	}
	var rm struct {
		RunID string `json:"run_id"`
	}
	if err := json.Unmarshal(m.Payload, &rm); err != nil {
		return ""
	}
	return rm.RunID
}
