package webhook

import (
	"bytes"
	"errors"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

var (
	testSecret = []byte("whsec-test-vector-0001")
	testBody   = []byte(`{"id":"evt_tok_a_0"}`)
	testTime   = time.Unix(1700000000, 0)
)

// TestSignVector checks Sign against a value computed outside Go with
//
//	printf '%s' '1700000000.{"id":"evt_tok_a_0"}' | openssl dgst -sha256 -hmac 'whsec-test-vector-0001'
func TestSignVector(t *testing.T) {
	const want = "t=1700000000,v1=115f1aae3f899e992386085b82542420003b8a36614541b079b3a45abb44eb53"
	if got := Sign(testSecret, testBody, testTime); got != want {
		t.Errorf("Sign = %q, want %q", got, want)
	}
}

func TestSignFormat(t *testing.T) {
	header := Sign([]byte("another secret of some length"), []byte("body"), time.Now())
	if !regexp.MustCompile(`^t=[0-9]+,v1=[0-9a-f]{64}$`).MatchString(header) {
		t.Errorf("Sign = %q, want t=<seconds>,v1=<64 lowercase hex digits>", header)
	}
}

func TestVerifyRoundTrip(t *testing.T) {
	now := time.Now().Truncate(time.Second) // t= has whole seconds
	header := Sign(testSecret, testBody, now)
	if err := Verify(testSecret, header, testBody, now, 0); err != nil {
		t.Fatalf("Verify(Sign(...)) err = %v, want nil", err)
	}
	if err := Verify(testSecret, header, testBody, now.Add(DefaultTolerance), 0); err != nil {
		t.Errorf("Verify at exactly the tolerance err = %v, want nil", err)
	}
	if err := Verify(testSecret, " "+header+" ", testBody, now, 0); err != nil {
		t.Errorf("Verify with spaces around the header err = %v, want nil", err)
	}
}

// TestVerifyRejects checks that each kind of bad signature fails with its
// sentinel and an error message without the secret.
func TestVerifyRejects(t *testing.T) {
	now := testTime
	valid := Sign(testSecret, testBody, now)
	mac := strings.TrimPrefix(valid, "t=1700000000,v1=")
	zeros := strings.Repeat("0", 64)

	tests := []struct {
		name   string
		secret []byte
		header string
		body   []byte
		now    time.Time
		want   error
	}{
		{"tampered body", testSecret, valid, []byte(`{"id":"evt_tok_b_0"}`), now, ErrInvalidSignature},
		{"body with an extra byte", testSecret, valid, append(bytes.Clone(testBody), ' '), now, ErrInvalidSignature},
		{"empty body", testSecret, valid, nil, now, ErrInvalidSignature},
		{"wrong secret", []byte("whsec-test-vector-0002"), valid, testBody, now, ErrInvalidSignature},
		{"tampered timestamp", testSecret, "t=1700000001,v1=" + mac, testBody, now, ErrInvalidSignature},
		{"tampered signature", testSecret, "t=1700000000,v1=" + zeros, testBody, now, ErrInvalidSignature},
		{"missing header", testSecret, "", testBody, now, ErrMissingSignature},
		{"blank header", testSecret, "   ", testBody, now, ErrMissingSignature},
		{"garbage", testSecret, "garbage", testBody, now, ErrInvalidSignature},
		{"no timestamp", testSecret, "v1=" + mac, testBody, now, ErrInvalidSignature},
		{"no v1", testSecret, "t=1700000000", testBody, now, ErrInvalidSignature},
		{"only other schemes", testSecret, "t=1700000000,v0=" + mac, testBody, now, ErrInvalidSignature},
		{"timestamp twice", testSecret, "t=1700000000,t=1700000000,v1=" + mac, testBody, now, ErrInvalidSignature},
		{"timestamp not a number", testSecret, "t=yesterday,v1=" + mac, testBody, now, ErrInvalidSignature},
		{"negative timestamp", testSecret, "t=-1,v1=" + mac, testBody, now, ErrInvalidSignature},
		{"timestamp overflows", testSecret, "t=99999999999999999999,v1=" + mac, testBody, now, ErrInvalidSignature},
		{"v1 not hex", testSecret, "t=1700000000,v1=" + strings.Repeat("z", 64), testBody, now, ErrInvalidSignature},
		{"v1 too short", testSecret, "t=1700000000,v1=" + mac[:62], testBody, now, ErrInvalidSignature},
		{"v1 too long", testSecret, "t=1700000000,v1=" + mac + "00", testBody, now, ErrInvalidSignature},
		{"v1 empty", testSecret, "t=1700000000,v1=", testBody, now, ErrInvalidSignature},
		{"item without equals", testSecret, valid + ",v1", testBody, now, ErrInvalidSignature},
		{"semicolons", testSecret, "t=1700000000;v1=" + mac, testBody, now, ErrInvalidSignature},
		{"too old", testSecret, valid, testBody, now.Add(DefaultTolerance + time.Second), ErrTimestampOutOfRange},
		{"too new", testSecret, valid, testBody, now.Add(-DefaultTolerance - time.Second), ErrTimestampOutOfRange},
		{"replayed a day later", testSecret, valid, testBody, now.Add(24 * time.Hour), ErrTimestampOutOfRange},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Verify(tt.secret, tt.header, tt.body, tt.now, 0)
			if !errors.Is(err, tt.want) {
				t.Fatalf("Verify err = %v, want %v", err, tt.want)
			}
			if strings.Contains(err.Error(), string(testSecret)) {
				t.Errorf("Verify error %q contains the secret", err)
			}
		})
	}
}

