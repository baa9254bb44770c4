package apikey_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault/apikey"
)

// secretPattern is the documented layout of a secret.
var secretPattern = regexp.MustCompile(`^tvk_([0-9a-f]{8})_[A-Za-z0-9_-]{43}$`)

// openFile opens an API key file in a new temporary directory.
func openFile(t testing.TB) (*apikey.File, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "tokenvault.apikeys")
	f, err := apikey.Open(path)
	if err != nil {
		t.Fatalf("Open(%s) err = %v", path, err)
	}
	return f, path
}

// create creates a key and fails the test on error.
func create(t testing.TB, f *apikey.File, name string, roles ...apikey.Role) (string, apikey.Key) {
	t.Helper()
	secret, key, err := f.Create(name, roles)
	if err != nil {
		t.Fatalf("Create(%q, %v) err = %v", name, roles, err)
	}
	return secret, key
}

// createWithLetterID is create for a test that upper-cases the key's id: it
// creates keys until one has a letter in its id, because about one id in 43
// is eight decimal digits, which upper-casing leaves as they are.
func createWithLetterID(t testing.TB, f *apikey.File, name string, roles ...apikey.Role) (string, apikey.Key) {
	t.Helper()
	for {
		secret, key := create(t, f, name, roles...)
		if strings.ToUpper(key.ID) != key.ID {
			return secret, key
		}
	}
}

func TestCreateListRevokeAuthenticate(t *testing.T) {
	f, _ := openFile(t)
	before := time.Now().Add(-time.Second)
	secret, key, err := f.Create("billing", []apikey.Role{apikey.RoleDetokenize, apikey.RoleTokenize, apikey.RoleTokenize})
	if err != nil {
		t.Fatalf("Create err = %v", err)
	}

	m := secretPattern.FindStringSubmatch(secret)
	if m == nil {
		t.Fatalf("Create returned a secret of %d characters that does not match %s", len(secret), secretPattern)
	}
	if m[1] != key.ID {
		t.Errorf("secret carries id %s, key.ID = %s", m[1], key.ID)
	}
	if key.Name != "billing" {
		t.Errorf("key.Name = %q, want billing", key.Name)
	}
	if want := []apikey.Role{apikey.RoleTokenize, apikey.RoleDetokenize}; !slices.Equal(key.Roles, want) {
		t.Errorf("key.Roles = %v, want %v (in the order of Roles, without repeats)", key.Roles, want)
	}
	if key.Created.Before(before) || key.Created.After(time.Now()) || key.Created.Location() != time.UTC {
		t.Errorf("key.Created = %v, want the current time in UTC", key.Created)
	}
	if !key.Revoked.IsZero() {
		t.Errorf("new key.Revoked = %v, want zero", key.Revoked)
	}

	got, err := f.Authenticate(secret)
	if err != nil {
		t.Fatalf("Authenticate(new secret) err = %v", err)
	}
	if got.ID != key.ID || !slices.Equal(got.Roles, key.Roles) || !got.Created.Equal(key.Created) {
		t.Errorf("Authenticate returned %+v, want %+v", got, key)
	}

	other, otherKey := create(t, f, "", apikey.RoleAdmin)
	list, err := f.List()
	if err != nil {
		t.Fatalf("List err = %v", err)
	}
	if len(list) != 2 || list[0].ID != key.ID || list[1].ID != otherKey.ID {
		t.Fatalf("List = %+v, want the two keys, oldest first", list)
	}

	if err := f.Revoke(key.ID); err != nil {
		t.Fatalf("Revoke(%s) err = %v", key.ID, err)
	}
	if _, err := f.Authenticate(secret); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Errorf("Authenticate(revoked secret) on the same File err = %v, want ErrUnauthorized at once", err)
	}
	if _, err := f.Authenticate(other); err != nil {
		t.Errorf("Authenticate(other secret) after revoking the first key err = %v", err)
	}

	list, err = f.List()
	if err != nil {
		t.Fatalf("List err = %v", err)
	}
	if len(list) != 2 || list[0].Revoked.IsZero() || !list[1].Revoked.IsZero() {
		t.Errorf("List after Revoke = %+v, want the first key revoked and the second valid", list)
	}
	revokedAt := list[0].Revoked

	time.Sleep(1100 * time.Millisecond)
	if err := f.Revoke(key.ID); err != nil {
		t.Errorf("second Revoke(%s) err = %v, want nil", key.ID, err)
	}
	list, _ = f.List()
	if !list[0].Revoked.Equal(revokedAt) {
		t.Errorf("second Revoke changed the revocation time from %v to %v", revokedAt, list[0].Revoked)
	}
}

