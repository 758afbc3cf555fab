package pipeline

import (
	"github.com/ThreeDotsLabs/watermill/message"
	"github.com/ThreeDotsLabs/watermill/message/router/middleware"
)

// retryOnError is Watermill's Retry middleware, set up only for a
// handler that failed. Retry builds a backoff, its options and a timer
// for every message before it calls the handler (about 25 allocations a
// message); nearly every message succeeds at once, so the handler runs
// first on its own, and only its error goes through Retry: Retry's first
// attempt returns that error instead of running the handler again, then
// waits and retries as configured. The attempts, delays and ShouldRetry
// are Retry's own.
func retryOnError(r middleware.Retry) message.HandlerMiddleware {
	return func(h message.HandlerFunc) message.HandlerFunc {
		return func(msg *message.Message) ([]*message.Message, error) {
			out, err := h(msg)
			if err == nil {
				return out, nil
			}
			first := true
			return r.Middleware(func(msg *message.Message) ([]*message.Message, error) {
				if first {
					first = false
					return out, err
				}
				return h(msg)
			})(msg)
		}
	}
}
