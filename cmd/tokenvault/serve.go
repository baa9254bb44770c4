package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/apikey"
	"github.com/tokenvault/tokenvault/httpapi"
)

// Environment variables and defaults for the flags of serve.
const (
	envAddr                = "TOKENVAULT_ADDR"
	envAuditLog            = "TOKENVAULT_AUDIT_LOG"
	auditLogExt            = ".audit.log" // replaces the database path's extension
	envTLSCert             = "TOKENVAULT_TLS_CERT"
	envTLSKey              = "TOKENVAULT_TLS_KEY"
	envSenders             = "TOKENVAULT_SENDERS"
	sendersExt             = ".senders" // replaces the database path's extension
	defaultAddr            = "127.0.0.1:5001"
	defaultShutdownTimeout = 15 * time.Second
)

// Environment variable and default of --expiry-interval. A minute keeps an
// "expired" event within about a minute of the expiry time, at the cost of
// one scan of every record per minute.
const (
	envExpiryInterval     = "TOKENVAULT_EXPIRY_INTERVAL"
	defaultExpiryInterval = time.Minute
)

// Limits of the HTTP server. A request body is JSON of at most the handler's
// MaxBodyBytes (1 MiB by default), so readTimeout accepts clients that send
// about 35 KB/s or more. A slower client would hold a goroutine and a buffer.
const (
	// readHeaderTimeout bounds the time to send the request line and
	// headers, which is what a slowloris client stretches.
	readHeaderTimeout = 5 * time.Second
	// readTimeout bounds reading a whole request, body included.
	readTimeout = 30 * time.Second
	// writeTimeout bounds the time from the end of the request headers to
	// the end of the response, so it covers the vault operation too.
	writeTimeout = 30 * time.Second
	// idleTimeout closes a keep-alive connection that sends no request.
	idleTimeout = 2 * time.Minute
	// maxHeaderBytes is 16 KiB: an Authorization header and the usual
	// headers need far less than net/http's default of 1 MiB.
	maxHeaderBytes = 16 << 10
)

// Upper bounds of serve's limit flags. The handler holds a whole body and a
// whole detokenize batch response in memory.
const (
	maxServeBodyBytes      = 1 << 30
	maxServeBatchItems     = 100_000
	maxServeBatchDataBytes = 1 << 30
)

