package store

import "encoding/json"

// MarshalJSON writes a run as the API and the CLI show it: its duration
// in milliseconds (duration_ms), not Go's nanoseconds.
func (r Run) MarshalJSON() ([]byte, error) {
	type plain Run // without the method
	return json.Marshal(struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}{plain(r), Milliseconds(r.Duration)})
}

// UnmarshalJSON reads what MarshalJSON writes.
func (r *Run) UnmarshalJSON(b []byte) error {
	type plain Run
	var v struct {
		plain
		DurationMS float64 `json:"duration_ms"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*r = Run(v.plain)
	r.Duration = fromMilliseconds(v.DurationMS)
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
