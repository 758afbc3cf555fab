// Package sqlin builds the IN lists of prepared statements in few shapes.
package sqlin

import (
	"slices"
	"strconv"
	"strings"
)

// Max bounds the values of one IN list (see List). It keeps a statement
// far under SQLite's 32,766 parameters and PostgreSQL's 65,535.
const Max = 512

// List returns the IN list "($k,...)" of values, numbered on from args (k
// is len(args)+1), and args with the values appended. The list is padded
// to a power of two by repeating its last value, which changes nothing
// for IN: whatever the number of values, the statement is one of a few
// texts (lists of 1, 2, 4, ... Max), each prepared and cached once,
// rather than one text per length. values holds up to Max values: split
// a longer list with slices.Chunk. No values give "(NULL)", which no
// value is IN.
func List[T any](args []any, values []T) (string, []any) {
	if len(values) == 0 {
		return "(NULL)", args
	}
	n := 1
	for n < len(values) {
		n *= 2
	}
	args = slices.Grow(args, n)
	var b strings.Builder
	b.Grow(n * 5)
	b.WriteByte('(')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('$')
		b.WriteString(strconv.Itoa(len(args) + 1))
		args = append(args, values[min(i, len(values)-1)])
	}
	b.WriteByte(')')
	return b.String(), args
}
