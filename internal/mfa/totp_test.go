package mfa

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gatehouse-index/gatehouse/internal/db"
	"github.com/gatehouse-index/gatehouse/internal/db/dbtest"
	"github.com/gatehouse-index/gatehouse/internal/derrors"
)

// rfcKey is the SHA-1 key of RFC 4226 Appendix D and RFC 6238 Appendix B.
var rfcKey = []byte("12345678901234567890")

// TestRFCVectors checks the HOTP and TOTP arithmetic against the RFCs'
// own test vectors (spec §1.4, B1), including T=20000000000 (year 2603),
// which needs 64-bit time.
func TestRFCVectors(t *testing.T) {
	hotpWant := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for counter, want := range hotpWant {
		if got := hotp(rfcKey, uint64(counter), 6); got != want {
			t.Errorf("HOTP(counter %d) = %s, want %s", counter, got, want)
		}
	}
	for _, tt := range []struct {
		unix int64
		want string
	}{
		{59, "94287082"},
		{1111111109, "07081804"},
		{1111111111, "14050471"},
		{1234567890, "89005924"},
		{2000000000, "69279037"},
		{20000000000, "65353130"},
	} {
		if got := totpCode(rfcKey, totpStep(time.Unix(tt.unix, 0)), 8); got != tt.want {
			t.Errorf("TOTP(T=%d) = %s, want %s", tt.unix, got, tt.want)
		}
	}
	for _, tt := range []struct{ unix, step int64 }{{0, 0}, {29, 0}, {30, 1}, {59, 1}, {-1, -1}, {-30, -1}, {-31, -2}} {
		if got := totpStep(time.Unix(tt.unix, 0)); got != tt.step {
			t.Errorf("totpStep(%d) = %d, want %d", tt.unix, got, tt.step)
		}
	}
}

// TestOathtoolAgrees compares our codes with Debian's oathtool, an
// independent implementation, for fresh secrets at several times.
func TestOathtoolAgrees(t *testing.T) {
	path, err := exec.LookPath("oathtool")
	if err != nil {
		if os.Getenv("GATEHOUSE_TEST_REQUIRE_POSTGRES") == "1" {
			t.Fatal("oathtool is missing (scripts/test installs it)")
		}
		t.Skip("oathtool is missing")
	}
	s, err := NewService(Options{DB: &db.DB{}, Secret: mfaTestSecret, SiteName: "Gatehouse"})
	if err != nil {
		t.Fatal(err)
	}
	times := []time.Time{
		time.Date(2026, 3, 1, 12, 0, 10, 0, time.UTC),
		time.Date(2038, 1, 19, 3, 14, 8, 0, time.UTC), // past the 32-bit rollover
		time.Unix(1750000000, 0).UTC(),
	}
	for i := 0; i < 3; i++ {
		setup, err := s.NewTOTP("alice")
		if err != nil {
			t.Fatal(err)
		}
		raw, err := decodeSecret(setup.Secret)
		if err != nil {
			t.Fatal(err)
		}
		for _, at := range times {
			out, err := exec.Command(path, "--totp", "-b", setup.Secret, "--now", at.Format("2006-01-02 15:04:05 UTC")).CombinedOutput()
			if err != nil {
				t.Fatalf("oathtool: %v\n%s", err, out)
			}
			if got, want := totpCode(raw, totpStep(at), totpDigits), strings.TrimSpace(string(out)); got != want {
				t.Errorf("secret %s at %s: ours %s, oathtool %s", setup.Secret, at, got, want)
			}
		}
	}
}

func TestNormalizeCode(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"123456", "123456"},
		{"123 456", "123456"},
		{" 123456\n", "123456"},
		{"123-456", "123456"},
		{"１２３４５６", "123456"},
		{"１２３　４５６", "123456"}, // ideographic space
		{"12\u00a034\t56", "123456"},
		{"abcd ef01-2345 6789", "abcdef0123456789"},
	} {
		if got := NormalizeCode(tt.in); got != tt.want {
			t.Errorf("NormalizeCode(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestNewTOTP(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		a, err := f.s.NewTOTP("alice smith")
		mfaMust(t, err)
		b, err := f.s.NewTOTP("alice smith")
		mfaMust(t, err)
		if a.Secret == b.Secret {
			t.Error("two setups share a secret")
		}
		raw, err := decodeSecret(a.Secret)
		mfaMust(t, err)
		if len(raw) != 20 || len(a.Secret) != 32 || strings.Contains(a.Secret, "=") {
			t.Errorf("secret %q: %d bytes, want 20, base32 without padding", a.Secret, len(raw))
		}
		want := "otpauth://totp/Gatehouse:alice%20smith?secret=" + a.Secret + "&issuer=Gatehouse&algorithm=SHA1&digits=6&period=30"
		if a.URI != want {
			t.Errorf("URI\n got %s\nwant %s", a.URI, want)
		}
		b64, ok := strings.CutPrefix(a.QRDataURI, "data:image/png;base64,")
		if !ok {
			t.Fatalf("QR %.40s… is not a PNG data URI", a.QRDataURI)
		}
		pngBytes, err := base64.StdEncoding.DecodeString(b64)
		mfaMust(t, err)
		img, err := png.Decode(bytes.NewReader(pngBytes))
		mfaMust(t, err)
		if img.Bounds().Dx() < 100 {
			t.Errorf("QR image is %v", img.Bounds())
		}
		if n := f.count(`SELECT count(*) FROM totp_secrets`); n != 0 {
			t.Errorf("NewTOTP stored %d rows; the secret must stay in the session until confirmed", n)
		}
	})
}