func TestOpenMissingFile(t *testing.T) {
	f, path := openFile(t)
	list, err := f.List()
	if err != nil || len(list) != 0 {
		t.Errorf("List of a missing file = %v, %v, want no keys and no error", list, err)
	}
	if _, err := f.Authenticate("tvk_00000000_" + strings.Repeat("A", 43)); !errors.Is(err, apikey.ErrUnauthorized) {
		t.Errorf("Authenticate on a missing file err = %v, want ErrUnauthorized", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Open, List and Authenticate created the file: Stat err = %v", err)
	}

	if _, err := apikey.Open(""); err == nil {
		t.Errorf("Open(\"\") err = nil, want an error")
	}
	if _, err := apikey.Open(t.TempDir()); err == nil {
		t.Errorf("Open(directory) err = nil, want an error")
	}
}

func TestKeyHas(t *testing.T) {
	tests := []struct {
		roles []apikey.Role
		role  apikey.Role
		want  bool
	}{
		{[]apikey.Role{apikey.RoleTokenize}, apikey.RoleTokenize, true},
		{[]apikey.Role{apikey.RoleTokenize}, apikey.RoleDetokenize, false},
		{[]apikey.Role{apikey.RoleTokenize}, apikey.RoleAdmin, false},
		{[]apikey.Role{apikey.RoleTokenize, apikey.RoleLifecycle}, apikey.RoleLifecycle, true},
		{[]apikey.Role{apikey.RoleAdmin}, apikey.RoleTokenize, true},
		{[]apikey.Role{apikey.RoleAdmin}, apikey.RoleDetokenize, true},
		{[]apikey.Role{apikey.RoleAdmin}, apikey.RoleLifecycle, true},
		{[]apikey.Role{apikey.RoleAdmin}, apikey.RoleAdmin, true},
		{[]apikey.Role{apikey.RoleAdmin}, "", false},
		{[]apikey.Role{apikey.RoleAdmin}, "superuser", false},
		{nil, apikey.RoleTokenize, false},
	}
	for _, tt := range tests {
		if got := (apikey.Key{Roles: tt.roles}).Has(tt.role); got != tt.want {
			t.Errorf("Key{Roles: %v}.Has(%q) = %v, want %v", tt.roles, tt.role, got, tt.want)
		}
	}
}

func TestAdminKeyGrantsAllRoles(t *testing.T) {
	f, _ := openFile(t)
	secret, _ := create(t, f, "ops", apikey.RoleAdmin)
	key, err := f.Authenticate(secret)
	if err != nil {
		t.Fatalf("Authenticate err = %v", err)
	}
	for _, role := range apikey.Roles() {
		if !key.Has(role) {
			t.Errorf("admin key.Has(%s) = false, want true", role)
		}
	}
}

func TestCreateRejectsInvalidInput(t *testing.T) {
	f, path := openFile(t)
	tests := []struct {
		name    string
		keyName string
		roles   []apikey.Role
		errText string // the error must contain it
	}{
		{"no roles", "x", nil, "at least one role"},
		{"empty role list", "x", []apikey.Role{}, "at least one role"},
		{"unknown role", "x", []apikey.Role{apikey.RoleTokenize, "superuser"}, `unknown role "superuser"`},
		{"empty role", "x", []apikey.Role{""}, `unknown role ""`},
		{"role in capitals", "x", []apikey.Role{"Admin"}, `unknown role "Admin"`},
		{"name too long", strings.Repeat("n", apikey.MaxNameLen+1), []apikey.Role{apikey.RoleTokenize}, "65 bytes"},
		{"name with newline", "a\nb", []apikey.Role{apikey.RoleTokenize}, "non-printable"},
		{"name with tab", "a\tb", []apikey.Role{apikey.RoleTokenize}, "non-printable"},
		{"name with escape", "a\x1b[2Jb", []apikey.Role{apikey.RoleTokenize}, "non-printable"},
		{"name with invalid UTF-8", "a\xffb", []apikey.Role{apikey.RoleTokenize}, "UTF-8"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := f.Create(tt.keyName, tt.roles)
			if !errors.Is(err, apikey.ErrInvalid) {
				t.Fatalf("Create(%q, %q) err = %v, want ErrInvalid", tt.keyName, tt.roles, err)
			}
			if !strings.Contains(err.Error(), tt.errText) {
				t.Errorf("Create(%q, %q) err = %q, want it to contain %q", tt.keyName, tt.roles, err, tt.errText)
			}
		})
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a rejected Create created the file: Stat err = %v", err)
	}

	longest := strings.Repeat("é", apikey.MaxNameLen/2)
	if _, key := create(t, f, longest, apikey.RoleTokenize); key.Name != longest {
		t.Errorf("Create with a %d-byte name stored %q", len(longest), key.Name)
	}
	if _, key := create(t, f, "billing service (EU)", apikey.RoleTokenize); key.Name != "billing service (EU)" {
		t.Errorf("Create with spaces in the name stored %q", key.Name)
	}
}

