package httpapi

import (
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/tokenvault/tokenvault"
	"github.com/tokenvault/tokenvault/internal/strictjson"
	"github.com/tokenvault/tokenvault/webhook"
)

// senderHeader names the sender of a POST /notifications request, whose
// secret signs it in webhook.SignatureHeader.
const senderHeader = "Tokenvault-Sender"

// notificationRequest is the body of POST /notifications.
//
// NOTE: "sequence" decodes into an int, so on 32-bit platforms it is
// limited to 2^31-1, too small for Unix nanoseconds.
type notificationRequest struct {
	ID           string `json:"id" strict:"required"`
	Token        string `json:"token" strict:"required"`
	Action       string `json:"action" strict:"required"`
	Sequence     int    `json:"sequence" strict:"required"`
	CardNumber   string `json:"card_number"`
	CardExpiry   string `json:"card_expiry"`
	AllowNonLuhn bool   `json:"allow_non_luhn"`
	Reason       string `json:"reason"`
}

// notification serves POST /notifications: it verifies the sender's
// signature, then applies the notification with Vault.ApplyNotification.
// Duplicate and stale notifications succeed too, so that senders stop
// retrying them.
func (h *Handler) notification(x *exchange) {
	// The signature covers the body, so the body is read first, but
	// nothing in it is looked at before the signature is verified.
	body, p := x.readBodyBytes()
	if p.failed() {
		x.auditNotification(notificationAudit{sender: claimedSender(x.r), outcome: p.code})
		x.fail(p)
		return
	}
	sender, failure := h.verifySignature(x.r, body)
	if failure != "" {
		x.auditNotification(notificationAudit{sender: claimedSender(x.r), outcome: codeInvalidSignature, failure: failure})
		x.fail(fail(codeInvalidSignature))
		return
	}

	if !isJSONContentType(x.r.Header["Content-Type"]) {
		x.auditNotification(notificationAudit{sender: sender, outcome: codeUnsupportedMediaType})
		x.fail(fail(codeUnsupportedMediaType))
		return
	}
	var req notificationRequest
	if err := strictjson.Decode(body, &req); err != nil {
		p := decodeProblem(err)
		x.auditNotification(notificationAudit{sender: sender, outcome: p.code})
		x.fail(p)
		return
	}
	n, p := req.notification(sender)
	if p.failed() {
		x.auditNotification(notificationAudit{sender: sender, req: &req, outcome: p.code})
		x.fail(p)
		return
	}

	result, err := h.vault.ApplyNotification(x.r.Context(), n)
	p = vaultProblem(err)
	x.auditNotification(notificationAudit{sender: sender, req: &req, outcome: p.code, result: result})
	if p.failed() {
		x.fail(p)
		return
	}

	x.outcome = codeOK
	x.writeJSON(http.StatusOK, func(dst []byte) []byte {
		dst = append(dst, `{"status":"`...)
		dst = append(dst, result.String()...)
		return append(dst, `"}`...)
	})
}

// Reasons for a rejected signature, for the audit record only: the response
// is the same for all of them.
const (
	signatureMissing       = "missing_header"
	signatureUnknownSender = "unknown_sender"
	signatureMismatch      = "invalid_signature"
	signatureExpired       = "timestamp_out_of_range"
)

// unknownSenderSecret is the key that the signature of an unknown sender is
// checked against, so that the response takes as long as for a known sender
// with a wrong signature. The request is rejected whatever the result.
var unknownSenderSecret = make([]byte, webhook.MinSecretSize)

// verifySignature returns the sender of r if r has exactly one sender header
// naming a configured sender and one signature header that signs body under
// its secret, with a timestamp within webhook.DefaultTolerance of now.
// Otherwise it returns the reason for the audit record.
func (h *Handler) verifySignature(r *http.Request, body []byte) (sender, failure string) {
	names := r.Header[senderHeader]
	signatures := r.Header[webhook.SignatureHeader]
	if len(names) != 1 || len(signatures) != 1 {
		return "", signatureMissing
	}

	secret, known := h.senders[names[0]]
	if !known {
		secret = unknownSenderSecret
	}
	err := webhook.Verify(secret, signatures[0], body, time.Now(), webhook.DefaultTolerance)
	switch {
	case !known:
		return "", signatureUnknownSender
	case errors.Is(err, webhook.ErrTimestampOutOfRange):
		return "", signatureExpired
	case err != nil:
		return "", signatureMismatch
	}
	return names[0], ""
}

