package nats

import (
	"encoding/base64"
	"encoding/json"

	"github.com/ThreeDotsLabs/watermill/message"
)

// checkpointKey is the metadata key of the checkpoint a paused run's
// message carries (base64 of the runner.State JSON).
const checkpointKey = "sous_checkpoint"

// maxCarriedState bounds the checkpoint a message carries or the runs
// bucket holds: a larger one (big step outputs) is shared through the
// NATS broker's checkpoints object store (see ShareCheckpoint).
const maxCarriedState = 256 << 10

// carryState sets, or clears when it is too large, the checkpoint a run
// message carries.
func carryState(set func(key, value string), del func(key string), state []byte) {
	if len(state) == 0 || len(state) > maxCarriedState {
		del(checkpointKey)
		return
	}
	set(checkpointKey, base64.StdEncoding.EncodeToString(state))
}

// carriedState is the checkpoint msg carries, or nil.
func carriedState(msg *message.Message) []byte {
	v := msg.Metadata.Get(checkpointKey)
	if v == "" {
		return nil
	}
	raw, err := base64.StdEncoding.DecodeString(v)
	if err != nil {
		return nil
	}
	return raw
}

// laterState is, of two checkpoints of one run, the one further along
// (more steps done, then more attempts of the next one); a, the store's,
// on a tie. Runs only move forward, so that is the latest: the store's
// is older when another process paused the run since, the carried one
// when this process went on with the run after it took it up and then
// died.
func laterState(a, b []byte) []byte {
	if b == nil {
		return a
	}
	if a == nil {
		return b
	}
	var sa, sb struct {
		Steps    []json.RawMessage `json:"steps"`
		Attempts []json.RawMessage `json:"attempts"`
	}
	if json.Unmarshal(b, &sb) != nil {
		return a
	}
	if json.Unmarshal(a, &sa) != nil {
		return b
	}
	if len(sb.Steps) > len(sa.Steps) || len(sb.Steps) == len(sa.Steps) && len(sb.Attempts) > len(sa.Attempts) {
		return b
	}
	return a
}
