package httpapi

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"
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

// auditUnavailableMessage is the message of a notification whose audit
// record could not be written after the vault applied it, or found it to be
// a duplicate or stale.
const auditUnavailableMessage = "The audit record could not be written. The notification may have been applied: " +
	"send it again, and the response is duplicate (or stale) without a second change to the token"

// notification serves POST /notifications: it verifies the sender's
// signature, then applies the notification with Vault.ApplyNotification.
// Duplicate and stale notifications succeed too, so that senders stop
// retrying them.
func (h *Handler) notification(x *exchange) {
	// The signature covers the body, so the body is read first, but
	// nothing in it is looked at before the signature is verified.
	body, p := x.readBodyBytes()
	if p.failed() {
		x.auditUnverifiedNotification(p.code, "")
		x.fail(p)
		return
	}
	sender, failure := h.verifySignature(x.r, body)
	if failure != "" {
		x.auditUnverifiedNotification(codeInvalidSignature, failure)
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
	if p := h.checkSenderBrands(x.r.Context(), sender, &n); p.failed() {
		x.auditNotification(notificationAudit{sender: sender, req: &req, outcome: p.code})
		x.fail(p)
		return
	}

	result, err := h.vault.ApplyNotification(x.r.Context(), n)
	p = vaultProblem(err)
	auditErr := x.auditNotification(notificationAudit{sender: sender, req: &req, outcome: p.code, result: result})
	if p.failed() {
		// The vault changed nothing, so the rejection is sent even without
		// its audit record.
		x.fail(p)
		return
	}
	if auditErr != nil {
		x.fail(failf(codeAuditUnavailable, auditUnavailableMessage))
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
// record of a rejected request: "" unless it is one well-formed name that
// contains no card number.
func claimedSender(r *http.Request) string {
	names := r.Header[senderHeader]
	if len(names) != 1 || tokenvault.ValidateSender(names[0]) != nil || tokenvault.ContainsCardNumber(names[0]) {
		return ""
	}
	return names[0]
}

// checkSenderBrands returns sender_not_allowed unless Config.SenderBrands
// lets sender send n. A sender limited to brands may change only a card
// token of one of its brands, and reissue it only to a card number of one
// of its brands. A token of data has no brand, so it is out of scope.
//
// NOTE: the token's brand is read before ApplyNotification, outside its
// transaction, so a reissue that another sender applies in between can move
// the token to a brand that this sender may not change, and this
// notification still applies. Only a reissue changes a brand, and only a
// sender allowed both brands can make it, so the notification lands as it
// would have a moment earlier. Closing that gap would need a check inside
// the vault's transaction.
func (h *Handler) checkSenderBrands(ctx context.Context, sender string, n *tokenvault.Notification) problem {
	brands := h.senderBrands[sender]
	if len(brands) == 0 {
		return problem{}
	}

	info, err := h.vault.Inspect(ctx, n.Token)
	if err != nil {
		return vaultProblem(err)
	}
	if info.Kind != tokenvault.KindCard || !slices.Contains(brands, info.Brand) {
		return fail(codeSenderNotAllowed)
	}
	if n.Action != tokenvault.NotifyReissue {
		return problem{}
	}

	brand, err := cardBrand(n.CardNumber, n.AllowNonLuhn)
	if err != nil {
		return vaultProblem(err)
	}
	if !slices.Contains(brands, brand) {
		return fail(codeSenderNotAllowed)
	}
	return problem{}
}

// cardBrand returns the brand of a reissue's card number, or the error that
// ApplyNotification returns for the number. ParseCardNumber always runs the
// Luhn check, so with allowNonLuhn a number that fails it is parsed again
// with its last digit replaced by the check digit that passes. That digit
// does not change the brand, which depends on the first six digits only, of
// the 12 or more that a card number has.
func cardBrand(number string, allowNonLuhn bool) (tokenvault.Brand, error) {
	card, err := tokenvault.ParseCardNumber(number)
	if err != nil && allowNonLuhn {
		card, err = tokenvault.ParseCardNumber(withLuhnCheckDigit(number))
	}
	if err != nil {
		return "", err
	}
	return card.Brand(), nil
}

// withLuhnCheckDigit returns number with its last ASCII digit replaced by
// the Luhn check digit of the digits before it. Other bytes are kept, so
// that ParseCardNumber rejects the result exactly when it rejects number
// for a reason other than the Luhn check.
func withLuhnCheckDigit(number string) string {
	last := len(number) - 1
	for last >= 0 && !isASCIIDigit(number[last]) {
		last--
	}
	if last < 0 {
		return number
	}

	// Double every second digit, starting with the one left of the check
	// digit.
	sum, double := 0, true
	for i := last - 1; i >= 0; i-- {
		if !isASCIIDigit(number[i]) {
			continue
		}
		d := int(number[i] - '0')
		if double {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
		double = !double
	}
	check := byte('0' + (10-sum%10)%10)
	return number[:last] + string(check) + number[last+1:]
}

func isASCIIDigit(c byte) bool { return '0' <= c && c <= '9' }

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
	sender  string               // verified, or claimed when the signature is not verified
	req     *notificationRequest // nil when the body did not decode
	outcome code
	result  tokenvault.NotificationResult // zero unless outcome is codeOK
	failure string                        // a signature* reason, for a rejected signature

	// rateLimited adds the attribute suppressed_before with the count of
	// records that the rate limit dropped before this one.
	rateLimited bool
	suppressed  int
}

// auditUnverifiedNotification audits a notification rejected before its
// signature was verified. Anyone can send such requests, so these records
// share the rate limit of the 401 and 403 responses of the other routes.
func (x *exchange) auditUnverifiedNotification(outcome code, failure string) {
	suppressed, ok := x.h.rejections.allow(time.Now())
	if !ok {
		return
	}
	x.auditNotification(notificationAudit{
		sender:      claimedSender(x.r),
		outcome:     outcome,
		failure:     failure,
		rateLimited: true,
		suppressed:  suppressed,
	})
}

// auditNotification writes the audit record of a notification through the
// audit handler directly, because slog.Logger drops a handler's write
// error. A failed write is counted and logged here, and the error returned.
// It never logs the card number or the reason, and it logs a token, id or
// action only if it has a valid shape and contains no card number, since
// the request may be unsigned or hold anything.
//
// NOTE: the sequence is logged as sent. A 19-digit sequence, such as a time
// in Unix nanoseconds, passes the card number check about one time in ten,
// and the vault stores the sequence in the token's record anyway.
func (x *exchange) auditNotification(a notificationAudit) error {
	handler := x.h.audit[x.route].Handler()
	if !handler.Enabled(x.r.Context(), slog.LevelInfo) {
		return nil
	}

	var token, id, action string
	var sequence int
	if a.req != nil {
		token = auditedNotificationToken(a.req.Token)
		id = auditedNotificationID(a.req.ID)
		action = redactedToken
		if _, err := tokenvault.ParseNotificationAction(a.req.Action); err == nil {
			action = a.req.Action
		}
		sequence = a.req.Sequence
	}

	record := slog.NewRecord(time.Now(), slog.LevelInfo, routes[x.route].action, 0)
	record.AddAttrs(
		slog.String("request_id", x.requestID),
		slog.String("sender", a.sender),
		slog.String("token", token),
		slog.String("notification_id", id),
		slog.String("action", action),
		slog.Int("sequence", sequence),
		slog.String("outcome", a.outcome.String()),
	)
	if a.result != 0 {
		record.AddAttrs(slog.String("result", a.result.String()))
	}
	if a.failure != "" {
		record.AddAttrs(slog.String("signature_failure", a.failure))
	}
	if a.rateLimited {
		record.AddAttrs(slog.Int("suppressed_before", a.suppressed))
	}

	if err := handler.Handle(x.r.Context(), record); err != nil {
		x.h.metrics.auditFailures.Inc()
		x.h.log.LogAttrs(x.r.Context(), slog.LevelError, "audit record not written",
			slog.String("request_id", x.requestID), slog.String("route", x.route.String()), slog.String("error", err.Error()))
		return err
	}
	return nil
}

// auditedNotificationToken returns token as auditedToken does, and
// redactedToken for a token that contains a card number too: opaque tokens
// are lowercase base32hex, so a client can write one whose digits are a
// card number.
func auditedNotificationToken(token string) string {
	if tokenvault.ContainsCardNumber(token) {
		return redactedToken
	}
	return auditedToken(token)
}

// auditedNotificationID returns id if the vault would accept it, 1 to
// tokenvault.MaxNotificationIDSize bytes of printable ASCII without a card
// number, and redactedToken otherwise.
func auditedNotificationID(id string) string {
	if id == "" || len(id) > tokenvault.MaxNotificationIDSize || tokenvault.ContainsCardNumber(id) {
		return redactedToken
	}
	for i := 0; i < len(id); i++ {
		if id[i] < 0x20 || id[i] > 0x7e {
			return redactedToken
		}
	}
	return id
}
