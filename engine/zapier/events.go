package zapier

import (
	"context"
	"encoding/json"
	"sort"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/store"
)

// Event is an event Zapier may subscribe to: a zapier.notify step's
// `event` in a loaded recipe, or one an item was published to, with the
// fields of its latest item.
type Event struct {
	Key     string   `json:"key"`
	Recipes []string `json:"recipes"`
	Fields  []string `json:"sample_fields"`
}

// Events lists the events: those the loaded recipes' steps publishing to
// this channel (zapier.notify's)
// publish (when their event name is not a template of the run), and those
// items were published to, by name.
func (h *Hub) Events(ctx context.Context) ([]*Event, error) {
	byKey := map[string]*Event{}
	get := func(k string) *Event {
		e := byKey[k]
		if e == nil {
			e = &Event{Key: k, Recipes: []string{}, Fields: []string{}}
			byKey[k] = e
		}
		return e
	}
	for _, rec := range h.recipesOf() {
		for _, st := range append(append(rec.Steps[:0:0], rec.Steps...), rec.OnError...) {
			use := channelUse(st.Spec)
			if use == nil || st.Spec.Kind != connector.KindAction {
				continue
			}
			v, _ := st.Literal(use.TopicField)
			if name, ok := v.(string); ok && name != "" {
				e := get(name)
				if !contains(e.Recipes, rec.Name) {
					e.Recipes = append(e.Recipes, rec.Name)
				}
			}
		}
	}
	names, err := h.cfg.Store.ZapierEvents(ctx)
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		get(n)
	}
	out := make([]*Event, 0, len(byKey))
	for _, e := range byKey {
		items, err := h.cfg.Store.ZapierSamples(ctx, e.Key, 1)
		if err != nil {
			return nil, err
		}
		if len(items) > 0 {
			var m map[string]any
			if json.Unmarshal(items[0].Body, &m) == nil {
				for k := range m {
					e.Fields = append(e.Fields, k)
				}
				sort.Strings(e.Fields)
			}
		}
		out = append(out, e)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Key < out[j].Key })
	return out, nil
}

// Samples returns an event's latest items, newest first, each exactly the
// body its subscribers received.
func (h *Hub) Samples(ctx context.Context, event string, limit int) ([]json.RawMessage, error) {
	items, err := h.cfg.Store.ZapierSamples(ctx, event, limit)
	if err != nil {
		return nil, err
	}
	out := make([]json.RawMessage, 0, len(items))
	for _, it := range items {
		out = append(out, json.RawMessage(it.Body))
	}
	return out, nil
}

// Subscribe adds a subscription (the same target to the same event again
// returns the one there is, created false).
func (h *Hub) Subscribe(ctx context.Context, event, target string, filter map[string]string, by string) (*store.ZapierHook, bool, error) {
	return h.cfg.Store.AddZapierHook(ctx, &store.ZapierHook{ID: NewHookID(), Event: event, Target: target, Filter: filter,
		CreatedBy: by, CreatedAt: h.now().UTC()})
}

// Unsubscribe deletes a subscription; its deliveries not yet sent are
// dropped. It reports whether there was one.
func (h *Hub) Unsubscribe(ctx context.Context, id string) (bool, error) {
	return h.cfg.Store.DeleteZapierHook(ctx, id, store.DeliveryUnsubscribed, h.now())
}

// Store is the Hub's store (subscriptions, deliveries).
func (h *Hub) Store() *store.Store { return h.cfg.Store }
