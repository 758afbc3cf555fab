package zapier

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/internal/httpx"
)

// DeliveryHeader carries a delivery's stable id: the same on every
// attempt, so that a subscriber can tell a repeat (deliveries are made at
// least once). The body's "id" is the item's, the same for every
// subscriber.
const DeliveryHeader = "X-Sous-Delivery"

// EventHeader names the event of a delivery.
const EventHeader = "X-Sous-Event"

// Run sends the deliveries until ctx ends: each due delivery is claimed
// (under a lease), posted to its subscriber with up to Settings.Workers at
// once, and recorded. A 2xx is delivered; a 410 Gone deletes the
// subscription (its deliveries not yet sent are dropped); a 5xx, 408,
// 429 (after its Retry-After, when longer) or a failure to connect or to
// answer in time is tried again after the backoff, until MaxAttempts; any
// other answer is recorded failed. On the embedded store, the deliveries
// a crash left claimed are taken up at once.
func (h *Hub) Run(ctx context.Context) error {
	if h.cfg.Store.Dialect == store.SQLite {
		if err := h.cfg.Store.ReleaseZapierClaims(ctx, h.now()); err != nil {
			return err
		}
	}
	sem := make(chan struct{}, h.set.Workers)
	freed := make(chan struct{}, 1)
	// the attempts are recorded by one goroutine, many in a transaction
	results := make(chan *store.ZapierDelivery, h.set.Workers)
	recorded := make(chan struct{})
	go func() { defer close(recorded); h.record(results) }()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait()
		close(results)
		<-recorded
	}()
	tick := time.NewTicker(h.set.Poll)
	defer tick.Stop()
	h.prune(ctx)
	pruneTick := time.NewTicker(time.Hour)
	defer pruneTick.Stop()
	for {
		if free := cap(sem) - len(sem); free > 0 {
			ds, err := h.cfg.Store.ClaimZapierDeliveries(ctx, h.now(), h.set.Lease, free)
			if err != nil && ctx.Err() == nil {
				h.log.Warn("zapier: claim deliveries", "error", err)
			}
			for _, d := range ds {
				sem <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					if h.attempt(ctx, d) {
						results <- d
					}
					<-sem
					select {
					case freed <- struct{}{}:
					default:
					}
				}()
			}
			if err == nil && len(ds) == free {
				continue // there may be more due
			}
		}
		select {
		case <-ctx.Done():
			return nil
		case <-h.wake:
		case <-freed:
		case <-tick.C:
		case <-pruneTick.C:
			h.prune(ctx)
		}
	}
}

// prune deletes the deliveries finished longer than Settings.Retention ago.
func (h *Hub) prune(ctx context.Context) {
	n, err := h.cfg.Store.PruneZapier(ctx, h.now().Add(-h.set.Retention), 0)
	if err != nil && ctx.Err() == nil {
		h.log.Warn("zapier: prune deliveries", "error", err)
	}
	if n > 0 {
		h.log.Info("zapier: pruned finished deliveries", "deliveries", n)
	}
}

// attempt makes one attempt of a delivery and sets what is to record of
// it; false when there is nothing to record (shutting down: the claim
// lapses, and the delivery is taken up again).
func (h *Hub) attempt(ctx context.Context, d *store.ZapierDelivery) bool {
	code, retryAfter, err := h.post(ctx, d)
	if ctx.Err() != nil {
		return false
	}
	d.Attempts++
	d.LastCode = code
	d.LastError = ""
	if err != nil {
		d.LastError = err.Error()
	}
	outcome := "delivered"
	switch {
	case err == nil && code >= 200 && code < 300:
		d.Status = store.DeliveryDelivered
	case code == http.StatusGone:
		d.Status, outcome = store.DeliveryGone, "gone"
	case code == 0 || code >= 500 || code == http.StatusRequestTimeout || code == http.StatusTooManyRequests:
		if d.Attempts >= h.set.MaxAttempts {
			d.Status, outcome = store.DeliveryFailed, "failed"
			break
		}
		wait := h.backoff(d.Attempts)
		if retryAfter > wait {
			wait = retryAfter
		}
		d.NextAt, outcome = h.now().Add(wait), "retry"
	default:
		d.Status, outcome = store.DeliveryFailed, "failed"
	}
	h.outcomes.WithLabelValues(d.Event, outcome).Inc()
	if outcome == "retry" || outcome == "failed" {
		h.log.Warn("zapier: delivery not accepted", "delivery", d.ID, "hook", d.HookID, "event", d.Event,
			"attempt", d.Attempts, "status", code, "error", d.LastError, "outcome", outcome)
	}
	return true
}

// maxRecordBatch bounds the attempts recorded in one transaction.
const maxRecordBatch = 256

// record stores the attempts as they come, those that came meanwhile
// together, until results is closed; then deletes the subscriptions that
// answered 410. An attempt not recorded (the store failing) is made again
// once its claim lapses: deliveries are made at least once.
func (h *Hub) record(results <-chan *store.ZapierDelivery) {
	ctx := context.Background()
	for d := range results {
		batch := []*store.ZapierDelivery{d}
	more:
		for len(batch) < maxRecordBatch {
			select {
			case x, ok := <-results:
				if !ok {
					break more
				}
				batch = append(batch, x)
			default:
				break more
			}
		}
		if err := h.cfg.Store.FinishZapierAttempts(ctx, batch, h.now()); err != nil {
			h.log.Error("zapier: record deliveries", "deliveries", len(batch), "error", err)
			continue
		}
		for _, d := range batch {
			if d.Status != store.DeliveryGone {
				continue
			}
			if _, err := h.cfg.Store.DeleteZapierHook(ctx, d.HookID, store.DeliveryGone, h.now()); err != nil {
				h.log.Error("zapier: delete a subscription answered 410", "hook", d.HookID, "error", err)
				continue
			}
			h.log.Info("zapier: the subscriber answered 410 Gone: subscription deleted", "hook", d.HookID, "event", d.Event)
		}
	}
}

// backoff is the wait after the n-th failed attempt.
func (h *Hub) backoff(n int) time.Duration {
	w := h.set.Backoff
	for i := 1; i < n && w < h.set.MaxBackoff; i++ {
		w *= 2
	}
	return min(w, h.set.MaxBackoff)
}

// post sends the delivery once: its status (0 when none came), the
// Retry-After of a 429 or 503, and an error for anything but a 2xx.
func (h *Hub) post(ctx context.Context, d *store.ZapierDelivery) (int, time.Duration, error) {
	ctx, cancel := context.WithTimeout(ctx, h.set.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.Target, bytes.NewReader(d.Body))
	if err != nil {
		// the parser's error quotes the URL, whose path is the Zap's secret
		return -1, 0, errors.New("the target URL is not valid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", httpx.UserAgent)
	req.Header.Set(DeliveryHeader, d.ID)
	req.Header.Set(EventHeader, d.Event)
	resp, err := h.client.Do(req)
	if err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return 0, 0, fmt.Errorf("no answer within %s", h.set.Timeout)
		}
		// the message names the target by scheme and host: its path is the
		// Zap's secret, and the error is recorded and logged
		shown := *req.URL
		shown.Path, shown.RawPath = "/…", ""
		return 0, 0, errors.New(httpx.TransportError(http.MethodPost, &shown, err).Error())
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp.StatusCode, 0, nil
	}
	var after time.Duration
	if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
		after = min(time.Duration(s)*time.Second, h.set.MaxBackoff)
	}
	return resp.StatusCode, after, fmt.Errorf("the subscriber answered %s", resp.Status)
}
