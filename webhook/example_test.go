package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/webhook"
)

// receiver returns a webhook receiver that verifies each request with
// VerifyRequest, drops repeats, and sends the type of each new event, and
// nothing else, on events.
func receiver(secret []byte, events chan<- string) http.Handler {
	// A real receiver keeps the IDs in its database, in the transaction
	// that handles the event.
	var mu sync.Mutex
	handled := make(map[string]bool)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := webhook.VerifyRequest(r, secret, 0)
		var tooLarge *http.MaxBytesError
		switch {
		case errors.As(err, &tooLarge):
			http.Error(w, "body too large", http.StatusRequestEntityTooLarge)
			return
		case err != nil:
			http.Error(w, "invalid signature", http.StatusUnauthorized)
			return
		}

		var p webhook.Payload
		if err := json.Unmarshal(body, &p); err != nil {
			http.Error(w, "invalid JSON", http.StatusBadRequest)
			return
		}
		// Delivery is at least once, so repeats are dropped by p.ID, which
		// the signature covers. The Tokenvault-Event-Id header is not signed,
		// and a replay can change it.
		mu.Lock()
		repeat := handled[p.ID]
		handled[p.ID] = true
		mu.Unlock()
		if repeat {
			w.WriteHeader(http.StatusOK)
			return
		}
		events <- p.Type
		w.WriteHeader(http.StatusNoContent)
	})
}

func ExampleVerifyRequest() {
	// Never hardcode a secret: load it from the same secret store as the
	// sender's endpoints file.
	secret := []byte("example secret, at least 16 bytes")
	events := make(chan string, 1)
	srv := httptest.NewServer(receiver(secret, events))
	defer srv.Close()

	// The request that a Dispatcher sends when a token is suspended.
	body := []byte(`{"id":"evt_tok_example_1","seq":2,"token":"tok_example","revision":1,"type":"suspended",` +
		`"from":"active","to":"suspended","reason":"","actor":"","time":"2025-01-02T03:04:05Z"}`)
	send := func(signature, eventID string) {
		req, err := http.NewRequest(http.MethodPost, srv.URL, bytes.NewReader(body))
		if err != nil {
			log.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set(webhook.SignatureHeader, signature)
		req.Header.Set(webhook.EventIDHeader, eventID)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			log.Fatal(err)
		}
		resp.Body.Close()
		fmt.Println(resp.Status)
	}

	signature := webhook.Sign(secret, body, time.Now())
	send(signature, "evt_tok_example_1")
	fmt.Println("event:", <-events)
	// A replay of the captured request, with another event ID header, is
	// acknowledged but not handled again.
	send(signature, "evt_replayed")
	fmt.Println("events handled since:", len(events))
	send(webhook.Sign([]byte("a secret that the receiver does not have"), body, time.Now()), "evt_tok_example_1")
	// Output:
	// 204 No Content
	// event: suspended
	// 200 OK
	// events handled since: 0
	// 401 Unauthorized
}

func ExampleDispatcher() {
	dir, err := os.MkdirTemp("", "webhook-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	// Real programs load keys with tokenvault.LoadKeyFile or
	// tokenvault.KeyRingFromEnv, and endpoints with webhook.LoadEndpoints.
	keys, err := tokenvault.GenerateKeyRing()
	if err != nil {
		log.Fatal(err)
	}
	v, err := tokenvault.Open(filepath.Join(dir, "vault.db"), keys)
	if err != nil {
		log.Fatal(err)
	}
	defer v.Close()

	secret := []byte("example secret, at least 16 bytes")
	events := make(chan string, 1)
	srv := httptest.NewServer(receiver(secret, events))
	defer srv.Close()

	ctx, stop := context.WithCancel(context.Background())
	d := webhook.NewDispatcher(v, []webhook.Endpoint{{ID: "example", URL: srv.URL, Secret: secret}}, nil)
	done := make(chan error, 1)
	go func() { done <- d.Run(ctx) }()

	if _, err := v.TokenizeCard(ctx, "4111 1111 1111 1111"); err != nil {
		log.Fatal(err)
	}
	fmt.Println("event:", <-events)

	stop()
	if err := <-done; !errors.Is(err, context.Canceled) {
		log.Fatal(err)
	}
	// Output: event: created
}
