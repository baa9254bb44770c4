package httpapi

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
)

// Defaults for the zero values of Config's limits.
const (
	DefaultMaxBodyBytes      = 1 << 20 // 1 MiB
	DefaultMaxBatchItems     = 1000
	DefaultMaxBatchDataBytes = 8 << 20 // 8 MiB of values in one detokenize batch response
)

// Authenticator checks the secret of a bearer token. *apikey.File
// implements it.
type Authenticator interface {
	// Authenticate returns the valid key whose secret is secret. It returns
	// an error that wraps apikey.ErrUnauthorized for an unknown, malformed or
	// revoked secret, and the handler then responds with 401. Any other error
	// is a failure of the authenticator itself and gets 500. The handler
	// calls it from many goroutines at once.
	Authenticate(secret string) (apikey.Key, error)
}

// Config configures New.
type Config struct {
	// Vault is the vault to serve. Required. The handler never closes it.
	Vault *tokenvault.Vault

	// Keys authenticates API keys. Required unless NoAuth is set, and
	// ignored when it is.
	Keys Authenticator

	// NoAuth turns authentication off: every request acts as an admin key
	// with an empty id, so lifecycle changes record no actor. The serve
	// command allows it on loopback addresses only.
	NoAuth bool

	// Audit receives one record per detokenized token (each batch item
	// included) and per lifecycle call, one per request that these routes
	// reject with 401 or 403, and one per POST /notifications request. The
	// records of those 401 and 403 responses, and of notifications rejected
	// before their signature is verified, are rate-limited together.
	// Required. A JSON handler is expected.
	Audit *slog.Logger

	// Log receives the errors behind 5xx responses, with the request id, and
	// an info record of each request rejected with a 4xx status: its request
	// id, route, status, code and key id, never its body. Anyone can send
	// such requests, so those records are limited to 20 a second with bursts
	// of 100, and the next record counts those dropped in suppressed_before. nil discards
	// them.
	Log *slog.Logger

	// Registry receives the handler's metrics, and GET /metrics serves it.
	// nil means a new registry with the Go and process collectors.
	Registry *prometheus.Registry

	// MaxBodyBytes limits a request body, in bytes. 0 means
	// DefaultMaxBodyBytes.
	MaxBodyBytes int64

	// MaxBatchItems limits the items of a batch request. 0 means
	// DefaultMaxBatchItems.
	MaxBatchItems int
	// MaxBatchDataBytes limits the bytes of values in one detokenize batch
	// response, which is built in memory: a token whose value would pass
	// the limit fails alone with response_too_large. 0 means
	// DefaultMaxBatchDataBytes.
	MaxBatchDataBytes int

	// Senders maps the name of each party that may POST /notifications,
	// such as "visa-vts", to its HMAC-SHA256 secret of at least
	// webhook.MinSecretSize bytes. Senders sign requests with it instead of
	// using API keys, and NoAuth does not change that. Names must pass
	// tokenvault.ValidateSender. When Senders is empty, /notifications
	// responds 404 as an unknown path does. LoadSenders reads the file that
	// the serve command uses. New copies the map and the secrets.
	Senders map[string][]byte

	// SenderBrands limits senders to the tokens of card brands: a sender
	// with a list may change only card tokens of a listed brand, and reissue
	// them only to a card number of a listed brand. Other notifications of
	// the sender get 403 sender_not_allowed. A sender without a list, or
	// with an empty one, may change every token. Each name must be in
	// Senders and each brand one of the tokenvault.Brand constants.
	// LoadScopedSenders reads the lists from a senders file. New copies the
	// map and the lists.
	SenderBrands map[string][]tokenvault.Brand
}

