package pep

import (
	"cmp"
	"strings"
	"unicode"
)

// Version is a parsed PEP 440 version: an epoch, a release segment, and
// optional pre-release, post-release, development-release and local
// segments.
//
// Numeric components are kept as decimal strings without leading zeros
// rather than machine integers, because PEP 440 puts no bound on them and
// Python's packaging accepts (and PyPI holds) components that overflow
// int64. The zero Version is "0".
type Version struct {
	epoch   string   // "0" when absent
	release []string // at least one component in a parsed Version
	preL    string   // "", "a", "b" or "rc"
	preN    string   // meaningful only when preL != ""
	post    string   // "" when absent
	dev     string   // "" when absent
	local   []string // lower-cased, numeric parts without leading zeros; nil when absent
}

// InvalidVersionError reports a string that is not a valid PEP 440 version.
type InvalidVersionError struct {
	Version string // the rejected input, unmodified
}

// Error implements error. The input is quoted and truncated so the message
// is safe to put in an HTTP status line.
func (e *InvalidVersionError) Error() string {
	return "invalid version: " + quoteShort(e.Version)
}

// ParseVersion parses s as a PEP 440 version, accepting every spelling the
// PEP's normalization section allows: surrounding whitespace, any letter
// case, a leading "v", "1.0-1" (implicit post release), "c", "pre" and
// "preview" for "rc", "alpha"/"beta", "r"/"rev" for "post", implicit zero
// numbers ("1.0a" is "1.0a0"), "-", "_" or "." as separators, and local
// segments separated by any of those.
//
// Unlike Python's packaging, only ASCII letters are accepted. Its
// case-insensitive regular expression also matches "ſ", "ı", "İ" and the
// Kelvin sign, so it turns "1.0.poſt1" into "1.0.post1" and even yields
// non-PEP 440 results such as "1.0prevıew1"; those inputs are errors here.
// Whitespace trimming does follow Python's definition of \s.
func ParseVersion(s string) (Version, error) {
	v, ok := parseVersion(s)
	if !ok {
		return Version{}, &InvalidVersionError{Version: s}
	}
	return v, nil
}

// versionScanner walks an ASCII-lower-cased version string. It mirrors the
// structure of packaging's VERSION_PATTERN: every optional separator is
// consumed greedily, which accepts exactly the strings the regular
// expression accepts (a separator left unconsumed could only ever be used as
// the optional leading separator of the next segment).
type versionScanner struct {
	s string
	i int
}

func (p *versionScanner) peek() byte {
	if p.i < len(p.s) {
		return p.s[p.i]
	}
	return 0
}

func (p *versionScanner) peekAt(off int) byte {
	if p.i+off < len(p.s) {
		return p.s[p.i+off]
	}
	return 0
}

// digits consumes [0-9]* and returns it with leading zeros removed ("" if
// there were no digits at all).
func (p *versionScanner) digits() string {
	start := p.i
	for p.i < len(p.s) && isASCIIDigit(p.s[p.i]) {
		p.i++
	}
	if p.i == start {
		return ""
	}
	return trimZeros(p.s[start:p.i])
}

// separator consumes one optional '-', '_' or '.'.
func (p *versionScanner) separator() {
	if isNameSeparator(p.peek()) {
		p.i++
	}
}

// label consumes the first of labels that the input continues with.
//
// Callers list the spellings longest first. Where the regular expression in
// packaging.version would try a shorter alternative first, what that leaves
// behind ("lpha", "eta", "view", "ev") can never continue a valid version,
// so its backtracking ends up with the longest match too.
func (p *versionScanner) label(labels ...string) (string, bool) {
	for _, l := range labels {
		if strings.HasPrefix(p.s[p.i:], l) {
			p.i += len(l)
			return l, true
		}
	}
	return "", false
}

// letterNumber parses "[-_.]?LABEL[-_.]?[0-9]*" and returns the label and
// the number (implicitly 0). On failure the position is left unchanged.
func (p *versionScanner) letterNumber(labels ...string) (string, string, bool) {
	save := p.i
	p.separator()
	l, ok := p.label(labels...)
	if !ok {
		p.i = save
		return "", "", false
	}
	p.separator()
	n := p.digits()
	if n == "" {
		n = "0"
	}
	return l, n, true
}

