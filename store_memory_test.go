package tokenvault_test

import (
	"testing"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/storetest"
)

func TestMemoryStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T) tokenvault.Store {
		s := tokenvault.NewMemoryStore()
		t.Cleanup(func() { s.Close() })
		return s
	})
}
