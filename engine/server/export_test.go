package server

import "time"

// SetClock makes the server read the time from now.
func SetClock(s *Server, now func() time.Time) { s.now = now }
