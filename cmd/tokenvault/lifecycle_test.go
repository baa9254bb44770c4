package main

import (
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
)

func TestLifecycleCommands(t *testing.T) {
	w := newWorkspace(t)
	pans := []string{testPANs[0].pan, testPANs[21].pan, testPANs[28].pan}
	tokens := tokenize(t, w, pans)

	r := w.run(t, "", "suspend", tokens[0], "--reason", "card reported lost", "--actor", "support-7")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	r = w.run(t, tokens[0]+"\n"+tokens[1]+"\n", "detokenize")
	checkExit(t, r, 1)
	checkStderr(t, r, "line 1: token is suspended")
	checkOutputLines(t, r, []string{"", pans[1]})

	if r := w.run(t, "", "activate", "--reason", "card found", tokens[0]); r.code != 0 {
		t.Fatalf("%v", r)
	}
	if got := detokenize(t, w, tokens[:1]); got[0] != pans[0] {
		t.Errorf("detokenize after activate returned another value")
	}

	if r := w.run(t, "", "close", tokens[1], "--reason", "account closed"); r.code != 0 {
		t.Fatalf("%v", r)
	}
	r = w.run(t, tokens[1]+"\n", "detokenize")
	checkExit(t, r, 1)
	checkStderr(t, r, "line 1: token is closed")
	checkOutputLines(t, r, []string{""})

	for _, command := range []string{"suspend", "activate"} {
		r := w.run(t, "", command, tokens[1])
		checkExit(t, r, 1)
		checkStderr(t, r, "a closed token cannot change state")
	}
	checkExit(t, w.run(t, "", "close", tokens[1]), 0)

	r = w.run(t, "", "suspend", "tok_00000000000000000000000000000000000")
	checkExit(t, r, 1)
	checkStderr(t, r, "token not found")

	if got := detokenize(t, w, tokens[2:]); got[0] != pans[2] {
		t.Errorf("an untouched token no longer detokenizes to its value")
	}
}

// inspectJSON is the JSON that inspect prints.
type inspectJSON struct {
	Token         string  `json:"token"`
	State         string  `json:"state"`
	Expired       bool    `json:"expired"`
	Revision      uint64  `json:"revision"`
	Kind          string  `json:"kind"`
	Format        string  `json:"format"`
	Brand         string  `json:"brand"`
	First6        string  `json:"first6"`
	Last4         string  `json:"last4"`
	Deterministic bool    `json:"deterministic"`
	Scope         *string `json:"scope"`
	Created       string  `json:"created"`
	Updated       string  `json:"updated"`
	Expires       *string `json:"expires"`
	History       []struct {
		Revision uint64 `json:"revision"`
		From     string `json:"from"`
		To       string `json:"to"`
		Reason   string `json:"reason"`
		Actor    string `json:"actor"`
		Time     string `json:"time"`
	} `json:"history"`
}

func inspect(t *testing.T, w *workspace, token string) (inspectJSON, map[string]any) {
	t.Helper()
	r := w.run(t, "", "inspect", token)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	var info inspectJSON
	if err := json.Unmarshal([]byte(r.stdout), &info); err != nil {
		t.Fatalf("inspect output is not valid JSON: %v\n%s", err, r.stdout)
	}
	var fields map[string]any
	if err := json.Unmarshal([]byte(r.stdout), &fields); err != nil {
		t.Fatal(err)
	}
	return info, fields
}

