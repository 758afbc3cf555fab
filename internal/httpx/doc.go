// Package httpx holds the HTTP helpers every connector shares, so that no
// service copies them: the classification of a failed call into Sous's
// error kinds (StatusError and ClassifyStatus for an answer, TransportError
// and ClassifyTransport for a request that got none), Retry-After
// (RetryAfter), a bounded read of a response body (ReadBody), the
// User-Agent (UserAgent), and an *http.Client (NewClient, Transport) to
// hand to a service's SDK so that the user agent and the body limit apply
// to its calls too.
//
// The kinds, as connector errors:
//
//	429                     retryable rate_limited, honouring Retry-After
//	5xx                     retryable server_error, honouring Retry-After
//	408                     retryable timeout
//	401, 403                permanent auth
//	other 4xx (425 too)     permanent client_error
//	deadline, net timeout   retryable timeout
//	context canceled        permanent timeout (the run was stopped)
//	body over the limit     permanent client_error (a retry gets the same body)
//	other transport errors  retryable network (refused, reset, DNS)
package httpx
