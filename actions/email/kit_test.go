package email_test

import (
	"net"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/actions/email"
	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/connector/connectortest"
	"github.com/sous-run/sous/internal/clients/mail"
	"github.com/sous-run/sous/internal/clients/mail/mailtest"
)

// TestKit runs the connector test kit: against mailpit (which takes any
// login, the kit's canary password included), and against a server that
// accepts connections and never answers, for cancellation.
func TestKit(t *testing.T) {
	pit := mailtest.StartMailpit(t)
	connectortest.Run(t, connectortest.Kit{
		Spec:       email.Send,
		Connection: pit.Values(),
		With:       map[string]any{"to": "alice@example.com", "subject": "kit", "text": "hello", "html": "<b>hello</b>"},
		NoHTTP:     true,
		Cancel: func(t *testing.T) (map[string]any, connector.Values) {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			require.NoError(t, err)
			t.Cleanup(func() { _ = ln.Close() })
			go func() {
				for {
					c, err := ln.Accept()
					if err != nil {
						return
					}
					t.Cleanup(func() { _ = c.Close() })
				}
			}()
			v := pit.Values()
			v[mail.FieldPort] = int64(ln.Addr().(*net.TCPAddr).Port)
			return map[string]any{"to": "alice@example.com", "subject": "kit", "text": "hello"}, v
		},
	})
}
