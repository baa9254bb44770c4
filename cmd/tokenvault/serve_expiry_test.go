package main

import (
	"net/http"
	"strings"
	"syscall"
	"testing"
)

// TestServeRecordsExpiry tokenizes a card with a lifetime of one second and
// checks that serve records its expiry, so that the webhook endpoint gets
// an "expired" event, and that it stops recording before it closes the
// vault.
func TestServeRecordsExpiry(t *testing.T) {
	w := newWorkspace(t)
	rec := newWebhookReceiver(t, http.StatusOK)
	writeWebhooksFile(t, w.path("tokenvault.webhooks"), "billing", rec.srv.URL+"/hooks")
	p := startServe(t, w, "--no-auth", "--expiry-interval", "200ms")
	if records := p.logRecords("started recording token expirations"); len(records) != 1 || records[0]["interval"] != "200ms" {
		t.Errorf("expiry start log records = %v, want one with interval 200ms", records)
	}

	c := newAPIClient(p)
	pan := testPANs[5].pan
	resp := c.do(t, "POST", "/tokenize", "", map[string]any{"data": pan, "type": "card", "expires_in": "1s"})
	if resp.status != http.StatusOK {
		t.Fatalf("POST /tokenize: %v, want 200", resp)
	}
	token := resp.str("token")
	expiredEvent := func() (payload map[string]any, ok bool) {
		for _, p := range rec.acceptedPayloads() {
			if p.Token == token && p.Type == "expired" {
				return map[string]any{"revision": p.Revision, "from": p.From, "to": p.To, "actor": p.Actor}, true
			}
		}
		return nil, false
	}
	waitUntil(t, "the expired event at the webhook endpoint", func() bool {
		_, ok := expiredEvent()
		return ok
	})

	got, _ := expiredEvent()
	if got["revision"] != uint64(1) || got["from"] != "active" || got["to"] != "active" || got["actor"] != "tokenvault" {
		t.Errorf("expired event = %v, want revision 1, from and to active, actor tokenvault", got)
	}
	// serve logs the expiry after the commit that also lets the webhook
	// dispatcher deliver the event, so the record can come a little later.
	waitUntil(t, "the log record of the expiry", func() bool {
		return len(p.logRecords("recorded token expirations")) > 0
	})
	records := p.logRecords("recorded token expirations")
	if len(records) != 1 || records[0]["count"] != float64(1) {
		t.Errorf("expiry log records = %v, want one with count 1: a later run finds nothing new", records)
	}

	if code := p.stop(t, syscall.SIGTERM); code != 0 {
		t.Errorf("serve exited with status %d, want 0", code)
	}
	stderr := p.stderr.String()
	stopped, closed := strings.Index(stderr, `"stopped recording token expirations"`), strings.Index(stderr, `"closed vault"`)
	if stopped < 0 || closed < 0 || stopped > closed {
		t.Errorf("serve did not log that it stopped recording expirations before it closed the vault:\n%s", stderr)
	}
	rec.checkBodiesHaveNoCardNumber(t)
	checkServeLogs(t, w, p, "", map[string]bool{pan: true})
	checkNoWebhookSecret(t, p.result())
}

func TestServeExpiryIntervalSettings(t *testing.T) {
	w := newWorkspace(t)
	tests := []struct {
		name     string
		w        *workspace
		args     []string
		interval string // the interval logged at the start, or "" for none
	}{
		{"default", w, nil, "1m0s"},
		{"environment", w.with(envExpiryInterval + "=90s"), nil, "1m30s"},
		{"flag over environment", w.with(envExpiryInterval + "=90s"), []string{"--expiry-interval", "5s"}, "5s"},
		{"zero turns it off", w, []string{"--expiry-interval", "0"}, ""},
		{"zero in the environment", w.with(envExpiryInterval + "=0s"), nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := startServe(t, tt.w, append([]string{"--no-auth"}, tt.args...)...)
			started := p.logRecords("started recording token expirations")
			off := p.logRecords("the expiry interval is 0, so serve records no token expirations")
			if tt.interval == "" {
				if len(started) != 0 || len(off) != 1 {
					t.Errorf("serve logged %d start records and %d 'off' records, want none and one", len(started), len(off))
				}
			} else if len(started) != 1 || started[0]["interval"] != tt.interval || len(off) != 0 {
				t.Errorf("expiry start log records = %v and %d 'off' records, want one with interval %s and none", started, len(off), tt.interval)
			}
			if code := p.stop(t, syscall.SIGTERM); code != 0 {
				t.Errorf("serve exited with status %d, want 0", code)
			}
		})
	}
}

func TestServeExpiryIntervalInvalid(t *testing.T) {
	w := newWorkspace(t)
	tests := []struct {
		name string
		w    *workspace
		args []string
		want string
	}{
		{"negative flag", w, []string{"--expiry-interval", "-1s"}, "invalid --expiry-interval -1s"},
		{"negative environment", w.with(envExpiryInterval + "=-5m"), nil, "invalid " + envExpiryInterval + ` "-5m"`},
		{"environment not a duration", w.with(envExpiryInterval + "=soon"), nil, "invalid " + envExpiryInterval},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := tt.w.run(t, "", append([]string{"serve", "--addr", "127.0.0.1:0", "--no-auth"}, tt.args...)...)
			checkExit(t, r, exitUsage)
			checkStderr(t, r, tt.want)
		})
	}
}
