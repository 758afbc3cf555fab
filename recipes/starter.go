package recipes

// ValidName reports whether name is a valid recipe name: lower case
// letters, digits, - and _, starting with a letter or digit, at most 63
// characters.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// SuggestID returns ` (did you mean "x"?)` for the connector ID closest to
// got, or completing it when got is a prefix ("webhook" suggests
// "webhook.received"), or "" when none fits.
func SuggestID(got string, ids []string) string { return suggestID(got, ids) }
