package httpapi

import (
	"os"
	"regexp"
	"strconv"
	"testing"
)

// The error table in doc.go must list every code with its status, because
// clients write their error handling from it.
func TestDocListsEveryCode(t *testing.T) {
	doc, err := os.ReadFile("doc.go")
	if err != nil {
		t.Fatal(err)
	}

	row := regexp.MustCompile(`(?m)^//\t(\d{3})\s+([a-z_0-9]+)\s`)
	listed := make(map[string]int)
	for _, m := range row.FindAllStringSubmatch(string(doc), -1) {
		status, _ := strconv.Atoi(m[1])
		listed[m[2]] = status
	}

	for c := codeOK + 1; c < numCodes; c++ {
		info := codes[c]
		status, ok := listed[info.name]
		if !ok {
			t.Errorf("doc.go's error table does not list %s (%d)", info.name, info.status)
			continue
		}
		if status != info.status {
			t.Errorf("doc.go's error table gives %s status %d, want %d", info.name, status, info.status)
		}
		delete(listed, info.name)
	}
	for name, status := range listed {
		t.Errorf("doc.go's error table lists %s (%d), which is not a code", name, status)
	}
}
