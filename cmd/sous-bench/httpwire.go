package main

// A minimal HTTP/1.1 wire format, enough for the load generator and the sink
// to cost little CPU next to the server they measure: lines are read with
// bufio.Reader.ReadSlice and headers are compared in place, so parsing a
// message allocates nothing. Only the headers that frame a message are
// interpreted (Content-Length, Transfer-Encoding: chunked, Connection);
// bodies are discarded.

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
)

// errMalformed marks a message that does not parse; the connection it came on
// cannot be trusted any further and is closed.
var errMalformed = errors.New("malformed http message")

const (
	maxHeaderLines = 100
	// bodies are discarded, but lengths are kept far from int64 overflow
	maxBodyLen = 1 << 50
)

var (
	hdrContentLength    = []byte("Content-Length")
	hdrTransferEncoding = []byte("Transfer-Encoding")
	hdrConnection       = []byte("Connection")
	tokChunked          = []byte("chunked")
	tokClose            = []byte("close")
	tokKeepAlive        = []byte("keep-alive")
)

// request is what the sink needs to know about one request it has read.
type request struct {
	bodyLen int64 // bytes of body read (after de-chunking)
	close   bool  // the client asked to close the connection after the response
}

// response is what the client needs to know about one response it has read.
type response struct {
	status  int
	bodyLen int64
	close   bool // the server will close the connection after this response
}

// framing holds the headers that delimit a message.
type framing struct {
	contentLength int64 // -1 when absent
	chunked       bool
	close         bool
	keepAlive     bool
}

// readRequest reads one request from br, body included, into req. It returns
// io.EOF when the connection ends cleanly before a request starts, and an
// error wrapping errMalformed when the bytes are not an HTTP/1.x request.
func readRequest(br *bufio.Reader, req *request) error {
	*req = request{}
	line, err := readLine(br)
	if err != nil {
		return err
	}
	if len(line) == 0 {
		// RFC 9112 section 2.2: ignore at least one empty line before the request line
		if line, err = readLine(br); err != nil {
			return eofIsUnexpected(err)
		}
	}
	method, rest, ok := bytes.Cut(line, []byte{' '})
	if !ok || !isToken(method) {
		return fmt.Errorf("request line: bad method: %w", errMalformed)
	}
	target, proto, ok := bytes.Cut(rest, []byte{' '})
	if !ok || len(target) == 0 || bytes.ContainsAny(target, " \t") {
		return fmt.Errorf("request line: bad target: %w", errMalformed)
	}
	http10, err := parseProto(proto)
	if err != nil {
		return fmt.Errorf("request line: %w", err)
	}
	var f framing
	if err := readHeaders(br, &f); err != nil {
		return err
	}
	switch {
	case f.chunked:
		req.bodyLen, err = discardChunked(br)
	case f.contentLength > 0:
		req.bodyLen = f.contentLength
		err = discardN(br, f.contentLength)
	}
	if err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	req.close = f.close || (http10 && !f.keepAlive)
	return nil
}

// readResponse reads one response from br, body included, into resp, after
// skipping any 1xx interim responses. A response must be delimited by
// Content-Length or chunked encoding (or have no body by its status), since
// this client keeps its connection alive.
func readResponse(br *bufio.Reader, resp *response) error {
	for {
		*resp = response{}
		line, err := readLine(br)
		if err != nil {
			return eofIsUnexpected(err)
		}
		// "HTTP/1.1 202 Accepted": a version, a space, three digits, then a reason or nothing
		if len(line) < 12 || (len(line) > 12 && line[12] != ' ') || line[8] != ' ' {
			return fmt.Errorf("status line %q: %w", truncate(line), errMalformed)
		}
		http10, err := parseProto(line[:8])
		if err != nil {
			return fmt.Errorf("status line: %w", err)
		}
		code := line[9:12]
		if code[0] < '1' || code[0] > '5' || !isDigit(code[1]) || !isDigit(code[2]) {
			return fmt.Errorf("status code %q: %w", code, errMalformed)
		}
		resp.status = int(code[0]-'0')*100 + int(code[1]-'0')*10 + int(code[2]-'0')
		var f framing
		if err := readHeaders(br, &f); err != nil {
			return err
		}
		if resp.status == 101 {
			return fmt.Errorf("unexpected 101 switching protocols: %w", errMalformed)
		}
		if resp.status < 200 {
			continue // 100 Continue, 103 Early Hints: the real response follows
		}
		switch {
		case resp.status == 204 || resp.status == 304:
		case f.chunked:
			resp.bodyLen, err = discardChunked(br)
		case f.contentLength >= 0:
			resp.bodyLen = f.contentLength
			err = discardN(br, f.contentLength)
		default:
			return fmt.Errorf("status %d: response without content-length: %w", resp.status, errMalformed)
		}
		if err != nil {
			return fmt.Errorf("response body: %w", err)
		}
		resp.close = f.close || (http10 && !f.keepAlive)
		return nil
	}
}

