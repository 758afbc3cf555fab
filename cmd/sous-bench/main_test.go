package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// next follows every input in the parser tables: a parse that succeeds must
// stop exactly before it.
const next = "NEXT"

func TestReadResponse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		status  int
		bodyLen int64
		close   bool
		err     error // matched with errors.Is; nil: success
	}{
		{name: "content-length", in: "HTTP/1.1 202 Accepted\r\nContent-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"status\":\"ok\"}\r\n", status: 202, bodyLen: 17},
		{name: "header names any case, bare LF", in: "HTTP/1.1 202 Accepted\ncontent-LENGTH:  3 \n\nabc", status: 202, bodyLen: 3},
		{name: "no reason phrase", in: "HTTP/1.1 503\r\nContent-Length: 0\r\n\r\n", status: 503},
		{name: "same content-length twice", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", status: 200, bodyLen: 2},
		{name: "chunked", in: "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n5;ext=1\r\npedia\r\nA \r\n0123456789\r\n0\r\nX-Trailer: 1\r\n\r\n", status: 202, bodyLen: 19},
		{name: "connection close", in: "HTTP/1.1 202 Accepted\r\nConnection: close\r\nContent-Length: 0\r\n\r\n", status: 202, close: true},
		{name: "connection close in a list", in: "HTTP/1.1 202 Accepted\r\nConnection: Upgrade, CLOSE\r\nContent-Length: 0\r\n\r\n", status: 202, close: true},
		{name: "http/1.0 closes", in: "HTTP/1.0 202 Accepted\r\nContent-Length: 0\r\n\r\n", status: 202, close: true},
		{name: "http/1.0 keep-alive", in: "HTTP/1.0 202 Accepted\r\nConnection: keep-alive\r\nContent-Length: 0\r\n\r\n", status: 202},
		{name: "100 continue first", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 202 Accepted\r\nContent-Length: 1\r\n\r\nx", status: 202, bodyLen: 1},
		{name: "204 without length", in: "HTTP/1.1 204 No Content\r\n\r\n", status: 204},
		{name: "no length", in: "HTTP/1.1 200 OK\r\n\r\nbody until close", err: errMalformed},
		{name: "conflicting lengths", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc", err: errMalformed},
		{name: "chunked and length", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: errMalformed},
		{name: "gzip encoding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", err: errMalformed},
		{name: "negative length", in: "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", err: errMalformed},
		{name: "huge length", in: "HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", err: errMalformed},
		{name: "bad status", in: "HTTP/1.1 2x2 OK\r\nContent-Length: 0\r\n\r\n", err: errMalformed},
		{name: "status 600", in: "HTTP/1.1 600 Odd\r\nContent-Length: 0\r\n\r\n", err: errMalformed},
		{name: "http/2", in: "HTTP/2.0 200 OK\r\nContent-Length: 0\r\n\r\n", err: errMalformed},
		{name: "garbage", in: "hello\r\n\r\n", err: errMalformed},
		{name: "101", in: "HTTP/1.1 101 Switching Protocols\r\n\r\n", err: errMalformed},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nContent-Length 0\r\n\r\n", err: errMalformed},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", err: errMalformed},
		{name: "truncated body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc", err: io.ErrUnexpectedEOF},
		{name: "truncated headers", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n", err: io.ErrUnexpectedEOF},
		{name: "empty", in: "", err: io.ErrUnexpectedEOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if tt.err == nil {
				in += next
			}
			br := bufio.NewReader(strings.NewReader(in))
			var resp response
			err := readResponse(br, &resp)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := response{status: tt.status, bodyLen: tt.bodyLen, close: tt.close}
			if resp != want {
				t.Errorf("got %+v, want %+v", resp, want)
			}
			if rest, _ := io.ReadAll(br); string(rest) != next {
				t.Errorf("left %q unread, want %q", rest, next)
			}
		})
	}
}

func TestReadRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		bodyLen int64
		close   bool
		err     error
	}{
		{name: "content-length", in: "POST /sink HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"a\":\"bcd\"}", bodyLen: 11},
		{name: "no body", in: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"},
		{name: "leading empty line", in: "\r\nGET / HTTP/1.1\r\n\r\n"},
		{name: "chunked", in: "POST /sink HTTP/1.1\r\ntransfer-encoding: Chunked\r\n\r\n4\r\nWiki\r\n5 ; ext=\"1\"\r\npedia\r\n0\r\n\r\n", bodyLen: 9},
		{name: "chunked with trailers", in: "POST /sink HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n1a\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nA: 1\r\nB: 2\r\n\r\n", bodyLen: 26},
		{name: "connection close", in: "POST /sink HTTP/1.1\r\nConnection: close\r\nContent-Length: 2\r\n\r\n{}", bodyLen: 2, close: true},
		{name: "connection keep-alive, close", in: "GET / HTTP/1.1\r\nConnection: keep-alive, Close\r\n\r\n", close: true},
		{name: "http/1.0 closes", in: "GET / HTTP/1.0\r\n\r\n", close: true},
		{name: "http/1.0 keep-alive", in: "GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n"},
		{name: "no protocol", in: "POST /sink\r\n\r\n", err: errMalformed},
		{name: "http/2", in: "POST /sink HTTP/2.0\r\n\r\n", err: errMalformed},
		{name: "space in target", in: "POST /a b HTTP/1.1\r\n\r\n", err: errMalformed},
		{name: "bad method", in: "PO(ST /sink HTTP/1.1\r\n\r\n", err: errMalformed},
		{name: "empty method", in: " /sink HTTP/1.1\r\n\r\n", err: errMalformed},
		{name: "only empty lines", in: "\r\n\r\n\r\n", err: errMalformed},
		{name: "header without colon", in: "GET / HTTP/1.1\r\nHost x\r\n\r\n", err: errMalformed},
		{name: "space before colon", in: "GET / HTTP/1.1\r\nContent-Length : 0\r\n\r\n", err: errMalformed},
		{name: "obsolete folding", in: "GET / HTTP/1.1\r\nX-A: 1\r\n 2\r\n\r\n", err: errMalformed},
		{name: "bad length", in: "POST / HTTP/1.1\r\nContent-Length: 1e3\r\n\r\n", err: errMalformed},
		{name: "chunked and length", in: "POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: errMalformed},
		{name: "chunked twice", in: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", err: errMalformed},
		{name: "chunk without CRLF", in: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcd\r\n0\r\n\r\n", err: errMalformed},
		{name: "chunk size overflow", in: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n", err: errMalformed},
		{name: "too many headers", in: "GET / HTTP/1.1\r\n" + strings.Repeat("X: 1\r\n", maxHeaderLines+1) + "\r\n", err: errMalformed},
		{name: "line too long", in: "GET /" + strings.Repeat("a", 5000) + " HTTP/1.1\r\n\r\n", err: errMalformed},
		{name: "truncated body", in: "POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", err: io.ErrUnexpectedEOF},
		{name: "truncated chunked body", in: "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab", err: io.ErrUnexpectedEOF},
		{name: "truncated request line", in: "GET / HTTP/1.1", err: io.ErrUnexpectedEOF},
		{name: "clean end", in: "", err: io.EOF},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			if tt.err == nil {
				in += next
			}
			br := bufio.NewReader(strings.NewReader(in))
			var req request
			err := readRequest(br, &req)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("error %v, want %v", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			want := request{bodyLen: tt.bodyLen, close: tt.close}
			if req != want {
				t.Errorf("got %+v, want %+v", req, want)
			}
			if rest, _ := io.ReadAll(br); string(rest) != next {
				t.Errorf("left %q unread, want %q", rest, next)
			}
		})
	}
}

// FuzzParseRequest feeds the sink's parser arbitrary bytes, as a stream of
// requests: it must never panic, always make progress, and never report more
// body than there was input.
func FuzzParseRequest(f *testing.F) {
	for _, s := range []string{
		"POST /sink HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}",
		"POST /sink HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nWiki\r\n0\r\nT: 1\r\n\r\nGET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nConnection: close\r\n\r\n",
		"\r\nGET / HTTP/1.1\nHost: x\n\n",
		"POST / HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		br := bufio.NewReaderSize(bytes.NewReader(data), 4096)
		for i := 0; ; i++ {
			if i > len(data) {
				t.Fatalf("%d requests parsed from %d bytes", i, len(data))
			}
			var req request
			err := readRequest(br, &req)
			if err != nil {
				if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, errMalformed) {
					t.Fatalf("unexpected error kind: %v", err)
				}
				return
			}
			if req.bodyLen < 0 || req.bodyLen > int64(len(data)) {
				t.Fatalf("body of %d bytes in %d bytes of input", req.bodyLen, len(data))
			}
		}
	})
}

func startTestSink(t testing.TB) *sinkServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := startSink(ln)
	t.Cleanup(func() { s.Close() })
	return s
}

