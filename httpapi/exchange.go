package httpapi

import (
	"errors"
	"io"
	"log/slog"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/internal/strictjson"
)

// exchange is one request and its response in progress.
type exchange struct {
	h         *Handler
	w         http.ResponseWriter
	r         *http.Request
	start     time.Time
	route     route
	requestID string
	key       apikey.Key // the authenticated key; empty ID with NoAuth
	buf       *buffers   // nil until the body is read or a response written
	outcome   code       // for the metrics
	wrote     bool       // the response header is written
}

// Headers shared by every response. net/http only reads header values, so
// the slices can be shared between requests.
var (
	headerJSON    = []string{"application/json"}
	headerNoStore = []string{"no-store"}
	headerNoSniff = []string{"nosniff"}
	headerBearer  = []string{"Bearer"}
)

// maxRequestIDSize is the longest X-Request-Id taken from a request.
const maxRequestIDSize = 64

// requestID returns the request's X-Request-Id if it is 1 to 64 characters
// of [A-Za-z0-9._-], which is safe to log and echo, or else a new random id.
func requestID(r *http.Request) string {
	if v := r.Header["X-Request-Id"]; len(v) == 1 && validRequestID(v[0]) {
		return v[0]
	}
	return newRequestID()
}

func validRequestID(s string) bool {
	if s == "" || len(s) > maxRequestIDSize || tokenvault.ContainsCardNumber(s) {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// newRequestID returns 128 random bits in hex. Request ids need to be
// unique, not secret, so math/rand/v2's per-thread generator (ChaCha8
// seeded from the OS) is enough and does not lock.
func newRequestID() string {
	var b [32]byte
	for half := range 2 {
		n := rand.Uint64()
		for i := range 16 {
			b[half*16+i] = hexDigits[n>>(60-4*i)&0xf]
		}
	}
	return string(b[:])
}

// authorize authenticates the request's bearer key and checks that it has
// one of roles (admin has them all). On failure it writes 401 or 403,
// audits the rejection on audited routes, and returns false.
func (x *exchange) authorize(roles []apikey.Role) bool {
	if x.h.noAuth {
		// Without API keys, a web page in a browser on this machine could
		// reach the server through a name of its own that resolves to a
		// loopback address (DNS rebinding). Such requests carry that name
		// in Host, so only loopback names and addresses pass.
		if !loopbackHost(x.r.Host) {
			x.reject(fail(codeHostNotAllowed))
			return false
		}
		return true
	}

	secret, ok := bearerSecret(x.r.Header["Authorization"])
	if !ok {
		x.reject(fail(codeUnauthorized))
		return false
	}
	key, err := x.h.keys.Authenticate(secret)
	if errors.Is(err, apikey.ErrUnauthorized) {
		x.reject(fail(codeUnauthorized))
		return false
	}
	if err != nil {
		x.fail(problem{code: codeInternal, err: err})
		return false
	}
	x.key = key

	for _, role := range roles {
		if key.Has(role) {
			return true
		}
	}
	x.reject(failf(codeForbidden, forbiddenMessage(roles)))
	return false
}

// loopbackHost reports whether the Host header names this machine:
// localhost or a loopback IP address, with or without a port.
func loopbackHost(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func forbiddenMessage(roles []apikey.Role) string {
	names := make([]string, len(roles))
	for i, role := range roles {
		names[i] = string(role)
	}
	return "The API key does not have the " + strings.Join(names, " or ") + " role that this endpoint needs"
}

// reject sends 401 or 403, and audits it on audited routes.
func (x *exchange) reject(p problem) {
	if p.code == codeUnauthorized {
		x.w.Header()["Www-Authenticate"] = headerBearer
	}
	if x.route.audited() {
		x.auditRejection(p.code)
	}
	x.fail(p)
}

// bearerSecret returns the secret of the one Authorization header
// "Bearer SECRET". The scheme is case-insensitive (RFC 7235).
func bearerSecret(values []string) (string, bool) {
	if len(values) != 1 {
		return "", false
	}
	scheme, secret, ok := strings.Cut(values[0], " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	secret = strings.TrimLeft(secret, " ")
	return secret, secret != ""
}

// decode reads the JSON body into v with package strictjson.
func (x *exchange) decode(v any) problem {
	body, p := x.readBody()
	if p.failed() {
		return p
	}
	err := strictjson.DecodeLimited(body, v, x.h.maxBatchItems)
	var se *strictjson.Error
	switch {
	case err == nil:
		return problem{}
	case errors.As(err, &se) && se.Code == strictjson.CodeTooManyItems:
		return x.h.tooManyItems()
	default:
		return decodeProblem(err)
	}
}

// readBody checks the Content-Type and reads at most MaxBodyBytes of body
// into the pooled buffer.
func (x *exchange) readBody() ([]byte, problem) {
	if !isJSONContentType(x.r.Header["Content-Type"]) {
		return nil, fail(codeUnsupportedMediaType)
	}
	return x.readBodyBytes()
}

// maxBodyPrealloc bounds the buffer that readBodyBytes allocates for a body
// from its Content-Length, before any of the body has arrived. An
// unauthenticated request to /notifications gets that far, so an open
// connection that sends only headers holds at most this much, or a pooled
// buffer of up to maxPooledBuffer when the announced body fits in one.
const maxBodyPrealloc = 16 << 10

// readBodyBytes reads at most MaxBodyBytes of body into the pooled buffer,
// whatever the Content-Type.
func (x *exchange) readBodyBytes() ([]byte, problem) {
	limit := x.h.maxBodyBytes
	if x.r.ContentLength > limit {
		return nil, x.bodyTooLarge()
	}

	b := x.buffers()
	body := b.body[:0]
	if x.r.ContentLength >= int64(cap(body)) {
		// One more byte than announced, so that reading finds EOF without
		// growing the buffer. Past maxBodyPrealloc the buffer grows as the
		// bytes arrive, so that a Content-Length alone allocates little.
		body = make([]byte, 0, min(x.r.ContentLength+1, maxBodyPrealloc))
	}
	if x.r.Body == nil {
		// Only a handler called directly, not by net/http's server, gets
		// a nil body.
		return body, problem{}
	}
	for {
		if len(body) == cap(body) {
			// Zero the old array, which may hold a card number, once
			// append has copied it.
			grown := append(body, 0)[:len(body)]
			clear(body)
			body = grown
		}
		end := cap(body)
		if int64(end-1) > limit {
			end = int(limit) + 1
		}
		n, err := x.r.Body.Read(body[len(body):end])
		body = body[:len(body)+n]
		b.body = body
		if int64(len(body)) > limit {
			return nil, x.bodyTooLarge()
		}
		if err == io.EOF {
			return body, problem{}
		}
		if err != nil {
			return nil, fail(codeIncompleteBody)
		}
	}
}

func (x *exchange) bodyTooLarge() problem {
	return failf(codeBodyTooLarge, "Request body is larger than "+strconv.FormatInt(x.h.maxBodyBytes, 10)+" bytes: send a smaller body, or split a batch")
}

// isJSONContentType reports whether the one Content-Type header is
// application/json, with any parameters but a charset other than UTF-8,
// since JSON is UTF-8 (RFC 8259).
func isJSONContentType(values []string) bool {
	if len(values) != 1 {
		return false
	}
	if values[0] == "application/json" {
		return true
	}
	mediaType, params, err := mime.ParseMediaType(values[0])
	if err != nil || mediaType != "application/json" {
		return false
	}
	charset, ok := params["charset"]
	return !ok || strings.EqualFold(charset, "utf-8")
}

func (x *exchange) buffers() *buffers {
	if x.buf == nil {
		x.buf = getBuffers()
	}
	return x.buf
}

// release zeroes the pooled buffers and returns them.
func (x *exchange) release() {
	if x.buf != nil {
		putBuffers(x.buf)
		x.buf = nil
	}
}

// writeJSON sends status with the JSON body that fill appends, plus a
// newline, and releases the buffers.
func (x *exchange) writeJSON(status int, fill func([]byte) []byte) {
	b := x.buffers()
	b.out = append(fill(b.out[:0]), '\n')

	header := x.w.Header()
	header["Content-Type"] = headerJSON
	header["Cache-Control"] = headerNoStore
	header["X-Content-Type-Options"] = headerNoSniff
	x.w.WriteHeader(status)
	x.wrote = true
	x.w.Write(b.out)
	x.release()
}

// fail sends the error response of p and logs p.err for 5xx statuses, or
// the rejection for 4xx statuses.
func (x *exchange) fail(p problem) {
	switch {
	case p.err != nil:
		x.logProblem(p, -1)
	case codes[p.code].status < 500:
		x.logRejected(p)
	}
	x.writeError(p)
}

// logRejected logs a request rejected with a 4xx status, within the
// handler's rate limit for such records.
func (x *exchange) logRejected(p problem) {
	suppressed, ok := x.h.rejectLog.allow(time.Now())
	if !ok {
		return
	}

	attrs := []slog.Attr{
		slog.String("request_id", x.requestID),
		slog.String("route", x.route.String()),
		slog.Int("status", codes[p.code].status),
		slog.String("code", p.code.String()),
	}
	if x.key.ID != "" {
		attrs = append(attrs, slog.String("key_id", x.key.ID))
	}
	if suppressed > 0 {
		attrs = append(attrs, slog.Int("suppressed_before", suppressed))
	}
	x.h.log.LogAttrs(x.r.Context(), slog.LevelInfo, "request rejected", attrs...)
}

func (x *exchange) writeError(p problem) {
	x.outcome = p.code
	x.writeJSON(codes[p.code].status, func(dst []byte) []byte { return appendError(dst, p) })
}

// logProblem logs the error behind a 5xx outcome, with the batch item's
// index when item is not negative. Canceled requests are expected when
// clients hang up, so they are logged at debug level.
func (x *exchange) logProblem(p problem, item int, extra ...slog.Attr) {
	level := slog.LevelError
	if p.code == codeCanceled {
		level = slog.LevelDebug
	}
	attrs := []slog.Attr{
		slog.String("request_id", x.requestID),
		slog.String("route", x.route.String()),
		slog.String("code", p.code.String()),
		slog.String("error", p.err.Error()),
	}
	if item >= 0 {
		attrs = append(attrs, slog.Int("item", item))
	}
	attrs = append(attrs, extra...)
	x.h.log.LogAttrs(x.r.Context(), level, "request failed", attrs...)
}

func (x *exchange) writeStatusOK() {
	x.outcome = codeOK
	x.writeJSON(http.StatusOK, func(dst []byte) []byte { return append(dst, `{"status":"ok"}`...) })
}
