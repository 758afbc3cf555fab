// Package service assembles the runtime that `sous serve` runs: the store,
// the broker, the pipeline, the HTTP server, the scheduler, hot reload of
// the recipes folder and retention.
package service

import (
	"fmt"
	"net"
	"slices"

	"github.com/sous-run/sous/engine/settings"
	"github.com/sous-run/sous/recipes"
)

// Settings are the runtime sections of sous.yaml, with defaults, as
// package settings describes them.
type Settings = settings.Runtime

// The sections of Settings.
type (
	// BrokerSettings choose the broker: sqlite (default), memory, postgres or nats.
	BrokerSettings = settings.Broker
	// RetentionSettings say how long records are kept.
	RetentionSettings = settings.Retention
	// LimitSettings bound intake.
	LimitSettings = settings.Limits
	// PipelineSettings tune the pipeline.
	PipelineSettings = settings.Pipeline
)

// A SettingsError is one bad value in the runtime sections of a config
// file, at its place: "sous.yaml:12:20: pipeline.gc_percent: 5 is not
// from 25 to 1000".
type SettingsError = settings.Error

// DefaultGCPercent is the garbage collector's default target for `sous
// serve` (settings.DefaultGCPercent).
const DefaultGCPercent = settings.DefaultGCPercent

// DevAPIKey is the API key examples/sous.yaml (and so `make run`) falls
// back to when SOUS_API_KEY is not set. It is published: `sous serve`
// warns when it is in use and refuses it on an address other hosts can
// reach.
const DevAPIKey = "dev-only-api-key-change-me"

// checkDevKey reports whether the development API key is among keys, and
// refuses it unless the service listens on a loopback address only.
func checkDevKey(keys []string, addr net.Addr) (inUse bool, err error) {
	if !slices.Contains(keys, DevAPIKey) {
		return false, nil
	}
	if tcp, ok := addr.(*net.TCPAddr); ok && tcp.IP.IsLoopback() {
		return true, nil
	}
	return true, fmt.Errorf("api_keys: the development API key (%s, from examples/sous.yaml) is refused on %s, which other hosts can reach: "+
		"set SOUS_API_KEY or api_keys to a key of your own, or listen on 127.0.0.1", DevAPIKey, addr)
}

// DefaultSettings are used for what the config does not set.
func DefaultSettings() Settings { return settings.Default() }

// ParseSettings reads the runtime sections of a loaded config. The error
// joins (errors.Join) a *SettingsError for every problem found.
func ParseSettings(cfg *recipes.Config) (Settings, error) { return settings.Parse(cfg) }

// CheckSettings reports the problems of the runtime sections of a loaded
// config as diagnostics, for `sous validate`: what ParseSettings would
// refuse, without opening anything.
func CheckSettings(cfg *recipes.Config) recipes.Diagnostics { return settings.Check(cfg) }
