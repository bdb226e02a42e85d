package project

import (
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/gatehouse-index/gatehouse/internal/derrors"
	"github.com/gatehouse-index/gatehouse/internal/pep"
)

// coreMetadataHelp is where Warehouse sends people whose metadata is wrong.
const coreMetadataHelp = "https://packaging.python.org/specifications/core-metadata"

// metadataVersions are the Metadata-Version values an upload may declare.
var metadataVersions = map[string]bool{"1.0": true, "1.1": true, "1.2": true, "2.0": true, "2.1": true, "2.2": true, "2.3": true, "2.4": true, "2.5": true}

// Form is the validated non-file part of an upload.
type Form struct {
	Name                   string
	Version                pep.Version
	Filetype               string // "sdist" or "bdist_wheel"
	PyVersion              string
	MD5, SHA256, Blake2    string // lower-case hex, "" when not supplied
	MetadataVersion        string
	Summary                string
	Description            string
	DescriptionContentType string
	RequiresPython         string
	// Fields holds every metadata field as sent, for the JSON API.
	Fields map[string][]string
}

func (f *Form) first(key string) string {
	if v := f.Fields[key]; len(v) > 0 {
		return v[0]
	}
	return ""
}

// ParseForm validates the upload's form fields in Warehouse's order (spec
// §4.2 steps 5 to 7) and returns the first failure with Warehouse's message.
// fields must already be sanitized (see Sanitize).
func ParseForm(fields map[string][]string) (*Form, error) {
	f := &Form{Fields: fields}
	if pv := f.first("protocol_version"); pv != "" && pv != "1" {
		return nil, derrors.New(derrors.Invalid, "Unknown protocol version.")
	}
	f.Name = f.first("name")
	if f.Name == "" {
		return nil, invalidField("name", "This field is required.")
	}
	if !pep.ValidProjectName(f.Name) {
		return nil, derrors.New(derrors.Invalid, "'%s' is an invalid value for Name. Error: Start and end with a letter or numeral containing only ASCII numeric and '.', '_' and '-'. See %s for more information.", f.Name, coreMetadataHelp)
	}
	rawVersion := f.first("version")
	if rawVersion == "" {
		return nil, invalidField("version", "This field is required.")
	}
	f.Filetype = f.first("filetype")
	if f.Filetype != "sdist" && f.Filetype != "bdist_wheel" {
		return nil, invalidField("filetype", "Use a known file type.")
	}
	f.PyVersion = f.first("pyversion")
	switch {
	case f.Filetype == "bdist_wheel" && f.PyVersion == "":
		return nil, invalidField("pyversion", "Python version is required for binary distribution uploads.")
	case f.Filetype == "sdist" && f.PyVersion == "":
		f.PyVersion = "source"
	case f.Filetype == "sdist" && f.PyVersion != "source":
		return nil, invalidField("pyversion", "Use 'source' as Python version for an sdist.")
	}
	var err error
	if f.MD5, err = hexDigest(f.first("md5_digest"), 32, "md5_digest", "MD5"); err != nil {
		return nil, err
	}
	if f.SHA256, err = hexDigest(f.first("sha256_digest"), 64, "sha256_digest", "SHA256"); err != nil {
		return nil, err
	}
	if f.Blake2, err = hexDigest(f.first("blake2_256_digest"), 64, "blake2_256_digest", "Blake2b"); err != nil {
		return nil, err
	}
	if f.MD5 == "" && f.SHA256 == "" && f.Blake2 == "" {
		return nil, derrors.New(derrors.Invalid, "Include at least one message digest.")
	}

	// Metadata, prioritised metadata-version > name > version as Warehouse does.
	f.MetadataVersion = f.first("metadata_version")
	if !metadataVersions[f.MetadataVersion] {
		return nil, derrors.New(derrors.Invalid, "'%s' is an invalid value for Metadata-Version. Error: Use a known metadata version. See %s for more information.", f.MetadataVersion, coreMetadataHelp)
	}
	f.Version, err = pep.ParseVersion(rawVersion)
	if err != nil {
		return nil, derrors.New(derrors.Invalid, "'%s' is an invalid value for Version. Error: Use PEP 440 versioning. See %s for more information.", rawVersion, coreMetadataHelp)
	}
	if f.Version.IsLocal() {
		return nil, derrors.New(derrors.Invalid, "The use of local versions in '%s' is not allowed. See %s for more information.", f.Version.String(), coreMetadataHelp)
	}
	f.Summary = f.first("summary")
	if len([]rune(f.Summary)) > 512 {
		return nil, derrors.New(derrors.Invalid, "'summary' field must be 512 characters or less. See %s for more information.", coreMetadataHelp)
	}
	if strings.ContainsAny(f.Summary, "\r\n") {
		return nil, derrors.New(derrors.Invalid, "'summary' must be a single line. See %s for more information.", coreMetadataHelp)
	}
	f.Description = f.first("description")
	f.DescriptionContentType = f.first("description_content_type")
	if f.DescriptionContentType != "" && !knownDescriptionType(f.DescriptionContentType) {
		return nil, derrors.New(derrors.Invalid, "Invalid description content type: '%s'. Use text/plain, text/x-rst or text/markdown. See %s for more information.", f.DescriptionContentType, coreMetadataHelp)
	}
	f.RequiresPython = strings.TrimSpace(f.first("requires_python"))
	if err := pep.ValidSpecifierSet(f.RequiresPython); err != nil {
		return nil, invalidRequiresPython(f.RequiresPython)
	}
	for _, field := range []string{"requires_dist", "provides_dist", "obsoletes_dist"} {
		for _, d := range fields[field] {
			if strings.Contains(d, "@") && strings.Contains(d, "://") {
				return nil, derrors.New(derrors.Invalid, "Can't have direct dependency: '%s'. See %s for more information.", d, coreMetadataHelp)
			}
		}
	}
	return f, nil
}

func invalidRequiresPython(v string) error {
	return derrors.New(derrors.Invalid, "'%s' is an invalid value for Requires-Python. Error: Use a PEP 440 version specifier, such as '>=3.9' or '>=3.8, <4'. See %s for more information.", v, coreMetadataHelp)
}

func invalidField(field, msg string) error {
	return derrors.New(derrors.Invalid, "Invalid value for %s. Error: %s", field, msg)
}

func hexDigest(v string, n int, field, algo string) (string, error) {
	if v == "" {
		return "", nil
	}
	v = strings.ToLower(v)
	if _, err := hex.DecodeString(v); err != nil || len(v) != n {
		return "", invalidField(field, fmt.Sprintf("Use a valid, hex-encoded, %s message digest.", algo))
	}
	return v, nil
}

func knownDescriptionType(ct string) bool {
	base, _, _ := strings.Cut(ct, ";")
	switch strings.ToLower(strings.TrimSpace(base)) {
	case "text/plain", "text/x-rst", "text/markdown":
		return true
	}
	return false
}
