// Package oauth is the engine's side of connections' OAuth 2.0 tokens. Its
// Vault keeps them in the store (SQLite or PostgreSQL), each sealed with
// AES-256-GCM under the master key with its connection's name as
// associated data, beside metadata in clear that holds no secret (type,
// account, scopes, expiry, state). The master key comes from
// SOUS_MASTER_KEY or from DATA_DIR/master.key, created with mode 0600 on
// first use (LoadKey); Vault.Rekey re-encrypts every token under a new one.
//
// It sits above engine/store and below the pipeline, the server and the
// service: nothing below it in the engine imports it.
package oauth
