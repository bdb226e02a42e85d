package attest

import (
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	protobundle "github.com/sigstore/protobuf-specs/gen/pb-go/bundle/v1"
	protocommon "github.com/sigstore/protobuf-specs/gen/pb-go/common/v1"
	protodsse "github.com/sigstore/protobuf-specs/gen/pb-go/dsse"
	protorekor "github.com/sigstore/protobuf-specs/gen/pb-go/rekor/v1"
	"github.com/sigstore/sigstore-go/pkg/bundle"
	"github.com/sigstore/sigstore-go/pkg/fulcio/certificate"
	"github.com/sigstore/sigstore-go/pkg/root"
	"github.com/sigstore/sigstore-go/pkg/verify"
	"google.golang.org/protobuf/encoding/protojson"
)

// Verifier checks attestations against one Sigstore trusted root.
type Verifier struct {
	sv *verify.Verifier
}

// NewVerifier wants, per attestation, one Rekor inclusion and one
// observer timestamp (the log's integrated time, or an RFC 3161 timestamp
// from one of the root's timestamp authorities, which newer
// pypi-attestations add): the moment the certificate must be valid at.
// When the root lists certificate transparency logs, as the public-good
// root does, the certificate must also carry a verified SCT, as
// sigstore-python's production verifier (and so PyPI) demands; a private
// deployment without CT logs is not held to it.
func NewVerifier(tr root.TrustedMaterial) (*Verifier, error) {
	opts := []verify.VerifierOption{verify.WithTransparencyLog(1), verify.WithObserverTimestamps(1)}
	if len(tr.CTLogs()) > 0 {
		opts = append(opts, verify.WithSignedCertificateTimestamps(1))
	}
	sv, err := verify.NewVerifier(tr, opts...)
	if err != nil {
		return nil, fmt.Errorf("building the Sigstore verifier: %w", err)
	}
	return &Verifier{sv: sv}, nil
}

// File is the distribution the attestations must be about.
type File struct {
	Filename string
	SHA256   string // hex
}

// Verified is what one verified attestation says about its maker.
type Verified struct {
	PredicateType string
	Certificate   certificate.Summary
}

// Verify checks every attestation: the subject is the file, the
// signature chains to the trusted root and is in the transparency log at
// a time the certificate was valid, and the certificate names pub.
func (v *Verifier) Verify(atts []Attestation, f File, pub Publisher) ([]Verified, error) {
	out := make([]Verified, 0, len(atts))
	for i := range atts {
		vd, err := v.verifyOne(&atts[i], f, pub)
		if err != nil {
			return nil, err
		}
		out = append(out, vd)
	}
	return out, nil
}

func (v *Verifier) verifyOne(a *Attestation, f File, pub Publisher) (Verified, error) {
	st, err := a.Statement()
	if err != nil {
		return Verified{}, err
	}
	if err := checkSubject(st, f); err != nil {
		return Verified{}, err
	}
	b, err := a.bundle()
	if err != nil {
		return Verified{}, err
	}
	digest, err := hex.DecodeString(f.SHA256)
	if err != nil {
		return Verified{}, fmt.Errorf("the file digest %q is not hex", f.SHA256)
	}
	res, err := v.sv.Verify(b, verify.NewPolicy(verify.WithArtifactDigest("sha256", digest), verify.WithoutIdentitiesUnsafe()))
	if err != nil {
		return Verified{}, invalid("Sigstore verification failed: %v", err)
	}
	if res.Signature == nil || res.Signature.Certificate == nil {
		return Verified{}, invalid("the attestation is not signed with a Fulcio certificate")
	}
	cert := *res.Signature.Certificate
	if err := pub.matches(cert); err != nil {
		return Verified{}, err
	}
	return Verified{PredicateType: st.PredicateType, Certificate: cert}, nil
}

// checkSubject wants exactly one subject, named as the file and with its
// sha256, as PyPI does.
func checkSubject(st *Statement, f File) error {
	if len(st.Subject) != 1 {
		return invalid("the statement has %d subjects; it must have exactly one, the uploaded file", len(st.Subject))
	}
	s := st.Subject[0]
	if s.Name != f.Filename {
		return invalid("the statement's subject is %q, not the uploaded file %q", s.Name, f.Filename)
	}
	if got := strings.ToLower(s.Digest["sha256"]); got != strings.ToLower(f.SHA256) {
		return invalid("the statement's subject digest (sha256 %s) does not match the uploaded file's (sha256 %s)", got, f.SHA256)
	}
	return nil
}

// bundle turns the PEP 740 form into a Sigstore bundle v0.3, as
// pypi-attestations' Attestation.to_bundle does.
func (a *Attestation) bundle() (*bundle.Bundle, error) {
	der, err := base64.StdEncoding.DecodeString(a.VerificationMaterial.Certificate)
	if err != nil {
		return nil, invalid("the verification material's certificate is not base64")
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, invalid("the verification material's certificate is not an X.509 certificate (%v)", err)
	}
	if len(a.VerificationMaterial.TransparencyEntries) == 0 {
		return nil, invalid("the attestation has no transparency log entry")
	}
	entries := make([]*protorekor.TransparencyLogEntry, 0, len(a.VerificationMaterial.TransparencyEntries))
	for _, raw := range a.VerificationMaterial.TransparencyEntries {
		var tle protorekor.TransparencyLogEntry
		if err := protojson.Unmarshal(raw, &tle); err != nil {
			return nil, invalid("a transparency log entry is malformed (%v)", err)
		}
		entries = append(entries, &tle)
	}
	stmt, err := base64.StdEncoding.DecodeString(a.Envelope.Statement)
	if err != nil {
		return nil, invalid("the envelope's statement is not base64")
	}
	sig, err := base64.StdEncoding.DecodeString(a.Envelope.Signature)
	if err != nil {
		return nil, invalid("the envelope's signature is not base64")
	}
	var tsData *protobundle.TimestampVerificationData
	if len(a.VerificationMaterial.Timestamps) > 0 {
		tsData = &protobundle.TimestampVerificationData{}
		for _, ts := range a.VerificationMaterial.Timestamps {
			raw, err := base64.StdEncoding.DecodeString(ts)
			if err != nil {
				return nil, invalid("a signed timestamp is not base64")
			}
			tsData.Rfc3161Timestamps = append(tsData.Rfc3161Timestamps, &protocommon.RFC3161SignedTimestamp{SignedTimestamp: raw})
		}
	}
	pb := &protobundle.Bundle{
		MediaType: "application/vnd.dev.sigstore.bundle.v0.3+json",
		VerificationMaterial: &protobundle.VerificationMaterial{
			Content:                   &protobundle.VerificationMaterial_Certificate{Certificate: &protocommon.X509Certificate{RawBytes: der}},
			TlogEntries:               entries,
			TimestampVerificationData: tsData,
		},
		Content: &protobundle.Bundle_DsseEnvelope{DsseEnvelope: &protodsse.Envelope{
			Payload:     stmt,
			PayloadType: "application/vnd.in-toto+json",
			Signatures:  []*protodsse.Signature{{Sig: sig}},
		}},
	}
	b, err := bundle.NewBundle(pb)
	if err != nil {
		return nil, invalid("the attestation does not form a valid Sigstore bundle (%v)", err)
	}
	return b, nil
}

// MarshalForStorage is the attestation as stored and served: the same
// JSON it arrived as, re-encoded canonically.
func (a *Attestation) MarshalForStorage() ([]byte, error) { return json.Marshal(a) }
