package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"
	"github.com/sous-run/sous/engine/broker"
)

// localRun is what the matcher hands over in memory with a run message:
// the decoded payload, shared by the runs of the event (read only), and
// whether the run is certainly new (its event was delivered for the first
// time), which spares the runner the look-up of an earlier attempt.
type localRun struct {
	msg     RunMsg // as in the message's payload
	payload map[string]any
	fresh   atomic.Bool
}

// RunMsg is the payload of a message on the runs topic.
type RunMsg struct {
	RunID  string          `json:"run_id"`
	Recipe string          `json:"recipe"`
	Event  broker.EventMsg `json:"event"`
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
// message a no-op rather than a second run. It starts with the event id
// (time-ordered), so that new runs are appended to the store's index of
// run ids rather than scattered over it, then a hash of the recipe name.
func RunID(eventID, recipe string) string {
	return "run_" + strings.TrimPrefix(eventID, "ev_") + "_" + recipeHash(recipe)
}

// recipeHashes caches recipeHash: the matcher needs one for every run.
var recipeHashes struct {
	sync.Mutex
	m map[string]string
}

// maxRecipeHashes bounds recipeHashes (names come and go with reloads).
const maxRecipeHashes = 1 << 16

// recipeHash is the start of the SHA-256 of a recipe name, in hex.
func recipeHash(recipe string) string {
	recipeHashes.Lock()
	defer recipeHashes.Unlock()
	if h, ok := recipeHashes.m[recipe]; ok {
		return h
	}
	sum := sha256.Sum256([]byte(recipe))
	h := hex.EncodeToString(sum[:5])
	if recipeHashes.m == nil || len(recipeHashes.m) >= maxRecipeHashes {
		recipeHashes.m = map[string]string{}
	}
	recipeHashes.m[recipe] = h
	return h
}