func TestInspectJSON(t *testing.T) {
	w := newWorkspace(t)
	pan := testPANs[0].pan
	token := tokenize(t, w, []string{pan})[0]
	if r := w.run(t, "", "suspend", token, "--reason", "fraud review", "--actor", "risk-bot"); r.code != 0 {
		t.Fatalf("%v", r)
	}

	info, fields := inspect(t, w, token)
	for _, f := range []struct{ name, got, want string }{
		{"token", info.Token, token},
		{"state", info.State, "suspended"},
		{"kind", info.Kind, "card"},
		{"format", info.Format, "card"},
		{"brand", info.Brand, "visa"},
		{"last4", info.Last4, pan[len(pan)-4:]},
	} {
		if f.got != f.want {
			t.Errorf("inspect %s = %q, want %q", f.name, f.got, f.want)
		}
	}
	if info.Revision != 1 {
		t.Errorf("inspect revision = %d, want 1", info.Revision)
	}
	if info.Expired {
		t.Errorf("inspect expired = true for a token without expiry")
	}
	for _, key := range []string{"expires", "first6", "scope"} {
		if _, ok := fields[key]; ok {
			t.Errorf("inspect output has the key %q for a random card token without expiry", key)
		}
	}
	if len(info.History) != 1 {
		t.Fatalf("inspect history has %d entries, want 1", len(info.History))
	}
	change := info.History[0]
	for _, f := range []struct{ name, got, want string }{
		{"from", change.From, "active"},
		{"to", change.To, "suspended"},
		{"reason", change.Reason, "fraud review"},
		{"actor", change.Actor, "risk-bot"},
	} {
		if f.got != f.want {
			t.Errorf("inspect history[0].%s = %q, want %q", f.name, f.got, f.want)
		}
	}
	if change.Revision != 1 {
		t.Errorf("inspect history[0].revision = %d, want 1", change.Revision)
	}
	for name, value := range map[string]string{"created": info.Created, "updated": info.Updated, "history[0].time": change.Time} {
		if _, err := time.Parse(time.RFC3339Nano, value); err != nil {
			t.Errorf("inspect %s = %q is not RFC 3339: %v", name, value, err)
		}
	}

	if r := w.run(t, "", "close", token); r.code != 0 {
		t.Fatalf("%v", r)
	}
	closed, _ := inspect(t, w, token)
	if closed.State != "closed" {
		t.Errorf("inspect of a closed token: state = %q, want closed", closed.State)
	}
	if len(closed.History) != 2 {
		t.Errorf("inspect of a closed token: %d history entries, want 2", len(closed.History))
	}
}

func TestInspectExpiryAndFormats(t *testing.T) {
	w := newWorkspace(t)
	pan := testPANs[14].pan

	expiring := tokenize(t, w, []string{pan}, "--expires-in", "1h")[0]
	info, _ := inspect(t, w, expiring)
	if info.Expires == nil {
		t.Fatalf("inspect of a token with --expires-in 1h has no expires key")
	}
	created, err := time.Parse(time.RFC3339Nano, info.Created)
	if err != nil {
		t.Fatalf("inspect created = %q is not RFC 3339: %v", info.Created, err)
	}
	expires, err := time.Parse(time.RFC3339Nano, *info.Expires)
	if err != nil {
		t.Fatalf("inspect expires = %q is not RFC 3339: %v", *info.Expires, err)
	}
	if expires.Sub(created) != time.Hour {
		t.Errorf("inspect expires - created = %s, want 1h", expires.Sub(created))
	}

	firstSix := tokenize(t, w, []string{pan}, "--format", "card-first-six", "--deterministic", "--scope", "acquirer")[0]
	info, _ = inspect(t, w, firstSix)
	if info.Format != "card-first-six" {
		t.Errorf("inspect format = %q, want card-first-six", info.Format)
	}
	if info.First6 != pan[:6] {
		t.Errorf("inspect first6 = %q, want %q", info.First6, pan[:6])
	}
	if !info.Deterministic {
		t.Errorf("inspect deterministic = false for a token from --deterministic")
	}
	if info.Scope == nil || *info.Scope != "acquirer" {
		t.Errorf("inspect scope = %v, want \"acquirer\"", info.Scope)
	}

	data := tokenize(t, w, []string{"secret note"}, "--type", "data")[0]
	info, fields := inspect(t, w, data)
	if info.Kind != "data" {
		t.Errorf("inspect of a data token: kind = %q, want data", info.Kind)
	}
	if info.Format != "opaque" {
		t.Errorf("inspect of a data token: format = %q, want opaque", info.Format)
	}
	if _, ok := fields["last4"]; ok {
		t.Errorf("inspect of a data token has a last4 key")
	}
}

