// Package webhook is the webhook.received trigger: any service that can
// POST JSON starts a recipe. Its HTTP intake lives in the server; this
// package declares the spec and the event shape.
package webhook
