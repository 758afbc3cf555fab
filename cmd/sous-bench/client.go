package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// rawClient posts webhooks over one persistent HTTP/1.1 connection, the way
// wrk does: the header block is built once, each request is one write from a
// reused buffer, and the response is parsed in place and discarded. It
// reconnects when the connection fails or the server closes it. It is not
// safe for concurrent use: each sender goroutine has its own.
type rawClient struct {
	addr     string
	deadline time.Time // applied to every connection; zero for none
	head     []byte    // request line and headers up to the Content-Length value
	conn     net.Conn
	br       *bufio.Reader
	reused   bool // conn has carried a request already
	body     []byte
	req      []byte
	resp     response
}

func newRawClient(addr, path string) *rawClient {
	head := "POST " + path + " HTTP/1.1\r\n" +
		"Host: " + addr + "\r\n" +
		"User-Agent: sous-bench\r\n" +
		"Content-Type: application/json\r\n" +
		"Content-Length: "
	return &rawClient{addr: addr, head: []byte(head), body: make([]byte, 0, 128), req: make([]byte, 0, len(head)+160)}
}

// post sends the order webhook with id n and returns the response status.
func (c *rawClient) post(n int64) (int, error) {
	c.body = append(c.body[:0], `{"order":{"id":`...)
	c.body = strconv.AppendInt(c.body, n, 10)
	c.body = append(c.body, `,"total":250,"customer":"acme"}}`...)
	c.req = append(c.req[:0], c.head...)
	c.req = strconv.AppendInt(c.req, int64(len(c.body)), 10)
	c.req = append(c.req, "\r\n\r\n"...)
	c.req = append(c.req, c.body...)
	return c.do(c.req)
}

// do sends a complete request and reads its response. A request that finds
// its kept-alive connection closed by the server before any byte of the
// response (an idle timeout) is sent again once on a fresh connection, as
// net/http does; the webhook's id makes a duplicate harmless (200, counted).
func (c *rawClient) do(req []byte) (int, error) {
	for attempt := 0; ; attempt++ {
		if c.conn == nil {
			if err := c.dial(); err != nil {
				return 0, err
			}
		}
		reused := c.reused
		status, stale, err := c.roundTrip(req)
		if err == nil {
			return status, nil
		}
		c.close()
		if stale && reused && attempt == 0 {
			continue
		}
		return 0, err
	}
}

func (c *rawClient) roundTrip(req []byte) (status int, stale bool, err error) {
	c.reused = true
	if _, err := c.conn.Write(req); err != nil {
		return 0, closedByPeer(err), fmt.Errorf("write request: %w", err)
	}
	if _, err := c.br.Peek(1); err != nil {
		return 0, closedByPeer(err), fmt.Errorf("read response: %w", eofIsUnexpected(err))
	}
	if err := readResponse(c.br, &c.resp); err != nil {
		return 0, false, fmt.Errorf("read response: %w", err)
	}
	if c.resp.close {
		c.close()
	}
	return c.resp.status, false, nil
}

// closedByPeer reports whether err says the server closed the connection
// (rather than, say, a timeout).
func closedByPeer(err error) bool {
	return errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

func (c *rawClient) dial() error {
	conn, err := net.DialTimeout("tcp", c.addr, 5*time.Second)
	if err != nil {
		return fmt.Errorf("connect: %w", err)
	}
	if !c.deadline.IsZero() {
		if err := conn.SetDeadline(c.deadline); err != nil {
			conn.Close()
			return fmt.Errorf("set deadline: %w", err)
		}
	}
	c.conn, c.reused = conn, false
	if c.br == nil {
		c.br = bufio.NewReaderSize(conn, 4096)
	} else {
		c.br.Reset(conn)
	}
	return nil
}

func (c *rawClient) close() {
	if c.conn != nil {
		c.conn.Close()
		c.conn = nil
	}
}

// tally counts outcomes by status, per goroutine, merged at the end.
type tally struct {
	status   [600]int64
	errs     int64
	firstErr error
}

func (t *tally) add(status int, err error) {
	if err != nil || status < 0 || status >= len(t.status) {
		if t.firstErr == nil {
			t.firstErr = err
		}
		t.errs++
		return
	}
	t.status[status]++
}

func (t *tally) merge(o *tally) {
	for i, n := range o.status {
		t.status[i] += n
	}
	t.errs += o.errs
	if t.firstErr == nil {
		t.firstErr = o.firstErr
	}
}

func (t *tally) accepted() int64 { return t.status[202] }

// refused counts every request not answered 202, errors included.
func (t *tally) refused() int64 {
	n := t.errs
	for code, k := range t.status {
		if code != 202 {
			n += k
		}
	}
	return n
}

// refusedDetail says how requests were refused: "" when none were, else
// e.g. ": 503 ×12, 2 errors (first: connect: ...)".
func (t *tally) refusedDetail() string {
	var parts []string
	for code, k := range t.status {
		if code != 202 && k > 0 {
			parts = append(parts, fmt.Sprintf("%d ×%d", code, k))
		}
	}
	sort.Strings(parts)
	if t.errs > 0 {
		parts = append(parts, fmt.Sprintf("%d errors (first: %v)", t.errs, t.firstErr))
	}
	if len(parts) == 0 {
		return ""
	}
	return ": " + strings.Join(parts, ", ")
}

// pauseAfter slows a sender down after an error so that a server that is
// gone does not turn the generator into a busy loop.
func pauseAfter(err error) {
	if err == nil {
		return
	}
	if errors.Is(err, syscall.ECONNREFUSED) {
		time.Sleep(10 * time.Millisecond)
		return
	}
	time.Sleep(time.Millisecond)
}
