package nats

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sous-run/sous/engine/store"
)

// The processes on one NATS stream keep stores of their own, so what one
// of them knows about a dedup key or a run the others learn from two
// JetStream key-value buckets they share:
//
//   - <prefix>sous_dedup holds every dedup key accepted (hashed), for
//     Config.DedupTTL (retention.dedup): a key accepted by one
//     process is a duplicate to every other one for as long as its own
//     store would say so, not only within the stream's duplicate window.
//   - <prefix>sous_runs holds, for Config.MaxAge (as long as the
//     stream keeps a message that could come again), each run's latest
//     checkpoint and then its end: a run message that comes again to
//     another process (its ack was lost, its process died between the
//     run's record and the ack, its event was published again after the
//     duplicate window) does not run a finished run again, and a run
//     cut short in one process resumes in another after its last
//     finished step.
//   - <prefix>sous_runs also holds, under delivery.<stream sequence>,
//     how the deliveries of a message that came again ended (see
//     natsDelivery): the deaths of the processes that held it.
//   - the object store <prefix>sous_checkpoints holds the checkpoints
//     larger than a bucket's value may be (maxCarriedState): the runs
//     bucket then says where it is.

// Bucket names, after the prefix.
const (
	natsDedupBucket = "sous_dedup"
	natsRunsBucket  = "sous_runs"
	// an object store
	natsCheckpointsBucket = "sous_checkpoints"
)

// Streams names the JetStream streams a broker with prefix keeps:
// its stream, and the streams behind its two key-value buckets and its
// object store.
func Streams(prefix string) []string {
	return []string{prefix + "sous", "KV_" + prefix + natsDedupBucket, "KV_" + prefix + natsRunsBucket, "OBJ_" + prefix + natsCheckpointsBucket}
}

// DropStreams deletes the streams a broker with prefix keeps
// (Streams), those that exist: for tests and benchmarks that share a
// server.
func DropStreams(js nats.JetStreamContext, prefix string) error {
	var errs []error
	for _, name := range Streams(prefix) {
		if err := js.DeleteStream(name); err != nil && !errors.Is(err, nats.ErrStreamNotFound) {
			errs = append(errs, fmt.Errorf("delete stream %s: %w", name, err))
		}
	}
	return errors.Join(errs...)
}

// The first byte of a value in the runs bucket.
const (
	runValueDone       = 'd' // the run finished; the instance id of the process that ran it follows
	runValueCheckpoint = 'c' // the run's checkpoint (runner.State JSON) follows
	runValueObject     = 'o' // the run's checkpoint is in the checkpoints object store, named by the run id
)

// errTakenElsewhere: another process accepted the dedup key first.
var errTakenElsewhere = errors.New("dedup key accepted by another process")

// keyValue opens the bucket named name (after the prefix) with ttl as
// the age of its entries, creating it, or setting ttl on it when an
// earlier configuration gave another.
func (b *Broker) keyValue(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration) (jetstream.KeyValue, error) {
	bucket := b.cfg.Prefix + name
	kv, err := js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: bucket, TTL: ttl, Storage: jetstream.FileStorage,
		Description: "sous: shared by the processes on stream " + b.stream})
	if err != nil {
		return nil, fmt.Errorf("nats broker: key-value bucket %s: %w", bucket, err)
	}
	return kv, nil
}

// objectStore opens the object store named name (after the prefix),
// whose objects go after ttl, as keyValue does a bucket.
func (b *Broker) objectStore(ctx context.Context, js jetstream.JetStream, name string, ttl time.Duration) (jetstream.ObjectStore, error) {
	bucket := b.cfg.Prefix + name
	obs, err := js.CreateOrUpdateObjectStore(ctx, jetstream.ObjectStoreConfig{Bucket: bucket, TTL: ttl, Storage: jetstream.FileStorage,
		Description: "sous: shared by the processes on stream " + b.stream})
	if err != nil {
		return nil, fmt.Errorf("nats broker: object store %s: %w", bucket, err)
	}
	return obs, nil
}

// kvContext bounds one key-value operation by KVTimeout: a bucket out
// of reach (its stream gone, the server slow) is an error soon, not a
// wait as long as the caller's context, which for a run is its timeout.
func (b *Broker) kvContext(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, b.cfg.KVTimeout)
}

