package pep

import (
	"strconv"
	"unicode/utf8"
)

// maxQuoted bounds how much of a rejected input is echoed back in an error.
const maxQuoted = 100

// quoteShort quotes s Go-style (so control characters and newlines are
// escaped) and truncates long input, making it safe for error messages that
// end up in HTTP status lines.
func quoteShort(s string) string {
	if len(s) <= maxQuoted {
		return strconv.Quote(s)
	}
	cut := maxQuoted
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return strconv.Quote(s[:cut]) + "..."
}
