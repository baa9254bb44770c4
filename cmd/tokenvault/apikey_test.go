package main

import (
	"errors"
	"os"
	"regexp"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
)

// apiSecretLine matches the standard output of apikey create: the secret and
// a line ending.
var apiSecretLine = regexp.MustCompile(`^tvk_([0-9a-f]{8})_[A-Za-z0-9_-]{43}\n$`)

// apiKeyRuns runs apikey commands in a workspace and remembers every secret
// that create printed, so that it can check that no later output repeats one.
type apiKeyRuns struct {
	w       *workspace
	secrets []string
}

// run runs "tokenvault apikey args..." and fails the test if its output
// contains a secret, except for the new secret that create prints on
// standard output.
func (a *apiKeyRuns) run(t *testing.T, args ...string) result {
	t.Helper()
	r := a.w.run(t, "", append([]string{"apikey"}, args...)...)
	for _, secret := range a.secrets {
		if strings.Contains(r.stdout, secret) || strings.Contains(r.stderr, secret) {
			t.Errorf("tokenvault apikey %s: output contains the secret of an earlier key", strings.Join(args, " "))
		}
	}
	return r
}

// create runs apikey create with args, checks its output and returns the new
// secret and key id.
func (a *apiKeyRuns) create(t *testing.T, args ...string) (secret, id string) {
	t.Helper()
	r := a.run(t, append([]string{"create"}, args...)...)
	if r.code != 0 {
		t.Fatalf("%v", r)
	}
	m := apiSecretLine.FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("tokenvault apikey create: standard output is not one secret line (%d bytes)", len(r.stdout))
	}
	secret, id = strings.TrimSuffix(r.stdout, "\n"), m[1]
	if strings.Contains(r.stderr, secret) {
		t.Errorf("tokenvault apikey create: standard error contains the secret")
	}
	checkStderr(t, r, "shown only once")
	checkStderr(t, r, "created API key "+id)
	a.secrets = append(a.secrets, secret)
	return secret, id
}

// openAPIKeys opens the API key file at path and fails the test on error.
func openAPIKeys(t *testing.T, path string) *apikey.File {
	t.Helper()
	f, err := apikey.Open(path)
	if err != nil {
		t.Fatalf("apikey.Open(%s) err = %v", path, err)
	}
	return f
}

func TestAPIKeyCreateListRevoke(t *testing.T) {
	a := &apiKeyRuns{w: newWorkspace(t)}
	path := a.w.path("tokenvault.apikeys")
	billing, billingID := a.create(t, "--role", "detokenize,tokenize", "--name", "billing service")
	ops, opsID := a.create(t, "--role", "admin", "--role", "lifecycle")

	if runtime.GOOS != "windows" {
		if mode := fileMode(t, path); mode != 0o600 {
			t.Errorf("./tokenvault.apikeys mode = %#o, want 0600", mode)
		}
	}
	for _, name := range []string{"tokenvault.db", "tokenvault.key"} {
		if exists(a.w.path(name)) {
			t.Errorf("apikey create created %s", name)
		}
	}

	keys := openAPIKeys(t, path)
	key, err := keys.Authenticate(billing)
	if err != nil {
		t.Fatalf("Authenticate(secret printed by create) err = %v", err)
	}
	if key.ID != billingID || key.Name != "billing service" || !key.Has(apikey.RoleTokenize) || !key.Has(apikey.RoleDetokenize) || key.Has(apikey.RoleLifecycle) {
		t.Errorf("Authenticate returned %+v, want id %s, name \"billing service\", roles tokenize and detokenize", key, billingID)
	}
	if key, err := keys.Authenticate(ops); err != nil || !key.Has(apikey.RoleLifecycle) || !key.Has(apikey.RoleAdmin) {
		t.Errorf("Authenticate(second secret) = %+v, %v, want roles lifecycle and admin", key, err)
	}

	list, err := keys.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("List = %+v, %v, want two keys", list, err)
	}
	r := a.run(t, "list")
	checkExit(t, r, 0)
	checkOutputLines(t, r, []string{
		"ID        NAME             ROLES                CREATED               REVOKED",
		billingID + "  billing service  tokenize,detokenize  " + list[0].Created.Format(time.RFC3339) + "  -",
		opsID + "  -                lifecycle,admin      " + list[1].Created.Format(time.RFC3339) + "  -",
	})

	r = a.run(t, "revoke", billingID)
	checkExit(t, r, 0)
	checkStderr(t, r, "revoked API key "+billingID)
	if _, err := openAPIKeys(t, path).Authenticate(billing); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Errorf("Authenticate(revoked secret) err = %v, want ErrUnauthorized", err)
	}
	if _, err := openAPIKeys(t, path).Authenticate(ops); err != nil {
		t.Errorf("revoking one key affected the other: Authenticate err = %v", err)
	}

	list, err = openAPIKeys(t, path).List()
	if err != nil || len(list) != 2 || list[0].Revoked.IsZero() {
		t.Fatalf("List after revoke = %+v, %v, want the first key revoked", list, err)
	}
	revokedAt := list[0].Revoked.Format(time.RFC3339)
	r = a.run(t, "list")
	checkExit(t, r, 0)
	if got := lines(r.stdout); len(got) != 3 || !strings.HasSuffix(got[1], "  "+revokedAt) || !strings.HasSuffix(got[2], "  -") {
		t.Errorf("list after revoke printed %q, want the revocation time %s on the first key only", got, revokedAt)
	}

	r = a.run(t, "revoke", billingID)
	checkExit(t, r, 0)
	checkStderr(t, r, "already revoked at "+revokedAt)
}

