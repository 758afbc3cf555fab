package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"

	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/google/uuid"
)

// Topics of the pipeline.
const (
	TopicEvents      = "events"
	TopicRuns        = "runs"
	TopicDeadLetters = "dead_letters"
)

// EventMsg is the payload of a message on the events topic.
type EventMsg struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	Source     string          `json:"source"`
	ReceivedAt time.Time       `json:"received_at"`
	Payload    json.RawMessage `json:"payload"`
}

// RunMsg is the payload of a message on the runs topic.
type RunMsg struct {
	RunID  string   `json:"run_id"`
	Recipe string   `json:"recipe"`
	Event  EventMsg `json:"event"`
	// Replay runs again a run that already finished.
	Replay bool `json:"replay,omitempty"`
	// FromStep, with Replay, keeps the outputs of the steps before it.
	FromStep string `json:"from_step,omitempty"`
	// Prior holds the recorded outputs of the steps before FromStep.
	Prior map[string]map[string]any `json:"prior,omitempty"`
}

// NewEventID returns a time-ordered unique event id.
func NewEventID() string { return "ev_" + uuid.Must(uuid.NewV7()).String() }

// RunID is the id of the run of a recipe for an event: the same event and
// recipe always give the same id, which is what makes a redelivered
// message a no-op rather than a second run.
func RunID(eventID, recipe string) string {
	sum := sha256.Sum256([]byte(eventID + "\x00" + recipe))
	return "run_" + hex.EncodeToString(sum[:12])
}

// messageT is the Watermill message type.
type messageT = message.Message

func newMessage(v any) (*message.Message, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	return message.NewMessage(uuid.NewString(), b), nil
}
