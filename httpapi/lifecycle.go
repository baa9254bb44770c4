package httpapi

import (
	"net/http"

	"github.com/tokenvault/tokenvault"
)

// lifecycleRequest is the body of POST /suspend, /activate and /close.
type lifecycleRequest struct {
	Token   string `json:"token" strict:"required"`
	Reason  string `json:"reason"`
	Purpose string `json:"purpose"`
}

// Success messages of the lifecycle routes, as the old Python service wrote
// them.
const (
	messageSuspended = "Token suspended successfully"
	messageActivated = "Token activated successfully"
	messageClosed    = "Token closed successfully"
)

// Messages of 503 audit_unavailable on the lifecycle routes. The record
// written before a change decides whether the change is made, so only a
// failure of the outcome record leaves a change that may have been applied.
const (
	auditBeforeChangeMessage = "The audit record could not be written, so the token was not changed"
	auditAfterChangeMessage  = "The audit record of the outcome could not be written. The change may have been applied: retrying it is safe"
)

// changeState serves POST /suspend, /activate and /close. The API key's id
// is the change's actor and the body's reason its reason.
func (h *Handler) changeState(x *exchange, to tokenvault.State) {
	var req lifecycleRequest
	if p := x.decode(&req); p.failed() {
		x.auditRequestProblem(p)
		x.fail(p)
		return
	}
	purpose, p := x.purpose(req.Purpose)
	if p.failed() {
		x.auditRequestProblem(p)
		x.fail(p)
		return
	}

	if err := x.auditRequested(req.Token, purpose); err != nil {
		x.fail(failf(codeAuditUnavailable, auditBeforeChangeMessage))
		return
	}

	ctx := x.r.Context()
	opts := [2]tokenvault.ChangeOption{tokenvault.WithReason(req.Reason), tokenvault.WithActor(x.key.ID)}
	var err error
	var message string
	switch to {
	case tokenvault.StateSuspended:
		err, message = h.vault.SuspendToken(ctx, req.Token, opts[:]...), messageSuspended
	case tokenvault.StateActive:
		err, message = h.vault.ActivateToken(ctx, req.Token, opts[:]...), messageActivated
	default:
		err, message = h.vault.CloseToken(ctx, req.Token, opts[:]...), messageClosed
	}
	// When the vault rejected the change, nothing changed, so the rejection
	// is the response even if its outcome record fails.
	p = vaultProblem(err)
	if err := x.audit(req.Token, -1, p.code, purpose); err != nil && !p.failed() {
		x.fail(failf(codeAuditUnavailable, auditAfterChangeMessage))
		return
	}
	if p.failed() {
		x.fail(p)
		return
	}

	x.outcome = codeOK
	x.writeJSON(http.StatusOK, func(dst []byte) []byte { return appendMessage(dst, message) })
}

// tokenInfo serves GET /tokens/{token} with TokenInfo's JSON: the state,
// metadata and history, never the value.
func (h *Handler) tokenInfo(x *exchange, token string) {
	info, err := h.vault.Inspect(x.r.Context(), token)
	if p := vaultProblem(err); p.failed() {
		x.fail(p)
		return
	}
	data, err := info.MarshalJSON()
	if err != nil {
		x.fail(problem{code: codeInternal, err: err})
		return
	}

	x.outcome = codeOK
	x.writeJSON(http.StatusOK, func(dst []byte) []byte { return append(dst, data...) })
}