// Handler serves the HTTP API of a vault. Create it with New. Its methods
// are safe for concurrent use.
type Handler struct {
	vault         *tokenvault.Vault
	keys          Authenticator
	noAuth        bool
	audit         [numRoutes]*slog.Logger // Config.Audit with the route attribute
	log           *slog.Logger
	metrics       *metrics
	metricsPage   http.Handler
	maxBodyBytes  int64
	maxBatchItems int
	senders       map[string][]byte             // Config.Senders; nil turns /notifications off
	senderBrands  map[string][]tokenvault.Brand // Config.SenderBrands without empty lists
	draining      atomic.Bool
	rejections    rateLimiter // audit records of requests rejected before authentication succeeded
	rejectLog     rateLimiter // records of 4xx responses in Config.Log
	maxBatchBytes int         // bound on the values of one detokenize batch response
}

// New returns a handler for cfg, or an error if a required field is missing,
// a limit is negative, or the metrics cannot be registered on cfg.Registry.
func New(cfg Config) (*Handler, error) {
	if cfg.Vault == nil {
		return nil, errors.New("httpapi: Config.Vault is nil")
	}
	if cfg.Keys == nil && !cfg.NoAuth {
		return nil, errors.New("httpapi: Config.Keys is nil: set it, or set NoAuth to serve without authentication")
	}
	if cfg.Audit == nil {
		return nil, errors.New("httpapi: Config.Audit is nil")
	}
	if cfg.MaxBodyBytes < 0 || cfg.MaxBatchItems < 0 || cfg.MaxBatchDataBytes < 0 {
		return nil, fmt.Errorf("httpapi: negative limit: MaxBodyBytes %d, MaxBatchItems %d, MaxBatchDataBytes %d",
			cfg.MaxBodyBytes, cfg.MaxBatchItems, cfg.MaxBatchDataBytes)
	}
	senders, err := copySenders(cfg.Senders)
	if err != nil {
		return nil, err
	}
	senderBrands, err := copySenderBrands(cfg.SenderBrands, senders)
	if err != nil {
		return nil, err
	}

	h := &Handler{
		vault:         cfg.Vault,
		keys:          cfg.Keys,
		noAuth:        cfg.NoAuth,
		log:           cfg.Log,
		maxBodyBytes:  cfg.MaxBodyBytes,
		maxBatchItems: cfg.MaxBatchItems,
		maxBatchBytes: cfg.MaxBatchDataBytes,
		senders:       senders,
		senderBrands:  senderBrands,
	}
	if h.log == nil {
		h.log = slog.New(slog.DiscardHandler)
	}
	// Binding the route once keeps an audit record within the attributes
	// that slog.Record stores without allocating, and the JSON handler
	// formats the route only here.
	for rt := range numRoutes {
		h.audit[rt] = cfg.Audit.With(slog.String("route", rt.String()))
	}
	if h.maxBodyBytes == 0 {
		h.maxBodyBytes = DefaultMaxBodyBytes
	}
	if h.maxBatchItems == 0 {
		h.maxBatchItems = DefaultMaxBatchItems
	}
	if h.maxBatchBytes == 0 {
		h.maxBatchBytes = DefaultMaxBatchDataBytes
	}

	registry := cfg.Registry
	if registry == nil {
		registry = prometheus.NewRegistry()
		registry.MustRegister(
			collectors.NewGoCollector(),
			collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		)
	}
	m, err := newMetrics(registry)
	if err != nil {
		return nil, err
	}
	h.metrics = m
	h.metricsPage = promhttp.HandlerFor(registry, promhttp.HandlerOpts{
		ErrorLog: promLogger{h.log},
	})
	return h, nil
}

// SetDraining makes GET /readyz respond with 503 from now on, so that a load
// balancer stops sending requests before the server shuts down. Other routes
// keep working.
func (h *Handler) SetDraining() { h.draining.Store(true) }

// route is an endpoint of the API.
type route uint8

const (
	routeTokenize route = iota
	routeTokenizeBatch
	routeDetokenize
	routeDetokenizeBatch
	routeSuspend
	routeActivate
	routeClose
	routeTokenInfo
	routeNotifications
	routeHealthz
	routeReadyz
	routeMetrics
	routeUnknown // every other path
	numRoutes
)