// TestTOTPWindow: at login only t−30, t and t+30 are accepted (spec B2).
func TestTOTPWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		raw := f.enableTOTP(uid)
		for off := -90; off <= 90; off += 30 {
			// Forget the last accepted step, so each offset is judged alone.
			_, err := d.Exec(`UPDATE totp_secrets SET last_step = 0 WHERE user_id = $1`, uid)
			mfaMust(t, err)
			err = f.s.VerifyTOTP(f.ctx, uid, f.code(raw, time.Duration(off)*time.Second), mfaClient("192.0.2.1"))
			accept := off >= -30 && off <= 30
			if accept && err != nil {
				t.Errorf("offset %+ds refused: %v", off, err)
			}
			if !accept {
				wantErr(t, err, derrors.Invalid, "Invalid TOTP code.")
				if errors.Is(err, ErrTOTPReplayed) {
					t.Errorf("offset %+ds: a wrong code reported as a replay", off)
				}
			}
		}
		if got := f.failureReasons(uid); len(got) != 4 {
			t.Errorf("failures recorded %v, want 4 invalid_totp", got)
		}
	})
}

// TestTOTPProvisioningWindow: while provisioning, ±1 step is accepted, ±2…±10
// steps get the out-of-sync hint, and anything further is just invalid.
func TestTOTPProvisioningWindow(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		f.readyForTOTP(uid)
		setup, err := f.s.NewTOTP("alice")
		mfaMust(t, err)
		raw, _ := decodeSecret(setup.Secret)
		c := mfaClient("192.0.2.1")
		for _, steps := range []int{-11, -10, -2, 2, 10, 11} {
			err := f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, f.code(raw, time.Duration(steps*totpPeriod)*time.Second), c)
			if steps == -11 || steps == 11 {
				wantErr(t, err, derrors.Invalid, "Invalid TOTP code.")
				if msg, _ := derrors.Message(err); strings.Contains(msg, "sync") {
					t.Errorf("%+d steps: %q, want no out-of-sync hint", steps, msg)
				}
			} else {
				wantErr(t, err, derrors.Invalid, "Invalid TOTP code. Your device time may be out of sync.")
			}
		}
		wantErr(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, "12345", c), derrors.Invalid, "TOTP code must be 6 digits.")
		wantErr(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, "abcdef", c), derrors.Invalid, "TOTP code must be 6 digits.")
		if ok, _ := f.s.HasTOTP(f.ctx, uid); ok {
			t.Fatal("a refused code enabled TOTP")
		}
		mfaMust(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, f.code(raw, -30*time.Second), c))
		// The code typed at setup cannot be replayed at login.
		wantReplayed(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, -30*time.Second), c))
	})
}