var serveCommand = &command{
	name:     "serve",
	synopsis: "[--addr HOST:PORT] [--api-keys PATH] [--audit-log PATH] [--tls-cert FILE --tls-key FILE] [flags]",
	summary:  "Serve the vault over HTTP, with API keys, until SIGINT or SIGTERM.",
	details: `
serve opens the vault as tokenize does, creating the database and its key file
on the first run, and serves the HTTP API of package
github.com/tokenvault/tokenvault/httpapi: POST /tokenize, /detokenize,
/suspend, /activate, /close, /tokenize/batch and /detokenize/batch,
GET /tokens/{token}, /healthz, /readyz and /metrics, and POST /notifications
when a senders file exists.

Every request but /healthz, /readyz and /metrics needs the header
"Authorization: Bearer SECRET" with an API key whose roles allow it. When the
API key file has no key, on the first start, serve creates an admin key and
prints its secret on standard error, this once only: the file keeps only a
hash. When every key is revoked, it creates none. Manage keys with 'tokenvault
apikey create|list|revoke', also while serve runs. --no-auth turns
authentication off, and serve accepts it only on a loopback address
(127.0.0.0/8, ::1 or localhost) and only for requests whose Host header names
localhost or a loopback address.

POST /notifications takes suspend, resume, delete and reissue notifications
from card networks and issuers. They sign each request with HMAC-SHA256
instead of sending an API key, with the secrets in the --senders file: a JSON
object that maps each sender name to its secret in standard base64, such as
{"visa-vts": "BASE64 SECRET"}, with mode 0600. A sender's value may instead be
{"secret": "BASE64 SECRET", "brands": ["visa"]}, which lets the sender change
only card tokens of those brands and reissue them only to card numbers of
those brands. Other notifications of the sender get 403 sender_not_allowed.
serve reads the file at start. When the file does not exist and no flag or
environment variable names it, the route responds 404.

When the webhooks file exists (--webhooks, default the database path with its
extension replaced by .webhooks), serve sends each outbox event to its
endpoints as signed POST requests and logs each failed attempt, as
'tokenvault help webhooks' describes. A named file that does not exist is an
error.

serve records the expiry of tokens whose expiry time has passed, as an
"expired" event for subscribers and webhook endpoints, when it starts and
then every --expiry-interval (default $TOKENVAULT_EXPIRY_INTERVAL, or 1m).
It logs the number of tokens it recorded and each error. An interval of 0
turns recording off: tokens still stop detokenizing at their expiry time, but
no "expired" event is written while recording is off.

serve writes its logs as JSON lines on standard error: start and stop,
each error it handles, and a "request rejected" record for each 4xx
response, at most 20 a second after a burst of 100. Audit records go to
--audit-log: one for each detokenized token, each notification and each
rejected request on those routes, and two for each lifecycle request, one
with the outcome "requested" before the change and one after it (default the database
path with its extension replaced by .audit.log). Neither contains a value,
and only the notice of a new admin key contains a secret. When an audit
record cannot be written, the request fails with 503 audit_unavailable and
returns no value.

Timeouts: 5s to read the request headers, 30s to read the whole request, 30s
to write the response, and 2m for an idle keep-alive connection. Request
headers are limited to 16 KiB, bodies to --max-body-bytes (1 MiB), batches to
--max-batch-items (1,000), and the values of one detokenize batch response to
--max-batch-data-bytes (8 MiB). The server holds a whole body and a whole
response in memory, so raise them with care: each is at most 1 GiB, and
batches at most 100,000 items.

On SIGINT or SIGTERM, serve reports not ready on /readyz, keeps serving for
--drain-delay (default 0), stops accepting connections, waits up to --shutdown-timeout for requests in flight, closes the
database and exits with status 0. A second signal ends the process at once.`,
	setup: func(fs *flag.FlagSet) runFunc {
		cfg := &serveConfig{vault: addVaultFlags(fs)}
		fs.StringVar(&cfg.addr, "addr", "", "listen on `HOST:PORT` (default $"+envAddr+", or "+defaultAddr+" if it is unset); port 0 picks a free port")
		fs.StringVar(&cfg.apiKeys, "api-keys", "", "read API keys from the file at `PATH` (default $"+envAPIKeyFile+", or the database path with its extension replaced by "+apiKeysExt+")")
		fs.StringVar(&cfg.auditLog, "audit-log", "", "append audit records to the file at `PATH`, created with mode 0600, or \"-\" for standard error (default $"+envAuditLog+", or the database path with its extension replaced by "+auditLogExt+")")
		fs.StringVar(&cfg.tlsCert, "tls-cert", "", "serve HTTPS with the PEM certificate chain in `FILE` (default $"+envTLSCert+"); needs --tls-key")
		fs.StringVar(&cfg.tlsKey, "tls-key", "", "serve HTTPS with the PEM private key in `FILE` (default $"+envTLSKey+"); needs --tls-cert")
		fs.StringVar(&cfg.webhooks, "webhooks", "", "send events to the webhook endpoints in the JSON file at `PATH`, if it exists (default $"+envWebhooks+", or the database path with its extension replaced by "+webhooksExt+")")
		fs.StringVar(&cfg.senders, "senders", "", "read the senders of POST /notifications and their secrets from the JSON file at `PATH` (default $"+envSenders+", or the database path with its extension replaced by "+sendersExt+")")
		fs.BoolVar(&cfg.noAuth, "no-auth", false, "accept requests without an API key; allowed only on a loopback address")
		fs.DurationVar(&cfg.shutdownTimeout, "shutdown-timeout", defaultShutdownTimeout, "on SIGINT or SIGTERM, wait at most `DURATION` for requests in flight")
		fs.Func("expiry-interval", "record the expiry of tokens whose expiry time has passed every `DURATION`, such as 30s or 5m, and once at the start; 0 turns it off (default $"+envExpiryInterval+", or 1m)", cfg.setExpiryInterval)
		fs.DurationVar(&cfg.drainDelay, "drain-delay", 0, "on SIGINT or SIGTERM, report not ready on /readyz and keep serving for `DURATION` before closing the listener, so that a load balancer stops sending requests first")
		fs.Int64Var(&cfg.maxBodyBytes, "max-body-bytes", httpapi.DefaultMaxBodyBytes, "reject request bodies over `N` bytes with 413 body_too_large")
		fs.IntVar(&cfg.maxBatchItems, "max-batch-items", httpapi.DefaultMaxBatchItems, "reject batches of more than `N` items with 413 too_many_items")
		fs.IntVar(&cfg.maxBatchDataBytes, "max-batch-data-bytes", httpapi.DefaultMaxBatchDataBytes, "fail, with response_too_large, each item of a detokenize batch whose value would take the response's values past `N` bytes")

		return func(ctx context.Context, s streams, args []string) error {
			if len(args) > 0 {
				return usagef("unexpected argument %s: serve takes no arguments", quoteArg(args[0]))
			}
			if err := cfg.resolve(); err != nil {
				return err
			}
			return runServe(ctx, s, cfg)
		}
	},
}