func TestAPIKeyListEmpty(t *testing.T) {
	a := &apiKeyRuns{w: newWorkspace(t)}
	r := a.run(t, "list")
	checkExit(t, r, 0)
	checkOutputLines(t, r, []string{"ID  NAME  ROLES  CREATED  REVOKED"})
	checkStderr(t, r, "./tokenvault.apikeys does not exist yet")
	if exists(a.w.path("tokenvault.apikeys")) {
		t.Errorf("apikey list created ./tokenvault.apikeys")
	}
}

func TestAPIKeyFileLocation(t *testing.T) {
	tests := []struct {
		name string
		env  []string
		args []string
		want string // path of the API key file, relative to the workspace
	}{
		{"default", nil, nil, "tokenvault.apikeys"},
		{"flag", nil, []string{"--api-keys", "data/keys.json"}, "data/keys.json"},
		{"environment", []string{"TOKENVAULT_API_KEYS=data/keys.json"}, nil, "data/keys.json"},
		{"flag over environment", []string{"TOKENVAULT_API_KEYS=data/env.json"}, []string{"--api-keys", "data/flag.json"}, "data/flag.json"},
		{"flag over database", nil, []string{"--api-keys", "data/keys.json", "--db", "data/vault.db"}, "data/keys.json"},
		{"environment over database", []string{"TOKENVAULT_API_KEYS=data/keys.json", "TOKENVAULT_DB=data/vault.db"}, nil, "data/keys.json"},
		{"database flag", nil, []string{"--db", "data/vault.db"}, "data/vault.apikeys"},
		{"database environment", []string{"TOKENVAULT_DB=data/vault.db"}, nil, "data/vault.apikeys"},
		{"database flag over environment", []string{"TOKENVAULT_DB=data/env.db"}, []string{"--db", "data/flag.db"}, "data/flag.apikeys"},
		{"database without extension", nil, []string{"--db", "data/vault"}, "data/vault.apikeys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &apiKeyRuns{w: newWorkspace(t).with(tt.env...)}
			if err := os.Mkdir(a.w.path("data"), 0o700); err != nil {
				t.Fatal(err)
			}
			_, id := a.create(t, append([]string{"--role", "tokenize"}, tt.args...)...)

			if !exists(a.w.path(tt.want)) {
				t.Fatalf("apikey create %s did not create %s", strings.Join(tt.args, " "), tt.want)
			}
			r := a.run(t, append([]string{"list"}, tt.args...)...)
			checkExit(t, r, 0)
			if !strings.Contains(r.stdout, id) {
				t.Errorf("apikey list %s does not list the key that create with the same flags made", strings.Join(tt.args, " "))
			}
			if r := a.run(t, append([]string{"revoke", id}, tt.args...)...); r.code != 0 {
				t.Errorf("%v", r)
			}

			for _, name := range []string{"tokenvault.db", "tokenvault.key", "data/vault.db", "data/vault", "data/vault.key", "data/flag.db", "data/env.db"} {
				if exists(a.w.path(name)) {
					t.Errorf("apikey commands created %s", name)
				}
			}
		})
	}
}

// TestAPIKeyWhileDatabaseOpen runs the apikey commands while this process
// holds the database open, and with it bbolt's exclusive lock, as a running
// server does. A command that opened the database would wait for the lock
// until the run times out.
func TestAPIKeyWhileDatabaseOpen(t *testing.T) {
	a := &apiKeyRuns{w: newWorkspace(t)}
	tokenize(t, a.w, []string{testPANs[0].pan})
	keyRing, err := tokenvault.LoadKeyFile(a.w.path("tokenvault.key"))
	if err != nil {
		t.Fatal(err)
	}
	vault, err := tokenvault.Open(a.w.path("tokenvault.db"), keyRing)
	if err != nil {
		t.Fatal(err)
	}
	defer vault.Close()

	_, id := a.create(t, "--role", "detokenize")
	r := a.run(t, "list")
	checkExit(t, r, 0)
	if !strings.Contains(r.stdout, id) {
		t.Errorf("apikey list while the database is open does not list key %s", id)
	}
	checkExit(t, a.run(t, "revoke", id), 0)
}

