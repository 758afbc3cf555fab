package zapier

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/pipeline"
	"github.com/sous-run/sous/engine/store"
	"github.com/sous-run/sous/recipes"
)

// Channel is the outbox channel the Hub serves (connector.OutboxMessage).
const Channel = "zapier"

// Settings tune the deliveries.
type Settings struct {
	// Timeout bounds one POST to a subscriber (10 s).
	Timeout time.Duration
	// Backoff is the wait before the first retry of a delivery that
	// failed with a 5xx, a 408 or 429, or a timeout; each retry waits
	// twice the one before, up to MaxBackoff (5 s, up to 1 h).
	Backoff, MaxBackoff time.Duration
	// MaxAttempts bounds the attempts of a delivery, after which it is
	// recorded failed (15: 5 s doubling to 1 h, about 10 hours in all).
	MaxAttempts int
	// Lease is how long a claimed delivery is another process's to send
	// (PostgreSQL), should this one die before it is done (Timeout + 20 s).
	Lease time.Duration
	// Workers bounds the deliveries sent at once (64).
	Workers int
	// Poll is how often the worker looks for retries due (1 s); new
	// deliveries wake it at once.
	Poll time.Duration
	// Retention is how long finished deliveries are kept (30 days); the
	// worker prunes them every hour.
	Retention time.Duration
}

// WithDefaults fills what is not set.
func (s Settings) WithDefaults() Settings {
	if s.Timeout <= 0 {
		s.Timeout = 10 * time.Second
	}
	if s.Backoff <= 0 {
		s.Backoff = 5 * time.Second
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = time.Hour
	}
	if s.MaxBackoff < s.Backoff {
		s.MaxBackoff = s.Backoff
	}
	if s.MaxAttempts <= 0 {
		s.MaxAttempts = 15
	}
	if s.Lease <= 0 {
		s.Lease = s.Timeout + 20*time.Second
	}
	if s.Workers <= 0 {
		s.Workers = 64
	}
	if s.Poll <= 0 {
		s.Poll = time.Second
	}
	if s.Retention <= 0 {
		s.Retention = 30 * 24 * time.Hour
	}
	return s
}

// SettingsFromEnv reads the settings from the environment:
// SOUS_ZAPIER_TIMEOUT, SOUS_ZAPIER_BACKOFF, SOUS_ZAPIER_MAX_BACKOFF and
// SOUS_ZAPIER_POLL (Go durations), SOUS_ZAPIER_MAX_ATTEMPTS (a number),
// SOUS_ZAPIER_RETENTION (a duration, or days such as 30d).
// Unset ones keep their defaults.
func SettingsFromEnv(getenv func(string) string) (Settings, error) {
	if getenv == nil {
		getenv = os.Getenv
	}
	var s Settings
	for _, d := range []struct {
		name string
		to   *time.Duration
	}{{"SOUS_ZAPIER_TIMEOUT", &s.Timeout}, {"SOUS_ZAPIER_BACKOFF", &s.Backoff},
		{"SOUS_ZAPIER_MAX_BACKOFF", &s.MaxBackoff}, {"SOUS_ZAPIER_POLL", &s.Poll},
		{"SOUS_ZAPIER_RETENTION", &s.Retention}} {
		if v := getenv(d.name); v != "" {
			x, err := recipes.ParsePeriod(v)
			if err != nil || x <= 0 {
				return s, fmt.Errorf("%s: want a positive duration such as 5s", d.name)
			}
			*d.to = x
		}
	}
	if v := getenv("SOUS_ZAPIER_MAX_ATTEMPTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			return s, errors.New("SOUS_ZAPIER_MAX_ATTEMPTS: want a number of at least 1")
		}
		s.MaxAttempts = n
	}
	return s.WithDefaults(), nil
}

// Config assembles a Hub.
type Config struct {
	Store *store.Store
	// Engine starts the zapier.action recipes and lists the loaded
	// recipes (events, actions); nil: none.
	Engine   *pipeline.Engine
	Logger   *slog.Logger
	Settings Settings
	// Registerer takes the Hub's metrics (none when nil).
	Registerer prometheus.Registerer
	// Client sends the deliveries (one of its own when nil).
	Client *http.Client
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Hub is the engine's Zapier side. It implements connector.Outbox.
type Hub struct {
	cfg      Config
	set      Settings
	log      *slog.Logger
	client   *http.Client
	now      func() time.Time
	wake     chan struct{}
	outcomes *prometheus.CounterVec
}

var _ connector.Outbox = (*Hub)(nil)

// New builds a Hub and creates its tables.
func New(ctx context.Context, cfg Config) (*Hub, error) {
	if err := cfg.Store.MigrateZapier(ctx); err != nil {
		return nil, err
	}
	h := &Hub{cfg: cfg, set: cfg.Settings.WithDefaults(), log: cfg.Logger, client: cfg.Client, now: cfg.Now,
		wake: make(chan struct{}, 1)}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	if h.now == nil {
		h.now = time.Now
	}
	if h.client == nil {
		h.client = &http.Client{
			// a redirect is an answer: a subscriber's URL is where it receives
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
			Transport:     &http.Transport{MaxIdleConnsPerHost: 32, IdleConnTimeout: 90 * time.Second},
		}
	}
	h.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "sous_zapier_deliveries_total",
		Help: "Attempts of Zapier REST-hook deliveries by event and outcome (delivered, retry, failed, gone)."},
		[]string{"event", "outcome"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(h.outcomes); err != nil {
			return nil, fmt.Errorf("zapier metrics: %w", err)
		}
	}
	return h, nil
}

