package httpx

import (
	"errors"
	"fmt"
	"io"
	"math"
)

// DefaultMaxBody is how much of a response body is read unless a connector
// says otherwise: 10 MiB.
const DefaultMaxBody = 10 << 20

// ErrBodyTooLarge is what errors.Is finds in the error of a body read past
// its limit, by ReadBody or through a Transport. ClassifyTransport makes it
// permanent client_error.
var ErrBodyTooLarge = errors.New("response body is too large")

// bodyTooLargeError is a read past limit bytes.
type bodyTooLargeError struct{ limit int64 }

func (e *bodyTooLargeError) Error() string {
	return fmt.Sprintf("response body is larger than %d bytes", e.limit)
}

func (e *bodyTooLargeError) Is(target error) bool { return target == ErrBodyTooLarge }

// ReadBody reads r to its end, at most limit bytes of it (limit ≤ 0 means
// DefaultMaxBody). A body of exactly limit bytes is read whole; a longer
// one is an error that matches ErrBodyTooLarge and says the limit, after
// reading one byte past it. A failed read returns r's error as it is, for
// TransportError or ClassifyTransport.
func ReadBody(r io.Reader, limit int64) ([]byte, error) {
	if limit <= 0 {
		limit = DefaultMaxBody
	}
	if limit == math.MaxInt64 {
		return io.ReadAll(r)
	}
	b, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err // as it is: the caller's message says what was read
	}
	if int64(len(b)) > limit {
		return nil, &bodyTooLargeError{limit: limit}
	}
	return b, nil
}
