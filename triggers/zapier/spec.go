package zapier

import (
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"github.com/sous-run/sous/engine/connector"
)

// Field names of zapier.action.
const (
	FieldName   = "name"
	FieldInputs = "inputs"
)

// InputTypes are the types an input field may declare.
var InputTypes = []string{"string", "number", "integer", "boolean", "datetime"}

var keyRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Action is the spec of zapier.action.
var Action = &connector.Spec{
	ID:      "zapier.action",
	Kind:    connector.KindTrigger,
	Summary: "Zapier asked Sous to run this recipe (a Zap's \"Start recipe\" action)",
	Description: "Starts a run for each `POST /api/v1/zapier/actions/{name}` (API key required) with the name of " +
		"`name`. The body's fields (or its `input` object) are checked against `inputs`: a missing required field " +
		"or a value of the wrong type is answered 400 naming the field, and nothing runs. Numbers, integers and " +
		"booleans may come as text, as Zapier sends what its user typed; a datetime is RFC 3339. `wait` (query or " +
		"body, up to 25 s) answers with the run's outputs once it finished. `GET /api/v1/zapier/actions` lists " +
		"the names and their input fields, which the Zapier app shows as the action's fields.",
	Fields: []connector.Field{
		{Name: FieldName, Type: connector.String, Required: true, Pattern: `^[a-z0-9][a-z0-9_-]{0,62}$`,
			PatternHelp: "must be lower case letters, digits, _ and -", Description: "The action's name in Zapier",
			Example: "create-order"},
		{Name: FieldInputs, Type: connector.List, Default: []any{}, Check: checkInputs,
			Description: "The input fields: a list of {key, type (string, number, integer, boolean, datetime; " +
				"default string), required, label, help}",
			Example: []any{map[string]any{"key": "email", "type": "string", "required": true, "help": "Who ordered"},
				map[string]any{"key": "quantity", "type": "integer"}}},
	},
	Channel: &connector.ChannelUse{Name: "zapier", TopicField: FieldName, InputsField: FieldInputs},
	Shape: connector.Obj(
		connector.P("action", connector.Leaf(connector.String, "The action's name")),
		connector.P("input", connector.OpenObj(nil).Describe("The input, checked and coerced to the declared types")),
		connector.P("meta", connector.OpenObj(nil).Describe("What the caller sent beside the input (Zapier's zap id, say)")),
	),
}

// checkInputs checks an inputs declaration.
func checkInputs(v any) error {
	list, ok := v.([]any)
	if !ok {
		return errors.New("want a list of input fields")
	}
	seen := map[string]bool{}
	for i, e := range list {
		m, ok := e.(map[string]any)
		if !ok {
			return fmt.Errorf("inputs[%d]: want an object with key and type", i)
		}
		for k := range m {
			if !slices.Contains([]string{"key", "type", "required", "label", "help"}, k) {
				return fmt.Errorf("inputs[%d]: unknown key %q (key, type, required, label, help)", i, k)
			}
		}
		key, _ := m["key"].(string)
		if !keyRE.MatchString(key) {
			return fmt.Errorf("inputs[%d]: key must be a name of letters, digits and _ (%q)", i, key)
		}
		if seen[key] {
			return fmt.Errorf("inputs[%d]: key %q declared twice", i, key)
		}
		seen[key] = true
		if t, ok := m["type"]; ok {
			ts, _ := t.(string)
			if !slices.Contains(InputTypes, ts) {
				return fmt.Errorf("inputs[%d] (%s): type must be one of %s", i, key, strings.Join(InputTypes, ", "))
			}
		}
		if r, ok := m["required"]; ok {
			if _, ok := r.(bool); !ok {
				return fmt.Errorf("inputs[%d] (%s): required must be true or false", i, key)
			}
		}
		for _, k := range []string{"label", "help"} {
			if x, ok := m[k]; ok {
				if _, ok := x.(string); !ok {
					return fmt.Errorf("inputs[%d] (%s): %s must be text", i, key, k)
				}
			}
		}
	}
	return nil
}

func init() { connector.Register(Action) }
