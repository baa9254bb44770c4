package ff1

import (
	"bufio"
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
)

// sample is one line of testdata/nist-samples.txt.
type sample struct {
	number     int
	radix      int
	key        []byte
	tweak      []byte
	plaintext  string
	ciphertext string
}

func readSamples(t *testing.T) []sample {
	t.Helper()
	f, err := os.Open("testdata/nist-samples.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	var samples []sample
	scanner := bufio.NewScanner(f)
	for line := 1; scanner.Scan(); line++ {
		text := scanner.Text()
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) != 6 {
			t.Fatalf("nist-samples.txt:%d: got %d fields, want 6", line, len(fields))
		}

		var s sample
		var errs [4]error
		s.number, errs[0] = strconv.Atoi(fields[0])
		s.radix, errs[1] = strconv.Atoi(fields[1])
		s.key, errs[2] = hex.DecodeString(fields[2])
		if fields[3] != "-" {
			s.tweak, errs[3] = hex.DecodeString(fields[3])
		}
		if err := errors.Join(errs[:]...); err != nil {
			t.Fatalf("nist-samples.txt:%d: %v", line, err)
		}
		s.plaintext, s.ciphertext = fields[4], fields[5]
		samples = append(samples, s)
	}
	if err := scanner.Err(); err != nil {
		t.Fatal(err)
	}
	if len(samples) != 9 {
		t.Fatalf("nist-samples.txt has %d samples, want 9", len(samples))
	}
	return samples
}

func newTestCipher(t testing.TB, key []byte) *Cipher {
	t.Helper()
	c, err := New(key)
	if err != nil {
		t.Fatalf("New(%d-byte key) err = %v", len(key), err)
	}
	return c
}

// testKey is the AES-128 key of NIST samples 1 to 3.
var testKey = []byte{
	0x2B, 0x7E, 0x15, 0x16, 0x28, 0xAE, 0xD2, 0xA6,
	0xAB, 0xF7, 0x15, 0x88, 0x09, 0xCF, 0x4F, 0x3C,
}

func TestNISTSamples(t *testing.T) {
	for _, s := range readSamples(t) {
		if s.radix != 10 {
			continue
		}
		t.Run(fmt.Sprintf("sample%d", s.number), func(t *testing.T) {
			t.Parallel()
			c := newTestCipher(t, s.key)

			got := make([]byte, len(s.plaintext))
			if err := c.Encrypt(got, []byte(s.plaintext), s.tweak); err != nil {
				t.Fatalf("Encrypt err = %v", err)
			}
			if string(got) != s.ciphertext {
				t.Errorf("Encrypt(%s) = %s, want %s", s.plaintext, got, s.ciphertext)
			}

			if err := c.Decrypt(got, []byte(s.ciphertext), s.tweak); err != nil {
				t.Fatalf("Decrypt err = %v", err)
			}
			if string(got) != s.plaintext {
				t.Errorf("Decrypt(%s) = %s, want %s", s.ciphertext, got, s.plaintext)
			}

			inPlace := []byte(s.plaintext)
			if err := c.Encrypt(inPlace, inPlace, s.tweak); err != nil {
				t.Fatalf("Encrypt in place err = %v", err)
			}
			if string(inPlace) != s.ciphertext {
				t.Errorf("Encrypt(%s) in place = %s, want %s", s.plaintext, inPlace, s.ciphertext)
			}
		})
	}
}

