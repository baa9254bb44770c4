package main

import (
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestServeDrainDelay checks that during --drain-delay /readyz reports 503
// while requests are still served, and that serve then exits cleanly.
func TestServeDrainDelay(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w, "--drain-delay", "1500ms")
	c := newAPIClient(p)
	secret := adminSecret(t, p)

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Second)
	sawDraining := false
	for time.Now().Before(deadline) {
		r, err := c.send(http.MethodGet, "/readyz", "", nil)
		if err == nil && r.status == http.StatusServiceUnavailable {
			sawDraining = true
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if !sawDraining {
		t.Error("/readyz never answered 503 during the drain delay")
	}
	if r, err := c.send(http.MethodPost, "/tokenize", secret, map[string]string{"data": "value during drain"}); err != nil || r.status != http.StatusOK {
		t.Errorf("tokenize during the drain delay = %v, %v; want 200", r, err)
	}
	if code := p.wait(t); code != 0 {
		t.Errorf("serve exited with %d after the drain delay, want 0", code)
	}
}

// TestServeRevokedKeysNotReplaced revokes every API key and restarts serve:
// it must not create and print a new admin key.
func TestServeRevokedKeysNotReplaced(t *testing.T) {
	w := newWorkspace(t)
	p := startServe(t, w)
	adminSecret(t, p)
	p.stop(t, syscall.SIGTERM)

	list := w.run(t, "", "apikey", "list")
	id := strings.Fields(strings.Split(strings.TrimSpace(list.stdout), "\n")[1])[0]
	checkExit(t, w.run(t, "", "apikey", "revoke", id), 0)

	p = startServe(t, w)
	if strings.Contains(p.stderr.String(), "created an admin API key") {
		t.Error("serve created a new admin key after every key was revoked")
	}
	p.stop(t, syscall.SIGTERM)
	if !strings.Contains(p.stderr.String(), "every API key is revoked") {
		t.Error("serve did not warn that every API key is revoked")
	}
	if _, err := os.Stat(w.path("tokenvault.audit.log")); err != nil {
		t.Errorf("the default audit log beside the database is missing: %v", err)
	}
}