func TestParseRole(t *testing.T) {
	for _, role := range apikey.Roles() {
		got, err := apikey.ParseRole(role.String())
		if err != nil || got != role {
			t.Errorf("ParseRole(%q) = %q, %v, want %q", role, got, err, role)
		}
	}
	for _, s := range []string{"", "ADMIN", " admin", "tokenize,detokenize", "all"} {
		if _, err := apikey.ParseRole(s); !errors.Is(err, apikey.ErrInvalid) {
			t.Errorf("ParseRole(%q) err = %v, want ErrInvalid", s, err)
		}
	}
}

func TestAuthenticateRejects(t *testing.T) {
	f, _ := openFile(t)
	secret, key := createWithLetterID(t, f, "valid", apikey.RoleTokenize)
	revoked, revokedKey := create(t, f, "revoked", apikey.RoleTokenize)
	if err := f.Revoke(revokedKey.ID); err != nil {
		t.Fatal(err)
	}

	// Flip the last character of the secret part to another base64url
	// character, so that only the hash differs.
	last := secret[len(secret)-1]
	flipped := byte('A')
	if last == 'A' {
		flipped = 'B'
	}
	wrongSecret := secret[:len(secret)-1] + string(flipped)
	unknownID := "tvk_" + otherID(key.ID, revokedKey.ID) + secret[12:]

	tests := []struct {
		name   string
		secret string
	}{
		{"wrong secret", wrongSecret},
		{"unknown id", unknownID},
		{"revoked", revoked},
		{"empty", ""},
		{"prefix only", "tvk_"},
		{"id only", "tvk_" + key.ID},
		{"truncated", secret[:len(secret)-1]},
		{"extra character", secret + "A"},
		{"trailing newline", secret + "\n"},
		{"leading space", " " + secret[1:]},
		{"bearer prefix", "Bearer " + secret},
		{"other prefix", "tvx_" + secret[4:]},
		{"uppercase id", "tvk_" + strings.ToUpper(key.ID) + secret[12:]},
		{"missing separator", secret[:12] + "-" + secret[13:]},
		{"padding", secret[:len(secret)-1] + "="},
		{"standard base64", secret[:len(secret)-1] + "+"},
		{"non-ASCII", secret[:len(secret)-2] + "é"},
		{"NUL", secret[:len(secret)-1] + "\x00"},
		{"id as secret", key.ID},
		{"hash as secret", strings.Repeat("0", 64)},
	}
	for _, tt := range tests {
		got, err := f.Authenticate(tt.secret)
		if !errors.Is(err, apikey.ErrUnauthorized) {
			t.Errorf("Authenticate(%s) err = %v, want ErrUnauthorized", tt.name, err)
		}
		if got.ID != "" || got.Roles != nil {
			t.Errorf("Authenticate(%s) returned key %+v with the error, want the zero Key", tt.name, got)
		}
		if err != nil && err.Error() != apikey.ErrUnauthorized.Error() {
			t.Errorf("Authenticate(%s) err = %q, want the same message for every rejection", tt.name, err)
		}
	}
	if _, err := f.Authenticate(secret); err != nil {
		t.Errorf("Authenticate(valid) err = %v after the rejections", err)
	}
}

