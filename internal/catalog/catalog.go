// Package catalog renders the connector registry for people: the
// `sous connectors` listing and detail, and docs/connectors.md.
package catalog

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/sous-run/sous/engine/connector"
)

// List prints one line per component.
func List(w io.Writer, reg *connector.Registry) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tKIND\tCONNECTION\tSUMMARY")
	for _, s := range reg.Specs("") {
		conn := s.Connection
		if conn == "" {
			conn = "-"
		} else if !s.ConnectionRequired {
			conn += " (optional)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.ID, s.Kind, conn, s.Summary)
	}
	return tw.Flush()
}

// Fires says how a trigger's events come, from its spec's Trigger: ""
// for an action or a trigger that declares none.
func Fires(s *connector.Spec) string {
	t := s.Trigger
	if t == nil {
		return ""
	}
	switch {
	case t.Kind == connector.Receive && t.Key == connector.KeyField:
		return fmt.Sprintf("on each request to `/hooks<%s>`; recipes sharing a %s must agree on its other options", t.KeyField, t.KeyField)
	case t.Kind == connector.Receive && t.PollWhen != nil:
		return fmt.Sprintf("on the service's webhooks at `POST /hooks/%s/<connection>` (every recipe on the connection sees each event), or, for a recipe whose options ask for it, by polling the service from a saved cursor (one poller per connection and options, across processes)", s.Service())
	case t.Kind == connector.Receive:
		return fmt.Sprintf("on the service's webhooks at `POST /hooks/%s/<connection>`; every recipe on the connection sees each event", s.Service())
	case t.Kind == connector.Poll:
		return "by polling the service from a saved cursor; one poller per connection and options, across processes"
	case t.Kind == connector.Clock:
		return "on its schedule, once per tick across processes"
	}
	return ""
}

// Describe prints one component in full: fields, shape and an example.
func Describe(w io.Writer, s *connector.Spec) error {
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s (%s)\n  %s\n", s.ID, s.Kind, s.Summary)
	if s.Description != "" {
		fmt.Fprintf(&b, "\n%s\n", wrap(s.Description, 78, "  "))
	}
	if s.Connection != "" {
		req := "optional"
		if s.ConnectionRequired {
			req = "required"
		}
		fmt.Fprintf(&b, "\nConnection: type %s (%s)\n", s.Connection, req)
	}
	if how := Fires(s); how != "" {
		fmt.Fprintf(&b, "\nFires: %s\n", strings.ReplaceAll(how, "`", ""))
	}
	fmt.Fprintln(&b, "\nFields (with):")
	tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
	for _, f := range s.Fields {
		fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", f.Name, f.Type, flags(f), f.Description)
	}
	tw.Flush()
	label := "Event (event.*)"
	if s.Kind == connector.KindAction {
		label = "Output (steps.<id>.output.*)"
	}
	fmt.Fprintf(&b, "\n%s:\n", label)
	writeShape(&b, s.Shape, "  ", "")
	fmt.Fprintf(&b, "\nExample:\n%s", indent(Example(s), "  "))
	_, err := w.Write(b.Bytes())
	return err
}

// DescribeService writes what a service (a connector name: the part of
// the IDs before the dot, as slack) offers: its connection type and that
// type's fields, then its triggers and actions, one line each. It reports
// false when the registry knows no such service.
func DescribeService(w io.Writer, reg *connector.Registry, name string) (bool, error) {
	var specs []*connector.Spec
	for _, kind := range []connector.Kind{connector.KindTrigger, connector.KindAction} {
		for _, s := range reg.Specs(kind) {
			if strings.HasPrefix(s.ID, name+".") {
				specs = append(specs, s)
			}
		}
	}
	conn, hasConn := reg.Connection(name)
	if len(specs) == 0 && !hasConn {
		return false, nil
	}
	var b bytes.Buffer
	fmt.Fprintf(&b, "%s\n", name)
	if hasConn {
		fmt.Fprintf(&b, "\nConnection type %s: %s\n", conn.Type, conn.Summary)
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		var rows func(prefix string, fields []connector.Field)
		rows = func(prefix string, fields []connector.Field) {
			for _, f := range fields {
				fmt.Fprintf(tw, "  %s%s\t%s\t%s\t%s\n", prefix, f.Name, f.Type, flags(f), f.Description)
				rows(prefix+f.Name+".", f.Fields)
			}
		}
		rows("", conn.Fields)
		tw.Flush()
		if len(conn.OneOf) > 0 {
			sets := make([]string, len(conn.OneOf))
			for i, set := range conn.OneOf {
				sets[i] = strings.Join(set, " and ")
			}
			fmt.Fprintf(&b, "  Set %s.\n", strings.Join(sets, ", or "))
		}
	}
	if len(specs) > 0 {
		fmt.Fprintln(&b, "\nTriggers and actions ('sous connectors ID' describes one):")
		tw := tabwriter.NewWriter(&b, 0, 4, 2, ' ', 0)
		for _, s := range specs {
			fmt.Fprintf(tw, "  %s\t%s\t%s\n", s.ID, s.Kind, s.Summary)
		}
		tw.Flush()
	}
	_, err := w.Write(b.Bytes())
	return true, err
}

