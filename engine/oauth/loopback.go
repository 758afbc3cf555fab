package oauth

import (
	"fmt"
	"net"
	"strconv"
)

// listenLoopback listens on a port of 127.0.0.1 (0: a free one), for the
// provider's redirect.
func listenLoopback(port int) (net.Listener, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return nil, fmt.Errorf("listen for the provider's redirect on 127.0.0.1: %w", err)
	}
	return ln, nil
}