// otherID returns a key id other than the ids given.
func otherID(ids ...string) string {
	for i := 0; ; i++ {
		id := fmt.Sprintf("%08x", i)
		if !slices.Contains(ids, id) {
			return id
		}
	}
}

func TestAuthenticateReturnsCopy(t *testing.T) {
	f, _ := openFile(t)
	secret, _ := create(t, f, "x", apikey.RoleTokenize)
	key, err := f.Authenticate(secret)
	if err != nil {
		t.Fatal(err)
	}
	key.Roles[0] = apikey.RoleAdmin

	again, err := f.Authenticate(secret)
	if err != nil {
		t.Fatal(err)
	}
	if again.Has(apikey.RoleAdmin) {
		t.Errorf("changing the Roles of a returned Key granted admin to the stored key")
	}
}

func TestRevokeUnknownID(t *testing.T) {
	f, _ := openFile(t)
	secret, key := createWithLetterID(t, f, "x", apikey.RoleTokenize)

	for _, id := range []string{otherID(key.ID), "", "zzzzzzzz", strings.ToUpper(key.ID), key.ID + "0", secret} {
		err := f.Revoke(id)
		if !errors.Is(err, apikey.ErrNotFound) {
			t.Errorf("Revoke(%q) err = %v, want ErrNotFound", id, err)
		}
		if err != nil && strings.Contains(err.Error(), secret[13:]) {
			t.Errorf("Revoke(secret) error repeats the secret")
		}
	}
	if _, err := f.Authenticate(secret); err != nil {
		t.Errorf("a failed Revoke affected another key: Authenticate err = %v", err)
	}
}

func TestFileMode(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix file modes")
	}
	f, path := openFile(t)
	create(t, f, "x", apikey.RoleTokenize)

	for _, p := range []string{path, path + ".lock"} {
		info, err := os.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		if mode := info.Mode().Perm(); mode != 0o600 {
			t.Errorf("%s has mode %#o, want 0600", filepath.Base(p), mode)
		}
	}
}