func TestShapeFormulas(t *testing.T) {
	// b and d for v = 3 to 10, worked out by hand from
	// ceil(v*log2(10)) = 10, 14, 17, 20, 24, 27, 30, 34.
	wantB := map[int]int{3: 2, 4: 2, 5: 3, 6: 3, 7: 3, 8: 4, 9: 4, 10: 5}
	wantD := map[int]int{3: 8, 4: 8, 5: 8, 6: 8, 7: 8, 8: 8, 9: 8, 10: 12}

	for n := MinDigits; n <= MaxDigits; n++ {
		s := shapes[n]
		if s.u != n/2 || s.u+s.v != n {
			t.Errorf("shapes[%d]: u = %d, v = %d, want %d and %d", n, s.u, s.v, n/2, n-n/2)
		}
		if s.b != wantB[s.v] {
			t.Errorf("shapes[%d].b = %d, want %d", n, s.b, wantB[s.v])
		}
		if s.d != wantD[s.v] {
			t.Errorf("shapes[%d].d = %d, want %d", n, s.d, wantD[s.v])
		}

		// The floating-point formula is exact here, because v*log2(10) is
		// at least 0.03 away from an integer for every v from 3 to 10.
		floatB := int(math.Ceil(math.Ceil(float64(s.v)*math.Log2(10)) / 8))
		if s.b != floatB {
			t.Errorf("shapes[%d].b = %d, floating-point formula gives %d", n, s.b, floatB)
		}
		if s.d > aes.BlockSize {
			t.Errorf("shapes[%d].d = %d, more than one AES block", n, s.d)
		}
	}
}

// refCrypt is a direct transcription of FF1.Encrypt and FF1.Decrypt of
// SP 800-38G for any radix up to 36, with math/big and the full PRF over
// P || Q. It is slow and shares no code with ff1.go.
func refCrypt(key, tweak []byte, radix int, x string, encrypt bool) string {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err)
	}

	n, t := len(x), len(tweak)
	u := n / 2
	v := n - u
	a, b := x[:u], x[u:]
	bytesB := int(math.Ceil(math.Ceil(float64(v)*math.Log2(float64(radix))) / 8))
	d := 4*((bytesB+3)/4) + 4

	p := []byte{1, 2, 1, 0, 0, byte(radix), 10, byte(u % 256)}
	p = binary.BigEndian.AppendUint32(p, uint32(n))
	p = binary.BigEndian.AppendUint32(p, uint32(t))
	radixBig := big.NewInt(int64(radix))
	num := func(s string) *big.Int {
		z, ok := new(big.Int).SetString(s, radix)
		if !ok {
			panic("invalid numeral " + s)
		}
		return z
	}
	str := func(z *big.Int, m int) string {
		s := z.Text(radix)
		return strings.Repeat("0", m-len(s)) + s
	}

	y := func(i int, half string) *big.Int {
		pad := ((-t-bytesB-1)%16 + 16) % 16
		q := append(bytes.Clone(tweak), make([]byte, pad)...)
		q = append(q, byte(i))
		q = append(q, num(half).FillBytes(make([]byte, bytesB))...)

		// PRF(P || Q) is the last block of the CBC encryption with a zero IV.
		pq := append(bytes.Clone(p), q...)
		mac := make([]byte, len(pq))
		cipher.NewCBCEncrypter(block, make([]byte, aes.BlockSize)).CryptBlocks(mac, pq)
		r := mac[len(mac)-aes.BlockSize:]

		s := bytes.Clone(r)
		for j := 1; len(s) < d; j++ {
			var xored [aes.BlockSize]byte
			big.NewInt(int64(j)).FillBytes(xored[:])
			for k := range xored {
				xored[k] ^= r[k]
			}
			block.Encrypt(xored[:], xored[:])
			s = append(s, xored[:]...)
		}
		return new(big.Int).SetBytes(s[:d])
	}

	for step := range 10 {
		i := step
		if !encrypt {
			i = 9 - step
		}
		m := v
		if i%2 == 0 {
			m = u
		}
		modulus := new(big.Int).Exp(radixBig, big.NewInt(int64(m)), nil)
		if encrypt {
			c := new(big.Int).Add(num(a), y(i, b))
			a, b = b, str(c.Mod(c, modulus), m)
		} else {
			c := new(big.Int).Sub(num(b), y(i, a))
			a, b = str(c.Mod(c, modulus), m), a
		}
	}
	return a + b
}

func TestReferenceNISTSamples(t *testing.T) {
	for _, s := range readSamples(t) {
		if got := refCrypt(s.key, s.tweak, s.radix, s.plaintext, true); got != s.ciphertext {
			t.Errorf("sample %d: refCrypt encrypt = %s, want %s", s.number, got, s.ciphertext)
		}
		if got := refCrypt(s.key, s.tweak, s.radix, s.ciphertext, false); got != s.plaintext {
			t.Errorf("sample %d: refCrypt decrypt = %s, want %s", s.number, got, s.plaintext)
		}
	}
}