// serveConfig holds the settings of serve, from flags and the environment.
type serveConfig struct {
	vault           *vaultFlags
	addr            string
	apiKeys         string
	auditLog        string
	tlsCert         string
	tlsKey          string
	senders         string
	sendersNamed    bool // a flag or the environment set senders
	webhooks        string
	webhooksNamed   bool // a flag or the environment set webhooks
	noAuth          bool
	shutdownTimeout time.Duration
	drainDelay      time.Duration
	expiryInterval  time.Duration // 0 turns expiry recording off
	expirySet       bool          // the --expiry-interval flag set expiryInterval

	maxBodyBytes      int64
	maxBatchItems     int
	maxBatchDataBytes int
}

// resolve fills the settings that no flag set from the environment and the
// defaults, and checks them. Every error is a usage error.
func (c *serveConfig) resolve() error {
	c.addr = flagOrEnv(c.addr, envAddr, defaultAddr)
	c.apiKeys = apiKeyPath(c.apiKeys, c.vault.dbPath())
	c.auditLog = flagOrEnv(c.auditLog, envAuditLog, "")
	if c.auditLog == "" {
		// A file of its own by default: standard error also carries the
		// one-time admin secret and the operational logs.
		db := c.vault.dbPath()
		c.auditLog = strings.TrimSuffix(db, filepath.Ext(db)) + auditLogExt
	}
	c.tlsCert = flagOrEnv(c.tlsCert, envTLSCert, "")
	c.tlsKey = flagOrEnv(c.tlsKey, envTLSKey, "")
	c.senders = flagOrEnv(c.senders, envSenders, "")
	c.sendersNamed = c.senders != ""
	if !c.sendersNamed {
		db := c.vault.dbPath()
		c.senders = strings.TrimSuffix(db, filepath.Ext(db)) + sendersExt
		if c.senders == db {
			c.senders = db + sendersExt
		}
	}
	c.webhooks, c.webhooksNamed = webhooksPath(c.webhooks, c.vault.dbPath())
	if err := c.resolveExpiryInterval(); err != nil {
		return err
	}

	if _, _, err := net.SplitHostPort(c.addr); err != nil {
		return usagef("invalid --addr %s: expected HOST:PORT, such as %s", quoteArg(c.addr), defaultAddr)
	}
	if (c.tlsCert == "") != (c.tlsKey == "") {
		return usagef("--tls-cert and --tls-key go together: pass both to serve HTTPS, or neither to serve HTTP")
	}
	if c.drainDelay < 0 {
		return usagef("invalid --drain-delay %s: the duration must not be negative", c.drainDelay)
	}
	if c.shutdownTimeout <= 0 {
		return usagef("invalid --shutdown-timeout %s: the duration must be positive", c.shutdownTimeout)
	}
	for _, limit := range []struct {
		flag       string
		value, max int64
	}{
		{"--max-body-bytes", c.maxBodyBytes, maxServeBodyBytes},
		{"--max-batch-items", int64(c.maxBatchItems), maxServeBatchItems},
		{"--max-batch-data-bytes", int64(c.maxBatchDataBytes), maxServeBatchDataBytes},
	} {
		if limit.value < 1 || limit.value > limit.max {
			return usagef("invalid %s %d: the limit must be from 1 to %d", limit.flag, limit.value, limit.max)
		}
	}
	if c.noAuth && !isLoopbackHost(c.addr) {
		return usagef("--no-auth would serve %s without authentication: it is allowed only on a loopback address (127.0.0.0/8, ::1 or localhost)", quoteArg(c.addr))
	}
	return nil
}

