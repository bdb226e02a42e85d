package mfa

import (
	"bytes"
	"encoding/base64"
	"fmt"
	"image/png"
	"net/url"
	"strconv"
	"strings"

	"github.com/pquerna/otp"
)

// SetupFor describes an existing (not yet confirmed) secret again, so the
// provisioning page can be shown once more after a wrong code without
// changing the secret the user already scanned.
func (s *Service) SetupFor(username, secret string) TOTPSetup {
	q := func(v string) string { return strings.ReplaceAll(url.QueryEscape(v), "+", "%20") }
	uri := "otpauth://totp/" + url.PathEscape(s.siteName) + ":" + url.PathEscape(username) +
		"?secret=" + secret + "&issuer=" + q(s.siteName) + "&algorithm=SHA1&digits=" + strconv.Itoa(totpDigits) +
		"&period=" + strconv.Itoa(totpPeriod)
	setup := TOTPSetup{Secret: secret, URI: uri}
	if qr, err := qrDataURI(uri); err == nil {
		setup.QRDataURI = qr
	}
	return setup
}

func qrDataURI(uri string) (string, error) {
	key, err := otp.NewKeyFromURL(uri)
	if err != nil {
		return "", fmt.Errorf("mfa: TOTP URI: %w", err)
	}
	img, err := key.Image(totpQRSize, totpQRSize)
	if err != nil {
		return "", fmt.Errorf("mfa: TOTP QR code: %w", err)
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return "", fmt.Errorf("mfa: TOTP QR code: %w", err)
	}
	return "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes()), nil
}

// SealPending encrypts a secret that is being set up (not yet confirmed),
// so the server-side session that carries it between the two pages never
// holds it in clear: a database dump mid-setup yields nothing usable.
func (s *Service) SealPending(userID int64, secret string) (string, error) {
	raw, err := decodeSecret(secret)
	if err != nil {
		return "", err
	}
	return s.sealSecret(userID, raw)
}

// OpenPending reverses SealPending.
func (s *Service) OpenPending(userID int64, sealed string) (string, error) {
	raw, err := s.openSecret(userID, sealed)
	if err != nil {
		return "", err
	}
	return b32.EncodeToString(raw), nil
}
