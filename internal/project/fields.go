package project

import (
	"maps"
	"slices"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// The upload form's fields, by kind. Clients send core metadata as form
// fields named after the metadata field (lower case, "_" for "-"); a field
// that may appear more than once in METADATA is sent once per value, and the
// clients do not agree on its name: twine 4 sends "provides_extras", uv and
// twine 6 "provides_extra", devpi "license_file", Warehouse's form reads
// "license_files". So every field is looked up in one table that knows its
// kind and its aliases, and the rest of the upload code sees one spelling.
//
// Only a single-use field given twice is refused: which value would win is
// exactly the kind of ambiguity a parser differential exploits. Fields the
// table does not know are ignored, as Warehouse ignores them, so a newer
// client's extra field never blocks an upload.

type fieldKind int

const (
	singleUse fieldKind = iota // one value; a repeat is refused
	multiUse                   // one form field per value
)

// formFields maps each canonical form field name to its kind. Metadata
// fields are stored under these names for the JSON API.
var formFields = map[string]fieldKind{
	// The upload protocol itself.
	":action": singleUse, "protocol_version": singleUse, "filetype": singleUse, "pyversion": singleUse,
	"md5_digest": singleUse, "sha256_digest": singleUse, "blake2_256_digest": singleUse,
	"comment": singleUse, "gpg_signature": singleUse, "attestations": singleUse,

	// Core metadata, single-use fields.
	"metadata_version": singleUse, "name": singleUse, "version": singleUse, "summary": singleUse,
	"description": singleUse, "description_content_type": singleUse, "home_page": singleUse,
	"download_url": singleUse, "author": singleUse, "author_email": singleUse, "maintainer": singleUse,
	"maintainer_email": singleUse, "license": singleUse, "license_expression": singleUse,
	"requires_python": singleUse,

	// Core metadata, multiple-use fields (core metadata spec: every field
	// marked "multiple use").
	"classifiers": multiUse, "requires_dist": multiUse, "provides_extra": multiUse,
	"project_urls": multiUse, "platform": multiUse, "supported_platform": multiUse,
	"requires_external": multiUse, "provides_dist": multiUse, "obsoletes_dist": multiUse,
	"dynamic": multiUse, "license_files": multiUse, "import_names": multiUse,
	"import_namespaces": multiUse,
	// Metadata 1.1, superseded by the *_dist fields but still sent by old
	// setuptools.
	"requires": multiUse, "provides": multiUse, "obsoletes": multiUse,
	// Keywords is one comma-separated field in METADATA, but it is a list
	// in spirit and some clients send one form field per keyword.
	"keywords": multiUse,
}

// fieldAliases are other clients' spellings of a field.
var fieldAliases = map[string]string{
	"provides_extras":     "provides_extra", // twine < 6, devpi
	"license_file":        "license_files",  // twine 6, devpi, older uv
	"platforms":           "platform",
	"supported_platforms": "supported_platform",
	"classifier":          "classifiers",
	"project_url":         "project_urls",
}

// canonicalField returns the table's name for a form field and whether the
// table knows it.
func canonicalField(name string) (string, bool) {
	if c, ok := fieldAliases[name]; ok {
		name = c
	}
	_, ok := formFields[name]
	return name, ok
}

// IsMultiUse reports whether a form field may repeat, under any of its
// spellings.
func IsMultiUse(field string) bool {
	c, _ := canonicalField(field)
	return formFields[c] == multiUse
}

// Sanitize turns the form as sent into the form the upload rules read:
// every known field under its canonical name (aliases merged), values equal
// to "UNKNOWN" dropped (old setuptools sends that for anything unset, and
// Warehouse drops them), unknown fields left out. A single-use field given
// more than once, under one spelling or several, is refused.
func Sanitize(fields map[string][]string) (map[string][]string, error) {
	out := make(map[string][]string, len(fields))
	sentAs := make(map[string]string, len(fields))
	names := slices.Sorted(maps.Keys(fields)) // the same answer every time
	for _, k := range names {
		vs := fields[k]
		c, known := canonicalField(k)
		if !known {
			continue
		}
		var keep []string
		for _, v := range vs {
			if v != "UNKNOWN" {
				keep = append(keep, v)
			}
		}
		if len(keep) == 0 {
			continue
		}
		if formFields[c] == singleUse {
			if len(keep) > 1 {
				return nil, derrors.New(derrors.Invalid, "%s: Field given more than once; send it once.", k)
			}
			if prev, dup := sentAs[c]; dup {
				return nil, derrors.New(derrors.Invalid, "%s: Field given more than once (also as %s); send it once.", k, prev)
			}
		}
		if _, dup := sentAs[c]; dup {
			// The same list under two spellings (a client that sends both
			// for compatibility): one copy of each value.
			for _, v := range keep {
				if !slices.Contains(out[c], v) {
					out[c] = append(out[c], v)
				}
			}
			continue
		}
		sentAs[c] = k
		out[c] = keep
	}
	return out, nil
}
