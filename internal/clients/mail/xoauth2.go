package mail

import (
	"fmt"

	"github.com/emersion/go-sasl"
)

// XOAuth2 is the name of Google's and Microsoft's OAuth 2.0 SASL mechanism.
const XOAuth2 = "XOAUTH2"

// NewXOAuth2Client is a SASL client of the XOAUTH2 mechanism, which
// go-sasl lacks (it has OAUTHBEARER, which Gmail and Outlook do not all
// take): the initial response is user=U^Aauth=Bearer T^A^A. A server that
// refuses the token sends a JSON challenge; the client answers it empty,
// as the mechanism asks, and the server then ends the exchange with NO.
func NewXOAuth2Client(username, token string) sasl.Client {
	return &xoauth2{username: username, token: token}
}

type xoauth2 struct{ username, token string }

func (x *xoauth2) Start() (string, []byte, error) {
	return XOAuth2, XOAuth2Response(x.username, x.token), nil
}

func (x *xoauth2) Next(challenge []byte) ([]byte, error) {
	if len(challenge) == 0 {
		return nil, fmt.Errorf("xoauth2: unexpected empty challenge")
	}
	return []byte{}, nil
}

// XOAuth2Response is the mechanism's initial response.
func XOAuth2Response(username, token string) []byte {
	return []byte("user=" + username + "\x01auth=Bearer " + token + "\x01\x01")
}