// TestTOTPReplay: an accepted code, any spelling of it, and any code of an
// earlier step are refused (spec B3), and the replay is audited.
func TestTOTPReplay(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		raw := f.enableTOTP(uid)
		c := mfaClient("192.0.2.1")

		code := f.code(raw, 0)
		mfaMust(t, f.s.VerifyTOTP(f.ctx, uid, code, c))
		spaced := code[:3] + " " + code[3:]
		full := strings.Map(func(r rune) rune { return r - '0' + '０' }, code)
		for _, v := range []string{code, spaced, " " + code, full} {
			wantReplayed(t, f.s.VerifyTOTP(f.ctx, uid, v, c))
		}
		if got := f.failureReasons(uid); strings.Join(got, ",") != "replayed_totp,replayed_totp,replayed_totp,replayed_totp" {
			t.Errorf("failure reasons %v, want 4 replayed_totp", got)
		}
		// A replay is a failed attempt for the limiter (5 per 5 minutes): a
		// fifth trips it, and then even the next step's fresh code waits.
		wantReplayed(t, f.s.VerifyTOTP(f.ctx, uid, code, c))
		f.clock.Advance(totpPeriod * time.Second)
		wantLimited(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, 0), c), "There have been too many unsuccessful login attempts.")

		// A fullwidth spelling is accepted when the code is fresh. (Past the
		// 5-minute window of the limiter, which the replays count toward.)
		f.clock.Advance(5 * time.Minute)
		next := f.code(raw, 0)
		mfaMust(t, f.s.VerifyTOTP(f.ctx, uid, strings.Map(func(r rune) rune { return r - '0' + '０' }, next), c))
		wantReplayed(t, f.s.VerifyTOTP(f.ctx, uid, next, c))

		// The next step's code (a clock running ahead), then the current
		// step's: the older one is refused although it is in the window.
		f.clock.Advance(totpPeriod * time.Second)
		mfaMust(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, 30*time.Second), c))
		wantReplayed(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, 0), c))
		var last int64
		mfaMust(t, d.QueryRow(`SELECT last_step FROM totp_secrets WHERE user_id = $1`, uid).Scan(&last))
		if want := totpStep(f.clock.Now()) + 1; last != want {
			t.Errorf("last_step = %d, want %d", last, want)
		}
	})
}

// wantReplayed checks that err is the replay refusal: its own error, with
// a message that says what to do, not "Invalid TOTP code."
func wantReplayed(t *testing.T, err error) {
	t.Helper()
	if !errors.Is(err, ErrTOTPReplayed) {
		t.Fatalf("got %v, want ErrTOTPReplayed", err)
	}
	wantErr(t, err, derrors.Invalid, "This TOTP code has already been used. Wait for your authentication app to show the next code, then enter that one.")
}

// TestTOTPConcurrentUse: of simultaneous submissions of one code, exactly
// one is accepted (the compare-and-swap).
func TestTOTPConcurrentUse(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		uid := f.user("alice", true)
		raw := f.enableTOTP(uid)
		code := f.code(raw, 0)
		var wg sync.WaitGroup
		var mu sync.Mutex
		ok := 0
		for i := 0; i < 4; i++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if f.s.VerifyTOTP(f.ctx, uid, code, mfaClient("192.0.2.1")) == nil {
					mu.Lock()
					ok++
					mu.Unlock()
				}
			}()
		}
		wg.Wait()
		if ok != 1 {
			t.Errorf("%d concurrent submissions of one code accepted, want 1", ok)
		}
		// The race the test above may not hit, forced: both requests have
		// checked the code; the one that claims the step second loses, and
		// so does an older step claimed after a newer one.
		step := totpStep(f.clock.Now()) + 1
		for i, want := range []bool{true, false, false} {
			won, err := f.s.claimStep(f.ctx, uid, step-int64(i/2))
			mfaMust(t, err)
			if won != want {
				t.Errorf("claim %d of step %d: won %v, want %v", i, step-int64(i/2), won, want)
			}
		}
	})
}