func TestRewrapAfterRotation(t *testing.T) {
	base := newWorkspace(t)
	oldKey, indexKey := generateKeys(t, base)
	newKey, _ := generateKeys(t, base)
	withKeys := func(keys string) *workspace {
		return base.with(tokenvault.EnvKeys+"="+keys, tokenvault.EnvIndexKey+"="+indexKey)
	}

	var pans []string
	for _, p := range testPANs {
		if p.luhnValid {
			pans = append(pans, p.pan)
		}
	}
	tokens := tokenize(t, withKeys(oldKey), pans)

	r := withKeys(newKey).run(t, tokens[0]+"\n", "detokenize")
	checkExit(t, r, 1)
	checkStderr(t, r, "keys do not match")

	rotated := withKeys(newKey + "," + oldKey)
	r = rotated.run(t, "", "rewrap", "--batch", "10")
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	if want := "re-encrypted: " + strconv.Itoa(len(pans)) + " values"; !strings.Contains(r.stdout, want) {
		t.Errorf("rewrap summary does not contain %q:\n%s", want, r.stdout)
	}
	if !strings.Contains(r.stdout, "failed: 0") {
		t.Errorf("rewrap summary does not report 0 failures:\n%s", r.stdout)
	}
	if !strings.Contains(r.stdout, "0 (no values left") {
		t.Errorf("rewrap summary does not report that no values are left under the old key:\n%s", r.stdout)
	}
	checkStderr(t, r, "tokenvault rewrap: "+strconv.Itoa(len(pans))+" values in ")

	again := rotated.run(t, "", "rewrap")
	checkExit(t, again, 0)
	if !strings.Contains(again.stdout, "re-encrypted: 0 values") {
		t.Errorf("second rewrap re-encrypted values again:\n%s", again.stdout)
	}

	newOnly := withKeys(newKey)
	if got := detokenize(t, newOnly, tokens); strings.Join(got, ",") != strings.Join(pans, ",") {
		t.Errorf("detokenize with only the new key after rewrap returned other values")
	}
	tokenize(t, newOnly, []string{testPANs[0].pan})
}

func TestKeygenRotate(t *testing.T) {
	w := newWorkspace(t)
	var pans []string
	for _, p := range testPANs[:10] {
		if p.luhnValid {
			pans = append(pans, p.pan)
		}
	}
	tokens := tokenize(t, w, pans)
	oldKeys, _ := tokenvault.LoadKeyFile(w.path("tokenvault.key"))

	r := w.run(t, "", "keygen", "--rotate", "--out", "rotated.key")
	checkExit(t, r, 0)
	rotated, err := tokenvault.LoadKeyFile(w.path("rotated.key"))
	if err != nil {
		t.Fatalf("LoadKeyFile(rotated.key) err = %v", err)
	}
	ids := rotated.KeyIDs()
	if len(ids) != 2 || ids[1] != oldKeys.Primary() || rotated.IndexKeyID() != oldKeys.IndexKeyID() {
		t.Fatalf("rotated key ids %v, index %s; want a new key, then %s, and index %s", ids, rotated.IndexKeyID(), oldKeys.Primary(), oldKeys.IndexKeyID())
	}

	r = w.run(t, "", "rewrap", "--key-file", "rotated.key")
	checkExit(t, r, 0)
	if got := detokenize(t, w, tokens, "--key-file", "rotated.key"); strings.Join(got, ",") != strings.Join(pans, ",") {
		t.Errorf("detokenize with the rotated keys returned other values")
	}

	r = newWorkspace(t).run(t, "", "keygen", "--rotate")
	checkExit(t, r, 1)
	checkStderr(t, r, "no keys to rotate")
	r = w.run(t, "", "keygen", "--db", "x.db")
	checkExit(t, r, 2)
}

func TestCompactCommand(t *testing.T) {
	w := newWorkspace(t)
	pans := []string{testPANs[0].pan, testPANs[1].pan}
	tokens := tokenize(t, w, pans)
	checkExit(t, w.run(t, "", "close", tokens[0]), 0)

	r := w.run(t, "", "compact")
	checkExit(t, r, 0)
	checkStderr(t, r, "compacting")
	if got := detokenize(t, w, tokens[1:]); len(got) != 1 || got[0] != pans[1] {
		t.Errorf("detokenize after compact returned another value")
	}
	r = w.run(t, tokens[0]+"\n", "detokenize")
	checkExit(t, r, 1)
	checkStderr(t, r, "closed")
}
