package digitgroups

import "testing"

func TestSeparator(t *testing.T) {
	tests := []struct {
		s    string
		n    int
		wide bool
	}{
		{" 1", 1, false},
		{"-1", 1, false},
		{".1", 1, false},
		{"/1", 1, false},
		{"_1", 1, false},
		{"\t1", 1, true},
		{"  1", 2, true},
		{"    1", 4, true},
		{"     1", 0, false}, // five spaces: another column
		{"\u00a01", 2, true},
		{"\u2007\u202f1", 6, true},
		{" -1", 0, false},
		{" - 1", 3, true},
		{" -- 1", 0, false},
		{"--1", 0, false},
		{",1", 0, false},
		{" x", 0, false},
		{" ", 0, false},
		{"", 0, false},
		{"1", 0, false},
	}
	for _, tt := range tests {
		if n, wide := Separator(tt.s); n != tt.n || wide != tt.wide {
			t.Errorf("Separator(%q) = %d, %t, want %d, %t", tt.s, n, wide, tt.n, tt.wide)
		}
	}
}

func TestCharWidth(t *testing.T) {
	tests := map[string]int{
		"-1": 1, "_": 1, " ": 1, "\t": 1, "\u00a0": 2, "\u202f": 3, ",": 0, "1": 0, "": 0,
	}
	for s, want := range tests {
		if got := CharWidth(s); got != want {
			t.Errorf("CharWidth(%q) = %d, want %d", s, got, want)
		}
	}
}