func parseVersion(raw string) (Version, bool) {
	p := &versionScanner{s: asciiLower(strings.TrimFunc(raw, isPythonSpace))}
	var v Version

	if p.peek() == 'v' {
		p.i++
	}
	first := p.digits()
	if first == "" {
		return Version{}, false
	}
	v.epoch = "0"
	if p.peek() == '!' {
		p.i++
		v.epoch = first
		if first = p.digits(); first == "" {
			return Version{}, false
		}
	}
	v.release = []string{first}
	for p.peek() == '.' && isASCIIDigit(p.peekAt(1)) {
		p.i++
		v.release = append(v.release, p.digits())
	}

	if l, n, ok := p.letterNumber("alpha", "a", "beta", "b", "preview", "pre", "rc", "c"); ok {
		switch l {
		case "alpha":
			l = "a"
		case "beta":
			l = "b"
		case "c", "pre", "preview":
			l = "rc"
		}
		v.preL, v.preN = l, n
	}

	// "1.0-1" is an implicit post release; it is tried before the spelled
	// out forms, like the first alternative of the regular expression.
	if p.peek() == '-' && isASCIIDigit(p.peekAt(1)) {
		p.i++
		v.post = p.digits()
	} else if _, n, ok := p.letterNumber("post", "rev", "r"); ok {
		v.post = n
	}

	if _, n, ok := p.letterNumber("dev"); ok {
		v.dev = n
	}

	if p.peek() == '+' {
		p.i++
		for {
			start := p.i
			for p.i < len(p.s) && isLowerAlnum(p.s[p.i]) {
				p.i++
			}
			if p.i == start {
				return Version{}, false
			}
			part := p.s[start:p.i]
			if isAllDigits(part) {
				part = trimZeros(part)
			}
			v.local = append(v.local, part)
			if !isNameSeparator(p.peek()) || !isLowerAlnum(p.peekAt(1)) {
				break
			}
			p.i++
		}
	}

	if p.i != len(p.s) {
		return Version{}, false
	}
	return v, true
}

// String returns the normalized form of the version, identical to
// str(packaging.version.Version(s)): "1.0-1" becomes "1.0.post1",
// "v1.0RC1" becomes "1.0rc1", and so on. Trailing zero release components
// are kept ("1.0.0" stays "1.0.0"); see Canonical for the form that drops
// them.
func (v Version) String() string {
	return v.format(v.releaseString(false))
}

// Public returns the normalized version without its local segment (PEP 440
// "public version identifier").
func (v Version) Public() string {
	s := v.String()
	if i := strings.IndexByte(s, '+'); i >= 0 {
		return s[:i]
	}
	return s
}

// IsLocal reports whether the version has a local segment ("+..."). PEP 440
// says such versions should not be published on public indexes, and PyPI
// refuses them.
func (v Version) IsLocal() bool { return v.local != nil }

// IsPrerelease reports whether the version is a pre-release or a
// development release, the versions installers skip unless asked for them.
func (v Version) IsPrerelease() bool { return v.preL != "" || v.dev != "" }

// IsPostrelease reports whether the version has a post-release segment.
func (v Version) IsPostrelease() bool { return v.post != "" }

// IsDevrelease reports whether the version has a development segment.
func (v Version) IsDevrelease() bool { return v.dev != "" }

// Canonical returns the version in the form of
// packaging.utils.canonicalize_version: the normalized form with trailing
// zero release components removed, so "1.0", "1.0.0" and "1" all give "1".
// Two versions compare equal exactly when their canonical forms are equal,
// which makes this the key for detecting duplicate releases.
func (v Version) Canonical() string {
	return v.format(v.releaseString(true))
}

// CanonicalizeVersion is packaging.utils.canonicalize_version for a string:
// the Canonical form of s if it parses, otherwise s unchanged (legacy,
// non-PEP 440 versions cannot be normalized).
func CanonicalizeVersion(s string) string {
	v, err := ParseVersion(s)
	if err != nil {
		return s
	}
	return v.Canonical()
}

func (v Version) releaseString(stripZeros bool) string {
	rel := v.release
	if stripZeros {
		for len(rel) > 1 && isZero(rel[len(rel)-1]) {
			rel = rel[:len(rel)-1]
		}
	}
	if len(rel) == 0 {
		return "0"
	}
	return strings.Join(rel, ".")
}

func (v Version) format(release string) string {
	var b strings.Builder
	if !isZero(v.epoch) {
		b.WriteString(v.epoch)
		b.WriteByte('!')
	}
	b.WriteString(release)
	if v.preL != "" {
		b.WriteString(v.preL)
		b.WriteString(v.preN)
	}
	if v.post != "" {
		b.WriteString(".post")
		b.WriteString(v.post)
	}
	if v.dev != "" {
		b.WriteString(".dev")
		b.WriteString(v.dev)
	}
	if v.local != nil {
		b.WriteByte('+')
		b.WriteString(strings.Join(v.local, "."))
	}
	return b.String()
}

