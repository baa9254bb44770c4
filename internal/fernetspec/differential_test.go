package fernetspec

import (
	"bytes"
	"testing"
	"time"

	"github.com/fernet/fernet-go"
)

// testKey is a Fernet key whose signing and encryption halves differ, so that
// a test notices when one is used in place of the other.
const testKey = "signing key 0123encryption key 0"

// FuzzVerifyAgainstFernetGo checks this package's verifier against fernet-go
// on tokens that fernet-go made and then changed: whatever Key.Verify
// accepts, fernet-go accepts with the same message, and every unchanged
// token is accepted by both. fernet-go accepts a few tokens that Verify
// rejects on purpose (junk after the token, line breaks, PKCS #7 padding
// outside 1 to 16), so the check goes one way only.
func FuzzVerifyAgainstFernetGo(f *testing.F) {
	f.Add([]byte("4111111111111111"), uint16(0), byte(0))
	f.Add([]byte(""), uint16(10), byte(1))
	f.Add(bytes.Repeat([]byte{0xff}, 100), uint16(50), byte(0x80))

	var key fernet.Key
	copy(key[:], testKey)
	verifier := NewKey(&key)

	f.Fuzz(func(t *testing.T, msg []byte, at uint16, flip byte) {
		tok, err := fernet.EncryptAndSignAtTime(msg, &key, time.Unix(1700000000, 0))
		if err != nil {
			t.Fatal(err)
		}
		got, ok := verifier.Verify(tok, 0, time.Time{})
		if !ok || !bytes.Equal(got, msg) {
			t.Fatalf("Verify of an unchanged token = %t, message equal %t", ok, bytes.Equal(got, msg))
		}

		changed := append([]byte(nil), tok...)
		if flip != 0 {
			changed[int(at)%len(changed)] ^= flip
		}
		got, ok = verifier.Verify(changed, 0, time.Time{})
		want := fernet.VerifyAndDecrypt(changed, 0, []*fernet.Key{&key})
		if ok && (want == nil || !bytes.Equal(got, want)) {
			t.Fatalf("Verify accepted a token that fernet-go rejects or decrypts differently")
		}
	})
}

// FuzzEncryptAgainstFernetGo checks that fernet-go and Key.Verify, whose
// padding check is stricter, decrypt every token of Key.Encrypt to its
// message with its time, and that two tokens of one message differ (a new IV
// each).
func FuzzEncryptAgainstFernetGo(f *testing.F) {
	f.Add([]byte("4111111111111111"), int64(1700000000))
	f.Add([]byte(""), int64(0))
	f.Add([]byte("a"), int64(-1))
	f.Add([]byte("378282246310005"), int64(1)<<62)
	f.Add(bytes.Repeat([]byte{0x10}, 17), int64(-1)<<40)
	f.Add(bytes.Repeat([]byte{0x10}, 48), int64(1)<<40)

	var key fernet.Key
	copy(key[:], testKey)
	k := NewKey(&key)

	f.Fuzz(func(t *testing.T, msg []byte, unix int64) {
		tok, err := k.Encrypt(msg, time.Unix(unix, 0))
		if err != nil {
			t.Fatal(err)
		}
		got := fernet.VerifyAndDecrypt(tok, 0, []*fernet.Key{&key})
		if got == nil || !bytes.Equal(got, msg) {
			t.Fatalf("fernet-go decrypted a token of Key.Encrypt to a message equal %t, want equal", bytes.Equal(got, msg))
		}
		got, ok := k.Verify(tok, 0, time.Time{})
		if !ok || !bytes.Equal(got, msg) {
			t.Fatalf("Key.Verify of a token of Key.Encrypt = %t, message equal %t, want true, true", ok, bytes.Equal(got, msg))
		}
		if issued, ok := Timestamp(tok); !ok || issued.Unix() != unix {
			t.Fatalf("Timestamp of a token of Key.Encrypt = %d, %t, want %d, true", issued.Unix(), ok, unix)
		}
		again, err := k.Encrypt(msg, time.Unix(unix, 0))
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Equal(again, tok) {
			t.Fatal("Key.Encrypt made the same token twice: the IV is not new")
		}
	})
}

func BenchmarkEncrypt(b *testing.B) {
	var key fernet.Key
	copy(key[:], testKey)
	msg := []byte("\x01\x10tok_0123456789abcdef4111111111111111")
	k := NewKey(&key)

	b.Run("Key.Encrypt", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			k.Encrypt(msg, time.Unix(1700000000, 0))
		}
	})
	b.Run("fernet-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fernet.EncryptAndSignAtTime(msg, &key, time.Unix(1700000000, 0))
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	var key fernet.Key
	copy(key[:], testKey)
	tok, _ := fernet.EncryptAndSign([]byte("\x01\x10tok_0123456789abcdef4111111111111111"), &key)
	verifier := NewKey(&key)
	keys := []*fernet.Key{&key}

	b.Run("Key.Verify", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			verifier.Verify(tok, 0, time.Time{})
		}
	})
	b.Run("fernet-go", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			fernet.VerifyAndDecrypt(tok, 0, keys)
		}
	})
}