// The raw client against the raw sink: every request is counted once on each
// side and the connections are kept alive.
func TestClientAgainstSink(t *testing.T) {
	sink := startTestSink(t)
	addr := sink.ln.Addr().String()
	const clients, each = 4, 100
	var total tally
	var mu sync.Mutex
	var seq atomic.Int64
	var wg sync.WaitGroup
	for range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := newRawClient(addr, "/hooks/bench")
			c.deadline = time.Now().Add(10 * time.Second)
			defer c.close()
			var tl tally
			conn := net.Conn(nil)
			for range each {
				status, err := c.post(seq.Add(1))
				tl.add(status, err)
				if conn != nil && c.conn != conn {
					t.Errorf("client reconnected without cause")
				}
				conn = c.conn
			}
			mu.Lock()
			total.merge(&tl)
			mu.Unlock()
		}()
	}
	wg.Wait()
	if got := total.status[200]; got != clients*each {
		t.Errorf("%d answered 200, want %d (refused%s)", got, clients*each, total.refusedDetail())
	}
	if got := total.refused(); got != clients*each { // the sink answers 200, not 202
		t.Errorf("%d refused, want %d", got, clients*each)
	}
	if got := sink.delivered.Load(); got != clients*each {
		t.Errorf("sink counted %d, want %d", got, clients*each)
	}
}