// Compare returns -1, 0 or +1 as a sorts before, equal to, or after b under
// PEP 440 ordering, exactly as packaging.version.Version does:
//
//   - epochs first, then release segments with trailing zeros ignored
//     (1.0 == 1.0.0);
//   - within a release: X.devN < X.aN < X.bN < X.rcN < X < X.postN, where a
//     bare dev release sorts before all pre-releases of the same release,
//     and dev releases of a pre or post release sort just before it;
//   - a version without a local segment sorts before the same version with
//     one; local segments compare part by part, numeric parts numerically
//     and above alphanumeric parts, which compare as strings, and a shorter
//     segment sorts first when it is a prefix of the longer.
func Compare(a, b Version) int {
	if c := cmpNum(a.epoch, b.epoch); c != 0 {
		return c
	}
	if c := cmpRelease(a.release, b.release); c != 0 {
		return c
	}
	if c := cmpPre(a, b); c != 0 {
		return c
	}
	// No post segment sorts before any post segment.
	if c := cmpOptional(a.post, b.post, -1); c != 0 {
		return c
	}
	// No dev segment sorts after any dev segment.
	if c := cmpOptional(a.dev, b.dev, +1); c != 0 {
		return c
	}
	return cmpLocal(a.local, b.local)
}

// cmpPre orders the pre-release segment. packaging's sort key uses -inf for
// a bare dev release (so 1.0.dev0 < 1.0a0), +inf for no pre-release, and the
// (label, number) pair otherwise; labels happen to sort alphabetically.
func cmpPre(a, b Version) int {
	rank := func(v Version) int {
		switch {
		case v.preL == "" && v.post == "" && v.dev != "":
			return 0
		case v.preL != "":
			return 1
		default:
			return 2
		}
	}
	ra, rb := rank(a), rank(b)
	if ra != rb {
		return cmp.Compare(ra, rb)
	}
	if ra != 1 {
		return 0
	}
	if c := strings.Compare(a.preL, b.preL); c != 0 {
		return c
	}
	return cmpNum(a.preN, b.preN)
}

// cmpOptional compares optional numbers, placing an absent one on the side
// given by absent (-1 before, +1 after) any present one.
func cmpOptional(a, b string, absent int) int {
	switch {
	case a == "" && b == "":
		return 0
	case a == "":
		return absent
	case b == "":
		return -absent
	}
	return cmpNum(a, b)
}

func cmpRelease(a, b []string) int {
	for len(a) > 0 && isZero(a[len(a)-1]) {
		a = a[:len(a)-1]
	}
	for len(b) > 0 && isZero(b[len(b)-1]) {
		b = b[:len(b)-1]
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := cmpNum(a[i], b[i]); c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

func cmpLocal(a, b []string) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		return -1
	case b == nil:
		return 1
	}
	for i := 0; i < len(a) && i < len(b); i++ {
		an, bn := isAllDigits(a[i]), isAllDigits(b[i])
		var c int
		switch {
		case an && bn:
			c = cmpNum(a[i], b[i])
		case an:
			c = 1
		case bn:
			c = -1
		default:
			c = strings.Compare(a[i], b[i])
		}
		if c != 0 {
			return c
		}
	}
	return cmp.Compare(len(a), len(b))
}

// cmpNum compares two unbounded non-negative decimal numbers.
func cmpNum(a, b string) int {
	a, b = strings.TrimLeft(a, "0"), strings.TrimLeft(b, "0")
	if len(a) != len(b) {
		return cmp.Compare(len(a), len(b))
	}
	return strings.Compare(a, b)
}

func isZero(n string) bool { return strings.TrimLeft(n, "0") == "" }

// trimZeros returns the canonical decimal form of a digit string, as
// Python's str(int(s)) would.
func trimZeros(s string) string {
	if t := strings.TrimLeft(s, "0"); t != "" {
		return t
	}
	return "0"
}

func isAllDigits(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !isASCIIDigit(s[i]) {
			return false
		}
	}
	return true
}

func isLowerAlnum(c byte) bool {
	return isASCIIDigit(c) || ('a' <= c && c <= 'z')
}

// asciiLower lower-cases ASCII letters only, so that non-ASCII input stays
// non-ASCII and is rejected by the scanner.
func asciiLower(s string) string {
	for i := 0; i < len(s); i++ {
		if 'A' <= s[i] && s[i] <= 'Z' {
			b := []byte(s)
			for j := i; j < len(b); j++ {
				if 'A' <= b[j] && b[j] <= 'Z' {
					b[j] += 'a' - 'A'
				}
			}
			return string(b)
		}
	}
	return s
}

// isPythonSpace matches Python's str.isspace(), which is what the \s in
// packaging's version pattern means: Unicode White_Space plus the ASCII
// information separators U+001C..U+001F.
func isPythonSpace(r rune) bool {
	return unicode.IsSpace(r) || (0x1c <= r && r <= 0x1f)
}
