package recipes

// Literal returns the value of a step's `with` field as the recipe wrote
// it, when it holds no template: what the runtime can know of a step
// before any run (the event name of a zapier.notify step, say). ok is
// false when the field is absent or is rendered per run.
func (s *Step) Literal(field string) (v any, ok bool) {
	m, isMap := s.with.(mapValue)
	if !isMap {
		return nil, false
	}
	fv, set := m.get(field)
	if !set || !fv.Static() {
		return nil, false
	}
	out, err := fv.Render(nil)
	return out, err == nil
}
