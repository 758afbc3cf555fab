package sqlin_test

import (
	"fmt"
	"math/bits"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/sous-run/sous/internal/sqlin"
)

// TestList: an IN list of n values has the next power of two of
// placeholders (the last value repeated), numbered after the args given:
// a few texts for every length up to Max, whatever the values' type.
func TestList(t *testing.T) {
	list, args := sqlin.List([]any{"until"}, []int64{7, 8, 9})
	require.Equal(t, "($2,$3,$4,$5)", list)
	require.Equal(t, []any{"until", int64(7), int64(8), int64(9), int64(9)}, args)

	list, args = sqlin.List(nil, []string{"a"})
	require.Equal(t, "($1)", list)
	require.Equal(t, []any{"a"}, args)

	list, args = sqlin.List([]any{"until"}, []int64{})
	require.Equal(t, "(NULL)", list, "no values: a list nothing is in")
	require.Equal(t, []any{"until"}, args)

	for _, kind := range []string{"int64", "string"} {
		t.Run(kind, func(t *testing.T) {
			texts := map[string]bool{}
			for n := 1; n <= sqlin.Max; n++ {
				values := make([]any, n)
				for i := range values {
					if kind == "int64" {
						values[i] = int64(100 + i)
					} else {
						values[i] = fmt.Sprintf("id-%d", i)
					}
				}
				list, args := sqlin.List(nil, values)
				texts[list] = true
				size := strings.Count(list, "$")
				require.Len(t, args, size)
				require.True(t, size >= n && size < 2*n, "%d values in a list of %d", n, size)
				for i, a := range args {
					require.Equal(t, values[min(i, n-1)], a)
				}
			}
			require.Len(t, texts, bits.Len(uint(sqlin.Max)), "one text per power of two up to Max")
		})
	}
}
