package attest

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
)

// The predicate types PyPI accepts (pypi-attestations' Distribution
// checks): the publish attestation and SLSA Provenance v1.
const (
	PublishPredicate = "https://docs.pypi.org/attestations/publish/v1"
	SLSAPredicate    = "https://slsa.dev/provenance/v1"
	statementType    = "https://in-toto.io/Statement/v1"
	// MaxAttestations is PyPI's limit: one of each predicate type.
	MaxAttestations = 2
)

// Attestation is one PEP 740 attestation object as the upload form's
// `attestations` field carries it.
type Attestation struct {
	Version              int                  `json:"version"`
	VerificationMaterial VerificationMaterial `json:"verification_material"`
	Envelope             Envelope             `json:"envelope"`
}

// VerificationMaterial is the leaf certificate (base64 DER), the Rekor
// entries in the Sigstore protobuf JSON form, and any RFC 3161 signed
// timestamps (base64 DER), which newer pypi-attestations releases add.
type VerificationMaterial struct {
	Certificate         string            `json:"certificate"`
	TransparencyEntries []json.RawMessage `json:"transparency_entries"`
	Timestamps          []string          `json:"timestamps,omitempty"`
}

// Envelope is the DSSE envelope with its payload type left implicit
// (always in-toto).
type Envelope struct {
	Statement string `json:"statement"`
	Signature string `json:"signature"`
}

// Statement is the part of the in-toto statement Gatehouse reads.
type Statement struct {
	Type    string `json:"_type"`
	Subject []struct {
		Name   string            `json:"name"`
		Digest map[string]string `json:"digest"`
	} `json:"subject"`
	PredicateType string `json:"predicateType"`
}

// Invalid is an attestation the uploader must fix; its message completes
// "Invalid attestations supplied during upload: ".
type Invalid struct{ Reason string }

func (e *Invalid) Error() string { return e.Reason }

func invalid(format string, a ...any) error { return &Invalid{Reason: fmt.Sprintf(format, a...)} }

// Parse reads the form field: a JSON array of at most two attestations,
// each predicate type at most once.
func Parse(field []byte) ([]Attestation, error) {
	var atts []Attestation
	dec := json.NewDecoder(bytes.NewReader(field))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&atts); err != nil {
		return nil, invalid("the attestations field is not a JSON array of attestation objects (%v)", err)
	}
	if len(atts) == 0 {
		return nil, invalid("the attestations field is an empty array")
	}
	if len(atts) > MaxAttestations {
		return nil, invalid("%d attestations supplied; at most %d are allowed, one per predicate type", len(atts), MaxAttestations)
	}
	seen := map[string]bool{}
	for i := range atts {
		st, err := atts[i].Statement()
		if err != nil {
			return nil, err
		}
		if st.PredicateType != PublishPredicate && st.PredicateType != SLSAPredicate {
			return nil, invalid("unsupported predicate type %q (supported: %s, %s)", st.PredicateType, PublishPredicate, SLSAPredicate)
		}
		if seen[st.PredicateType] {
			return nil, invalid("more than one attestation with predicate type %s", st.PredicateType)
		}
		seen[st.PredicateType] = true
	}
	return atts, nil
}

// Statement decodes the envelope's in-toto statement.
func (a *Attestation) Statement() (*Statement, error) {
	if a.Version != 1 {
		return nil, invalid("attestation version %d is not supported (want 1)", a.Version)
	}
	raw, err := base64.StdEncoding.DecodeString(a.Envelope.Statement)
	if err != nil {
		return nil, invalid("the envelope's statement is not base64")
	}
	var st Statement
	if err := json.Unmarshal(raw, &st); err != nil {
		return nil, invalid("the envelope's statement is not an in-toto statement (%v)", err)
	}
	if st.Type != statementType {
		return nil, invalid("the statement type is %q, want %s", st.Type, statementType)
	}
	return &st, nil
}

// PredicateType is the statement's predicate type ("" when unreadable;
// Parse has already refused those).
func (a *Attestation) PredicateType() string {
	st, err := a.Statement()
	if err != nil {
		return ""
	}
	return st.PredicateType
}