// The raw client against net/http, the server sous runs: 202s with the JSON
// body, some chunked, some closing the connection, some 503s.
func TestClientAgainstNetHTTP(t *testing.T) {
	var conns atomic.Int64
	var badBody atomic.Int64
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Order struct {
				ID       int64  `json:"id"`
				Total    int    `json:"total"`
				Customer string `json:"customer"`
			} `json:"order"`
		}
		if r.Method != http.MethodPost || r.URL.Path != "/hooks/bench" || r.Header.Get("Content-Type") != "application/json" ||
			r.ContentLength <= 0 || json.NewDecoder(r.Body).Decode(&body) != nil || body.Order.Total != 250 || body.Order.Customer != "acme" {
			badBody.Add(1)
		}
		id := body.Order.ID
		switch {
		case id%50 == 0:
			w.Header().Set("Connection", "close")
		case id%7 == 0:
			w.WriteHeader(http.StatusAccepted)
			w.(http.Flusher).Flush() // the body goes chunked
			_, _ = io.WriteString(w, `{"status":"accepted","event_id":"`+strconv.FormatInt(id, 10)+`"}`)
			return
		case id%31 == 0:
			http.Error(w, "busy", http.StatusServiceUnavailable)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusAccepted)
		_ = json.NewEncoder(w).Encode(map[string]any{"status": "accepted", "event_id": id})
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	defer srv.Close()

	c := newRawClient(srv.Listener.Addr().String(), "/hooks/bench")
	defer c.close()
	var tl tally
	const n = 300
	for id := int64(1); id <= n; id++ {
		status, err := c.post(id)
		tl.add(status, err)
	}
	if tl.errs != 0 {
		t.Fatalf("%d errors, first: %v", tl.errs, tl.firstErr)
	}
	var want503 int64
	for id := int64(1); id <= n; id++ {
		if id%50 != 0 && id%7 != 0 && id%31 == 0 {
			want503++
		}
	}
	if tl.status[503] != want503 || tl.accepted() != n-want503 {
		t.Errorf("accepted %d, 503 %d; want %d, %d", tl.accepted(), tl.status[503], n-want503, want503)
	}
	if d := tl.refusedDetail(); !strings.Contains(d, "503 ×"+strconv.FormatInt(want503, 10)) {
		t.Errorf("refused detail %q does not count the 503s", d)
	}
	if badBody.Load() != 0 {
		t.Errorf("%d requests did not carry the order webhook", badBody.Load())
	}
	// one connection, plus one after each Connection: close but the last
	if got, want := conns.Load(), int64(1+(n-1)/50); got != want {
		t.Errorf("%d connections, want %d", got, want)
	}
}

