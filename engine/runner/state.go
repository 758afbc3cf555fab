package runner

// RedactState returns st with the runner's secrets redacted from the
// steps' outputs, as a run's record has them: what a checkpoint stores
// (see Checkpoint), so that a stored checkpoint never holds a secret in
// clear. A run resumed from it sees the outputs so redacted, as a replay
// from a failed step sees the recorded ones: a later step that needs a
// secret reads it from secrets, not from an earlier step's output. The
// steps' records and attempts in st are redacted already. st itself is
// not changed (the run goes on with the real outputs); nil gives nil.
func (r *Runner) RedactState(st *State) *State {
	if st == nil || len(st.Outputs) == 0 {
		return st
	}
	red := newRedactor(r.Secrets, r.Redact)
	out := *st
	out.Outputs = make(map[string]map[string]any, len(st.Outputs))
	for id, o := range st.Outputs {
		out.Outputs[id] = red.map_(o)
	}
	return &out
}
