package digitgroups

import "testing"

func TestSeparator(t *testing.T) {
	tests := []struct {
		s    string
		want int
	}{
		{" 1", 1},
		{"-1", 1},
		{".1", 1},
		{"/1", 1},
		{"_1", 1},
		{"\t1", 1},
		{"  1", 2},
		{"    1", 4},
		{"     1", 0}, // five spaces: another column
		{"\u00a01", 2},
		{"\u2007\u202f1", 6},
		{" -1", 0},
		{"--1", 0},
		{",1", 0},
		{" x", 0},
		{" ", 0},
		{"", 0},
		{"1", 0},
	}
	for _, tt := range tests {
		if got := Separator(tt.s); got != tt.want {
			t.Errorf("Separator(%q) = %d, want %d", tt.s, got, tt.want)
		}
	}
}
