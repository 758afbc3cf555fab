package server_test

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
	"github.com/sous-run/sous/engine/server"
)

// TestServiceReceiverFailures: what a service receiver does wrong is
// answered, never a crash, and nothing is stored.
func TestServiceReceiverFailures(t *testing.T) {
	tests := []struct {
		name    string
		receive func() (*connector.Received, error)
		status  int
		code    string
	}{
		{"a panic is a 500", func() (*connector.Received, error) { panic("boom") }, http.StatusInternalServerError, "receiver_failed"},
		{"an error is a 500", func() (*connector.Received, error) { return nil, errors.New("broken") }, http.StatusInternalServerError, "receiver_failed"},
		{"a rejection keeps its status and code", func() (*connector.Received, error) {
			return nil, connector.Reject(http.StatusForbidden, "not_yours", "go away")
		}, http.StatusForbidden, "not_yours"},
		{"a rejection that is not a 4xx is a 500", func() (*connector.Received, error) {
			return nil, connector.Reject(http.StatusOK, "odd", "fine")
		}, http.StatusInternalServerError, "receiver_failed"},
		{"no events is answered, nothing stored", func() (*connector.Received, error) { return nil, nil }, http.StatusOK, ""},
		{"an event no recipe listens to gets the receiver's Ignored answer", func() (*connector.Received, error) {
			return &connector.Received{Events: []connector.Event{{Type: "acme.thing", DedupKey: "k", Payload: map[string]any{}}},
				Ignored: &connector.Reply{Status: http.StatusOK, Body: []byte("quiet")}}, nil
		}, http.StatusOK, "quiet"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			reg := connector.NewRegistry()
			require.NoError(t, reg.AddReceiver(&connector.ReceiverSpec{Service: "acme", Connection: "acme",
				Receiver: connector.ReceiverFunc(func(context.Context, *connector.Incoming) (*connector.Received, error) {
					return tc.receive()
				})}))
			e := newEnv(t, nil, nil, func(c *server.Config) {
				c.Registry = reg
				c.Connection = func(name string) (*connector.Connection, error) {
					if name != "main" {
						return nil, errors.New("no such connection")
					}
					return &connector.Connection{Name: name, Type: "acme", Values: connector.Values{}}, nil
				}
			})
			rec := e.post(t, "/acme/main", `{}`, nil)
			if tc.code == "quiet" {
				require.Equal(t, tc.status, rec.Code)
				require.Equal(t, "quiet", rec.Body.String())
			} else if tc.code != "" {
				require.Equal(t, tc.code, apiErr(t, rec, tc.status))
			} else {
				require.Equal(t, tc.status, rec.Code, rec.Body.String())
				require.Contains(t, rec.Body.String(), "ignored")
			}
			require.Equal(t, rows{0, 0, 0}, e.rows(t))
			require.Equal(t, "unknown_connection", apiErr(t, e.post(t, "/acme/other", `{}`, nil), http.StatusNotFound))
		})
	}
}