// net/http's client against the raw sink: known and unknown (chunked) body
// lengths, and Connection: close.
func TestSinkAgainstNetHTTP(t *testing.T) {
	sink := startTestSink(t)
	url := "http://" + sink.ln.Addr().String() + "/sink"
	client := &http.Client{Timeout: 5 * time.Second}
	defer client.CloseIdleConnections()
	const n = 60
	for i := range n {
		body := strings.Repeat("x", i*100)
		var r io.Reader = strings.NewReader(body)
		if i%2 == 1 {
			r = io.MultiReader(r) // hides the length: the client sends chunks
		}
		req, err := http.NewRequest(http.MethodPost, url, r)
		if err != nil {
			t.Fatal(err)
		}
		req.Close = i%10 == 9
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		got, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != 200 || string(got) != `{"ok":true}` || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("request %d: %d %q %v", i, resp.StatusCode, got, err)
		}
		if req.Close != resp.Close {
			t.Errorf("request %d: close %v, response close %v", i, req.Close, resp.Close)
		}
	}
	if got := sink.delivered.Load(); got != n {
		t.Errorf("sink counted %d, want %d", got, n)
	}
}

// A malformed request gets a 400 and the connection is closed; the sink goes
// on serving.
func TestSinkMalformed(t *testing.T) {
	sink := startTestSink(t)
	for _, in := range []string{"garbage\r\n\r\n", "POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", strings.Repeat("a", 10000)} {
		conn, err := net.Dial("tcp", sink.ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		_ = conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, _ = io.WriteString(conn, in)
		got, _ := io.ReadAll(conn) // until the sink closes
		conn.Close()
		if !strings.HasPrefix(string(got), "HTTP/1.1 400 ") {
			t.Errorf("%.20q: answered %q, want a 400", in, got)
		}
	}
	c := newRawClient(sink.ln.Addr().String(), "/sink")
	defer c.close()
	if status, err := c.post(1); status != 200 || err != nil {
		t.Errorf("after malformed requests: %d %v", status, err)
	}
	if got := sink.delivered.Load(); got != 1 {
		t.Errorf("sink counted %d, want 1", got)
	}
}

// A server that closes a kept-alive connection without saying so (an idle
// timeout): the next request is sent again on a new connection.
func TestClientRetriesOnStaleConnection(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var accepted atomic.Int64
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			br := bufio.NewReader(conn)
			var req request
			if readRequest(br, &req) == nil {
				_, _ = io.WriteString(conn, "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}")
			}
			conn.Close()
		}
	}()
	c := newRawClient(ln.Addr().String(), "/hooks/bench")
	defer c.close()
	for i := range int64(3) {
		if status, err := c.post(i); status != 202 || err != nil {
			t.Fatalf("post %d: %d %v", i, status, err)
		}
		if i == 0 {
			time.Sleep(20 * time.Millisecond) // let the close reach the client
		}
	}
	if got := accepted.Load(); got != 3 {
		t.Errorf("%d connections, want 3", got)
	}
	// a fresh connection that fails is not retried
	ln.Close()
	c.close()
	if _, err := c.post(4); err == nil {
		t.Error("post to a closed listener succeeded")
	}
}

