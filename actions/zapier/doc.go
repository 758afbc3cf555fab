// Package zapier holds the zapier.notify action: it publishes one JSON
// object to every Zapier REST-hook subscriber of an event. The runtime's
// outbox (connector.Outbox) stores one delivery per subscriber before the
// step succeeds, and sends and retries each apart from the others.
package zapier
