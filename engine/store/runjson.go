package store

import (
	"bytes"
	"encoding/json"
	"time"
)

// MarshalJSON writes a run as the API and the CLI show it: its duration
// in milliseconds (duration_ms), not Go's nanoseconds, and no time that
// is not set (a run still running has no finished_at). Its record, the
// runner's, is shown the same way (see RecordView).
func (r Run) MarshalJSON() ([]byte, error) {
	type plain Run // without the method
	return json.Marshal(struct {
		plain
		StartedAt  *time.Time      `json:"started_at,omitempty"`
		FinishedAt *time.Time      `json:"finished_at,omitempty"`
		DurationMS float64         `json:"duration_ms"`
		Record     json.RawMessage `json:"record,omitempty"`
	}{plain(r), timeOrNil(r.StartedAt), timeOrNil(r.FinishedAt), Milliseconds(r.Duration), RecordView(r.Record)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Run) UnmarshalJSON(b []byte) error {
	type plain Run
	var v struct {
		plain
		DurationMS float64         `json:"duration_ms"`
		Record     json.RawMessage `json:"record,omitempty"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Run(v.plain)
	r.Duration = fromMilliseconds(v.DurationMS)
	r.Record = recordStored(v.Record)
	return nil
}

// MarshalJSON writes a step with its duration in milliseconds.
func (s RunStep) MarshalJSON() ([]byte, error) {
	type plain RunStep
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(s), Milliseconds(s.Duration)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (s *RunStep) UnmarshalJSON(b []byte) error {
	type plain RunStep
	var v struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*s = RunStep(v.plain)
	s.Duration = fromMilliseconds(v.DurationMS)
	return nil
}

func timeOrNil(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// RecordView rewrites a run's record (the runner's result, as stored) as
// the API and the CLI show it: the run's duration, and each attempt's
// duration and delay, in milliseconds (duration_ms, delay_ms) rather than
// nanoseconds, and no time that is not set (retry_at of a finished run,
// the started of an attempt never made). Only those places change: the
// inputs and outputs of steps are left as they are, whatever their keys.
// A record that is not a JSON object is returned as it is.
func RecordView(raw json.RawMessage) json.RawMessage {
	return rewriteRecord(raw, func(m map[string]any) {
		for _, k := range []string{"started", "retry_at"} {
			dropZeroTime(m, k)
		}
		toMS(m, "duration")
	}, func(a map[string]any) {
		dropZeroTime(a, "started")
		toMS(a, "duration")
		toMS(a, "delay")
	})
}

// recordStored is the inverse of RecordView: the record as stored.
func recordStored(raw json.RawMessage) json.RawMessage {
	return rewriteRecord(raw, func(m map[string]any) {
		fromMS(m, "duration")
	}, func(a map[string]any) {
		fromMS(a, "duration")
		fromMS(a, "delay")
	})
}

// rewriteRecord applies run to the record's object and attempt to each
// object in steps[].attempts[].
func rewriteRecord(raw json.RawMessage, run, attempt func(map[string]any)) json.RawMessage {
	if len(raw) == 0 {
		return raw
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber() // numbers in outputs stay as they were written
	var m map[string]any
	if err := dec.Decode(&m); err != nil || m == nil {
		return raw
	}
	run(m)
	steps, _ := m["steps"].([]any)
	for _, s := range steps {
		sm, _ := s.(map[string]any)
		attempts, _ := sm["attempts"].([]any)
		for _, a := range attempts {
			if am, ok := a.(map[string]any); ok {
				attempt(am)
			}
		}
	}
	out, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return out
}

func dropZeroTime(m map[string]any, key string) {
	s, ok := m[key].(string)
	if !ok {
		return
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil && t.IsZero() {
		delete(m, key)
	}
}

// toMS replaces a duration in nanoseconds under key with key_ms.
func toMS(m map[string]any, key string) {
	n, ok := m[key].(json.Number)
	if !ok {
		return
	}
	ns, err := n.Int64()
	if err != nil {
		return
	}
	delete(m, key)
	m[key+"_ms"] = Milliseconds(time.Duration(ns))
}

// fromMS replaces key_ms, in milliseconds, with key in nanoseconds.
func fromMS(m map[string]any, key string) {
	n, ok := m[key+"_ms"].(json.Number)
	if !ok {
		return
	}
	ms, err := n.Float64()
	if err != nil {
		return
	}
	delete(m, key+"_ms")
	m[key] = int64(fromMilliseconds(ms))
}