// Settings are the Hub's settings, defaults applied.
func (h *Hub) Settings() Settings { return h.set }

// ItemID is the stable id of the item a step of a run publishes.
func ItemID(runID, step string) string { return "zi_" + digest(runID+"\x00"+step) }

// DeliveryID is the stable id of an item's delivery to a subscription.
func DeliveryID(itemID, hookID string) string { return "zd_" + digest(itemID+"\x00"+hookID) }

func digest(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:12])
}

// NewHookID returns a new subscription id.
func NewHookID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "zh_" + hex.EncodeToString(b[:])
}

// Body is the JSON object an item's subscribers receive: data's fields,
// with "id" set to the item's stable id (data's own "id", if any, as
// "data_id").
func Body(itemID string, data map[string]any) map[string]any {
	out := make(map[string]any, len(data)+1)
	for k, v := range data {
		out[k] = v
	}
	if v, ok := data["id"]; ok {
		out["data_id"] = v
	}
	out["id"] = itemID
	return out
}

// Publish stores an item for every subscriber of its event, durably, and
// wakes the worker (connector.Outbox). The same run and step publish the
// same item: stored and sent once per subscriber.
func (h *Hub) Publish(ctx context.Context, req *connector.Request, m *connector.OutboxMessage) (*connector.OutboxReceipt, error) {
	if m.Channel != Channel {
		return nil, fmt.Errorf("outbox: channel %q is not served here", m.Channel)
	}
	if m.Topic == "" {
		return nil, errors.New("outbox: no event name")
	}
	itemID := ItemID(req.RunID, req.Step)
	body := Body(itemID, m.Body)
	raw, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("outbox: the item is not JSON: %w", err)
	}
	ds, err := h.cfg.Store.EnqueueZapier(ctx, &store.ZapierItem{ID: itemID, Event: m.Topic, RunID: req.RunID, Body: raw,
		CreatedAt: h.now().UTC()}, req.Step, func(hk *store.ZapierHook) bool { return Matches(hk.Filter, body) },
		func(hookID string) string { return DeliveryID(itemID, hookID) })
	if err != nil {
		return nil, err
	}
	h.Wake()
	r := &connector.OutboxReceipt{ID: itemID, Deliveries: []connector.OutboxDelivery{}}
	for _, d := range ds {
		r.Deliveries = append(r.Deliveries, connector.OutboxDelivery{ID: d.ID, Subscriber: d.HookID, Status: d.Status})
	}
	return r, nil
}

// Matches reports whether an item passes a subscription's filter: each
// field the filter names equals the item's field of that name, as text (a
// string as it is, anything else as its JSON text: the number 7 and the
// string "7" are alike, and so are true and "true").
func Matches(filter map[string]string, body map[string]any) bool {
	for k, want := range filter {
		v, ok := body[k]
		if !ok {
			return false
		}
		var got string
		switch x := v.(type) {
		case string:
			got = x
		default:
			b, _ := json.Marshal(x)
			got = string(b)
		}
		if got != want {
			return false
		}
	}
	return true
}

// FilterText is a filter value as Matches compares it:
// a string as it is, a number or boolean as its JSON text (an integral
// number without a fraction or exponent: 7, not 7.0 or 7e0). set is false
// for null; an object or array is an error.
func FilterText(v json.RawMessage) (text string, set bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(v))
	dec.UseNumber()
	var x any
	if err := dec.Decode(&x); err != nil {
		return "", false, errors.New("want a string, number or boolean")
	}
	switch x := x.(type) {
	case nil:
		return "", false, nil
	case string:
		return x, true, nil
	case bool:
		return strconv.FormatBool(x), true, nil
	case json.Number:
		if n, err := x.Int64(); err == nil {
			return strconv.FormatInt(n, 10), true, nil
		}
		f, err := x.Float64()
		if err != nil {
			return "", false, errors.New("want a string, number or boolean")
		}
		b, err := json.Marshal(f)
		if err != nil {
			return "", false, errors.New("want a finite number")
		}
		return string(b), true, nil
	default:
		return "", false, errors.New("want a string, number or boolean, not an object or array")
	}
}

// Wake makes the worker look for due deliveries now.
func (h *Hub) Wake() {
	select {
	case h.wake <- struct{}{}:
	default:
	}
}