// setExpiryInterval sets expiryInterval from the --expiry-interval flag.
func (c *serveConfig) setExpiryInterval(value string) error {
	d, err := time.ParseDuration(value)
	if err != nil {
		return errors.New("want a duration such as 30s or 5m, or 0 to turn expiry recording off")
	}
	c.expiryInterval, c.expirySet = d, true
	return nil
}

// resolveExpiryInterval sets expiryInterval from $TOKENVAULT_EXPIRY_INTERVAL
// or the default when no flag set it, and checks it.
func (c *serveConfig) resolveExpiryInterval() error {
	if c.expirySet {
		if c.expiryInterval < 0 {
			return usagef("invalid --expiry-interval %s: the duration must not be negative, and 0 turns expiry recording off", c.expiryInterval)
		}
		return nil
	}

	c.expiryInterval = defaultExpiryInterval
	value := os.Getenv(envExpiryInterval)
	if value == "" {
		return nil
	}
	d, err := time.ParseDuration(value)
	if err != nil || d < 0 {
		return usagef("invalid %s %s: want a duration that is not negative, such as 30s or 5m, or 0 to turn expiry recording off", envExpiryInterval, quoteArg(value))
	}
	c.expiryInterval = d
	return nil
}

// flagOrEnv returns value if a flag set it, else the environment variable
// env if it is set, else def.
func flagOrEnv(value, env, def string) string {
	if value != "" {
		return value
	}
	if v := os.Getenv(env); v != "" {
		return v
	}
	return def
}