// routeInfo is the fixed description of a route.
type routeInfo struct {
	pattern string // the path pattern, also the "route" label and audit field
	method  string // GET routes also accept HEAD
	allow   string // the Allow header of a 405 response
	roles   []apikey.Role
	action  string // the message of audit records
}

var (
	rolesTokenize   = []apikey.Role{apikey.RoleTokenize}
	rolesDetokenize = []apikey.Role{apikey.RoleDetokenize}
	rolesLifecycle  = []apikey.Role{apikey.RoleLifecycle}
	rolesInspect    = []apikey.Role{apikey.RoleLifecycle, apikey.RoleDetokenize}
)

var routes = [numRoutes]routeInfo{
	routeTokenize:        {pattern: "/tokenize", method: http.MethodPost, allow: "POST", roles: rolesTokenize, action: "tokenize"},
	routeTokenizeBatch:   {pattern: "/tokenize/batch", method: http.MethodPost, allow: "POST", roles: rolesTokenize, action: "tokenize"},
	routeDetokenize:      {pattern: "/detokenize", method: http.MethodPost, allow: "POST", roles: rolesDetokenize, action: "detokenize"},
	routeDetokenizeBatch: {pattern: "/detokenize/batch", method: http.MethodPost, allow: "POST", roles: rolesDetokenize, action: "detokenize"},
	routeSuspend:         {pattern: "/suspend", method: http.MethodPost, allow: "POST", roles: rolesLifecycle, action: "suspend"},
	routeActivate:        {pattern: "/activate", method: http.MethodPost, allow: "POST", roles: rolesLifecycle, action: "activate"},
	routeClose:           {pattern: "/close", method: http.MethodPost, allow: "POST", roles: rolesLifecycle, action: "close"},
	routeTokenInfo:       {pattern: "/tokens/{token}", method: http.MethodGet, allow: "GET, HEAD", roles: rolesInspect, action: "inspect"},
	routeNotifications:   {pattern: "/notifications", method: http.MethodPost, allow: "POST", action: "notification"},
	routeHealthz:         {pattern: "/healthz", method: http.MethodGet, allow: "GET, HEAD"},
	routeReadyz:          {pattern: "/readyz", method: http.MethodGet, allow: "GET, HEAD"},
	routeMetrics:         {pattern: "/metrics", method: http.MethodGet, allow: "GET, HEAD"},
	routeUnknown:         {pattern: "unmatched"},
}

func (rt route) String() string { return routes[rt].pattern }

// audited reports whether the route writes audit records: every route that
// needs an API key audits its 401 and 403 responses, and the detokenize,
// lifecycle and notification routes audit their calls too.
func (rt route) audited() bool { return routes[rt].action != "" }

// matchRoute returns the route of path and, for GET /tokens/{token}, the
// token.
func matchRoute(path string) (route, string) {
	switch path {
	case "/tokenize":
		return routeTokenize, ""
	case "/tokenize/batch":
		return routeTokenizeBatch, ""
	case "/detokenize":
		return routeDetokenize, ""
	case "/detokenize/batch":
		return routeDetokenizeBatch, ""
	case "/suspend":
		return routeSuspend, ""
	case "/activate":
		return routeActivate, ""
	case "/close":
		return routeClose, ""
	case "/notifications":
		return routeNotifications, ""
	case "/healthz":
		return routeHealthz, ""
	case "/readyz":
		return routeReadyz, ""
	case "/metrics":
		return routeMetrics, ""
	}
	// Everything after the prefix is the token, so that a malformed token,
	// even one with a slash or none at all, gets the same token_not_found
	// response as an unknown one.
	if token, ok := strings.CutPrefix(path, "/tokens/"); ok {
		return routeTokenInfo, token
	}
	return routeUnknown, ""
}