// TestTOTPEnrolment: preconditions, encryption at rest, event and email
// (spec B5), replacement, and removal.
func TestTOTPEnrolment(t *testing.T) {
	dbtest.Each(t, func(t *testing.T, d *db.DB) {
		f := newMFAFixture(t, d)
		c := mfaClient("192.0.2.1")
		uid := f.user("alice", false)
		setup, err := f.s.NewTOTP("alice")
		mfaMust(t, err)
		raw, _ := decodeSecret(setup.Secret)

		wantErr(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, f.code(raw, 0), c), derrors.Forbidden,
			"Verify your email to modify two factor authentication")
		_, err = d.Exec(`UPDATE user_emails SET verified = TRUE WHERE user_id = $1`, uid)
		mfaMust(t, err)
		wantErr(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, f.code(raw, 0), c), derrors.Forbidden,
			"You must generate and safely store recovery codes before enabling two factor authentication on your account.")
		codes, err := f.s.GenerateRecoveryCodes(f.ctx, uid, c)
		mfaMust(t, err)
		wantErr(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, f.code(raw, 0), c), derrors.Forbidden, "You must generate")
		mfaMust(t, f.s.ConfirmRecoveryCodes(f.ctx, uid, codes[3], c))

		// A remembered browser loses the grant when a factor changes.
		tok, err := f.s.MarkDeviceKnown(f.ctx, nil, uid, "", c)
		mfaMust(t, err)
		mfaMust(t, f.s.RememberDevice(f.ctx, nil, uid, tok, c))

		mfaMust(t, f.s.ConfirmTOTP(f.ctx, uid, setup.Secret, f.code(raw, 0), c))
		if ok, _ := f.s.HasTOTP(f.ctx, uid); !ok {
			t.Fatal("HasTOTP false after ConfirmTOTP")
		}
		if ok, _ := f.s.HasTwoFactor(f.ctx, uid); !ok {
			t.Fatal("HasTwoFactor false after ConfirmTOTP")
		}
		if ok, _ := f.s.Remembered(f.ctx, uid, tok); ok {
			t.Error("browser still remembered after TOTP was added")
		}

		// Encrypted at rest: the column holds neither the base32 secret nor
		// the raw bytes, and it decrypts only for its own user.
		var enc string
		mfaMust(t, d.QueryRow(`SELECT secret_enc FROM totp_secrets WHERE user_id = $1`, uid).Scan(&enc))
		for _, leak := range []string{setup.Secret, strings.ToLower(setup.Secret), hex.EncodeToString(raw), string(raw),
			base64.StdEncoding.EncodeToString(raw), base64.RawStdEncoding.EncodeToString(raw)} {
			if strings.Contains(enc, leak) {
				t.Fatalf("secret_enc %q contains the secret", enc)
			}
		}
		if got, err := f.s.openSecret(uid, enc); err != nil || !bytes.Equal(got, raw) {
			t.Errorf("openSecret = %x, %v", got, err)
		}
		if _, err := f.s.openSecret(uid+1, enc); err == nil {
			t.Error("a secret decrypted under another user's id")
		}

		added := f.events(uid, "account:two_factor:method_added")
		if len(added) != 1 || added[0].Additional["method"] != "totp" || added[0].ActorID != uid || added[0].IP != c.IP {
			t.Errorf("method_added events %+v", added)
		}
		m := f.lastMail("two-factor-added")
		if m.To != "alice@example.com" || m.Data["Method"] != "authentication app" || m.Data["Username"] != "alice" {
			t.Errorf("two-factor-added email %+v", m)
		}

		// Replacing the app: the old secret stops working.
		f.clock.Advance(totpPeriod * time.Second)
		setup2, err := f.s.NewTOTP("alice")
		mfaMust(t, err)
		raw2, _ := decodeSecret(setup2.Secret)
		mfaMust(t, f.s.ConfirmTOTP(f.ctx, uid, setup2.Secret, f.code(raw2, 0), c))
		if n := len(f.events(uid, "account:two_factor:method_removed")); n != 1 {
			t.Errorf("replacing the app recorded %d method_removed events, want 1", n)
		}
		f.clock.Advance(totpPeriod * time.Second)
		wantErr(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw, 0), c), derrors.Invalid, "Invalid TOTP code.")
		mfaMust(t, f.s.VerifyTOTP(f.ctx, uid, f.code(raw2, 0), c))

		// Removal: never the last factor.
		wantErr(t, f.s.RemoveTOTP(f.ctx, uid, "alice", c), derrors.Conflict, "You cannot remove your last second factor.")
		if ok, _ := f.s.HasTOTP(f.ctx, uid); !ok {
			t.Fatal("refused removal removed the app")
		}
		f.addSecurityKey(uid, "YubiKey")
		mfaMust(t, f.s.RememberDevice(f.ctx, nil, uid, tok, c))
		// Only with the username typed out, as a key's label is.
		for _, typed := range []string{"", "Alice", "bob"} {
			wantErr(t, f.s.RemoveTOTP(f.ctx, uid, typed, c), derrors.Invalid,
				"Type your username exactly to confirm removing the authentication app.")
		}
		if ok, _ := f.s.HasTOTP(f.ctx, uid); !ok {
			t.Fatal("removal without the username typed removed the app")
		}
		if n := len(f.events(uid, "account:two_factor:method_removed")); n != 1 {
			t.Errorf("refused removals recorded events: %d method_removed, want 1", n)
		}
		mfaMust(t, f.s.RemoveTOTP(f.ctx, uid, " alice ", c))
		if ok, _ := f.s.HasTOTP(f.ctx, uid); ok {
			t.Error("HasTOTP after RemoveTOTP")
		}
		if ok, _ := f.s.HasTwoFactor(f.ctx, uid); !ok {
			t.Error("HasTwoFactor false with a security key left")
		}
		if ok, _ := f.s.Remembered(f.ctx, uid, tok); ok {
			t.Error("browser still remembered after TOTP was removed")
		}
		if n := len(f.events(uid, "account:two_factor:method_removed")); n != 2 {
			t.Errorf("%d method_removed events, want 2", n)
		}
		if m := f.lastMail("two-factor-removed"); m.Data["Method"] != "authentication app" {
			t.Errorf("two-factor-removed email %+v", m)
		}
		wantErr(t, f.s.RemoveTOTP(f.ctx, uid, "alice", c), derrors.NotFound, "no authentication app")
	})
}