// runServe serves the vault until ctx is done, then shuts down. It returns
// nil only after a clean shutdown.
func runServe(ctx context.Context, s streams, cfg *serveConfig) error {
	stderr := &syncWriter{w: s.stderr}
	logger := slog.New(slog.NewJSONHandler(stderr, nil))
	fail := func(msg string, err error, attrs ...any) error {
		logger.Error(msg, append(attrs, "error", errorText(err))...)
		return errReported
	}

	var tlsConfig *tls.Config
	if cfg.tlsCert != "" {
		cert, err := tls.LoadX509KeyPair(cfg.tlsCert, cfg.tlsKey)
		if err != nil {
			return fail("load TLS certificate failed", err, "tls_cert", cfg.tlsCert, "tls_key", cfg.tlsKey)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}

	// Listen before creating any file, so that a busy port or a --no-auth
	// address that is not loopback after all leaves nothing behind.
	ln, err := listen(ctx, cfg)
	if err != nil {
		var usage *usageError
		if errors.As(err, &usage) {
			return err
		}
		return fail("listen failed", err, "address", cfg.addr)
	}
	defer ln.Close()

	audit, closeAudit, err := openAuditLog(cfg.auditLog, stderr, logger)
	if err != nil {
		return fail("open audit log failed", err, "audit_log", cfg.auditLog)
	}
	defer closeAudit() // for the early returns; the shutdown closes it first

	endpoints, err := loadServeEndpoints(logger, cfg.webhooks, cfg.webhooksNamed)
	if err != nil {
		return fail("load webhooks file failed", err, "webhooks", cfg.webhooks)
	}

	dbPath := cfg.vault.dbPath()
	vault, err := cfg.vault.open(stderr, true, tokenvault.WithLogger(logger))
	if err != nil {
		return fail("open vault failed", err, "db", dbPath)
	}
	handler, err := newServeHandler(stderr, logger, audit, vault, cfg)
	if err != nil {
		if closeErr := vault.Close(); closeErr != nil {
			logger.Error("close vault failed", "db", dbPath, "error", errorText(closeErr))
		}
		return fail("start HTTP handler failed", err, "db", dbPath, "api_keys", cfg.apiKeys)
	}

	stopWebhooks := startWebhooks(logger, vault, cfg.webhooks, endpoints)
	stopExpiry := startExpiryLoop(logger, vault, cfg.expiryInterval)
	// Both stop before the vault closes: the expiry loop first, because it
	// writes events that the dispatcher sends.
	stopBackground := func() {
		stopExpiry()
		stopWebhooks()
	}
	srv := newHTTPServer(handler, tlsConfig, logger)
	served := make(chan error, 1)
	go func() {
		if tlsConfig != nil {
			served <- srv.ServeTLS(ln, "", "")
		} else {
			served <- srv.Serve(ln)
		}
	}()
	startAttrs := []any{"address", ln.Addr().String(), "tls", tlsConfig != nil, "db", dbPath, "auth", !cfg.noAuth, "audit_log", auditLogName(cfg.auditLog)}
	if !cfg.noAuth {
		startAttrs = append(startAttrs, "api_keys", cfg.apiKeys)
	}
	logger.Info("listening", startAttrs...)

	select {
	case err := <-served:
		// Serve returns before Shutdown only when accepting failed.
		logger.Error("serve failed", "address", ln.Addr().String(), "error", err.Error())
		srv.Close()
		stopBackground()
		if closeErr := vault.Close(); closeErr != nil {
			logger.Error("close vault failed", "db", dbPath, "error", errorText(closeErr))
		}
		return errReported
	case <-ctx.Done():
	}
	err = shutdown(logger, srv, served, handler, vault, stopBackground, cfg, context.Cause(ctx))
	if !closeAudit() {
		err = errReported
	}
	if err != nil {
		return err
	}
	logger.Info("stopped")
	return nil
}

// startExpiryLoop records the expiry of tokens with Vault.RecordExpirations
// at once and then every interval, so that subscribers and webhook
// endpoints get "expired" events. It returns the function that stops the
// loop and waits until it has stopped. An interval of 0 starts nothing.
func startExpiryLoop(logger *slog.Logger, vault *tokenvault.Vault, interval time.Duration) (stop func()) {
	if interval == 0 {
		logger.Info("the expiry interval is 0, so serve records no token expirations")
		return func() {}
	}

	logger.Info("started recording token expirations", "interval", interval.String())
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		ticker := time.NewTicker(interval)
		defer ticker.Stop()
		failures := 0
		for {
			failures = recordExpirations(ctx, logger, vault, failures)
			select {
			case <-ctx.Done():
				return
			case <-ticker.C:
			}
		}
	}()

	return func() {
		cancel()
		<-done
		logger.Info("stopped recording token expirations")
	}
}

// recordExpirations runs one Vault.RecordExpirations and logs what it did.
// failures counts the failed runs in a row before this one, and it returns
// the new count.
func recordExpirations(ctx context.Context, logger *slog.Logger, vault *tokenvault.Vault, failures int) int {
	count, err := vault.RecordExpirations(ctx)
	if count > 0 {
		logger.Info("recorded token expirations", "count", count)
	}
	if err == nil || ctx.Err() != nil {
		return 0
	}

	failures++
	logger.Error("record token expirations failed, retrying at the next interval", "failures", failures, "error", errorText(err))
	return failures
}

