// Package connector is the plugin contract of Sous and its one registry.
//
// A connector package (triggers/<svc>, actions/<svc>) describes each of its
// components once, as a Spec: the fields of its `with` block (type, required,
// default, enum, secret, description, example) and the shape of the event it
// emits or the output it returns. That one description drives recipe
// validation, expression type-checking, the generated JSON Schema, the
// `sous connectors` command and docs/connectors.md.
//
// Triggers and actions import only this package and internal/clients; the
// engine never imports a concrete connector.
package connector
