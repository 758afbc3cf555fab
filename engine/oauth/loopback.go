package oauth

import (
	"fmt"
	"net"
)

// listenLoopback listens on a free port of 127.0.0.1, for the provider's
// redirect.
func listenLoopback() (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listen for the provider's redirect on 127.0.0.1: %w", err)
	}
	return ln, nil
}
