package httpapi

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/tokenvault/tokenvault"
)

// tokenizeRequest is the body of POST /tokenize and one item of
// POST /tokenize/batch.
type tokenizeRequest struct {
	Data          string `json:"data" strict:"required"`
	Type          string `json:"type"`   // "data" (default) or "card"
	Format        string `json:"format"` // "opaque", "card" or "card-first-six"
	Deterministic bool   `json:"deterministic"`
	Scope         string `json:"scope"`
	ExpiresIn     string `json:"expires_in"` // a Go duration or "never"
	AllowNonLuhn  bool   `json:"allow_non_luhn"`
}

type tokenizeBatchRequest struct {
	Items []tokenizeRequest `json:"items" strict:"required"`
}

func (h *Handler) tokenize(x *exchange) {
	var req tokenizeRequest
	if p := x.decode(&req); p.failed() {
		x.fail(p)
		return
	}

	token, p := h.tokenizeItem(x.r.Context(), &req)
	if p.failed() {
		x.fail(p)
		return
	}
	x.outcome = codeOK
	x.writeJSON(http.StatusOK, func(dst []byte) []byte { return appendToken(dst, token) })
}

func (h *Handler) tokenizeBatch(x *exchange) {
	var req tokenizeBatchRequest
	if p := x.decode(&req); p.failed() {
		x.fail(p)
		return
	}
	if len(req.Items) > h.maxBatchItems {
		x.fail(h.tooManyItems())
		return
	}

	results := make([]itemResult, len(req.Items))
	groups := groupByOptions(req.Items, results)
	forEach(len(groups), maxGroupWorkers, func(g int) {
		h.tokenizeGroup(x.r.Context(), req.Items, groups[g], results)
	})

	x.writeBatch(results, func(dst []byte, r *itemResult) []byte { return appendToken(dst, r.token) })
}

// maxGroupWorkers bounds the option groups of one batch that are tokenized
// at once, and so the goroutines that one request starts.
const maxGroupWorkers = 16

// optionGroup is the items of a batch that ask for the same options.
type optionGroup struct {
	opts  []tokenvault.TokenizeOption
	card  bool
	items []int // indexes into the batch
}

// groupByOptions groups the items by their options, in the order in which
// each set of options first appears, so that each group is one call of the
// vault's batch tokenization. An item with invalid options gets its problem
// in results and joins no group.
func groupByOptions(items []tokenizeRequest, results []itemResult) []*optionGroup {
	var groups []*optionGroup
	byOptions := make(map[tokenizeRequest]*optionGroup)
	for i := range items {
		key := items[i]
		key.Data = ""
		g := byOptions[key]
		if g == nil {
			opts, p := key.options(nil)
			if p.failed() {
				results[i].problem = p
				continue
			}
			g = &optionGroup{opts: opts, card: key.Type == "card"}
			byOptions[key] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, i)
	}
	return groups
}

// tokenizeGroup tokenizes the items of g in one call of the vault's batch
// tokenization, which commits many values per store transaction. It
// recovers a panic, so that the other groups and the response go on.
func (h *Handler) tokenizeGroup(ctx context.Context, items []tokenizeRequest, g *optionGroup, results []itemResult) {
	defer func() {
		if v := recover(); v != nil {
			for _, i := range g.items {
				results[i] = itemResult{problem: problem{code: codeInternal, err: fmt.Errorf("tokenize panicked: %v", v)}}
			}
		}
	}()

	var batch []tokenvault.TokenizeResult
	if g.card {
		pans := make([]string, len(g.items))
		for k, i := range g.items {
			pans[k] = items[i].Data
		}
		batch, _ = h.vault.TokenizeCardBatch(ctx, pans, g.opts...)
	} else {
		data := make([][]byte, len(g.items))
		for k, i := range g.items {
			data[k] = []byte(items[i].Data)
		}
		batch, _ = h.vault.TokenizeBatch(ctx, data, g.opts...)
	}

	for k, i := range g.items {
		results[i] = itemResult{token: batch[k].Token, problem: vaultProblem(batch[k].Err)}
	}
}

// tokenizeItem tokenizes the value of one request.
func (h *Handler) tokenizeItem(ctx context.Context, req *tokenizeRequest) (string, problem) {
	var buf [4]tokenvault.TokenizeOption
	opts, p := req.options(buf[:0])
	if p.failed() {
		return "", p
	}

	var token string
	var err error
	if req.Type == "card" {
		token, err = h.vault.TokenizeCard(ctx, req.Data, opts...)
	} else {
		token, err = h.vault.Tokenize(ctx, []byte(req.Data), opts...)
	}
	return token, vaultProblem(err)
}

// options checks the request's options and appends them to opts. Its
// messages name the fields and never repeat their values.
func (req *tokenizeRequest) options(opts []tokenvault.TokenizeOption) ([]tokenvault.TokenizeOption, problem) {
	card := false
	switch req.Type {
	case "", "data":
	case "card":
		card = true
	default:
		return nil, failf(codeInvalidOption, `Invalid option: "type" must be "data" or "card"`)
	}

	if req.Format != "" {
		format, err := tokenvault.ParseFormat(req.Format)
		if err != nil {
			return nil, failf(codeInvalidOption, `Invalid option: "format" must be "opaque", "card" or "card-first-six"`)
		}
		if !card && format != tokenvault.FormatOpaque {
			return nil, failf(codeInvalidOption, `Invalid option: "format" "card" and "card-first-six" need "type": "card"`)
		}
		opts = append(opts, tokenvault.WithFormat(format))
	}

	if req.Deterministic {
		opts = append(opts, tokenvault.Deterministic(req.Scope))
	} else if req.Scope != "" {
		return nil, failf(codeInvalidOption, `Invalid option: "scope" needs "deterministic": true`)
	}

	if req.AllowNonLuhn {
		if !card {
			return nil, failf(codeInvalidOption, `Invalid option: "allow_non_luhn" needs "type": "card"`)
		}
		opts = append(opts, tokenvault.AllowNonLuhn())
	}

	switch req.ExpiresIn {
	case "":
	case "never":
		opts = append(opts, tokenvault.NoExpiry())
	default:
		d, err := time.ParseDuration(req.ExpiresIn)
		if err != nil {
			return nil, failf(codeInvalidOption, `Invalid option: "expires_in" must be a Go duration such as "24h" or "90m", or "never"`)
		}
		if d <= 0 {
			return nil, failf(codeInvalidOption, `Invalid option: "expires_in" must be positive: use "never" for a token that does not expire`)
		}
		opts = append(opts, tokenvault.ExpiresAfter(d))
	}
	return opts, problem{}
}