func randomDigits(rng *rand.Rand, n int) []byte {
	digits := make([]byte, n)
	for k := range digits {
		digits[k] = '0' + byte(rng.IntN(10))
	}
	return digits
}

func randomBytes(rng *rand.Rand, n int) []byte {
	b := make([]byte, n)
	for k := range b {
		b[k] = byte(rng.Uint32())
	}
	return b
}

func TestMatchesReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	// Tweak lengths around the 16-byte block boundaries of Q, for both
	// b = 2..4 and b = 5, and the maximum.
	tweakLens := []int{0, 1, 9, 10, 11, 12, 13, 14, 15, 16, 17, 26, 27, 31, 32, 33, 100, MaxTweakLen}

	for _, keyLen := range []int{16, 24, 32} {
		key := randomBytes(rng, keyLen)
		c := newTestCipher(t, key)
		for n := MinDigits; n <= MaxDigits; n++ {
			for _, tweakLen := range tweakLens {
				tweak := randomBytes(rng, tweakLen)
				plaintext := randomDigits(rng, n)

				got := make([]byte, n)
				if err := c.Encrypt(got, plaintext, tweak); err != nil {
					t.Fatalf("Encrypt(%s) err = %v", plaintext, err)
				}
				want := refCrypt(key, tweak, 10, string(plaintext), true)
				if string(got) != want {
					t.Errorf("AES-%d, %d-byte tweak: Encrypt(%s) = %s, reference gives %s",
						keyLen*8, tweakLen, plaintext, got, want)
				}

				if err := c.Decrypt(got, plaintext, tweak); err != nil {
					t.Fatalf("Decrypt(%s) err = %v", plaintext, err)
				}
				want = refCrypt(key, tweak, 10, string(plaintext), false)
				if string(got) != want {
					t.Errorf("AES-%d, %d-byte tweak: Decrypt(%s) = %s, reference gives %s",
						keyLen*8, tweakLen, plaintext, got, want)
				}
			}
		}
	}
}

func TestRoundTripLengths(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	c := newTestCipher(t, testKey)
	tweaks := [][]byte{nil, {0}, {1}, []byte("9876543210"), randomBytes(rng, 16), randomBytes(rng, MaxTweakLen)}

	for _, n := range []int{6, 7, 11, 15, 19, 20} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			for range 20 {
				plaintext := randomDigits(rng, n)
				seen := make(map[string]int)
				for k, tweak := range tweaks {
					ciphertext := make([]byte, n)
					if err := c.Encrypt(ciphertext, plaintext, tweak); err != nil {
						t.Fatalf("Encrypt(%s) err = %v", plaintext, err)
					}
					if other, ok := seen[string(ciphertext)]; ok {
						t.Errorf("Encrypt(%s) = %s under tweaks %d and %d", plaintext, ciphertext, other, k)
					}
					seen[string(ciphertext)] = k

					decrypted := make([]byte, n)
					if err := c.Decrypt(decrypted, ciphertext, tweak); err != nil {
						t.Fatalf("Decrypt(%s) err = %v", ciphertext, err)
					}
					if !bytes.Equal(decrypted, plaintext) {
						t.Errorf("Decrypt(Encrypt(%s)) = %s with tweak %d", plaintext, decrypted, k)
					}
				}
			}
		})
	}
}

// TestSixDigitPermutation encrypts all 10^6 six-digit strings and checks
// that no two of them give the same ciphertext. With the race detector it
// encrypts only the first 10^5, which takes about as long as all of them
// without it.
func TestSixDigitPermutation(t *testing.T) {
	if testing.Short() {
		t.Skip("encrypts 10^6 strings")
	}
	c := newTestCipher(t, testKey)
	tweak := []byte("permutation")
	count := pow10[MinDigits]
	if raceEnabled {
		count /= 10
	}

	seen := make([]bool, pow10[MinDigits])
	plaintext := make([]byte, MinDigits)
	ciphertext := make([]byte, MinDigits)
	for x := range count {
		formatDigits(plaintext, x)
		if err := c.Encrypt(ciphertext, plaintext, tweak); err != nil {
			t.Fatalf("Encrypt(%s) err = %v", plaintext, err)
		}
		y, err := parseDigits(ciphertext, 0, MinDigits)
		if err != nil {
			t.Fatalf("Encrypt(%s) = %q, not digits: %v", plaintext, ciphertext, err)
		}
		if seen[y] {
			t.Fatalf("Encrypt(%s) = %s, which an earlier plaintext also gave", plaintext, ciphertext)
		}
		seen[y] = true
	}
}