func TestRejectsFileOthersCanRead(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("Windows has no Unix file modes")
	}
	t.Parallel()
	f, path := openFile(t)
	secret, _ := create(t, f, "x", apikey.RoleTokenize)

	for _, mode := range []os.FileMode{0o644, 0o640, 0o604, 0o620, 0o602} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := apikey.Open(path)
		if err == nil {
			t.Errorf("Open of a file with mode %#o err = nil, want an error", mode)
			continue
		}
		for _, want := range []string{path, fmt.Sprintf("%#o", mode), "chmod 600"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("Open of a file with mode %#o err = %q, want it to contain %q", mode, err, want)
			}
		}
	}

	// The file is now mode 0602. Writers and List must reject it too, and
	// must not fix the mode behind the user's back.
	if _, _, err := f.Create("y", []apikey.Role{apikey.RoleTokenize}); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("Create on a file with mode 0602 err = %v, want the mode error", err)
	}
	if _, err := f.List(); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Errorf("List on a file with mode 0602 err = %v, want the mode error", err)
	}

	// A File opened before the change rejects every secret from its next
	// check on, with the file error rather than ErrUnauthorized, so that a
	// server can log why.
	isModeError := func(err error) bool {
		return err != nil && !errors.Is(err, apikey.ErrUnauthorized) && strings.Contains(err.Error(), "chmod 600")
	}
	waitForAuthenticate(t, f, secret, isModeError)

	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	waitForAuthenticate(t, f, secret, func(err error) bool { return err == nil })
}

func TestRejectsInvalidFile(t *testing.T) {
	const hash = "0000000000000000000000000000000000000000000000000000000000000000"
	record := func(fields string) string {
		return `{"version": 1, "keys": [` + fields + `]}`
	}
	valid := `{"id": "0a1b2c3d", "name": "x", "roles": ["tokenize"], "sha256": "` + hash + `", "created": "2026-12-04T12:00:00Z"}`

	tests := []struct {
		name    string
		content string
		errText string
	}{
		{"empty", "", "invalid JSON"},
		{"not JSON", "tvk_", "invalid JSON"},
		{"truncated", record(valid)[:40], "invalid JSON"},
		{"trailing data", record(valid) + "{}", "data after"},
		{"unknown field", `{"version": 1, "keys": [], "owner": "x"}`, "unknown field"},
		{"no version", `{"keys": []}`, "version is 0"},
		{"version 2", `{"version": 2, "keys": []}`, "version is 2"},
		{"invalid id", record(strings.Replace(valid, "0a1b2c3d", "0A1B2C3D", 1)), "hexadecimal"},
		{"repeated id", record(valid + "," + valid), "used twice"},
		{"unknown role", record(strings.Replace(valid, `"tokenize"`, `"root"`, 1)), `unknown role "root"`},
		{"no roles", record(strings.Replace(valid, `["tokenize"]`, `[]`, 1)), "at least one role"},
		{"repeated role", record(strings.Replace(valid, `["tokenize"]`, `["tokenize", "tokenize"]`, 1)), "listed twice"},
		{"short hash", record(strings.Replace(valid, hash, hash[2:], 1)), "sha256"},
		{"long hash", record(strings.Replace(valid, hash, hash+"00", 1)), "sha256"},
		{"non-hex hash", record(strings.Replace(valid, hash, "zz"+hash[2:], 1)), "sha256"},
		{"no created time", record(strings.Replace(valid, `, "created": "2026-12-04T12:00:00Z"`, "", 1)), "created"},
		{"control character in name", record(strings.Replace(valid, `"name": "x"`, `"name": "\u0007"`, 1)), "non-printable"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if err := os.WriteFile(path, []byte(tt.content), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := apikey.Open(path)
			if err == nil {
				t.Fatalf("Open(file %s) err = nil, want an error", tt.name)
			}
			if !strings.Contains(err.Error(), tt.errText) || !strings.Contains(err.Error(), path) {
				t.Errorf("Open(file %s) err = %q, want it to contain %q and the path", tt.name, err, tt.errText)
			}
		})
	}

	path := filepath.Join(t.TempDir(), "keys")
	if err := os.WriteFile(path, []byte(record(valid)), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := apikey.Open(path); err != nil {
		t.Errorf("Open of the valid file that the cases derive from err = %v", err)
	}
}

// TestWriteIsAtomic reads the file in a loop while keys are created, and
// checks that every read finds a complete, valid file.
func TestWriteIsAtomic(t *testing.T) {
	f, path := openFile(t)
	create(t, f, "first", apikey.RoleTokenize)
	const keys = 50

	done := make(chan struct{})
	var reads, failures int
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			data, err := os.ReadFile(path)
			reads++
			var contents struct {
				Keys []json.RawMessage `json:"keys"`
			}
			if err == nil {
				err = json.Unmarshal(data, &contents)
			}
			if err == nil && len(contents.Keys) == 0 {
				err = errors.New("no keys")
			}
			if err != nil {
				failures++
				if failures <= 3 {
					t.Errorf("read %d of the file during writes: %v (%d bytes)", reads, err, len(data))
				}
			}
		}
	}()

	for i := range keys {
		create(t, f, "key "+strconv.Itoa(i), apikey.RoleTokenize)
	}
	close(done)
	wg.Wait()
	if failures > 0 {
		t.Errorf("%d of %d reads found a partial or invalid file", failures, reads)
	}
	t.Logf("%d reads during %d writes", reads, keys)

	entries, err := os.ReadDir(filepath.Dir(path))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	if want := []string{"tokenvault.apikeys", "tokenvault.apikeys.lock"}; !slices.Equal(names, want) {
		t.Errorf("directory holds %q after the writes, want %q", names, want)
	}
}

