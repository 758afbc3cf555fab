package runner

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"
)

// allForms lists every form (encodings) of every value, distinct, longest
// first (then in order, so that equal sets give equal lists).
func allForms(values []string) []string {
	var forms []string
	for _, v := range values {
		forms = append(forms, encodings(v)...)
	}
	return longestFirst(forms)
}

// encodings lists the forms in which a record may hold the secret s: an
// action puts it in a URL, or a remote echoes it back encoded. They are s
// itself;
//   - percent-escaped as in a query (space as +, or as %20), as in a path
//     segment and as in a path, with upper- or lower-case hex digits;
//   - base64, standard and URL alphabets, padded and not: of s alone, and
//     when s is inside a longer text (user:secret in a Basic auth header),
//     at each of the three alignments, the characters only s decides (the
//     one at each end shared with the bytes around s is left: it holds up
//     to four bits of s);
//   - hex, lower and upper case;
//   - JSON-escaped, as Go's encoding/json writes it (<, > and & escaped as
//     \u003c and so on) and without escaping those, each also with every
//     non-ASCII character escaped as \uXXXX (as Python's json and .NET's
//     do; with lower- or upper-case hex digits), and as PHP's json_encode
//     writes it (/ as \/ too).
func encodings(s string) []string {
	out := []string{s}
	path := (&url.URL{Path: s}).EscapedPath() // as a URL's path holds it: / is kept
	for _, e := range []string{url.QueryEscape(s), strings.ReplaceAll(url.QueryEscape(s), "+", "%20"), url.PathEscape(s), path} {
		out = append(out, e, lowerEscapes(e))
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		out = append(out, enc.EncodeToString([]byte(s)))
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		out = append(out, base64Inside(s, enc)...)
	}
	h := hex.EncodeToString([]byte(s))
	out = append(out, h, strings.ToUpper(h))
	for _, html := range []bool{true, false} {
		ascii := asciiJSONEscaped(s, html)
		out = append(out, jsonEscaped(s, html), ascii, upperUnicodeEscapes(ascii))
	}
	// PHP's json_encode: / as \/, non-ASCII as \uXXXX, <, > and & as they are
	out = append(out, strings.ReplaceAll(asciiJSONEscaped(s, false), "/", `\/`))
	return out
}

// base64Inside lists the base64 of s inside a longer text, one for each
// of the three alignments of s to the groups of three bytes that base64
// encodes: the characters whose six bits all come from s.
func base64Inside(s string, enc *base64.Encoding) []string {
	var out []string
	for k := range 3 { // s starts at byte k of a group
		from := (3 - k) % 3 // the bytes of s in that group
		var b strings.Builder
		if from > 0 {
			// the last from characters of the group's four: k bytes
			// before s fill its first ones
			g := make([]byte, 3)
			copy(g[k:], s[:from])
			b.WriteString(enc.EncodeToString(g)[4-from:])
		}
		n := (len(s) - from) / 3 * 3 // the whole groups s fills
		b.WriteString(enc.EncodeToString([]byte(s[from : from+n])))
		if r := len(s) - from - n; r > 0 {
			// the first r characters of the group the bytes after s end
			g := make([]byte, 3)
			copy(g, s[from+n:])
			b.WriteString(enc.EncodeToString(g)[:r])
		}
		out = append(out, b.String())
	}
	return out
}

// lowerEscapes is a percent-escaped text with lower-case hex digits.
func lowerEscapes(e string) string {
	if !strings.Contains(e, "%") {
		return e
	}
	b := []byte(e)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHex(b[i+1]), lowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHex(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// jsonEscaped is s as encoding/json writes it in a string, without the
// quotes; html escapes <, > and & too (json.Marshal does).
func jsonEscaped(s string, html bool) string {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(html)
	if err := enc.Encode(s); err != nil {
		return s // a string always encodes
	}
	b := bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	return string(b[1 : len(b)-1])
}

// upperUnicodeEscapes writes the hex digits of the \uXXXX escapes of a
// JSON-escaped text in upper case.
func upperUnicodeEscapes(e string) string {
	if !strings.Contains(e, `\u`) {
		return e
	}
	b := []byte(e)
	for i := 0; i+5 < len(b); i++ {
		switch {
		case b[i] == '\\' && b[i+1] == 'u':
			copy(b[i+2:i+6], bytes.ToUpper(b[i+2:i+6]))
			i += 5
		case b[i] == '\\':
			i++ // an escaped character, a backslash maybe
		}
	}
	return string(b)
}

// asciiJSONEscaped is s JSON-escaped with every non-ASCII character as
// \uXXXX (a pair of them past U+FFFF).
func asciiJSONEscaped(s string, html bool) string {
	plain := jsonEscaped(s, html)
	var b strings.Builder
	for _, r := range plain {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xFFFF:
			r -= 0x10000
			fmt.Fprintf(&b, `\u%04x\u%04x`, 0xD800+(r>>10), 0xDC00+(r&0x3FF))
		default:
			fmt.Fprintf(&b, `\u%04x`, r)
		}
	}
	return b.String()
}

// headSet tells in one pass over a text whether one of many values is in
// it. Every value is at least min bytes long, so that an occurrence of one
// spans min-3 positions where four bytes of it start: looking at every
// step-th position of the text (step at most min-3) finds each occurrence
// at one of them. The four bytes at each of the first step positions of
// every value set a bit of a bitmap (and are listed, with the value and
// the position, in cands); the four bytes at each position looked at in
// the text are looked up in the bitmap, and only where a bit is set are
// the values listed compared.
type headSet struct {
	min int // the length of the shortest value
	// step is the distance between the positions looked at: min-3, at
	// most maxHeadStep, so that a long secret (a key file) costs cands
	// maxHeadStep entries per form, not one per byte
	step  int
	bits  [headSlots / 64]uint64
	cands map[uint32][]headCand
}

// headCand is a value with four bytes at off.
type headCand struct {
	value, off int32
}

const (
	headBits  = 14
	headSlots = 1 << headBits
	// maxHeadStep bounds headSet's step: looking at every 64th byte of a
	// text costs little more than at every 1000th
	maxHeadStep = 64
)

// every value has the four bytes headSet looks up
var _ [minSecretLen - 4]struct{}

// newHeadSet is the set of values, sorted longest first.
func newHeadSet(values []string) *headSet {
	h := &headSet{min: len(values[len(values)-1]), cands: map[uint32][]headCand{}}
	h.step = min(h.min-3, maxHeadStep)
	for vi, v := range values {
		for off := range h.step {
			w := word(v, off)
			x := headSlot(w)
			h.bits[x>>6] |= 1 << (x & 63)
			h.cands[w] = append(h.cands[w], headCand{value: int32(vi), off: int32(off)})
		}
	}
	return h
}

// word is the four bytes of s at i.
func word(s string, i int) uint32 {
	return uint32(s[i]) | uint32(s[i+1])<<8 | uint32(s[i+2])<<16 | uint32(s[i+3])<<24
}

// headSlot is the bit of a word.
func headSlot(w uint32) uint32 {
	return w * 0x9E3779B1 >> (32 - headBits)
}

// has reports whether s holds one of values (those the set was made of).
func (h *headSet) has(s string, values []string) bool {
	if len(s) < h.min {
		return false
	}
	for i := 0; i+4 <= len(s); i += h.step {
		w := word(s, i)
		if x := headSlot(w); h.bits[x>>6]&(1<<(x&63)) == 0 {
			continue
		}
		for _, c := range h.cands[w] {
			if start := i - int(c.off); start >= 0 && strings.HasPrefix(s[start:], values[c.value]) {
				return true
			}
		}
	}
	return false
}