func TestAPIKeyUsageErrors(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"no subcommand", nil},
		{"unknown subcommand", []string{"rotate"}},
		{"create without role", []string{"create"}},
		{"create with only a name", []string{"create", "--name", "x"}},
		{"unknown role", []string{"create", "--role", "superuser"}},
		{"empty role", []string{"create", "--role", ""}},
		{"trailing comma", []string{"create", "--role", "tokenize,"}},
		{"role in capitals", []string{"create", "--role", "Admin"}},
		{"name too long", []string{"create", "--role", "tokenize", "--name", strings.Repeat("n", 65)}},
		{"name with newline", []string{"create", "--role", "tokenize", "--name", "a\nb"}},
		{"create argument", []string{"create", "--role", "tokenize", "extra"}},
		{"list argument", []string{"list", "extra"}},
		{"list with role", []string{"list", "--role", "admin"}},
		{"revoke with name", []string{"revoke", "--name", "x", "0a1b2c3d"}},
		{"revoke without id", []string{"revoke"}},
		{"revoke two ids", []string{"revoke", "0a1b2c3d", "1a2b3c4d"}},
		{"revoke invalid id", []string{"revoke", "0A1B2C3D"}},
		{"unknown flag", []string{"list", "--force"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a := &apiKeyRuns{w: newWorkspace(t)}
			r := a.run(t, tt.args...)
			checkExit(t, r, 2)
			if r.stderr == "" {
				t.Errorf("tokenvault apikey %s: standard error is empty, want the reason", strings.Join(tt.args, " "))
			}
			if r.stdout != "" {
				t.Errorf("tokenvault apikey %s: standard output = %q, want nothing", strings.Join(tt.args, " "), r.stdout)
			}
			entries, _ := os.ReadDir(a.w.dir)
			for _, e := range entries {
				t.Errorf("tokenvault apikey %s created %s", strings.Join(tt.args, " "), e.Name())
			}
		})
	}
}

func TestAPIKeyRevokeFailures(t *testing.T) {
	a := &apiKeyRuns{w: newWorkspace(t)}
	secret, id := a.create(t, "--role", "tokenize")

	unknown := "00000000"
	if id == unknown {
		unknown = "00000001"
	}
	r := a.run(t, "revoke", unknown)
	checkExit(t, r, 1)
	checkStderr(t, r, "no API key with id "+unknown)

	// A user may pass the secret in place of the id. The command rejects it
	// without printing it: a.run fails the test if the output contains it.
	r = a.run(t, "revoke", secret)
	checkExit(t, r, 2)
	checkStderr(t, r, "invalid key id")

	if _, err := openAPIKeys(t, a.w.path("tokenvault.apikeys")).Authenticate(secret); err != nil {
		t.Errorf("a failed revoke affected the key: Authenticate err = %v", err)
	}
}

func TestAPIKeyRejectsReadableFile(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix file modes")
	}
	a := &apiKeyRuns{w: newWorkspace(t)}
	_, id := a.create(t, "--role", "tokenize")
	if err := os.Chmod(a.w.path("tokenvault.apikeys"), 0o644); err != nil {
		t.Fatal(err)
	}

	for _, args := range [][]string{{"list"}, {"create", "--role", "admin"}, {"revoke", id}} {
		r := a.run(t, args...)
		checkExit(t, r, 1)
		checkStderr(t, r, "chmod 600 ./tokenvault.apikeys")
		if r.stdout != "" {
			t.Errorf("tokenvault apikey %s on a readable file printed %q on standard output", args[0], r.stdout)
		}
	}
	if mode := fileMode(t, a.w.path("tokenvault.apikeys")); mode != 0o644 {
		t.Errorf("apikey commands changed the file mode to %#o; they must leave the fix to the user", mode)
	}
}

func TestAPIKeyHelp(t *testing.T) {
	w := newWorkspace(t)
	r := w.run(t, "", "help", "apikey")
	checkExit(t, r, 0)
	for _, want := range []string{"Usage: tokenvault apikey create", "--api-keys", "--role", "--name", "--db", "TOKENVAULT_API_KEYS", ".apikeys", "shown only once"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("tokenvault help apikey does not mention %q:\n%s", want, r.stdout)
		}
	}
}
