package main

import (
	"bufio"
	"errors"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

const (
	sinkOK      = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\n\r\n{\"ok\":true}"
	sinkOKClose = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 11\r\nConnection: close\r\n\r\n{\"ok\":true}"
	sinkBad     = "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
)

// sinkServer is the endpoint the benchmarked recipe delivers to: a minimal
// HTTP/1.1 keep-alive server that reads each request, body included, counts
// it and answers 200 {"ok":true}. A request it cannot parse gets a 400 and
// the connection is closed.
type sinkServer struct {
	ln        net.Listener
	delivered atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup
}

// startSink serves on ln until Close.
func startSink(ln net.Listener) *sinkServer {
	s := &sinkServer{ln: ln, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.serve()
	return s
}

func (s *sinkServer) serve() {
	defer s.wg.Done()
	for {
		conn, err := s.ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			time.Sleep(5 * time.Millisecond) // e.g. out of file descriptors
			continue
		}
		if !s.track(conn) {
			conn.Close()
			return
		}
		go s.handle(conn)
	}
}

func (s *sinkServer) track(conn net.Conn) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.conns[conn] = struct{}{}
	s.wg.Add(1)
	return true
}

func (s *sinkServer) handle(conn net.Conn) {
	defer func() {
		conn.Close()
		s.mu.Lock()
		delete(s.conns, conn)
		s.mu.Unlock()
		s.wg.Done()
	}()
	br := bufio.NewReaderSize(conn, 4096)
	bw := bufio.NewWriterSize(conn, 512)
	var req request
	for {
		if err := readRequest(br, &req); err != nil {
			if errors.Is(err, errMalformed) {
				_, _ = bw.WriteString(sinkBad)
				_ = bw.Flush()
			}
			return
		}
		s.delivered.Add(1)
		answer := sinkOK
		if req.close {
			answer = sinkOKClose
		}
		_, _ = bw.WriteString(answer)
		if err := bw.Flush(); err != nil || req.close {
			return
		}
	}
}

// Close stops accepting, closes every connection and waits for their
// goroutines.
func (s *sinkServer) Close() error {
	s.mu.Lock()
	s.closed = true
	err := s.ln.Close()
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	s.wg.Wait()
	return err
}
