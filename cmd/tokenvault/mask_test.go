package main

import "testing"

func TestMaskDigitRuns(t *testing.T) {
	tests := []struct {
		text, want string
	}{
		{"4111111111111111", "****************"},
		{"suspend 4111 1111-1111.1111", "suspend **** ****-****.****"},
		{"/x/4111.1111.1111.1111.db", "/x/****.****.****.****.db"},
		{"4111\u00a01111\u00a01111\u00a01111", "****\u00a0****\u00a0****\u00a0****"},
		{"4111 - 1111 -- 1111     1111", "**** - **** -- ****     ****"},
		{"line 12345 at 12:00", "line 12345 at 12:00"}, // short runs stay
		{"version 1.2.3", "version 1.2.3"},
	}
	for _, tt := range tests {
		if got := maskDigitRuns(tt.text); got != tt.want {
			t.Errorf("maskDigitRuns(%q) = %q, want %q", tt.text, got, tt.want)
		}
	}
}
