// Package luhn computes the Luhn (mod 10) check of card numbers: the sum that
// a valid number's digits make, and the check digit that completes one.
package luhn

// Valid reports whether the ASCII digits pass the Luhn check. The caller
// has checked that digits holds only '0' to '9'.
func Valid[T ~string | ~[]byte](digits T) bool {
	return Sum(digits) == 0
}

// Sum returns the Luhn sum of the ASCII digits modulo 10: 0 for a number
// that passes the check. The caller has checked that digits holds only '0'
// to '9'.
func Sum[T ~string | ~[]byte](digits T) int {
	return sum(digits, false) % 10
}

// CheckDigit returns the ASCII digit that, appended to payload, makes it
// pass the Luhn check. The caller has checked that payload holds only '0'
// to '9'.
func CheckDigit[T ~string | ~[]byte](payload T) byte {
	// The check digit takes the rightmost place, which is not doubled, so
	// the payload's last digit is.
	return '0' + byte((10-sum(payload, true)%10)%10)
}

// sum returns the Luhn sum of digits, doubling every second digit from the
// right, starting with the last when doubleLast is set.
func sum[T ~string | ~[]byte](digits T, doubleLast bool) int {
	total := 0
	double := doubleLast
	for i := len(digits) - 1; i >= 0; i-- {
		d := int(digits[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		total += d
		double = !double
	}
	return total
}
