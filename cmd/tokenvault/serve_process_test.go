package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/tokenvault/tokenvault/internal/luhn"
)

// serveProcess is a `tokenvault serve` child process.
type serveProcess struct {
	args   []string
	cmd    *exec.Cmd
	stderr *serveLog
	stdout *serveLog
	addr   string        // the address from the "listening" log line
	done   chan struct{} // closed when the process has exited
	code   int           // exit status, set before done is closed
}

// startServe starts serve in w on a free loopback port, with args after
// --addr, and waits until it logs the address it listens on. The process is
// killed when the test ends if it still runs.
func startServe(t *testing.T, w *workspace, args ...string) *serveProcess {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0"}, args...)
	p := &serveProcess{
		args:   args,
		cmd:    exec.Command(binary, args...),
		stderr: newServeLog(),
		stdout: newServeLog(),
		done:   make(chan struct{}),
	}
	p.cmd.Dir = w.dir
	p.cmd.Env = w.env
	p.cmd.Stdout = p.stdout
	p.cmd.Stderr = p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatalf("start tokenvault %s: %v", strings.Join(args, " "), err)
	}
	go func() {
		err := p.cmd.Wait()
		var exitErr *exec.ExitError
		switch {
		case err == nil:
		case errors.As(err, &exitErr):
			p.code = exitErr.ExitCode()
		default:
			p.code = -1
		}
		close(p.done)
	}()
	t.Cleanup(func() {
		select {
		case <-p.done:
		default:
			p.cmd.Process.Kill()
			<-p.done
		}
	})

	select {
	case p.addr = <-p.stderr.listening:
	case <-p.done:
		t.Fatalf("tokenvault %s exited with status %d before listening\nstderr:\n%s", strings.Join(args, " "), p.code, p.stderr)
	case <-time.After(childTimeout):
		t.Fatalf("tokenvault %s did not log a listening address within %v\nstderr:\n%s", strings.Join(args, " "), childTimeout, p.stderr)
	}
	return p
}

// stop sends sig to the process and returns its exit status.
func (p *serveProcess) stop(t *testing.T, sig os.Signal) int {
	t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		t.Fatalf("send %v to serve: %v", sig, err)
	}
	return p.wait(t)
}

// wait returns the exit status of the process once it has exited.
func (p *serveProcess) wait(t *testing.T) int {
	t.Helper()
	select {
	case <-p.done:
		return p.code
	case <-time.After(childTimeout):
		t.Fatalf("serve did not exit within %v\nstderr:\n%s", childTimeout, p.stderr)
		return -1
	}
}

// result returns the output of the process so far, for checkNoSecrets.
func (p *serveProcess) result() result {
	return result{args: p.args, stdout: p.stdout.String(), stderr: p.stderr.String(), code: p.code}
}

// logRecords returns the JSON lines of standard error that have msg as
// their message.
func (p *serveProcess) logRecords(msg string) []map[string]any {
	var records []map[string]any
	for _, line := range strings.Split(p.stderr.String(), "\n") {
		var record map[string]any
		if json.Unmarshal([]byte(line), &record) == nil && record["msg"] == msg {
			records = append(records, record)
		}
	}
	return records
}

// serveLog collects the output of serve and sends the address of its
// "listening" log line on listening.
type serveLog struct {
	mu        sync.Mutex
	buf       bytes.Buffer
	scanned   int // bytes of buf already searched for the listening line
	listening chan string
}

func newServeLog() *serveLog {
	return &serveLog{listening: make(chan string, 1)}
}

func (l *serveLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.buf.Write(p)

	for {
		rest := l.buf.Bytes()[l.scanned:]
		end := bytes.IndexByte(rest, '\n')
		if end < 0 {
			return len(p), nil
		}
		l.scanned += end + 1
		var record struct {
			Msg     string `json:"msg"`
			Address string `json:"address"`
		}
		if json.Unmarshal(rest[:end], &record) == nil && record.Msg == "listening" && record.Address != "" {
			select {
			case l.listening <- record.Address:
			default:
			}
		}
	}
}

func (l *serveLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// apiClient sends requests to a serve process.
type apiClient struct {
	base   string // "http://127.0.0.1:PORT"
	client *http.Client
}

func newAPIClient(p *serveProcess) *apiClient {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.MaxIdleConnsPerHost = 64
	return &apiClient{base: "http://" + p.addr, client: &http.Client{Transport: transport, Timeout: childTimeout}}
}

func newTLSClient(p *serveProcess, config *tls.Config) *apiClient {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.TLSClientConfig = config
	return &apiClient{base: "https://" + p.addr, client: &http.Client{Transport: transport, Timeout: childTimeout}}
}

// apiResponse is a response with a JSON object body.
type apiResponse struct {
	status int
	body   map[string]any
	raw    string
}

// str returns the string field name of the body, or "".
func (r apiResponse) str(name string) string {
	s, _ := r.body[name].(string)
	return s
}

func (r apiResponse) String() string {
	return fmt.Sprintf("status %d, body %s", r.status, maskCardNumbers(r.raw))
}

// send sends a request with body encoded as JSON, unless it is nil, and the
// secret as bearer token, unless it is "".
func (c *apiClient) send(method, path, secret string, body any) (apiResponse, error) {
	var reader io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return apiResponse{}, err
		}
		reader = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, reader)
	if err != nil {
		return apiResponse{}, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if secret != "" {
		req.Header.Set("Authorization", "Bearer "+secret)
	}

	resp, err := c.client.Do(req)
	if err != nil {
		return apiResponse{}, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return apiResponse{}, err
	}
	r := apiResponse{status: resp.StatusCode, raw: string(raw)}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		if err := json.Unmarshal(raw, &r.body); err != nil {
			return r, fmt.Errorf("%s %s: response is not a JSON object: %v", method, path, err)
		}
	}
	return r, nil
}

// do is send that fails the test on an error.
func (c *apiClient) do(t *testing.T, method, path, secret string, body any) apiResponse {
	t.Helper()
	r, err := c.send(method, path, secret, body)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	return r
}

// isConnectionError reports whether err means that no server accepted the
// connection, or that the server closed it before responding. Shutdown
// closes idle keep-alive connections, and net/http does not retry a POST
// sent on one at that moment. Its error for that case is not exported, so
// the message is matched.
func isConnectionError(err error) bool {
	return strings.Contains(err.Error(), "server closed idle connection") ||
		errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, io.EOF) ||
		errors.Is(err, io.ErrUnexpectedEOF)
}

// apiSecretPattern matches an API key secret.
var apiSecretPattern = regexp.MustCompile(`tvk_[0-9a-f]{8}_[A-Za-z0-9_-]{43}`)

// digitRunPattern matches runs of digits as long as card numbers.
var digitRunPattern = regexp.MustCompile(`[0-9]{12,19}`)

// checkLogsHaveNoValues fails the test if text, a log, contains one of the
// values as a run of digits.
func checkLogsHaveNoValues(t *testing.T, name, text string, values map[string]bool) {
	t.Helper()
	found := 0
	for _, run := range digitRunPattern.FindAllString(text, -1) {
		if values[run] {
			found++
		}
	}
	if found > 0 {
		t.Errorf("%s contains %d tokenized card numbers", name, found)
	}
}

// luhnCard returns a random 16-digit Visa-like number that passes the Luhn
// check. random(n) returns a number in [0, n).
func luhnCard(random func(n int) int) string {
	digits := make([]byte, 16)
	digits[0] = '4'
	for i := 1; i < 15; i++ {
		digits[i] = byte('0' + random(10))
	}
	digits[15] = luhn.CheckDigit(digits[:15])
	return string(digits)
}
