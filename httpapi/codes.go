package httpapi

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/internal/strictjson"
)

// code is the outcome of a request or of one batch item: codeOK or an error.
// Its name is the "code" of error responses, the "outcome" of audit records
// and the "code" label of the metrics, so names must never change.
type code uint8

const (
	codeOK code = iota

	// Request body problems.
	codeUnsupportedMediaType
	codeBodyTooLarge
	codeIncompleteBody
	codeInvalidJSON
	codeTrailingData
	codeUnknownField
	codeDuplicateField
	codeMissingField
	codeNullValue
	codeInvalidType
	codeInvalidUTF8
	codeTooManyItems
	codeResponseTooLarge

	// Values and options the vault rejects.
	codeInvalidCardNumber
	codeInvalidData
	codeInvalidOption

	// Token states.
	codeTokenNotFound
	codeTokenSuspended
	codeTokenClosed
	codeTokenExpired

	// Access.
	codeUnauthorized
	codeForbidden
	codeInvalidSignature
	codeSenderNotAllowed
	codeHostNotAllowed

	// Routing.
	codeNotFound
	codeMethodNotAllowed

	// Server.
	codeDraining
	codeUnavailable
	codeCanceled
	codeAuditUnavailable
	codeInternal

	numCodes
)

// codeInfo is the fixed part of an outcome: its name, HTTP status and the
// message used when the handler has no more specific one.
type codeInfo struct {
	name    string
	status  int
	message string
}

var codes = [numCodes]codeInfo{
	codeOK: {"ok", http.StatusOK, ""},

	codeUnsupportedMediaType: {"unsupported_media_type", http.StatusUnsupportedMediaType, "Content-Type must be application/json (UTF-8)"},
	codeBodyTooLarge:         {"body_too_large", http.StatusRequestEntityTooLarge, "Request body is too large"},
	codeIncompleteBody:       {"incomplete_body", http.StatusBadRequest, "Request body could not be read to its end"},
	codeInvalidJSON:          {strictjson.CodeInvalidJSON, http.StatusBadRequest, "Request body is not a valid JSON object"},
	codeTrailingData:         {strictjson.CodeTrailingData, http.StatusBadRequest, "Request body has data after the JSON object"},
	codeUnknownField:         {strictjson.CodeUnknownField, http.StatusBadRequest, "Request body has a field that this endpoint does not accept"},
	codeDuplicateField:       {strictjson.CodeDuplicateField, http.StatusBadRequest, "Request body has a field twice, or two fields whose names differ only in case"},
	codeMissingField:         {strictjson.CodeMissingField, http.StatusBadRequest, "Request body lacks a required field"},
	codeNullValue:            {strictjson.CodeNullValue, http.StatusBadRequest, "Request body has null for a field: omit the field instead"},
	codeInvalidType:          {strictjson.CodeInvalidType, http.StatusBadRequest, "Request body has a value of the wrong JSON type"},
	codeInvalidUTF8:          {strictjson.CodeInvalidUTF8, http.StatusBadRequest, "Request body has a string with invalid UTF-8 or an escaped lone surrogate"},
	codeTooManyItems:         {"too_many_items", http.StatusRequestEntityTooLarge, "Batch has too many items"},
	codeResponseTooLarge:     {"response_too_large", http.StatusRequestEntityTooLarge, "The batch's values exceed the response size limit: request this token in a smaller batch, or alone with POST /detokenize"},

	codeInvalidCardNumber: {"invalid_card_number", http.StatusBadRequest, "Invalid card number"},
	codeInvalidData:       {"invalid_data", http.StatusBadRequest, "Invalid data"},
	codeInvalidOption:     {"invalid_option", http.StatusBadRequest, "Invalid option"},

	// "Token not found" is the old Python service's message, which clients
	// may compare.
	codeTokenNotFound:  {"token_not_found", http.StatusNotFound, "Token not found"},
	codeTokenSuspended: {"token_suspended", http.StatusConflict, "Token is suspended"},
	codeTokenClosed:    {"token_closed", http.StatusConflict, "Token is closed"},
	codeTokenExpired:   {"token_expired", http.StatusGone, "Token has expired"},

	codeUnauthorized: {"unauthorized", http.StatusUnauthorized, "Missing or invalid API key: send the header Authorization: Bearer SECRET"},
	codeForbidden:    {"forbidden", http.StatusForbidden, "The API key does not have the role this endpoint needs"},
	// One message for an unknown sender, a bad signature and an expired
	// timestamp, so that a client cannot tell which senders exist.
	codeInvalidSignature: {"invalid_signature", http.StatusUnauthorized, "Missing or invalid signature: name the sender in Tokenvault-Sender and sign the body with its secret in Tokenvault-Signature, with a current timestamp"},

	// The message does not name the token's brand, which the sender may not
	// know.
	codeSenderNotAllowed: {"sender_not_allowed", http.StatusForbidden, "The sender may not change this token, or reissue it to this card number, because its card brands do not include the token's or the number's"},

	codeHostNotAllowed: {"host_not_allowed", http.StatusForbidden, "Without authentication the server answers only requests for localhost or a loopback address"},

	codeNotFound:         {"not_found", http.StatusNotFound, "No such endpoint"},
	codeMethodNotAllowed: {"method_not_allowed", http.StatusMethodNotAllowed, "Method not allowed: see the Allow header"},

	codeDraining:    {"draining", http.StatusServiceUnavailable, "The server is shutting down"},
	codeUnavailable: {"unavailable", http.StatusServiceUnavailable, "The vault is not available"},
	codeCanceled:    {"canceled", http.StatusServiceUnavailable, "The request was canceled before the vault finished it"},
	// A value is never returned, and a change never reported as done,
	// without its audit record.
	codeAuditUnavailable: {"audit_unavailable", http.StatusServiceUnavailable, "The audit record could not be written, so no value was returned"},
	codeInternal:         {"internal_error", http.StatusInternalServerError, "Internal server error"},
}