// readHeaders reads header lines up to and including the empty line that
// ends them, recording the ones that frame the body.
func readHeaders(br *bufio.Reader, f *framing) error {
	*f = framing{contentLength: -1}
	for i := 0; ; i++ {
		line, err := readLine(br)
		if err != nil {
			return eofIsUnexpected(err)
		}
		if len(line) == 0 {
			break
		}
		if i == maxHeaderLines {
			return fmt.Errorf("more than %d header lines: %w", maxHeaderLines, errMalformed)
		}
		name, value, ok := bytes.Cut(line, []byte{':'})
		if !ok || !isToken(name) { // also rejects obsolete line folding
			return fmt.Errorf("header line %q: %w", truncate(line), errMalformed)
		}
		value = trimOWS(value)
		switch {
		case bytes.EqualFold(name, hdrContentLength):
			n, ok := parseDecimal(value)
			if !ok || (f.contentLength >= 0 && f.contentLength != n) {
				return fmt.Errorf("content-length %q: %w", truncate(value), errMalformed)
			}
			f.contentLength = n
		case bytes.EqualFold(name, hdrTransferEncoding):
			if f.chunked || !bytes.EqualFold(value, tokChunked) {
				return fmt.Errorf("unsupported transfer-encoding %q: %w", truncate(value), errMalformed)
			}
			f.chunked = true
		case bytes.EqualFold(name, hdrConnection):
			for len(value) > 0 {
				var tok []byte
				tok, value, _ = bytes.Cut(value, []byte{','})
				tok = trimOWS(tok)
				f.close = f.close || bytes.EqualFold(tok, tokClose)
				f.keepAlive = f.keepAlive || bytes.EqualFold(tok, tokKeepAlive)
			}
		}
	}
	if f.chunked && f.contentLength >= 0 {
		// RFC 9112 section 6.3: ambiguous framing, the usual request-smuggling vector
		return fmt.Errorf("both transfer-encoding and content-length: %w", errMalformed)
	}
	return nil
}

// discardChunked reads a chunked body and its trailers and returns the
// decoded length.
func discardChunked(br *bufio.Reader) (int64, error) {
	var total int64
	for {
		line, err := readLine(br)
		if err != nil {
			return total, eofIsUnexpected(err)
		}
		size, _, _ := bytes.Cut(line, []byte{';'}) // chunk extensions are ignored
		n, ok := parseHex(trimOWS(size))
		if !ok || total+n > maxBodyLen {
			return total, fmt.Errorf("chunk size %q: %w", truncate(line), errMalformed)
		}
		if n == 0 {
			for i := 0; ; i++ { // trailers
				line, err := readLine(br)
				if err != nil {
					return total, eofIsUnexpected(err)
				}
				if len(line) == 0 {
					return total, nil
				}
				if i == maxHeaderLines {
					return total, fmt.Errorf("more than %d trailer lines: %w", maxHeaderLines, errMalformed)
				}
			}
		}
		if err := discardN(br, n); err != nil {
			return total, err
		}
		total += n
		if line, err = readLine(br); err != nil {
			return total, eofIsUnexpected(err)
		}
		if len(line) != 0 {
			return total, fmt.Errorf("chunk not followed by CRLF: %w", errMalformed)
		}
	}
}

// readLine returns the next line without its line ending (CRLF, or a bare LF
// as RFC 9112 tolerates). The slice is only valid until the next read.
func readLine(br *bufio.Reader) ([]byte, error) {
	line, err := br.ReadSlice('\n')
	switch {
	case err == nil:
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("line longer than %d bytes: %w", br.Size(), errMalformed)
	case errors.Is(err, io.EOF) && len(line) > 0:
		return nil, io.ErrUnexpectedEOF
	default:
		return nil, err
	}
	line = line[:len(line)-1]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, nil
}

// discardN skips n bytes of body.
func discardN(br *bufio.Reader, n int64) error {
	for n > 0 {
		step := min(n, 1<<30)
		d, err := br.Discard(int(step))
		n -= int64(d)
		if err != nil {
			return eofIsUnexpected(err)
		}
	}
	return nil
}

// parseProto accepts HTTP/1.1 and HTTP/1.0 and reports which.
func parseProto(p []byte) (http10 bool, err error) {
	switch string(p) { // no allocation: the conversion only feeds the comparison
	case "HTTP/1.1":
		return false, nil
	case "HTTP/1.0":
		return true, nil
	}
	return false, fmt.Errorf("protocol %q: %w", truncate(p), errMalformed)
}

func parseDecimal(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, n <= maxBodyLen
}

func parseHex(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 13 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		switch {
		case isDigit(c):
			n = n<<4 | int64(c-'0')
		case 'a' <= c && c <= 'f':
			n = n<<4 | int64(c-'a'+10)
		case 'A' <= c && c <= 'F':
			n = n<<4 | int64(c-'A'+10)
		default:
			return 0, false
		}
	}
	return n, n <= maxBodyLen
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// isToken reports whether b is a non-empty RFC 9110 token (method, header name).
func isToken(b []byte) bool {
	if len(b) == 0 {
		return false
	}
	for _, c := range b {
		if c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

func trimOWS(b []byte) []byte { return bytes.Trim(b, " \t") }

func eofIsUnexpected(err error) error {
	if errors.Is(err, io.EOF) {
		return io.ErrUnexpectedEOF
	}
	return err
}

// truncate keeps error messages short when the input is garbage.
func truncate(b []byte) []byte {
	if len(b) > 40 {
		return b[:40]
	}
	return b
}
