package luhn

import "testing"

func TestValid(t *testing.T) {
	tests := []struct {
		digits string
		want   bool
	}{
		{"4111111111111111", true}, // published test card numbers
		{"5555555555554444", true},
		{"378282246310005", true},
		{"4111111111111112", false},
		{"79927398713", true},
		{"79927398710", false},
		{"0", true},
	}
	for _, tt := range tests {
		if got := Valid(tt.digits); got != tt.want {
			t.Errorf("Valid(%s) = %t, want %t", tt.digits, got, tt.want)
		}
		if got := Valid([]byte(tt.digits)); got != tt.want {
			t.Errorf("Valid([]byte(%s)) = %t, want %t", tt.digits, got, tt.want)
		}
	}
}

func TestCheckDigitCompletesEveryPayload(t *testing.T) {
	payloads := []string{"411111111111111", "555555555555444", "37828224631000", "7992739871", "", "9"}
	for _, payload := range payloads {
		d := CheckDigit(payload)
		if d < '0' || d > '9' {
			t.Fatalf("CheckDigit(%q) = %q, not a digit", payload, d)
		}
		if !Valid(payload + string(d)) {
			t.Errorf("CheckDigit(%q) = %c, and the result fails the check", payload, d)
		}
		for other := byte('0'); other <= '9'; other++ {
			if other != d && Valid(payload+string(other)) {
				t.Errorf("payload %q passes with %c too, not only with %c", payload, other, d)
			}
		}
	}
}

func TestSum(t *testing.T) {
	tests := []struct {
		digits string
		want   int
	}{
		{"4111111111111111", 0},
		{"4111111111111112", 1},
		{"4111111111111110", 9},
		{"79927398710", 7},
		{"", 0},
	}
	for _, tt := range tests {
		if got := Sum(tt.digits); got != tt.want {
			t.Errorf("Sum(%s) = %d, want %d", tt.digits, got, tt.want)
		}
	}
}