// ServeHTTP serves one request. Every response, error or not, has the
// X-Request-Id header.
func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rt, pathToken := matchRoute(r.URL.Path)
	if rt == routeNotifications && h.senders == nil {
		rt = routeUnknown // the route is off without senders
	}
	x := &exchange{h: h, w: w, r: r, start: start, route: rt, requestID: requestID(r)}
	w.Header()["X-Request-Id"] = []string{x.requestID}
	defer x.recoverPanic()

	x.serve(pathToken)
	h.metrics.observe(rt, x.outcome, time.Since(start))
}

// serve checks the method and the API key, then runs the route.
func (x *exchange) serve(pathToken string) {
	info := &routes[x.route]
	if x.route == routeUnknown {
		x.fail(fail(codeNotFound))
		return
	}
	if x.r.Method != info.method && (info.method != http.MethodGet || x.r.Method != http.MethodHead) {
		x.w.Header()["Allow"] = []string{info.allow}
		x.fail(fail(codeMethodNotAllowed))
		return
	}

	switch x.route {
	case routeHealthz:
		x.writeStatusOK()
		return
	case routeReadyz:
		x.h.ready(x)
		return
	case routeMetrics:
		x.h.metricsPage.ServeHTTP(x.w, x.r)
		x.wrote = true
		return
	case routeNotifications:
		// Senders sign their requests instead of sending an API key.
		x.h.notification(x)
		return
	}

	if !x.authorize(info.roles) {
		return
	}
	switch x.route {
	case routeTokenize:
		x.h.tokenize(x)
	case routeTokenizeBatch:
		x.h.tokenizeBatch(x)
	case routeDetokenize:
		x.h.detokenize(x)
	case routeDetokenizeBatch:
		x.h.detokenizeBatch(x)
	case routeSuspend:
		x.h.changeState(x, tokenvault.StateSuspended)
	case routeActivate:
		x.h.changeState(x, tokenvault.StateActive)
	case routeClose:
		x.h.changeState(x, tokenvault.StateClosed)
	case routeTokenInfo:
		x.h.tokenInfo(x, pathToken)
	}
}

// readinessToken has the shape of an opaque token, so that Inspect looks it
// up in the store instead of rejecting it early. No vault issues it: its
// creation time and random bits are all zero.
const readinessToken = "tok_000000000000000000000000000000000000"

// ready serves GET /readyz: 200 when a lookup in the vault succeeds and
// SetDraining was not called, else 503.
func (h *Handler) ready(x *exchange) {
	if h.draining.Load() {
		x.fail(fail(codeDraining))
		return
	}
	_, err := h.vault.Inspect(x.r.Context(), readinessToken)
	if err != nil && !errors.Is(err, tokenvault.ErrNotFound) {
		x.fail(problem{code: codeUnavailable, err: err})
		return
	}
	x.writeStatusOK()
}

// recoverPanic sends 500 after a panic of the handler and logs it, so that
// the failure is counted and has a request id. http.ErrAbortHandler, which aborts the
// response on purpose, goes on to net/http.
func (x *exchange) recoverPanic() {
	v := recover()
	if v == nil {
		return
	}
	if v == http.ErrAbortHandler {
		panic(v)
	}

	x.h.log.LogAttrs(x.r.Context(), slog.LevelError, "handler panicked",
		slog.String("request_id", x.requestID),
		slog.String("route", x.route.String()),
		slog.String("panic", fmt.Sprint(v)),
		slog.String("stack", string(debug.Stack())))
	if !x.wrote {
		x.writeError(problem{code: codeInternal})
	}
	x.h.metrics.observe(x.route, codeInternal, time.Since(x.start))
}

// promLogger passes the errors of the /metrics handler to Config.Log.
type promLogger struct{ log *slog.Logger }

func (l promLogger) Println(v ...any) {
	l.log.Error("serving metrics failed", slog.String("error", fmt.Sprint(v...)))
}