// dedupKVKey is the key of a dedup key in the dedup bucket: its SHA-256,
// which fits the bucket's key alphabet whatever the dedup key holds.
func dedupKVKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// claimShared claims ev's dedup key for every process: the revision of
// the claim, or errTakenElsewhere when a process (this one in an earlier
// life, or another) accepted the key first.
func (b *Broker) claimShared(ctx context.Context, ev *store.Event) (uint64, error) {
	ctx, cancel := b.kvContext(ctx)
	defer cancel()
	rev, err := b.dedup.Create(ctx, dedupKVKey(ev.DedupKey), []byte(ev.ID))
	if errors.Is(err, jetstream.ErrKeyExists) {
		return 0, errTakenElsewhere
	}
	if err != nil {
		return 0, fmt.Errorf("claim the dedup key: %w", err)
	}
	return rev, nil
}

// releaseShared undoes claimShared (revision rev), so that the sender's
// retry of an event that was not published is accepted.
func (b *Broker) releaseShared(ctx context.Context, ev *store.Event, rev uint64) error {
	ctx, cancel := b.kvContext(ctx)
	defer cancel()
	return b.dedup.Delete(ctx, dedupKVKey(ev.DedupKey), jetstream.LastRevision(rev))
}

// SharedState implements broker.Sharer: what this process's store says of
// a run that did not finish here, its checkpoint, completed with the
// checkpoint msg carries (a retry paused by another process carries where
// it stood) and with what the runs bucket says: finished in another
// process, or the latest checkpoint of the three.
func (b *Broker) SharedState(ctx context.Context, msg *message.Message, runID string, checkpoint []byte) (bool, []byte, error) {
	checkpoint = laterState(checkpoint, carriedState(msg))
	done, shared, err := b.SharedRun(ctx, runID)
	if err != nil {
		return false, nil, err
	}
	if done {
		return true, nil, nil // finished in another process
	}
	return false, laterState(checkpoint, shared), nil
}

// SharedRun implements broker.Sharer: whether run runID finished in any process,
// else its latest checkpoint any process shared (nil when none).
func (b *Broker) SharedRun(ctx context.Context, runID string) (done bool, state []byte, err error) {
	ctx, cancel := b.kvContext(ctx)
	defer cancel()
	e, err := b.runs.Get(ctx, runID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return false, nil, nil
	}
	if err != nil {
		return false, nil, fmt.Errorf("read the shared state of run %s: %w", runID, err)
	}
	v := e.Value()
	switch {
	case len(v) > 0 && v[0] == runValueDone:
		return true, nil, nil
	case len(v) > 1 && v[0] == runValueCheckpoint:
		return false, v[1:], nil
	case len(v) > 0 && v[0] == runValueObject:
		state, err := b.checkpoints.GetBytes(ctx, runID)
		if errors.Is(err, jetstream.ErrObjectNotFound) {
			return false, nil, nil // gone with its TTL: the run starts over
		}
		if err != nil {
			return false, nil, fmt.Errorf("read the shared checkpoint of run %s: %w", runID, err)
		}
		// the run is taken up here, from another process's checkpoint:
		// its end here deletes the object
		b.remember(runID, time.Now())
		return false, state, nil
	}
	return false, nil, nil
}

// ShareCheckpoint implements broker.Sharer. A checkpoint larger than a message
// carries (maxCarriedState) goes to the checkpoints object store, and the
// runs bucket says so.
func (b *Broker) ShareCheckpoint(ctx context.Context, runID string, state []byte) error {
	if runID == "" || len(state) == 0 {
		return nil
	}
	ctx, cancel := b.kvContext(ctx)
	defer cancel()
	v := []byte{runValueObject}
	if len(state) <= maxCarriedState {
		v = make([]byte, 1+len(state))
		v[0] = runValueCheckpoint
		copy(v[1:], state)
	} else {
		if _, err := b.checkpoints.PutBytes(ctx, runID, state); err != nil {
			return fmt.Errorf("share the checkpoint of run %s: %w", runID, err)
		}
		b.remember(runID, time.Now())
	}
	if _, err := b.runs.Put(ctx, runID, v); err != nil {
		return fmt.Errorf("share the checkpoint of run %s: %w", runID, err)
	}
	return nil
}