func flags(f connector.Field) string {
	var parts []string
	if f.Required {
		parts = append(parts, "required")
	}
	if f.Secret {
		parts = append(parts, "secret")
	}
	if f.Default != nil {
		parts = append(parts, "default "+show(f.Default))
	}
	if len(f.Enum) > 0 {
		parts = append(parts, "one of "+strings.Join(f.Enum, "|"))
	}
	if len(parts) == 0 {
		return "-"
	}
	return strings.Join(parts, ", ")
}

func show(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case fmt.Stringer:
		return x.String()
	}
	b, _ := json.Marshal(v)
	return string(b)
}

func writeShape(w io.Writer, s *connector.Shape, ind, name string) {
	if s == nil {
		fmt.Fprintf(w, "%s(any)\n", ind)
		return
	}
	for _, p := range s.Props {
		desc := ""
		if p.Shape.Description != "" {
			desc = ": " + p.Shape.Description
		}
		fmt.Fprintf(w, "%s%s%s (%s)%s\n", ind, name, p.Name, p.Shape.Type, desc)
		if p.Shape.Type == connector.Object && len(p.Shape.Props) > 0 {
			writeShape(w, p.Shape, ind+"  ", "")
		}
		if p.Shape.Type == connector.List && p.Shape.Elem != nil && len(p.Shape.Elem.Props) > 0 {
			writeShape(w, p.Shape.Elem, ind+"  ", "[]")
		}
	}
}

// Example is a YAML snippet using the component with its required fields
// and examples.
func Example(s *connector.Spec) string {
	var b strings.Builder
	if s.Kind == connector.KindTrigger {
		fmt.Fprintf(&b, "trigger:\n  type: %s\n", s.ID)
		if s.Connection != "" {
			fmt.Fprintf(&b, "  connection: %s\n", s.Connection)
		}
		writeWith(&b, s, "  ")
		return b.String()
	}
	fmt.Fprintf(&b, "steps:\n  - id: %s\n    action: %s\n", strings.ReplaceAll(strings.SplitN(s.ID, ".", 2)[1], ".", "_"), s.ID)
	if s.ConnectionRequired {
		fmt.Fprintf(&b, "    connection: %s\n", s.Connection)
	}
	writeWith(&b, s, "    ")
	return b.String()
}

func writeWith(b *strings.Builder, s *connector.Spec, ind string) {
	var lines []string
	for _, f := range s.Fields {
		if f.Example == nil || (!f.Required && len(lines) >= 3) {
			continue
		}
		v, _ := json.Marshal(f.Example)
		if str, ok := f.Example.(string); ok && !strings.ContainsAny(str, ":#{}\"'") {
			v = []byte(str)
		}
		lines = append(lines, fmt.Sprintf("%s  %s: %s\n", ind, f.Name, v))
	}
	if len(lines) == 0 {
		return
	}
	b.WriteString(ind + "with:\n")
	for _, l := range lines {
		b.WriteString(l)
	}
}