func TestVerifyTolerance(t *testing.T) {
	header := Sign(testSecret, testBody, testTime)
	if err := Verify(testSecret, header, testBody, testTime.Add(30*time.Second), time.Minute); err != nil {
		t.Errorf("Verify 30s late with tolerance 1m err = %v, want nil", err)
	}
	err := Verify(testSecret, header, testBody, testTime.Add(2*time.Minute), time.Minute)
	if !errors.Is(err, ErrTimestampOutOfRange) {
		t.Errorf("Verify 2m late with tolerance 1m err = %v, want ErrTimestampOutOfRange", err)
	}
	err = Verify(testSecret, header, testBody, testTime.Add(DefaultTolerance+time.Second), -time.Second)
	if !errors.Is(err, ErrTimestampOutOfRange) {
		t.Errorf("Verify with a negative tolerance err = %v, want ErrTimestampOutOfRange from DefaultTolerance", err)
	}
}

// TestVerifySeveralSignatures checks the header of a sender that signs with
// an old and a new secret during rotation.
func TestVerifySeveralSignatures(t *testing.T) {
	oldSecret, newSecret := []byte("old secret, 16 bytes or more"), []byte("new secret, 16 bytes or more")
	ts := strconv.FormatInt(testTime.Unix(), 10)
	oldMAC := strings.TrimPrefix(Sign(oldSecret, testBody, testTime), "t="+ts+",v1=")
	newMAC := strings.TrimPrefix(Sign(newSecret, testBody, testTime), "t="+ts+",v1=")
	header := "t=" + ts + ",v1=" + oldMAC + ", v1=" + newMAC + ",v2=future-scheme"

	for _, secret := range [][]byte{oldSecret, newSecret} {
		if err := Verify(secret, header, testBody, testTime, 0); err != nil {
			t.Errorf("Verify with secret %q err = %v, want nil", secret, err)
		}
	}
	err := Verify([]byte("a third secret, never used"), header, testBody, testTime, 0)
	if !errors.Is(err, ErrInvalidSignature) {
		t.Errorf("Verify with a third secret err = %v, want ErrInvalidSignature", err)
	}
}

func TestVerifyEmptySecret(t *testing.T) {
	header := Sign(nil, testBody, testTime)
	err := Verify(nil, header, testBody, testTime, 0)
	if err == nil {
		t.Fatal("Verify with an empty secret err = nil, want an error")
	}
	for _, sentinel := range []error{ErrMissingSignature, ErrInvalidSignature, ErrTimestampOutOfRange} {
		if errors.Is(err, sentinel) {
			t.Errorf("Verify with an empty secret err = %v, which wraps %v", err, sentinel)
		}
	}
}

