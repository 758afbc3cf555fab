package nats

import (
	"fmt"
	"testing"
	"time"
)

// TestRememberSweeps checks that remembering runs sweeps, every
// sweepStoredEvery calls, those remembered before the object store's TTL,
// and only those.
func TestRememberSweeps(t *testing.T) {
	b := &Broker{cfg: Config{MaxAge: time.Hour}}
	now := time.Now()
	b.remember("run_old", now.Add(-2*time.Hour))
	b.remember("run_recent", now.Add(-30*time.Minute))
	for i := 2; i < sweepStoredEvery-1; i++ {
		b.remember(fmt.Sprintf("run_%d", i), now)
	}
	if _, ok := b.stored.Load("run_old"); !ok {
		t.Fatal("swept before sweepStoredEvery calls")
	}
	b.remember("run_last", now) // the sweepStoredEvery-th call
	if _, ok := b.stored.Load("run_old"); ok {
		t.Error("a run remembered for longer than MaxAge was not swept")
	}
	for _, id := range []string{"run_recent", "run_2", "run_last"} {
		if _, ok := b.stored.Load(id); !ok {
			t.Errorf("%s, remembered within MaxAge, was swept", id)
		}
	}
}
