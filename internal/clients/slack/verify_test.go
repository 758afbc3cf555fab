package slack

import (
	"bytes"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/slack-go/slack"
	"github.com/stretchr/testify/require"
)

// The published vectors (PROTOCOLS.md §10).
const (
	officialSecret = "8f742231b10e8888abcd99yyyzzz85a5"
	officialTS     = "1531420618"
	officialBody   = "token=xyzz0WbapA4vBCDEFasx0q6G&team_id=T1DC2JH3J&team_domain=testteamnow&channel_id=G8PSS9T3V&channel_name=foobar&user_id=U2CERLKJA&user_name=roadrunner&command=%2Fwebhook-collect&text=&response_url=https%3A%2F%2Fhooks.slack.com%2Fcommands%2FT1DC2JH3J%2F397700885554%2F96rGlfmibIGlgcZRskXaIFfN&trigger_id=398738663015.47445629121.803a0bc887a14d10d2c447fce8b6703c"
	officialSig    = "v0=a2114d57b48eac39b9ad189dd8316235a7b4a8d21a10bd27519666489c69b503"
	goSecret       = "e6b19c573432dcc6b075501d51b51bb8"
	goTS           = "1531431954"
	goBody         = `{"token":"aF5ynEYQH0dFN9imlgcADxDB","team_id":"XXXXXXXXX","api_app_id":"YYYYYYYYY","event":{"type":"app_mention","user":"AAAAAAAAA","text":"<@EEEEEEEEE> hello world","client_msg_id":"477cc591-ch73-a14z-4db8-g0cd76321bec","ts":"1531431954.000073","channel":"TTTTTTTTT","event_ts":"1531431954.000073"},"type":"event_callback","event_id":"TvBP7LRED7","event_time":1531431954,"authed_users":["EEEEEEEEE"]}`
	goSig          = "v0=adada4ed31709aef585c2580ca3267678c6a8eaeb7e0c1aca3ee57b656886b2c"
	urlVerifBody   = `{"token":"Jhj5dZrVaK7ZwHHjRyZWjbDl","challenge":"3eZbrw1aBm2rZgRNFdxV2595E9CY3gmdALWMmHkvFXO7tYXAYM8P","type":"url_verification"}`
	urlVerifSig    = "v0=f9bd80929259f3f6d5fe3a3186c453c89cd1ad4862815a15837584f31c993652"
)

func headers(sig, ts string) http.Header {
	h := http.Header{}
	if sig != "" {
		h.Set(HeaderSignature, sig)
	}
	if ts != "" {
		h.Set(HeaderTimestamp, ts)
	}
	return h
}

func unix(ts string) time.Time {
	n, _ := strconv.ParseInt(ts, 10, 64)
	return time.Unix(n, 0)
}

func TestSignVectors(t *testing.T) {
	tests := []struct{ name, secret, ts, body, want string }{
		{"slack's official example", officialSecret, officialTS, officialBody, officialSig},
		{"slack-go's test vector", goSecret, goTS, goBody, goSig},
		{"url_verification", officialSecret, officialTS, urlVerifBody, urlVerifSig},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, Sign(tc.secret, tc.ts, []byte(tc.body)))
			require.NoError(t, Verify(tc.secret, headers(tc.want, tc.ts), []byte(tc.body), unix(tc.ts)))
		})
	}
}

func TestVerify(t *testing.T) {
	now := unix(officialTS)
	body := []byte(officialBody)
	tests := []struct {
		name   string
		secret string
		h      http.Header
		body   []byte
		now    time.Time
		want   error
	}{
		{"right", officialSecret, headers(officialSig, officialTS), body, now, nil},
		{"4m59s late", officialSecret, headers(officialSig, officialTS), body, now.Add(5*time.Minute - time.Second), nil},
		{"4m59s early", officialSecret, headers(officialSig, officialTS), body, now.Add(-5*time.Minute + time.Second), nil},
		{"no secret", "", headers(officialSig, officialTS), body, now, ErrNoSecret},
		{"no signature", officialSecret, headers("", officialTS), body, now, ErrNoSignature},
		{"no timestamp", officialSecret, headers(officialSig, ""), body, now, ErrNoSignature},
		{"bad timestamp", officialSecret, headers(officialSig, "soon"), body, now, ErrBadTimestamp},
		{"stale", officialSecret, headers(officialSig, officialTS), body, now.Add(5*time.Minute + time.Second), ErrStale},
		{"from the future", officialSecret, headers(officialSig, officialTS), body, now.Add(-5*time.Minute - time.Second), ErrStale},
		{"wrong secret", goSecret, headers(officialSig, officialTS), body, now, ErrBadSignature},
		{"body changed", officialSecret, headers(officialSig, officialTS), append(bytes.Clone(body), ' '), now, ErrBadSignature},
		{"v1 scheme", officialSecret, headers("v1="+officialSig[3:], officialTS), body, now, ErrBadSignature},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := Verify(tc.secret, tc.h, tc.body, tc.now)
			if tc.want == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tc.want)
			require.NotContains(t, err.Error(), tc.secret+"x")
			require.NotContains(t, err.Error(), officialSig[3:])
		})
	}
}

// TestSignAgreesWithSlackGo: a fresh signature of Sign passes slack-go's
// SecretsVerifier, and one made with another secret fails it.
func TestSignAgreesWithSlackGo(t *testing.T) {
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	for _, tc := range []struct {
		name, signWith string
		ok             bool
	}{{"same secret", goSecret, true}, {"other secret", officialSecret, false}} {
		t.Run(tc.name, func(t *testing.T) {
			sv, err := slack.NewSecretsVerifier(headers(Sign(tc.signWith, ts, []byte(goBody)), ts), goSecret)
			require.NoError(t, err)
			_, err = sv.Write([]byte(goBody))
			require.NoError(t, err)
			if tc.ok {
				require.NoError(t, sv.Ensure())
			} else {
				require.Error(t, sv.Ensure())
			}
		})
	}
}

func FuzzVerify(f *testing.F) {
	f.Add(officialSecret, officialSig, officialTS, []byte(officialBody), int64(0))
	f.Add(goSecret, goSig, goTS, []byte(goBody), int64(301))
	f.Add("", "", "", []byte{}, int64(-1))
	f.Fuzz(func(t *testing.T, secret, sig, ts string, body []byte, skew int64) {
		now := unix(ts).Add(time.Duration(skew) * time.Second)
		err := Verify(secret, headers(sig, ts), body, now)
		if err == nil {
			// only a signature of this body, secret and timestamp passes
			// (its hex in either case)
			if secret == "" || !strings.EqualFold(sig, Sign(secret, ts, body)) {
				t.Fatalf("verified a request it should not have: secret %q sig %q ts %q", secret, sig, ts)
			}
		}
	})
}
