package main

import (
	"runtime/debug"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/service"
)

func TestSetGC(t *testing.T) {
	before := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(before) })
	settings := service.DefaultSettings()
	settings.Pipeline.GCPercent = 300

	setGC(settings, func(string) string { return "" })
	require.Equal(t, 300, debug.SetGCPercent(100), "the setting applies")

	setGC(settings, func(k string) string {
		if k == "GOGC" {
			return "50"
		}
		return ""
	})
	require.Equal(t, 100, debug.SetGCPercent(100), "GOGC in the environment wins")
}