// newHTTPServer returns the server for handler, with the limits above.
func newHTTPServer(handler http.Handler, tlsConfig *tls.Config, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		TLSConfig:         tlsConfig,
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		// net/http logs TLS handshake failures and the panics it recovers
		// here, so they go to the JSON log too.
		// NOTE: these lines are not rate-limited, so a client that fails
		// handshakes in a loop adds one line per attempt.
		ErrorLog: slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// shutdown stops srv after a signal: it marks the handler as draining, stops
// accepting connections, waits up to cfg.shutdownTimeout for requests in
// flight, stops the expiry loop and the webhook dispatcher with
// stopBackground, and closes the vault. It returns nil only if every step
// succeeded.
func shutdown(logger *slog.Logger, srv *http.Server, served <-chan error, handler *httpapi.Handler, vault *tokenvault.Vault, stopBackground func(), cfg *serveConfig, cause error) error {
	logger.Info("shutting down", "reason", cause.Error(), "timeout", cfg.shutdownTimeout.String())
	handler.SetDraining()
	if cfg.drainDelay > 0 {
		logger.Info("draining: /readyz reports not ready while requests are still served", "drain_delay", cfg.drainDelay.String())
		time.Sleep(cfg.drainDelay)
	}

	clean := true
	ctx, cancel := context.WithTimeout(context.Background(), cfg.shutdownTimeout)
	defer cancel()
	if err := srv.Shutdown(ctx); err != nil {
		// Requests still running lose their connections, but the vault
		// below waits for their operations before it closes.
		logger.Error("requests in flight did not finish before the shutdown timeout, so serve closed their connections", "timeout", cfg.shutdownTimeout.String(), "error", err.Error())
		srv.Close()
		clean = false
	} else {
		logger.Info("stopped accepting connections and finished the requests in flight")
	}
	if err := <-served; !errors.Is(err, http.ErrServerClosed) {
		logger.Error("serve failed", "error", err.Error())
		clean = false
	}

	stopBackground()
	dbPath := cfg.vault.dbPath()
	if err := vault.Close(); err != nil {
		logger.Error("close vault failed", "db", dbPath, "error", errorText(err))
		return errReported
	}
	logger.Info("closed vault", "db", dbPath)
	if !clean {
		return errReported
	}
	return nil
}

// newServeHandler returns the HTTP handler over vault. With authentication
// on, it opens the API key file and creates the first admin key if the file
// has no key.
func newServeHandler(stderr io.Writer, logger, audit *slog.Logger, vault *tokenvault.Vault, cfg *serveConfig) (*httpapi.Handler, error) {
	// A nil Registry gets the Go and process collectors besides the
	// handler's metrics.
	hc := httpapi.Config{
		Vault: vault, NoAuth: cfg.noAuth, Audit: audit, Log: logger,
		MaxBodyBytes: cfg.maxBodyBytes, MaxBatchItems: cfg.maxBatchItems, MaxBatchDataBytes: cfg.maxBatchDataBytes,
	}
	senders, brands, err := httpapi.LoadScopedSenders(cfg.senders)
	switch {
	case errors.Is(err, fs.ErrNotExist) && !cfg.sendersNamed:
		logger.Info("no senders file, so POST /notifications is off", "senders", cfg.senders)
	case err != nil:
		return nil, err
	default:
		logger.Info("loaded notification senders", "senders", cfg.senders, "count", len(senders), "brand_limited", len(brands))
		hc.Senders, hc.SenderBrands = senders, brands
	}

	if !cfg.noAuth {
		keys, err := apikey.Open(cfg.apiKeys)
		if err != nil {
			return nil, err
		}
		if err := ensureAdminKey(stderr, logger, keys, cfg.apiKeys); err != nil {
			return nil, err
		}
		hc.Keys = keys
	}
	return httpapi.New(hc)
}

// ensureAdminKey creates an admin key in keys if it has no key at all, on a
// first start, and prints its secret on stderr. This is the only time the
// secret is shown, because the file keeps only its hash. A file whose keys
// are all revoked gets no new key: revoking every key locks clients out
// until an operator creates one.
func ensureAdminKey(stderr io.Writer, logger *slog.Logger, keys *apikey.File, path string) error {
	list, err := keys.List()
	if err != nil {
		return err
	}
	for _, k := range list {
		if k.Revoked.IsZero() {
			return nil
		}
	}
	if len(list) > 0 {
		logger.Warn("every API key is revoked, so every request that needs a key is rejected; create one with 'tokenvault apikey create'", "api_keys", path)
		return nil
	}

	secret, key, err := keys.Create("initial admin", []apikey.Role{apikey.RoleAdmin})
	if err != nil {
		return fmt.Errorf("create the initial admin API key: %w", err)
	}
	logger.Warn("created an admin API key because the API key file had no key", "api_keys", path, "key_id", key.ID)
	fmt.Fprintf(stderr, `
tokenvault serve: created an admin API key, id %s, because the API key
  file %s had no key. Its secret is shown only this once,
  because the file keeps only its hash. Store it now, and send it with each
  request as the header

      Authorization: Bearer %s

  Then create keys with only the roles each client needs with 'tokenvault
  apikey create', and revoke this one with 'tokenvault apikey revoke %s'.

`, key.ID, path, secret, key.ID)
	return nil
}
