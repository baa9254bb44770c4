package main

import (
	"context"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
)

// listen opens the listening socket on cfg.addr. With --no-auth it also
// checks the address it got, because a host name such as localhost can
// resolve to an address that is not loopback.
func listen(ctx context.Context, cfg *serveConfig) (net.Listener, error) {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", cfg.addr)
	if err != nil {
		return nil, err
	}
	if !cfg.noAuth {
		return ln, nil
	}

	tcpAddr, ok := ln.Addr().(*net.TCPAddr)
	if !ok || !tcpAddr.IP.IsLoopback() {
		bound := ln.Addr().String()
		ln.Close()
		return nil, usagef("--no-auth is allowed only on a loopback address, but %s is listening on %s", quoteArg(cfg.addr), bound)
	}
	return ln, nil
}

// isLoopbackHost reports whether the host of addr, a HOST:PORT, is
// "localhost" or an IP address in 127.0.0.0/8 or ::1. An empty host and
// 0.0.0.0 listen on every interface, so they are not loopback.
func isLoopbackHost(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	return ip.Unmap().IsLoopback()
}

// openAuditLog returns the audit logger that writes JSON lines to path, or
// to stderr if path is "-", and the function that closes the file. A file is
// opened for appending and created with mode 0600. Every record has
// "log":"audit", which distinguishes it from the operational log on stderr.
//
// The close function syncs and closes the file once, however often it is
// called. It logs a failure and reports it by returning false.
func openAuditLog(path string, stderr io.Writer, logger *slog.Logger) (*slog.Logger, func() bool, error) {
	if path == "-" {
		return newAuditLogger(stderr), func() bool { return true }, nil
	}

	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, nil, err
	}
	closeFile := sync.OnceValue(func() bool {
		ok := true
		if err := syncRegular(f); err != nil {
			logger.Error("sync audit log failed", "audit_log", path, "error", err.Error())
			ok = false
		}
		if err := f.Close(); err != nil {
			logger.Error("close audit log failed", "audit_log", path, "error", err.Error())
			ok = false
		}
		return ok
	})
	return newAuditLogger(f), closeFile, nil
}

// syncRegular syncs f if it is a regular file. Pipes and character devices,
// such as /dev/stdout, cannot be synced: fsync reports EINVAL for them.
func syncRegular(f *os.File) error {
	info, err := f.Stat()
	if err != nil {
		return err
	}
	if !info.Mode().IsRegular() {
		return nil
	}
	return f.Sync()
}

func newAuditLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil)).With(slog.String("log", "audit"))
}

// auditLogName returns the --audit-log setting as the start log shows it.
func auditLogName(path string) string {
	if path == "-" {
		return "stderr"
	}
	return path
}

// syncWriter serializes writes to w, so that the operational log, the audit
// log and notices can share standard error without interleaving.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}
