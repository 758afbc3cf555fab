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

// Written returns the trigger's options as the recipe wrote them: literal
// values as they are and each template as its source text ("{{ secrets.X
// }}"), so that two recipes' options can be compared before any secret
// is known (`sous validate`, recipes sharing a webhook path).
func (t *Trigger) Written() map[string]any {
	m, _ := written(t.with).(map[string]any)
	return m
}

func written(v Value) any {
	switch x := v.(type) {
	case nil:
		return nil
	case literal:
		return x.v
	case single:
		return "{{ " + x.e.Source + " }}"
	case interp:
		var b []byte
		for _, p := range x.parts {
			if p.e == nil {
				b = append(b, p.text...)
			} else {
				b = append(b, "{{ "+p.e.Source+" }}"...)
			}
		}
		return string(b)
	case mapValue:
		out := make(map[string]any, len(x))
		for _, f := range x {
			out[f.key] = written(f.val)
		}
		return out
	case listValue:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = written(e)
		}
		return out
	}
	out, _ := v.Render(nil)
	return out
}