func TestVerifyRequest(t *testing.T) {
	newRequest := func(body []byte, header string) *http.Request {
		r := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(body))
		if header != "" {
			r.Header.Set(SignatureHeader, header)
		}
		return r
	}

	body, err := VerifyRequest(newRequest(testBody, Sign(testSecret, testBody, time.Now())), testSecret, 0)
	if err != nil || !bytes.Equal(body, testBody) {
		t.Errorf("VerifyRequest(signed) = %q, %v, want the body and nil", body, err)
	}

	body, err = VerifyRequest(newRequest(testBody, ""), testSecret, 0)
	if !errors.Is(err, ErrMissingSignature) || body != nil {
		t.Errorf("VerifyRequest(unsigned) = %q, %v, want nil and ErrMissingSignature", body, err)
	}

	body, err = VerifyRequest(newRequest(testBody, Sign(testSecret, []byte("other"), time.Now())), testSecret, 0)
	if !errors.Is(err, ErrInvalidSignature) || body != nil {
		t.Errorf("VerifyRequest(tampered) = %q, %v, want nil and ErrInvalidSignature", body, err)
	}

	body, err = VerifyRequest(newRequest(testBody, Sign(testSecret, testBody, time.Now().Add(-time.Hour))), testSecret, 0)
	if !errors.Is(err, ErrTimestampOutOfRange) || body != nil {
		t.Errorf("VerifyRequest(an hour old) = %q, %v, want nil and ErrTimestampOutOfRange", body, err)
	}

	large := bytes.Repeat([]byte("x"), 101)
	_, err = VerifyRequest(newRequest(large, Sign(testSecret, large, time.Now())), testSecret, 100)
	var tooLarge *http.MaxBytesError
	if !errors.As(err, &tooLarge) {
		t.Errorf("VerifyRequest(101 bytes, limit 100) err = %v, want *http.MaxBytesError", err)
	}
	exact := large[:100]
	if _, err := VerifyRequest(newRequest(exact, Sign(testSecret, exact, time.Now())), testSecret, 100); err != nil {
		t.Errorf("VerifyRequest(100 bytes, limit 100) err = %v, want nil", err)
	}
}

// TestVerifyRequestIgnoresEventIDHeader replays a signed request with a
// changed Tokenvault-Event-Id header. It still verifies, which is why
// receivers drop repeats by the body's "id" field and not by the header.
func TestVerifyRequestIgnoresEventIDHeader(t *testing.T) {
	signature := Sign(testSecret, testBody, time.Now())
	for _, eventID := range []string{"evt_tok_a_0", "evt_replayed_1", ""} {
		r := httptest.NewRequest(http.MethodPost, "/hooks", bytes.NewReader(testBody))
		r.Header.Set(SignatureHeader, signature)
		if eventID != "" {
			r.Header.Set(EventIDHeader, eventID)
		}
		if _, err := VerifyRequest(r, testSecret, 0); err != nil {
			t.Errorf("VerifyRequest(%s %q) err = %v, want nil: the signature does not cover the header", EventIDHeader, eventID, err)
		}
	}
}

// FuzzVerify checks that Verify accepts what Sign made for any secret and
// body, and rejects the same header for any other body, without panicking
// on a header changed at random.
func FuzzVerify(f *testing.F) {
	f.Add([]byte("a secret of sixteen+"), []byte(`{"id":"x"}`), int64(1700000000), "t=1,v1=00")
	f.Add([]byte("k"), []byte{}, int64(0), ",,,=")
	f.Fuzz(func(t *testing.T, secret, body []byte, unix int64, noise string) {
		if len(secret) == 0 || unix < 0 || unix > 1<<40 {
			return
		}
		now := time.Unix(unix, 0)
		header := Sign(secret, body, now)
		if err := Verify(secret, header, body, now, 0); err != nil {
			t.Fatalf("Verify(Sign(...)) err = %v", err)
		}
		other := append(bytes.Clone(body), 'x')
		if err := Verify(secret, header, other, now, 0); !errors.Is(err, ErrInvalidSignature) {
			t.Fatalf("Verify with a changed body err = %v, want ErrInvalidSignature", err)
		}
		if err := Verify(secret, noise, body, now, 0); err == nil {
			t.Fatalf("Verify accepted the header %q, which Sign did not make", noise)
		}
	})
}