func TestInvalidInputErrors(t *testing.T) {
	c := newTestCipher(t, testKey)
	tests := []struct {
		name    string
		dstLen  int
		src     string
		tweak   []byte
		want    error
		wantMsg string
	}{
		{"empty", 0, "", nil, ErrInvalidLength, "input has 0 digits, want 6 to 20"},
		{"five digits", 5, "12345", nil, ErrInvalidLength, "input has 5 digits, want 6 to 20"},
		{"21 digits", 21, "123456789012345678901", nil, ErrInvalidLength, "input has 21 digits, want 6 to 20"},
		{"dst shorter", 9, "1234567890", nil, ErrInvalidLength, "dst has 9 bytes, src has 10"},
		{"dst longer", 11, "1234567890", nil, ErrInvalidLength, "dst has 11 bytes, src has 10"},
		{"letter", 10, "12345x7890", nil, ErrInvalidDigit, "byte at index 5 is not an ASCII digit"},
		{"space in right half", 10, "1234567 90", nil, ErrInvalidDigit, "byte at index 7 is not an ASCII digit"},
		{"byte after 9", 6, "12345:", nil, ErrInvalidDigit, "byte at index 5 is not an ASCII digit"},
		{"byte before 0", 6, "/12345", nil, ErrInvalidDigit, "byte at index 0 is not an ASCII digit"},
		{"non-ASCII", 7, "12\xff3456", nil, ErrInvalidDigit, "byte at index 2 is not an ASCII digit"},
		{"tweak too long", 10, "1234567890", make([]byte, MaxTweakLen+1), ErrTweakTooLong, "256 bytes, max 255"},
	}
	for _, tt := range tests {
		for _, op := range []struct {
			name string
			fn   func(dst, src, tweak []byte) error
		}{{"Encrypt", c.Encrypt}, {"Decrypt", c.Decrypt}} {
			t.Run(op.name+"/"+tt.name, func(t *testing.T) {
				dst := bytes.Repeat([]byte{'#'}, tt.dstLen)
				err := op.fn(dst, []byte(tt.src), tt.tweak)
				if !errors.Is(err, tt.want) {
					t.Fatalf("%s err = %v, want %v", op.name, err, tt.want)
				}
				if !strings.Contains(err.Error(), tt.wantMsg) {
					t.Errorf("%s err = %q, want it to contain %q", op.name, err, tt.wantMsg)
				}
				if tt.src != "" && strings.Contains(err.Error(), tt.src[:4]) {
					t.Errorf("%s err = %q contains digits of the input", op.name, err)
				}
				if !bytes.Equal(dst, bytes.Repeat([]byte{'#'}, tt.dstLen)) {
					t.Errorf("%s wrote %q to dst despite the error", op.name, dst)
				}
			})
		}
	}
}

func TestTweakMaxLength(t *testing.T) {
	c := newTestCipher(t, testKey)
	dst := make([]byte, 10)
	if err := c.Encrypt(dst, []byte("0123456789"), make([]byte, MaxTweakLen)); err != nil {
		t.Errorf("Encrypt with a %d-byte tweak err = %v", MaxTweakLen, err)
	}
}

func TestNewKeyLengths(t *testing.T) {
	for _, n := range []int{0, 1, 15, 17, 23, 25, 31, 33, 64} {
		c, err := New(make([]byte, n))
		if err == nil {
			t.Errorf("New(%d-byte key) = %v, want an error", n, c)
			continue
		}
		want := fmt.Sprintf("invalid key length %d bytes", n)
		if !strings.Contains(err.Error(), want) {
			t.Errorf("New(%d-byte key) err = %q, want it to contain %q", n, err, want)
		}
	}
	for _, n := range []int{16, 24, 32} {
		if _, err := New(make([]byte, n)); err != nil {
			t.Errorf("New(%d-byte key) err = %v", n, err)
		}
	}
}