// sweepStoredEvery is how many calls to remember make a sweep of the
// runs remembered for longer than the object store keeps a checkpoint.
const sweepStoredEvery = 1024

// remember notes that run runID has a checkpoint in the object store,
// put there or read by this process at now, so that the run's end here
// deletes it. A run that ends in another process instead (taken up
// after this one stopped holding it) would stay in stored for the life
// of the process: every sweepStoredEvery calls, the runs remembered for
// longer than MaxAge, the object store's TTL, go (their objects are gone
// too).
func (b *Broker) remember(runID string, now time.Time) {
	b.stored.Store(runID, now)
	if b.remembered.Add(1)%sweepStoredEvery == 0 {
		b.sweepStored(now)
	}
}

// sweepStored forgets the runs remembered before now less MaxAge.
func (b *Broker) sweepStored(now time.Time) {
	horizon := now.Add(-b.cfg.MaxAge)
	b.stored.Range(func(k, v any) bool {
		if at, _ := v.(time.Time); at.Before(horizon) { // remember stores a time.Time
			b.stored.CompareAndDelete(k, v)
		}
		return true
	})
}

// ShareDone implements broker.Sharer: the mark names this process (its store's
// instance id), which alone records the run (see reconcile).
// A checkpoint in the object store that this process put there, or read
// to take the run up, goes (one it never saw goes after MaxAge).
func (b *Broker) ShareDone(ctx context.Context, runID string) error {
	ctx, cancel := b.kvContext(ctx)
	defer cancel()
	if _, err := b.runs.Put(ctx, runID, append([]byte{runValueDone}, b.instance...)); err != nil {
		return fmt.Errorf("share the end of run %s: %w", runID, err)
	}
	if _, ok := b.stored.LoadAndDelete(runID); ok {
		if err := b.checkpoints.Delete(ctx, runID); err != nil && !errors.Is(err, jetstream.ErrObjectNotFound) {
			b.cfg.Logger.Debug("delete the shared checkpoint of a finished run: it goes after MaxAge", watermill.LogFields{"run": runID, "error": err.Error()})
		}
	}
	return nil
}

// doneBy is the instance id of the process that marked run runID
// finished, or "" when none did.
func (b *Broker) doneBy(ctx context.Context, runID string) (string, error) {
	ctx, cancel := b.kvContext(ctx)
	defer cancel()
	e, err := b.runs.Get(ctx, runID)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	if v := e.Value(); len(v) > 0 && v[0] == runValueDone {
		return string(v[1:]), nil
	}
	return "", nil
}

// reconcile settles, when the process starts, the runs it journalled as
// finished (store.AddFinishing) but did not record: it was killed between
// the two. A run it marked finished for the others is recorded now (no
// other process will: they skip a finished run). A run it did not mark,
// or that another process marked (it took the run up and recorded it
// there), is not recorded here: its entry goes. An entry whose mark
// cannot be read stays for the next start.
func (b *Broker) reconcile(ctx context.Context) error {
	runs, err := b.Store.Finishing(ctx)
	if err != nil {
		return fmt.Errorf("nats broker: %w", err)
	}
	for _, r := range runs {
		by, err := b.doneBy(ctx, r.ID)
		if err != nil {
			b.cfg.Logger.Error("read whether a journalled run was marked finished: it is looked at again at the next start", err,
				watermill.LogFields{"run": r.ID})
			continue
		}
		mine := by == b.instance
		err = b.Writer.Do(ctx, func(ctx context.Context, tx store.Execer) error {
			if mine {
				r.Replace = true
				if err := b.Store.SaveRunTx(ctx, tx, r); err != nil {
					return err
				}
			}
			return b.Store.DeleteFinishing(ctx, tx, r.ID)
		})
		if err != nil {
			return fmt.Errorf("nats broker: settle journalled run %s: %w", r.ID, err)
		}
		if mine {
			b.cfg.Logger.Info("recorded a run finished before the process stopped", watermill.LogFields{"run": r.ID})
		}
	}
	return nil
}
