package nats

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/ThreeDotsLabs/watermill"
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/sous-run/sous/engine/broker"
)

// natsDelivery is what a NATS process knows of the deaths of processes
// that held a stream message, counted as the embedded queue (sqlqueue)
// counts them (see broker.Crashes). JetStream counts the deliveries of a
// message (NumDelivered); a delivery that ended normally (a nak) writes, in the
// runs bucket under deliveryKey, up to which delivery they are accounted
// for, and a suspect (a delivery after one that did not end so, its
// process gone or its handler past HandleTimeout) writes, before it
// starts, that its start counts, which a normal end takes back. A first
// delivery that is acked, nearly every one, reads and writes nothing;
// a redelivered one that is acked deletes its record. A message held by
// a process that dies n times so carries broker.CrashesKey n, and the
// engine sets it aside as poison past its limit.
type natsDelivery struct {
	seq     uint64 // the message's stream sequence
	n       uint64 // this delivery's number
	known   bool   // the record was read (or there is none to read)
	stored  bool   // a record may be stored
	suspect bool
	marked  bool
	// the record: deliveries accounted for, and deaths counted
	settled, crashed uint64
	crashes          uint64 // the deaths known at this delivery (CrashesKey)
}

// deliveryKey is the runs bucket's key of the delivery record of the
// stream message seq (run ids never start with "delivery").
func deliveryKey(seq uint64) string { return "delivery." + strconv.FormatUint(seq, 10) }

// delivery reads the record of a redelivered message, and sets its crash
// count on m.
func (b *Broker) delivery(ctx context.Context, nm *nats.Msg, m *message.Message) natsDelivery {
	md, err := nm.Metadata()
	if err != nil {
		return natsDelivery{}
	}
	dv := natsDelivery{seq: md.Sequence.Stream, n: md.NumDelivered, known: true}
	if dv.n <= 1 {
		return dv
	}
	kctx, cancel := b.kvContext(ctx)
	defer cancel()
	e, err := b.runs.Get(kctx, deliveryKey(dv.seq))
	switch {
	case errors.Is(err, jetstream.ErrKeyNotFound):
	case err != nil:
		// not counted this time: the message goes on as it is
		b.cfg.Logger.Debug("read the deliveries of a message", watermill.LogFields{"error": err.Error()})
		dv.known = false
		return dv
	default:
		dv.stored = true
		var settled, crashed uint64
		if _, err := fmt.Sscanf(string(e.Value()), "%d:%d", &settled, &crashed); err == nil {
			dv.settled, dv.crashed = settled, crashed
		}
	}
	dv.suspect = dv.n-1 > dv.settled
	dv.crashes = dv.crashed
	if dv.suspect {
		dv.crashes++ // the death that left it unsettled, unless counted already
	}
	if dv.crashes > 0 {
		m.Metadata.Set(broker.CrashesKey, strconv.FormatUint(dv.crashes, 10))
	}
	return dv
}

// putDelivery writes the record of dv's message.
func (b *Broker) putDelivery(ctx context.Context, dv *natsDelivery, settled, crashed uint64) bool {
	kctx, cancel := b.kvContext(context.WithoutCancel(ctx))
	defer cancel()
	if _, err := b.runs.Put(kctx, deliveryKey(dv.seq), []byte(fmt.Sprintf("%d:%d", settled, crashed))); err != nil {
		b.cfg.Logger.Debug("write the deliveries of a message", watermill.LogFields{"error": err.Error()})
		return false
	}
	dv.stored = true
	return true
}

// markDelivery counts the start of a suspect before it starts.
func (b *Broker) markDelivery(ctx context.Context, dv *natsDelivery) {
	if dv.suspect && dv.known {
		dv.marked = b.putDelivery(ctx, dv, dv.n-1, dv.crashed+1)
	}
}

// settleDelivery records a normal end of the delivery (a nak, or not
// handed on at all): accounted for, its start no longer counted, the
// deaths known when it came (the one that made it a suspect among them)
// kept.
func (b *Broker) settleDelivery(ctx context.Context, dv *natsDelivery) {
	if dv.known {
		b.putDelivery(ctx, dv, dv.n, dv.crashes)
	}
}

// endDelivery deletes the record of a message acked.
func (b *Broker) endDelivery(ctx context.Context, dv *natsDelivery) {
	if !dv.known || (!dv.stored && dv.n <= 1) {
		return
	}
	kctx, cancel := b.kvContext(context.WithoutCancel(ctx))
	defer cancel()
	if err := b.runs.Purge(kctx, deliveryKey(dv.seq)); err != nil {
		b.cfg.Logger.Debug("delete the deliveries of a message: it goes after MaxAge", watermill.LogFields{"error": err.Error()})
	}
}
