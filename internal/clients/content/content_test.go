package content

import (
	"context"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/engine/connector"
)

func TestOpen(t *testing.T) {
	for _, tc := range []struct {
		name string
		with connector.Values
		want string // "" with an error
	}{
		{"text", connector.Values{FieldContent: "hello"}, "hello"},
		{"base64 padded", connector.Values{FieldContentBase64: "aGk="}, "hi"},
		{"base64 unpadded, spaced", connector.Values{FieldContentBase64: " aGk \n"}, "hi"},
		{"not base64", connector.Values{FieldContentBase64: "@@@"}, ""},
		{"none", connector.Values{}, ""},
		{"two", connector.Values{FieldContent: "a", FieldContentBase64: "aGk="}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, _, err := Open(context.Background(), tc.with, 10)
			if tc.want == "" {
				require.Error(t, err)
				ce := connector.Classify(err)
				require.Equal(t, connector.ReasonInvalid, ce.Reason)
				require.False(t, ce.Retryable)
				return
			}
			require.NoError(t, err)
			b, _ := io.ReadAll(r)
			require.Equal(t, tc.want, string(b))
		})
	}
	require.Len(t, Validate(connector.Values{FieldContent: "a", FieldURL: "https://x/"}), 1)
	require.Empty(t, Validate(connector.Values{FieldURL: "https://x/"}))
	require.Error(t, CheckBase64("@@@"))
	require.NoError(t, CheckBase64("aGk"))
}
