// Package http is the http.request action: call any HTTP API. An optional
// connection of type http supplies a base URL and headers (such as an
// Authorization header) so that credentials stay out of recipes.
package http