func (c code) String() string { return codes[c].name }

// problem is a failed request or batch item. The zero value means success.
type problem struct {
	code code
	// message replaces the code's default message when it is not empty. It
	// must never contain a value from the request.
	message string
	// err is the caught error behind codeInternal and codeUnavailable, for
	// Config.Log only. It never reaches the client.
	err error
}

func (p problem) failed() bool { return p.code != codeOK }

// text returns the message of the error response.
func (p problem) text() string {
	if p.message != "" {
		return p.message
	}
	return codes[p.code].message
}

func fail(c code) problem { return problem{code: c} }

func failf(c code, message string) problem { return problem{code: c, message: message} }

// vaultProblem classifies an error of a Vault method.
func vaultProblem(err error) problem {
	var still *tokenvault.StillSuspendedError
	switch {
	case err == nil:
		return problem{}
	case errors.As(err, &still):
		// POST /activate lifted this key's suspension, but other parties
		// (senders of inbound notifications) still hold theirs.
		return failf(codeTokenSuspended, "Token stays suspended by: "+strings.Join(still.Parties, ", ")+": it becomes active when each of them sends resume")
	case errors.Is(err, tokenvault.ErrNotFound):
		return fail(codeTokenNotFound)
	case errors.Is(err, tokenvault.ErrSuspended):
		return fail(codeTokenSuspended)
	case errors.Is(err, tokenvault.ErrClosed):
		// Also every *TransitionError, which wraps ErrClosed.
		return fail(codeTokenClosed)
	case errors.Is(err, tokenvault.ErrExpired):
		return fail(codeTokenExpired)
	case errors.Is(err, tokenvault.ErrInvalidCardNumber):
		return failf(codeInvalidCardNumber, clientMessage(err))
	case errors.Is(err, tokenvault.ErrInvalidData):
		return failf(codeInvalidData, clientMessage(err))
	case errors.Is(err, tokenvault.ErrInvalidOption):
		return failf(codeInvalidOption, clientMessage(err))
	case errors.Is(err, tokenvault.ErrVaultClosed):
		return problem{code: codeUnavailable, err: err}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return problem{code: codeCanceled, err: err}
	default:
		return problem{code: codeInternal, err: err}
	}
}

