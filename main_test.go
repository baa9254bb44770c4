package tokenvault

import (
	"os"
	"testing"
)

func TestMain(m *testing.M) {
	code := m.Run()
	closeBenchStores()
	os.Exit(code)
}