// claimedSender returns the sender that r names, unverified, for the audit
// record of a rejected request: "" unless it is one well-formed name.
func claimedSender(r *http.Request) string {
	names := r.Header[senderHeader]
	if len(names) != 1 || tokenvault.ValidateSender(names[0]) != nil {
		return ""
	}
	return names[0]
}

// notification converts the request into the vault's Notification. Its
// messages name fields, never values from the request.
func (req *notificationRequest) notification(sender string) (tokenvault.Notification, problem) {
	action, err := tokenvault.ParseNotificationAction(req.Action)
	if err != nil {
		return tokenvault.Notification{}, failf(codeInvalidOption, `Invalid option: "action" must be suspend, resume, delete or reissue`)
	}
	if req.Sequence <= 0 {
		return tokenvault.Notification{}, failf(codeInvalidOption, `Invalid option: "sequence" must be a positive integer`)
	}
	if action != tokenvault.NotifyReissue && (req.CardNumber != "" || req.CardExpiry != "" || req.AllowNonLuhn) {
		return tokenvault.Notification{}, failf(codeInvalidOption, `Invalid option: "card_number", "card_expiry" and "allow_non_luhn" are for action reissue only`)
	}
	var expiry time.Time
	if req.CardExpiry != "" {
		expiry, err = time.Parse(time.RFC3339, req.CardExpiry)
		if err != nil {
			return tokenvault.Notification{}, failf(codeInvalidOption, `Invalid option: "card_expiry" must be an RFC 3339 time, such as 2030-12-31T23:59:59Z`)
		}
	}

	return tokenvault.Notification{
		ID:           req.ID,
		Sender:       sender,
		Token:        req.Token,
		Action:       action,
		Sequence:     uint64(req.Sequence),
		CardNumber:   req.CardNumber,
		AllowNonLuhn: req.AllowNonLuhn,
		CardExpiry:   expiry,
		Reason:       req.Reason,
	}, problem{}
}

// notificationAudit is the content of the audit record of one
// POST /notifications request.
type notificationAudit struct {
	sender  string               // verified, or claimed when outcome is invalid_signature
	req     *notificationRequest // nil when the body did not decode
	outcome code
	result  tokenvault.NotificationResult // zero unless outcome is codeOK
	failure string                        // a signature* reason, for a rejected signature
}

// auditNotification writes the audit record of a notification. It never
// logs the card number, and it logs a token, id or action only if it has a
// valid shape, since the request may be unsigned or hold anything.
func (x *exchange) auditNotification(a notificationAudit) {
	var token, id, action string
	var sequence int
	if a.req != nil {
		token = auditedToken(a.req.Token)
		id = auditedNotificationID(a.req.ID)
		action = redactedToken
		if _, err := tokenvault.ParseNotificationAction(a.req.Action); err == nil {
			action = a.req.Action
		}
		sequence = a.req.Sequence
	}

	attrs := make([]slog.Attr, 0, 9)
	attrs = append(attrs,
		slog.String("request_id", x.requestID),
		slog.String("sender", a.sender),
		slog.String("token", token),
		slog.String("notification_id", id),
		slog.String("action", action),
		slog.Int("sequence", sequence),
		slog.String("outcome", a.outcome.String()),
	)
	if a.result != 0 {
		attrs = append(attrs, slog.String("result", a.result.String()))
	}
	if a.failure != "" {
		attrs = append(attrs, slog.String("signature_failure", a.failure))
	}
	x.h.audit[x.route].LogAttrs(x.r.Context(), slog.LevelInfo, routes[x.route].action, attrs...)
}

// auditedNotificationID returns id if the vault would accept it, 1 to
// tokenvault.MaxNotificationIDSize bytes of printable ASCII, and
// redactedToken otherwise.
func auditedNotificationID(id string) string {
	if id == "" || len(id) > tokenvault.MaxNotificationIDSize {
		return redactedToken
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return redactedToken
		}
	}
	return id
}