// TestConcurrentUse runs Encrypt and Decrypt from several goroutines on one
// Cipher. Run it with -race to check that they share no mutable state.
func TestConcurrentUse(t *testing.T) {
	c := newTestCipher(t, testKey)
	plaintext := []byte("0123456789")
	tweak := []byte("9876543210")
	const want = "6124200773" // NIST sample 2

	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			ciphertext := make([]byte, len(plaintext))
			decrypted := make([]byte, len(plaintext))
			for range 200 {
				if err := c.Encrypt(ciphertext, plaintext, tweak); err != nil {
					errs <- err
					return
				}
				if string(ciphertext) != want {
					errs <- fmt.Errorf("Encrypt(%s) = %s, want %s", plaintext, ciphertext, want)
					return
				}
				if err := c.Decrypt(decrypted, ciphertext, tweak); err != nil {
					errs <- err
					return
				}
				if !bytes.Equal(decrypted, plaintext) {
					errs <- fmt.Errorf("Decrypt(%s) = %s, want %s", ciphertext, decrypted, plaintext)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestEncryptAllocations(t *testing.T) {
	c := newTestCipher(t, testKey)
	buf := []byte("01234567890")
	tweak := []byte("tweak")
	allocs := testing.AllocsPerRun(100, func() {
		if err := c.Encrypt(buf, buf, tweak); err != nil {
			t.Fatal(err)
		}
	})
	// sync.Pool may drop its buffer at a garbage collection, which costs one
	// allocation on the next call, so allow a fraction of one.
	if allocs >= 1 {
		t.Errorf("Encrypt allocates %.2f times per call, want 0", allocs)
	}
}

// FuzzCrypt checks that Encrypt and Decrypt never panic, that they reject
// what is not a digit string in range, and that Decrypt inverts Encrypt.
func FuzzCrypt(f *testing.F) {
	f.Add([]byte("0123456789"), []byte("9876543210"))
	f.Add([]byte("12345"), []byte{})
	f.Add([]byte("99999999999999999999"), bytes.Repeat([]byte{0xff}, MaxTweakLen))
	f.Add([]byte("000000"), []byte{0})
	f.Add([]byte("12a456"), []byte("x"))
	c, err := New(testKey)
	if err != nil {
		f.Fatal(err)
	}

	f.Fuzz(func(t *testing.T, src, tweak []byte) {
		valid := len(src) >= MinDigits && len(src) <= MaxDigits && len(tweak) <= MaxTweakLen
		for _, x := range src {
			valid = valid && x >= '0' && x <= '9'
		}

		ciphertext := make([]byte, len(src))
		err := c.Encrypt(ciphertext, src, tweak)
		if !valid {
			if err == nil {
				t.Fatalf("Encrypt(%q) with a %d-byte tweak err = nil, want an error", src, len(tweak))
			}
			if err := c.Decrypt(ciphertext, src, tweak); err == nil {
				t.Fatalf("Decrypt(%q) with a %d-byte tweak err = nil, want an error", src, len(tweak))
			}
			return
		}
		if err != nil {
			t.Fatalf("Encrypt(%s) err = %v", src, err)
		}
		if _, err := parseDigits(ciphertext, 0, len(ciphertext)); err != nil {
			t.Fatalf("Encrypt(%s) = %q, not digits: %v", src, ciphertext, err)
		}

		decrypted := make([]byte, len(src))
		if err := c.Decrypt(decrypted, ciphertext, tweak); err != nil {
			t.Fatalf("Decrypt(%s) err = %v", ciphertext, err)
		}
		if !bytes.Equal(decrypted, src) {
			t.Fatalf("Decrypt(Encrypt(%s)) = %s", src, decrypted)
		}
	})
}

func BenchmarkEncrypt11(b *testing.B) {
	c := newTestCipher(b, testKey)
	buf := []byte("01234567890")
	tweak := []byte("9876543210")
	b.ReportAllocs()
	for b.Loop() {
		if err := c.Encrypt(buf, buf, tweak); err != nil {
			b.Fatal(err)
		}
	}
}
