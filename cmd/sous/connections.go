package main

import "github.com/spf13/cobra"

// newConnections gathers the commands on connections' stored tokens.
func newConnections() *cobra.Command {
	conns := &cobra.Command{Use: "connections", Short: "The connections' stored OAuth tokens"}
	conns.AddCommand(newConnectionsRekey())
	return conns
}