// TestConcurrentFilesInProcess creates keys from several File values of one
// file at once. flock locks belong to the open file description, so they
// exclude each other within a process too.
func TestConcurrentFilesInProcess(t *testing.T) {
	_, path := openFile(t)
	const writers, perWriter = 8, 10

	var wg sync.WaitGroup
	ids := make([][]string, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			f, err := apikey.Open(path)
			if err != nil {
				t.Error(err)
				return
			}
			for range perWriter {
				_, key, err := f.Create("w"+strconv.Itoa(w), []apikey.Role{apikey.RoleTokenize})
				if err != nil {
					t.Error(err)
					return
				}
				ids[w] = append(ids[w], key.ID)
			}
		}()
	}
	wg.Wait()

	checkAllListed(t, path, slices.Concat(ids...), writers*perWriter)
}

// checkAllListed fails the test unless the file at path lists exactly the
// key ids, want of them.
func checkAllListed(t *testing.T, path string, ids []string, want int) {
	t.Helper()
	f, err := apikey.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	list, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(ids) != want {
		t.Errorf("writers reported %d keys, want %d", len(ids), want)
	}
	if len(list) != len(ids) {
		t.Errorf("List returned %d keys after %d creations: updates were lost", len(list), len(ids))
	}
	listed := make(map[string]bool, len(list))
	for _, k := range list {
		listed[k.ID] = true
	}
	for _, id := range ids {
		if !listed[id] {
			t.Errorf("key %s was created but is not in the file", id)
		}
	}
}

// Environment of the child processes of TestConcurrentProcesses.
const (
	childPathEnv  = "APIKEY_TEST_CHILD_PATH"  // the key file; set only in a child
	childCountEnv = "APIKEY_TEST_CHILD_COUNT" // keys the child creates
)

// TestConcurrentProcesses runs copies of the test binary that create keys in
// one file at the same time, and checks that the file lists every key that
// any of them reported.
func TestConcurrentProcesses(t *testing.T) {
	if path := os.Getenv(childPathEnv); path != "" {
		createInChild(t, path)
		return
	}
	const children, perChild = 4, 25
	_, path := openFile(t)

	cmds := make([]*exec.Cmd, children)
	outputs := make([]*bytes.Buffer, children)
	for i := range cmds {
		cmd := exec.Command(os.Args[0], "-test.run=^TestConcurrentProcesses$", "-test.count=1")
		cmd.Env = append(os.Environ(), childPathEnv+"="+path, childCountEnv+"="+strconv.Itoa(perChild))
		outputs[i] = &bytes.Buffer{}
		cmd.Stdout = outputs[i]
		cmd.Stderr = outputs[i]
		cmds[i] = cmd
	}
	for _, cmd := range cmds {
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
	}

	var ids []string
	for i, cmd := range cmds {
		if err := cmd.Wait(); err != nil {
			t.Errorf("child %d: %v\n%s", i, err, outputs[i])
			continue
		}
		scanner := bufio.NewScanner(outputs[i])
		for scanner.Scan() {
			if id, ok := strings.CutPrefix(scanner.Text(), "created "); ok {
				ids = append(ids, id)
			}
		}
	}
	checkAllListed(t, path, ids, children*perChild)
}