// goNames maps the Go API's names in the vault's error messages to the
// request fields that HTTP clients set instead.
var goNames = strings.NewReplacer(
	"use AllowNonLuhn", `set "allow_non_luhn": true`,
	"use FormatCard", `use "format": "card"`,
	"use NoExpiry", `use "expires_in": "never"`,
	"use TokenizeCard", `use "type": "card"`,
)

// clientMessage turns the message of a vault input error, such as
// "tokenvault: invalid card number: has 11 digits, want 12 to 19", into one
// for HTTP clients. The vault's input errors never contain the value.
func clientMessage(err error) string {
	msg := strings.TrimPrefix(err.Error(), "tokenvault: ")
	msg = goNames.Replace(msg)
	if msg == "" {
		return ""
	}
	return strings.ToUpper(msg[:1]) + msg[1:]
}

// decodeProblem classifies an error of strictjson.Decode. The message is the
// code's own, with the field path only when every name in it is a field of
// this API: a client's unknown key could be a card number.
func decodeProblem(err error) problem {
	var se *strictjson.Error
	if !errors.As(err, &se) {
		return problem{code: codeInternal, err: err}
	}

	c, ok := strictCodes[se.Code]
	if !ok {
		return problem{code: codeInternal, err: err}
	}
	if c == codeUnknownField {
		return failf(c, unknownFieldMessage(se))
	}
	if se.Field == "" || !knownFieldPath(se.Field) {
		return fail(c)
	}
	return failf(c, codes[c].message+" (field "+se.Field+")")
}

// unknownFieldMessage names, for a key the endpoint does not accept, the
// field names it does accept, or the one that the key equals but for case.
// A client may send a card number as a key, so the message names the key, or
// the object that has it, only when that path is made of this API's field
// names.
func unknownFieldMessage(se *strictjson.Error) string {
	msg := codes[codeUnknownField].message
	switch {
	case se.Field != se.Object && knownFieldPath(se.Field):
		msg += " (field " + se.Field + ")"
	case se.Object != "" && knownFieldPath(se.Object):
		msg += " (in " + se.Object + ")"
	}

	if se.CaseOf != "" {
		return msg + ": field names are case-sensitive, and this one differs only in case from " + se.CaseOf
	}
	if len(se.Accepted) > 0 {
		return msg + ": it accepts " + strings.Join(se.Accepted, ", ")
	}
	return msg
}

var strictCodes = map[string]code{
	strictjson.CodeInvalidJSON:    codeInvalidJSON,
	strictjson.CodeTrailingData:   codeTrailingData,
	strictjson.CodeUnknownField:   codeUnknownField,
	strictjson.CodeDuplicateField: codeDuplicateField,
	strictjson.CodeMissingField:   codeMissingField,
	strictjson.CodeNullValue:      codeNullValue,
	strictjson.CodeInvalidType:    codeInvalidType,
	strictjson.CodeInvalidUTF8:    codeInvalidUTF8,
	strictjson.CodeTooManyItems:   codeTooManyItems,
}

// knownFields are the JSON names of every request field of this API.
var knownFields = map[string]bool{
	"data": true, "type": true, "format": true, "deterministic": true,
	"scope": true, "expires_in": true, "allow_non_luhn": true,
	"token": true, "tokens": true, "items": true, "reason": true, "purpose": true,
	"id": true, "action": true, "sequence": true, "card_number": true, "card_expiry": true,
}

// knownFieldPath reports whether path, such as "items[2].data", is made of
// known field names and array indexes only.
func knownFieldPath(path string) bool {
	if len(path) > 64 || !utf8.ValidString(path) {
		return false
	}
	for part := range strings.SplitSeq(path, ".") {
		name, index, hasIndex := strings.Cut(part, "[")
		if !knownFields[name] {
			return false
		}
		if !hasIndex {
			continue
		}
		digits, ok := strings.CutSuffix(index, "]")
		if !ok || digits == "" || strings.Trim(digits, "0123456789") != "" {
			return false
		}
	}
	return true
}