func TestPostDoesNotAllocate(t *testing.T) {
	sink := startTestSink(t)
	c := newRawClient(sink.ln.Addr().String(), "/hooks/bench")
	defer c.close()
	var n int64
	var failed error
	allocs := testing.AllocsPerRun(200, func() {
		n++
		if _, err := c.post(n); err != nil && failed == nil {
			failed = err
		}
	})
	if failed != nil {
		t.Fatal(failed)
	}
	// the count includes the sink's goroutine, which should not allocate either
	if allocs > 0 {
		t.Errorf("%.1f allocations per request and response, want 0", allocs)
	}
}

func TestParseProcStat(t *testing.T) {
	stat := "4242 (sous (a) b) S 1 4242 4242 0 -1 4194560 2000 0 0 0 123 45 0 0 20 0 12 0 1000 800000000 16000 18446744073709551615"
	got, err := parseProcStat([]byte(stat))
	if err != nil {
		t.Fatal(err)
	}
	if want := 1680 * time.Millisecond; got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	if _, err := parseProcStat([]byte("4242 (sous) S 1 2")); err == nil {
		t.Error("short stat line parsed")
	}
	if runtime.GOOS == "linux" {
		if cpu, err := procCPU(os.Getpid()); err != nil || cpu < 0 {
			t.Errorf("procCPU of this process: %s, %v", cpu, err)
		}
	}
}

func TestCPULine(t *testing.T) {
	got := cpuLine(2460*time.Millisecond, 200*time.Millisecond, 2*time.Second, 6000)
	want := "cpu: server 1.23 cores (410 µs/event), generator 0.10 cores (33 µs/event)"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
}

