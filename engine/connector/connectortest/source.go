package connectortest

import (
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
)

// Source serves data at every path, as the content an action fetches from
// a `url` option: with its Content-Length when sized, else in 64 KiB
// writes, each flushed, with no length (a body whose size shows only as
// it is read). A request that carries an Authorization header is refused
// with 400: no connection's credentials go to a content host. It is
// closed when the test ends.
func Source(t testing.TB, data []byte, sized bool) *httptest.Server {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "" {
			http.Error(w, "credentials sent to another host", http.StatusBadRequest)
			return
		}
		if sized {
			w.Header().Set("Content-Length", strconv.Itoa(len(data)))
			_, _ = w.Write(data)
			return
		}
		w.Header()["Content-Type"] = nil // none, not sniffed
		for i := 0; i < len(data); i += 64 << 10 {
			_, _ = w.Write(data[i:min(i+64<<10, len(data))])
			w.(http.Flusher).Flush()
		}
	}))
	t.Cleanup(srv.Close)
	return srv
}
