// Package zapier is the engine's side of Zapier (PROTOCOLS.md §6): the
// REST-hook subscriptions Zapier makes to Sous events, the durable
// deliveries of the items that zapier.notify steps publish (one per item
// and subscriber, sent and retried by a worker apart from the others), the
// samples Zapier's editor shows, and the recipes Zapier starts through
// zapier.action triggers. engine/server serves it under /api/v1/zapier.
//
// The engine names no connector: zapier.notify reaches the Hub through
// the connector contract's Outbox (the service puts the Hub in every
// action's context), and the Hub finds the recipes it starts and the
// events steps publish to by the channel their specs declare
// (connector.Spec.Channel, naming "zapier" and the option holding the
// name or event), never by a component's ID.
package zapier