// BenchmarkPost is one webhook through the raw client and the raw sink; its
// net/http twin is what the generator cost before.
func BenchmarkPost(b *testing.B) {
	sink := startTestSink(b)
	c := newRawClient(sink.ln.Addr().String(), "/hooks/bench")
	defer c.close()
	b.ReportAllocs()
	for i := range int64(b.N) {
		if _, err := c.post(i); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkPostNetHTTP(b *testing.B) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"ok":true}`))
	}))
	defer srv.Close()
	client := srv.Client()
	b.ReportAllocs()
	for i := range int64(b.N) {
		body := fmt.Sprintf(`{"order":{"id":%d,"total":250,"customer":"acme"}}`, i)
		req, _ := http.NewRequest(http.MethodPost, srv.URL+"/hooks/bench", strings.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
}

func TestFloorDelivers(t *testing.T) {
	sink := startTestSink(t)
	srv := httptest.NewServer(floorHandler("http://" + sink.ln.Addr().String() + "/sink"))
	defer srv.Close()
	const n = 20
	c := newRawClient(srv.Listener.Addr().String(), "/hooks/bench")
	defer c.close()
	for i := int64(1); i <= n; i++ {
		status, err := c.post(i)
		if err != nil || status != http.StatusAccepted {
			t.Fatalf("post %d: status %d, %v", i, status, err)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for sink.delivered.Load() < n && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if got := sink.delivered.Load(); got != n {
		t.Fatalf("sink got %d deliveries, want %d", got, n)
	}
	resp, err := http.Post(srv.URL+"/hooks/bench", "application/json", strings.NewReader(`{"order":`))
	if err != nil {
		t.Fatal(err)
	}
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("malformed body: status %d, want 400", resp.StatusCode)
	}
}

func TestCompare(t *testing.T) {
	ms := time.Millisecond
	got := compare([2]string{"new", "old"}, [2][]result{
		{{accepted: 5000, delivered: 4990, serverUS: 300, generatorUS: 60, p99: 15 * ms}, {accepted: 6000, delivered: 5990, serverUS: 250, generatorUS: 50, p99: 12 * ms}},
		{{accepted: 4800, delivered: 4800, serverUS: 330, generatorUS: 60, p99: 20 * ms}, {accepted: 5500, delivered: 5500, serverUS: 275, generatorUS: 50, p99: 18 * ms}},
	})
	want := "compare, 2 runs each, taken in turn (ratio: server µs per event / generator µs per event)\n" +
		"  new: accepted/s 5000–6000, delivered/s 4990–5990, server µs/event 250–300, ratio 5.00–5.00 (mean 5.00), p99 12ms–15ms\n" +
		"  old: accepted/s 4800–5500, delivered/s 4800–5500, server µs/event 275–330, ratio 5.50–5.50 (mean 5.50), p99 18ms–20ms\n" +
		"  old against new: +10.0 % server CPU per event (mean ratio)\n"
	if got != want {
		t.Fatalf("got\n%s\nwant\n%s", got, want)
	}

	// a run that measured no generator CPU has no ratio, and no change is claimed
	got = compare([2]string{"a", "b"}, [2][]result{{{accepted: 1}}, {{accepted: 2}}})
	if strings.Contains(got, "against") {
		t.Fatalf("a change claimed without ratios:\n%s", got)
	}
}

func TestNATSBroker(t *testing.T) {
	for _, tc := range []struct {
		config, url, prefix string
		ok                  bool
	}{
		{`broker: {type: nats, url: "nats://127.0.0.1:4222", prefix: X_}`, "nats://127.0.0.1:4222", "X_", true},
		{"broker:\n  type: nats\n  url: nats://h:1\n", "nats://h:1", "", true},
		{`broker: {type: postgres, url: "postgres://x"}`, "", "", false},
		{`pipeline: {max_in_flight: 2}`, "", "", false},
		{`broker: [`, "", "", false},
	} {
		url, prefix, ok := natsBroker(tc.config)
		if url != tc.url || prefix != tc.prefix || ok != tc.ok {
			t.Errorf("natsBroker(%q) = %q, %q, %v; want %q, %q, %v", tc.config, url, prefix, ok, tc.url, tc.prefix, tc.ok)
		}
	}
}

// exposition is what a registry holding the writer's metrics, as the
// service registers them, serves on /metrics.
func exposition(t *testing.T, txs, writes float64, took []float64) string {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sous_store_transactions_total", Help: "t"}, func() float64 { return txs }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "sous_store_writes_total", Help: "w"}, func() float64 { return writes }),
		prometheus.NewGauge(prometheus.GaugeOpts{Name: "go_goroutines_like", Help: "another metric"}))
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "sous_store_transaction_seconds", Help: "d",
		Buckets: prometheus.ExponentialBuckets(0.00025, 2, 12)})
	for _, d := range took {
		h.Observe(d)
	}
	reg.MustRegister(h)
	rec := httptest.NewRecorder()
	promhttp.HandlerFor(reg, promhttp.HandlerOpts{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/metrics", nil))
	return rec.Body.String()
}

func TestParseWriterCounters(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want writerCounters
		ok   bool
	}{
		{name: "served by a registry", in: exposition(t, 2136, 112519, []float64{0.002, 0.003, 0.0005}),
			want: writerCounters{txs: 2136, writes: 112519, busy: 0.0055}, ok: true},
		{name: "no transactions yet", in: exposition(t, 0, 0, nil), want: writerCounters{}, ok: false},
		{name: "another server", in: "# TYPE go_goroutines gauge\ngo_goroutines 12\n", ok: false},
		{name: "not the text format", in: "<html>not found</html>\n", ok: false},
		{name: "empty", in: "", ok: false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseWriterCounters(tt.in)
			if ok != tt.ok || got.txs != tt.want.txs || got.writes != tt.want.writes || math.Abs(got.busy-tt.want.busy) > 1e-9 {
				t.Errorf("parseWriterCounters = %+v, %v; want %+v, %v", got, ok, tt.want, tt.ok)
			}
		})
	}
}
