package connector

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

// Connection field names every service's connection type shares (the
// key names ../shared/RECIPES.md fixes), and the keys of its oauth block.
const (
	ConnBaseURL   = "base_url"
	ConnRateLimit = "rate_limit"
	ConnToken     = "token"
	ConnOAuth     = "oauth"

	OAuthClientID     = "client_id"
	OAuthClientSecret = "client_secret"
	OAuthScopes       = "scopes"
	OAuthAuthURL      = "auth_url"
	OAuthTokenURL     = "token_url"
	// OAuthRefreshToken is a refresh token obtained elsewhere (Google's
	// OAuth playground, another tool): the connection needs no `sous
	// connect`; its first call refreshes and stores the token.
	OAuthRefreshToken = "refresh_token"
)

// BaseURLField is a connection's base_url: the service's API root, which
// tests and self-hosted or enterprise installs point elsewhere.
func BaseURLField(def, desc string) Field {
	f := Field{Name: ConnBaseURL, Type: String, Pattern: `^https?://`, PatternHelp: "must start with http:// or https://",
		Description: desc, Example: "http://127.0.0.1:8081/"}
	if def != "" {
		f.Default = def
	}
	return f
}

// RateLimitField is a connection's rate_limit: how many calls the
// connection makes, at most, per second, minute or hour ("50/min"), with
// an optional burst ("5/s burst 10"); def stays under the API's published limits.
func RateLimitField(def string) Field {
	return Field{Name: ConnRateLimit, Type: String, Default: def, Check: func(v any) error { _, err := ParseRate(v.(string)); return err },
		Description: "Calls at most, as N/s, N/min or N/h, optionally followed by `burst M` (the default stays under the API's published limits)",
		Example:     def}
}

// TokenField is a connection's static token: an access token minted
// elsewhere, used as is instead of an OAuth app.
func TokenField(desc string) Field {
	return Field{Name: ConnToken, Type: String, Secret: true, Description: desc, Example: "${SERVICE_TOKEN}"}
}

// OAuthField is a connection's oauth block: the OAuth app (client id and
// secret, the scopes to ask for) and the provider's endpoints, which
// default to the service's own and which tests override.
func OAuthField(scopes []string, authURL, tokenURL string) Field {
	sc := make([]any, len(scopes))
	for i, s := range scopes {
		sc[i] = s
	}
	url := func(name, def, what string) Field {
		f := Field{Name: name, Type: String, Pattern: `^https?://`, PatternHelp: "must start with http:// or https://",
			Description: what, Example: "http://127.0.0.1:8081/" + name}
		if def != "" {
			f.Default = def
		}
		return f
	}
	return Field{Name: ConnOAuth, Type: Object, Description: "The OAuth 2.0 app: client id and secret, the scopes to ask for, the provider's endpoints",
		Fields: []Field{
			{Name: OAuthClientID, Type: String, Required: true, Description: "The app's client id", Example: "${CLIENT_ID}"},
			{Name: OAuthClientSecret, Type: String, Secret: true, Description: "The app's client secret", Example: "${CLIENT_SECRET}"},
			{Name: OAuthScopes, Type: List, Default: sc, Description: "The scopes to ask for"},
			url(OAuthAuthURL, authURL, "The provider's authorization endpoint"),
			url(OAuthTokenURL, tokenURL, "The provider's token endpoint"),
			{Name: OAuthRefreshToken, Type: String, Secret: true, Example: "${REFRESH_TOKEN}",
				Description: "A refresh token obtained elsewhere, instead of `sous connect`: the first call refreshes it and stores the tokens"},
		}}
}

// Rate is a parsed rate_limit.
type Rate struct {
	PerSecond float64 // calls per second on average
	Burst     int     // calls at once
}

var rateRE = regexp.MustCompile(`^\s*([0-9]+(?:\.[0-9]+)?)\s*/\s*(s|sec|second|m|min|minute|h|hour)\s*(?:burst\s+([0-9]+)\s*)?$`)

// ParseRate parses a rate_limit: "N/s", "N/min" or "N/h", optionally
// followed by "burst M" (the burst is otherwise the calls of a second,
// at least one).
func ParseRate(s string) (Rate, error) {
	m := rateRE.FindStringSubmatch(s)
	if m == nil {
		return Rate{}, fmt.Errorf("%q is not a rate: write N/s, N/min or N/h, optionally followed by burst M", s)
	}
	n, err := strconv.ParseFloat(m[1], 64)
	if err != nil || n <= 0 {
		return Rate{}, fmt.Errorf("%q: the rate must be more than 0", s)
	}
	per := map[string]float64{"s": 1, "sec": 1, "second": 1, "m": 60, "min": 60, "minute": 60, "h": 3600, "hour": 3600}[strings.TrimSpace(m[2])]
	r := Rate{PerSecond: n / per, Burst: max(1, int(n/per))}
	if m[3] != "" {
		b, err := strconv.Atoi(m[3])
		if err != nil || b < 1 {
			return Rate{}, fmt.Errorf("%q: the burst must be at least 1", s)
		}
		r.Burst = b
	}
	return r, nil
}

// TokenOrOAuth is a connection type's OneOf when it takes a static token
// or an oauth app, and needs one of them.
var TokenOrOAuth = [][]string{{ConnToken}, {ConnOAuth}}