// Markdown renders docs/connectors.md.
func Markdown(reg *connector.Registry) []byte {
	var b bytes.Buffer
	b.WriteString("# Connectors\n\n<!-- Generated from the connector specs by `make generate`. Do not edit. -->\n\n")
	b.WriteString("Every trigger and action with its `with` fields and the shape of its event or output. ")
	b.WriteString("`sous connectors ID` prints the same in a terminal, and `sous connectors SERVICE` (slack, jira...) a connection type with its service's triggers and actions.\n\n")
	b.WriteString("| ID | kind | summary |\n| --- | --- | --- |\n")
	for _, s := range reg.Specs("") {
		fmt.Fprintf(&b, "| [`%s`](#%s) | %s | %s |\n", s.ID, anchor(s.ID), s.Kind, s.Summary)
	}
	for _, s := range reg.Specs("") {
		fmt.Fprintf(&b, "\n## %s\n\n%s (%s).", s.ID, s.Summary, s.Kind)
		if s.Description != "" {
			fmt.Fprintf(&b, " %s", s.Description)
		}
		b.WriteString("\n\n")
		if s.Connection != "" {
			req := "optional"
			if s.ConnectionRequired {
				req = "required"
			}
			fmt.Fprintf(&b, "Connection: type `%s` (%s).\n\n", s.Connection, req)
		}
		if how := Fires(s); how != "" {
			fmt.Fprintf(&b, "Fires: %s.\n\n", how)
		}
		if len(s.Fields) > 0 {
			b.WriteString("| field | type | required | default | description |\n| --- | --- | --- | --- | --- |\n")
			for _, f := range s.Fields {
				def := ""
				if f.Default != nil {
					def = "`" + show(f.Default) + "`"
				}
				desc := f.Description
				if len(f.Enum) > 0 {
					desc += "; one of " + strings.Join(f.Enum, ", ")
				}
				if f.Secret {
					desc += " (secret)"
				}
				req := ""
				if f.Required {
					req = "yes"
				}
				fmt.Fprintf(&b, "| `%s` | %s | %s | %s | %s |\n", f.Name, f.Type, req, def, strings.ReplaceAll(desc, "|", "\\|"))
			}
			b.WriteString("\n")
		}
		if s.Kind == connector.KindTrigger {
			b.WriteString("Event (`event.*`):\n\n")
		} else {
			b.WriteString("Output (`steps.<id>.output.*`):\n\n")
		}
		var sh bytes.Buffer
		writeShape(&sh, s.Shape, "", "")
		for _, line := range strings.Split(strings.TrimRight(sh.String(), "\n"), "\n") {
			trimmed := strings.TrimLeft(line, " ")
			fmt.Fprintf(&b, "%s- %s\n", line[:len(line)-len(trimmed)], trimmed)
		}
		fmt.Fprintf(&b, "\n```yaml\n%s```\n", Example(s))
	}
	var conns []string
	for _, c := range reg.Connections() {
		conns = append(conns, c.Type)
	}
	sort.Strings(conns)
	if len(conns) > 0 {
		b.WriteString("\n# Connection types\n\nConnections live in the config file (`sous.yaml`); `${VAR}` reads the environment. " +
			"The config is checked against each type's fields. A type that no trigger or action above names is used by " +
			"`sous connect` and `sous connections` (docs/connections.md), and by no step yet.\n")
		for _, c := range reg.Connections() {
			fmt.Fprintf(&b, "\n## %s\n\n%s.\n\n| field | type | default | description |\n| --- | --- | --- | --- |\n", c.Type, c.Summary)
			connectionRows(&b, "", c.Fields)
			if len(c.OneOf) > 0 {
				var alts []string
				for _, set := range c.OneOf {
					alts = append(alts, "`"+strings.Join(set, "` and `")+"`")
				}
				fmt.Fprintf(&b, "\nSet %s.\n", strings.Join(alts, ", or "))
			}
			if len(c.Requires) > 0 {
				names := make([]string, 0, len(c.Requires))
				for name := range c.Requires {
					names = append(names, name)
				}
				sort.Strings(names)
				for _, name := range names {
					fmt.Fprintf(&b, "`%s` needs `%s`.\n", name, strings.Join(c.Requires[name], "` and `"))
				}
			}
		}
	}
	return b.Bytes()
}

// connectionRows writes a table row per field, and one per key of an
// object field (as oauth.client_id).
func connectionRows(b *bytes.Buffer, prefix string, fields []connector.Field) {
	for _, f := range fields {
		desc := f.Description
		if f.Secret {
			desc += " (secret)"
		}
		if f.Required {
			desc += " (required)"
		}
		def := ""
		if f.Default != nil {
			def = "`" + show(f.Default) + "`"
		}
		fmt.Fprintf(b, "| `%s%s` | %s | %s | %s |\n", prefix, f.Name, f.Type, def, desc)
		if len(f.Fields) > 0 {
			connectionRows(b, prefix+f.Name+".", f.Fields)
		}
	}
}

func anchor(id string) string { return strings.ReplaceAll(id, ".", "") }

func wrap(s string, width int, ind string) string {
	var lines []string
	line := ind
	for _, w := range strings.Fields(s) {
		if len(line)+len(w)+1 > width && strings.TrimSpace(line) != "" {
			lines = append(lines, line)
			line = ind
		}
		if strings.TrimSpace(line) != "" {
			line += " "
		}
		line += w
	}
	lines = append(lines, line)
	return strings.Join(lines, "\n")
}

func indent(s, ind string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	for i, l := range lines {
		lines[i] = ind + l
	}
	return strings.Join(lines, "\n") + "\n"
}
