package recipes

import (
	"fmt"
	"sort"
	"strings"
)

// MinSecretLen is the length (in bytes) a secret needs at least: a shorter
// value cannot be redacted from run records and logs (it would mangle
// ordinary text), so it is refused where secrets are loaded. An empty
// secret is unset, not short.
const MinSecretLen = 4

// ShortSecrets lists, sorted, the names of the secrets that are set but
// shorter than MinSecretLen.
func ShortSecrets(secrets map[string]string) []string {
	var out []string
	for name, v := range secrets {
		if v != "" && len(v) < MinSecretLen {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// ShortSecretError is the error about secrets too short to be redacted,
// named (never their values) as prefix+name; nil when names is empty.
func ShortSecretError(prefix string, names []string) error {
	if len(names) == 0 {
		return nil
	}
	full := make([]string, len(names))
	for i, n := range names {
		full[i] = prefix + n
	}
	what := "secret " + full[0] + " is"
	if len(full) > 1 {
		what = "secrets " + strings.Join(full, ", ") + " are"
	}
	return fmt.Errorf("%s shorter than %d characters: so short a secret cannot be redacted from run records and logs; use a longer one", what, MinSecretLen)
}
