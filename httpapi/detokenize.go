package httpapi

import (
	"fmt"
	"net/http"
)

// detokenizeRequest is the body of POST /detokenize.
type detokenizeRequest struct {
	Token   string `json:"token" strict:"required"`
	Purpose string `json:"purpose"`
}

// detokenizeBatchRequest is the body of POST /detokenize/batch.
type detokenizeBatchRequest struct {
	Tokens  []string `json:"tokens" strict:"required"`
	Purpose string   `json:"purpose"`
}

func (h *Handler) detokenize(x *exchange) {
	var req detokenizeRequest
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

	value, err := h.vault.Detokenize(x.r.Context(), req.Token)
	p = vaultProblem(err)
	if err := x.audit(req.Token, -1, p.code, purpose); err != nil {
		clear(value)
		x.fail(auditFailed(err))
		return
	}
	if p.failed() {
		x.fail(p)
		return
	}

	x.outcome = codeOK
	x.writeJSON(http.StatusOK, func(dst []byte) []byte { return appendData(dst, value) })
	clear(value)
}

// detokenizeBatch detokenizes the tokens in order, one audit record each.
// Reads do not wait for the disk, so it runs them one by one on the
// request's goroutine, which keeps the audit records in request order.
func (h *Handler) detokenizeBatch(x *exchange) {
	var req detokenizeBatchRequest
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
	if len(req.Tokens) > h.maxBatchItems {
		p := h.tooManyItems()
		x.auditRequestProblem(p)
		x.fail(p)
		return
	}

	results := make([]itemResult, len(req.Tokens))
	budget := h.maxBatchBytes
	for i, token := range req.Tokens {
		value, p := h.detokenizeItem(x, token)
		if !p.failed() && len(value) > budget {
			// The response holds every value in memory at once, so its
			// size is bounded; tokens past the bound fail alone.
			clear(value)
			value, p = nil, problem{code: codeResponseTooLarge}
		}
		if err := x.audit(token, i, p.code, purpose); err != nil {
			clear(value)
			value, p = nil, auditFailed(err)
		}
		budget -= len(value)
		results[i] = itemResult{data: value, problem: p}
	}

	x.writeBatch(results, func(dst []byte, r *itemResult) []byte { return appendData(dst, r.data) })
	for i := range results {
		clear(results[i].data)
	}
}

// detokenizeItem detokenizes one batch item. It recovers a panic, so that
// the panic fails only this item.
func (h *Handler) detokenizeItem(x *exchange, token string) (value []byte, p problem) {
	defer func() {
		if v := recover(); v != nil {
			value, p = nil, problem{code: codeInternal, err: fmt.Errorf("detokenize panicked: %v", v)}
		}
	}()
	value, err := h.vault.Detokenize(x.r.Context(), token)
	return value, vaultProblem(err)
}