func createInChild(t *testing.T, path string) {
	count, err := strconv.Atoi(os.Getenv(childCountEnv))
	if err != nil {
		t.Fatalf("%s: %v", childCountEnv, err)
	}
	f, err := apikey.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	for range count {
		_, key, err := f.Create("child "+strconv.Itoa(os.Getpid()), []apikey.Role{apikey.RoleTokenize})
		if err != nil {
			t.Fatal(err)
		}
		fmt.Printf("created %s\n", key.ID)
	}
}

// waitForAuthenticate calls Authenticate every 10 ms until accept(err) holds,
// and fails the test if a call that starts 1.5 s after the change does not
// hold either. It returns how long the wait took.
//
// The elapsed time is read before each call, so that a call made after a
// stall of the test process, as under a loaded race-enabled run, still
// counts, and a stall cannot fail the test.
func waitForAuthenticate(t *testing.T, f *apikey.File, secret string, accept func(error) bool) time.Duration {
	t.Helper()
	start := time.Now()
	for {
		elapsed := time.Since(start)
		_, err := f.Authenticate(secret)
		if accept(err) {
			return elapsed
		}
		if elapsed > 1500*time.Millisecond {
			t.Fatalf("Authenticate err = %v in a call %v after the change", err, elapsed.Round(time.Millisecond))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRevocationSeenByOtherFile(t *testing.T) {
	t.Parallel()
	writer, path := openFile(t)
	secret, key := create(t, writer, "x", apikey.RoleDetokenize)

	server, err := apikey.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := server.Authenticate(secret); err != nil {
		t.Fatalf("Authenticate before Revoke err = %v", err)
	}

	if err := writer.Revoke(key.ID); err != nil {
		t.Fatal(err)
	}
	took := waitForAuthenticate(t, server, secret, func(err error) bool { return errors.Is(err, apikey.ErrUnauthorized) })
	t.Logf("the other File rejected the revoked key after %v", took)
}

func TestNewKeySeenByOtherFile(t *testing.T) {
	t.Parallel()
	writer, path := openFile(t)
	server, err := apikey.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	secret, _ := create(t, writer, "x", apikey.RoleDetokenize)

	took := waitForAuthenticate(t, server, secret, func(err error) bool { return err == nil })
	t.Logf("the other File accepted the new key after %v", took)

	// Removing the file leaves no keys.
	if err := os.Remove(path); err != nil {
		t.Fatal(err)
	}
	waitForAuthenticate(t, server, secret, func(err error) bool { return errors.Is(err, apikey.ErrUnauthorized) })
}

func TestSecretsNotExposed(t *testing.T) {
	f, path := openFile(t)
	var secrets []string
	for _, roles := range [][]apikey.Role{{apikey.RoleTokenize}, {apikey.RoleAdmin}} {
		secret, _ := create(t, f, "x", roles...)
		secrets = append(secrets, secret)
	}
	list, err := f.List()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Revoke(list[0].ID); err != nil {
		t.Fatal(err)
	}
	list, _ = f.List()

	var texts strings.Builder
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	texts.Write(data)
	fmt.Fprintf(&texts, "%v %+v %#v\n", list, list, list)
	logger := slog.New(slog.NewTextHandler(&texts, nil))
	logger.Info("keys", "list", list, "file", f)
	for _, secret := range secrets {
		wrong := secret[:len(secret)-3] + "AAA"
		for _, attempt := range []string{secret, wrong, secret + "x"} {
			if _, err := f.Authenticate(attempt); err != nil {
				texts.WriteString(err.Error() + "\n")
			}
		}
		if err := f.Revoke(secret); err != nil {
			texts.WriteString(err.Error() + "\n")
		}
	}

	for i, secret := range secrets {
		part := secret[13:] // the random part, without the public prefix and id
		if strings.Contains(texts.String(), part) {
			t.Errorf("secret %d appears in the file, List output, a log record or an error message", i)
		}
	}
}

func TestSecretsAreUnique(t *testing.T) {
	f, _ := openFile(t)
	seenSecrets := map[string]bool{}
	seenIDs := map[string]bool{}
	for range 50 {
		secret, key := create(t, f, "x", apikey.RoleTokenize)
		if !secretPattern.MatchString(secret) {
			t.Fatalf("Create returned a secret that does not match %s", secretPattern)
		}
		if seenSecrets[secret] || seenIDs[key.ID] {
			t.Fatalf("Create returned a secret or id twice")
		}
		seenSecrets[secret] = true
		seenIDs[key.ID] = true
	}
}

func FuzzAuthenticate(f *testing.F) {
	path := filepath.Join(f.TempDir(), "keys")
	keys, err := apikey.Open(path)
	if err != nil {
		f.Fatal(err)
	}
	secret, _, err := keys.Create("fuzz", []apikey.Role{apikey.RoleTokenize})
	if err != nil {
		f.Fatal(err)
	}
	revoked, revokedKey, err := keys.Create("revoked", []apikey.Role{apikey.RoleAdmin})
	if err != nil {
		f.Fatal(err)
	}
	if err := keys.Revoke(revokedKey.ID); err != nil {
		f.Fatal(err)
	}

	for _, seed := range []string{secret, revoked, "", "tvk_", secret[:13], secret + "\x00", strings.ToUpper(secret), "tvk_zzzzzzzz_" + secret[13:]} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, s string) {
		key, err := keys.Authenticate(s)
		if s == secret {
			if err != nil {
				t.Fatalf("Authenticate(valid secret) err = %v", err)
			}
			return
		}
		if !errors.Is(err, apikey.ErrUnauthorized) {
			t.Fatalf("Authenticate(%q) = %+v, %v, want ErrUnauthorized", s, key, err)
		}
	})
}

// BenchmarkAuthenticate measures Authenticate for each outcome, from all
// cores, on a file of 1000 keys. The outcomes that reach the hash
// comparison (valid, wrong secret, unknown id, revoked) should take the same
// time, and malformed input much less.
func BenchmarkAuthenticate(b *testing.B) {
	f, _ := openFile(b)
	var secret string
	var key apikey.Key
	for i := range 1000 {
		secret, key = create(b, f, "bench "+strconv.Itoa(i), apikey.RoleTokenize)
	}
	revoked, revokedKey := create(b, f, "revoked", apikey.RoleTokenize)
	if err := f.Revoke(revokedKey.ID); err != nil {
		b.Fatal(err)
	}
	list, err := f.List()
	if err != nil {
		b.Fatal(err)
	}
	ids := make([]string, len(list))
	for i, k := range list {
		ids[i] = k.ID
	}

	cases := []struct {
		name   string
		secret string
		valid  bool
	}{
		{"valid", secret, true},
		{"wrong_secret", secret[:len(secret)-3] + "AAA", false},
		{"unknown_id", "tvk_" + otherID(ids...) + secret[12:], false},
		{"revoked", revoked, false},
		{"malformed", "tvk_" + key.ID, false},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					_, err := f.Authenticate(c.secret)
					if (err == nil) != c.valid {
						b.Errorf("Authenticate(%s) err = %v", c.name, err)
						return
					}
				}
			})
		})
	}
}
