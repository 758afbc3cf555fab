package jira

import "strings"

// ADF turns plain text into an Atlassian Document Format document (what
// API v3 takes for descriptions and comments): paragraphs split on blank
// lines, line breaks within one kept as hardBreak nodes.
func ADF(text string) map[string]any {
	text = strings.ReplaceAll(text, "\r\n", "\n")
	content := []any{}
	for _, para := range strings.Split(text, "\n\n") {
		para = strings.Trim(para, "\n")
		if strings.TrimSpace(para) == "" {
			continue
		}
		var nodes []any
		for i, line := range strings.Split(para, "\n") {
			if i > 0 {
				nodes = append(nodes, map[string]any{"type": "hardBreak"})
			}
			if line != "" {
				nodes = append(nodes, map[string]any{"type": "text", "text": line})
			}
		}
		content = append(content, map[string]any{"type": "paragraph", "content": nodes})
	}
	return map[string]any{"type": "doc", "version": 1, "content": content}
}

// PlainText is the text of an ADF document (or a string as is): the text
// nodes, paragraphs separated by blank lines.
func PlainText(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case map[string]any:
		var b strings.Builder
		walkADF(x, &b)
		return strings.TrimRight(b.String(), "\n")
	}
	return ""
}

func walkADF(n map[string]any, b *strings.Builder) {
	switch n["type"] {
	case "text":
		s, _ := n["text"].(string)
		b.WriteString(s)
		return
	case "hardBreak":
		b.WriteString("\n")
		return
	}
	kids, _ := n["content"].([]any)
	for _, k := range kids {
		if m, ok := k.(map[string]any); ok {
			walkADF(m, b)
		}
	}
	if n["type"] == "paragraph" || n["type"] == "heading" {
		b.WriteString("\n\n")
	}
}
