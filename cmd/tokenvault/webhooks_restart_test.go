package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/webhook"
)

// cursorFailStore is a real MemoryStore whose next write of one cursor fails,
// as on a full disk.
type cursorFailStore struct {
	*tokenvault.MemoryStore
	cursor string // the metadata name of the cursor: "outbox/cursor/" and the subscriber name

	mu     sync.Mutex
	failed bool
}

var errCursorWrite = errors.New("injected cursor write failure")

func (s *cursorFailStore) SetMetadata(ctx context.Context, name string, value []byte) error {
	s.mu.Lock()
	fail := name == s.cursor && !s.failed
	if fail {
		s.failed = true
	}
	s.mu.Unlock()
	if fail {
		return errCursorWrite
	}
	return s.MemoryStore.SetMetadata(ctx, name, value)
}

// lockedBuffer is a bytes.Buffer for a logger and a test to share.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestStartWebhooksRestartsAfterStoreError fails one cursor write and checks
// that serve's dispatcher logs it with the endpoint and then delivers the
// next event.
func TestStartWebhooksRestartsAfterStoreError(t *testing.T) {
	store := &cursorFailStore{MemoryStore: tokenvault.NewMemoryStore(), cursor: "outbox/cursor/" + webhook.SubscriberName("billing")}
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		t.Fatal(err)
	}
	vault, err := tokenvault.New(store, keys)
	if err != nil {
		t.Fatalf("New err = %v", err)
	}
	defer vault.Close()
	rec := newWebhookReceiver(t, http.StatusOK)
	var logs lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&logs, nil))
	stop := startWebhooks(logger, vault, "tokenvault.webhooks", []webhook.Endpoint{{ID: "billing", URL: rec.srv.URL + "/hooks", Secret: webhookSecret}})
	defer stop()

	first, err := vault.Tokenize(context.Background(), []byte("restart test 1"))
	if err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	second, err := vault.Tokenize(context.Background(), []byte("restart test 2"))
	if err != nil {
		t.Fatalf("Tokenize err = %v", err)
	}
	waitUntil(t, "both events at the endpoint", func() bool {
		tokens := make(map[string]bool)
		for _, p := range rec.acceptedPayloads() {
			tokens[p.Token] = true
		}
		return tokens[first] && tokens[second]
	})

	const restartMsg = "webhook delivery to an endpoint stopped on an error, restarting it after a backoff"
	var records []map[string]any
	for _, line := range strings.Split(logs.String(), "\n") {
		var record map[string]any
		if json.Unmarshal([]byte(line), &record) == nil && record["msg"] == restartMsg {
			records = append(records, record)
		}
	}
	if len(records) != 1 {
		t.Fatalf("logged %d restart records, want 1:\n%s", len(records), logs.String())
	}
	r := records[0]
	if r["endpoint"] != "billing" || r["failures"] != float64(1) || r["level"] != "ERROR" ||
		!strings.Contains(fmt.Sprint(r["error"]), errCursorWrite.Error()) || r["retry_in"] == "" {
		t.Errorf("restart record = %v, want endpoint billing, failures 1, retry_in and the store's error at level ERROR", r)
	}
	if strings.Contains(logs.String(), "webhook dispatcher stopped") {
		t.Errorf("the dispatcher stopped after one store error:\n%s", logs.String())
	}
	if strings.Contains(logs.String(), webhookSecretBase64) || strings.Contains(logs.String(), string(webhookSecret)) {
		t.Error("the log contains the webhook secret")
	}
}
