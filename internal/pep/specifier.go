package pep

import (
	"errors"
	"strings"
)

// ErrInvalidSpecifier reports a string that is not a PEP 440 version
// specifier set.
var ErrInvalidSpecifier = errors.New("invalid version specifier")

// specifierOperators, longest first so that "===" is not read as "==".
var specifierOperators = []string{"===", "~=", "==", "!=", "<=", ">=", "<", ">"}

// ValidSpecifierSet reports whether s is a PEP 440 version specifier set,
// such as the value of Requires-Python (">=3.8, <4"), accepting exactly
// what packaging.specifiers.SpecifierSet accepts: comma-separated clauses,
// empty clauses ignored, whitespace around operators and versions, a leading
// "v". Per clause:
//   - "===": any string without whitespace, ";" or ")";
//   - "==" and "!=": a version, a local version, or a release followed by
//     ".*";
//   - "~=": a version of at least two release components, no local part;
//   - "<", "<=", ">", ">=": a version with no local part.
//
// The empty string is a valid (empty) set.
func ValidSpecifierSet(s string) error {
	for clause := range strings.SplitSeq(s, ",") {
		clause = strings.TrimFunc(clause, isPythonSpace)
		if clause == "" {
			continue
		}
		if err := validSpecifier(clause); err != nil {
			return err
		}
	}
	return nil
}

func validSpecifier(clause string) error {
	op := ""
	for _, o := range specifierOperators {
		if strings.HasPrefix(clause, o) {
			op = o
			break
		}
	}
	if op == "" {
		return ErrInvalidSpecifier
	}
	rest := strings.TrimFunc(clause[len(op):], isPythonSpace)
	if rest == "" {
		return ErrInvalidSpecifier
	}
	if op == "===" {
		if strings.ContainsAny(rest, ";)") || strings.IndexFunc(rest, isPythonSpace) >= 0 {
			return ErrInvalidSpecifier
		}
		return nil
	}
	// Inside the version itself packaging allows no whitespace.
	if strings.IndexFunc(rest, isPythonSpace) >= 0 {
		return ErrInvalidSpecifier
	}
	if prefix, ok := strings.CutSuffix(rest, ".*"); ok {
		if op != "==" && op != "!=" {
			return ErrInvalidSpecifier
		}
		v, ok := parseVersion(prefix)
		if !ok || v.preL != "" || v.post != "" || v.dev != "" || v.local != nil {
			return ErrInvalidSpecifier
		}
		return nil
	}
	v, ok := parseVersion(rest)
	if !ok {
		return ErrInvalidSpecifier
	}
	if v.local != nil && op != "==" && op != "!=" {
		return ErrInvalidSpecifier
	}
	if op == "~=" && len(v.release) < 2 {
		return ErrInvalidSpecifier
	}
	return nil
}
