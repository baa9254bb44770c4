// Package httpapi serves a tokenvault.Vault over HTTP as an http.Handler,
// with API keys, audit records and Prometheus metrics. It keeps the contract
// of the Python service that tokenvault replaces: the same paths, JSON
// fields and success bodies, byte for byte.
//
//	h, err := httpapi.New(httpapi.Config{Vault: v, Keys: keys, Audit: audit})
//	http.ListenAndServe("127.0.0.1:5001", h)
//
// # Endpoints
//
// Request bodies are JSON objects with Content-Type application/json, and
// are decoded strictly: unknown fields, duplicate keys, keys that differ
// only in case, null, values of the wrong type, invalid UTF-8 and escaped
// lone surrogates are rejected.
//
//	POST /tokenize           {"data"} -> {"token"}
//	POST /tokenize/batch     {"items": [tokenize bodies]} -> {"results": [...]}
//	POST /detokenize         {"token"} -> {"data"}
//	POST /detokenize/batch   {"tokens": [...]} -> {"results": [...]}
//	POST /suspend            {"token"} -> {"message": "Token suspended successfully"}
//	POST /activate           {"token"} -> {"message": "Token activated successfully"}
//	POST /close              {"token"} -> {"message": "Token closed successfully"}
//	GET  /tokens/{token}     state, metadata and history; never the value
//	POST /notifications      {"id", "token", "action", "sequence"}, signed -> {"status"}
//	GET  /healthz            {"status": "ok"}
//	GET  /readyz             {"status": "ok"}, or 503 while draining or when the vault fails
//	GET  /metrics            Prometheus text format
//
// POST /tokenize takes "data", which is required, and these optional fields:
//
//   - "type": "data" (the default) tokenizes the UTF-8 bytes of "data", and
//     "card" validates a card number and tokenizes its digits.
//   - "format": "opaque", "card" or "card-first-six". The card formats need
//     type card.
//   - "deterministic" (a boolean) and "scope" (a string, which needs
//     deterministic).
//   - "expires_in": a Go duration such as "720h", or "never". Zero and
//     negative durations are rejected.
//   - "allow_non_luhn" (a boolean, which needs type card).
//
// POST /detokenize returns the value as the string "data". A value that is
// not valid UTF-8, which only the Go API can store, comes back as
// "data_base64" in standard base64 instead.
//
// The lifecycle routes take an optional "reason", recorded in the token's
// history with the API key's id as the actor. Repeating a change succeeds,
// but a closed token cannot change again.
//
// Detokenize and lifecycle requests take an optional "purpose" for the audit
// record, at most 256 bytes. Without it, the X-Purpose header is used.
//
// A batch returns 200 with one result per item, in request order: a success
// object ({"token"}, or {"data"}/{"data_base64"}) or an error object with
// the code that the single-item route would give. One bad value fails only
// its item. A body that does not decode fails the whole batch with 400, as
// does a bad purpose, and a batch of more than Config.MaxBatchItems items
// fails with 413 too_many_items. The items of POST /tokenize/batch that ask
// for the same options go to one call of tokenvault.Vault.TokenizeBatch or
// TokenizeCardBatch, which commits their random tokens together.
//
// GET /tokens/{token} needs the lifecycle or detokenize role and returns
// the JSON of tokenvault.TokenInfo.MarshalJSON, as the command's inspect
// prints it. /healthz, /readyz and /metrics need no API key.
//
// # Notifications
//
// POST /notifications takes changes to a token from the parties in
// Config.Senders, such as a card network's token service or an issuer, and
// applies them with tokenvault.Vault.ApplyNotification. Without senders the
// route responds 404 not_found, as an unknown path does. A sender sends no
// API key. Instead it names itself in the header "Tokenvault-Sender: NAME"
// and signs the body with its secret in "Tokenvault-Signature:
// t=UNIX,v1=HEX", where HEX is the HMAC-SHA256 of "UNIX." followed by the
// body, as webhook.Sign makes it. The signature covers the body, so the
// handler reads the body first, up to Config.MaxBodyBytes. It then checks the
// signature, and that UNIX is within webhook.DefaultTolerance of its clock,
// before it checks the Content-Type, decodes the body or calls the vault. An
// unknown sender, a missing or wrong signature and a timestamp outside the
// window all get the same 401 invalid_signature body.
//
// Config.SenderBrands can limit a sender to card brands, such as a card
// network's token service to its own brand. Such a sender may change only a
// card token whose brand, as Inspect reports it, is in its list, and may
// reissue it only to a card number of a listed brand. A token of data is
// outside every list. Any other notification from the sender gets 403
// sender_not_allowed, with one body that does not name the token's brand. A
// sender without a list may change every token.
//
// The body has these fields:
//
//   - "id" (required): the sender's notification id, 1 to 128 bytes of
//     printable ASCII. A notification whose id the token has seen from the
//     same sender is a duplicate.
//   - "token" (required).
//   - "action" (required): "suspend" adds the sender's own suspension,
//     "resume" lifts it (the token stays suspended while another party, an
//     API client included, holds one), "delete" closes the token, and
//     "reissue" replaces its card number.
//   - "sequence" (required): a positive integer, such as a counter or the
//     time in Unix nanoseconds, that grows with each notification of the
//     sender about the token. A notification whose sequence is not greater
//     than that of the sender's last applied one is stale.
//   - "card_number" (required for reissue), "card_expiry" (an RFC 3339 time
//     that becomes the token's expiry, optional) and "allow_non_luhn" (a
//     boolean): for reissue only. A card-shaped token keeps its digits, so
//     the new number must have the same length.
//   - "reason" (optional): recorded in the token's history, with the sender
//     as the actor.
//
// The response is 200 with {"status": "applied"}, {"status": "duplicate"}
// or {"status": "stale"}. Duplicate and stale notifications change nothing
// but succeed, so that senders stop retrying them. A notification that is
// applied but changes no state, such as a resume from a sender that holds no
// suspension, is recorded in the token's history all the same. A token that
// is closed answers suspend, resume and reissue with 409 token_closed, and
// delete with applied.
//
// When the audit record of an accepted notification (applied, duplicate or
// stale) cannot be written, the response is 503 audit_unavailable, although
// the vault may have applied the notification. Sending it again is safe,
// because the vault then reports it as duplicate, or as stale once the id has
// left the token's list of recent ids, and changes nothing. A rejected
// notification keeps its 4xx or 5xx response when its record cannot be
// written, because nothing changed.
//
// # Errors
//
// Errors are JSON objects {"error": message, "code": code} with
// Content-Type application/json. Codes are stable, while messages are for
// people and may change. No message contains a value from the request: a card
// number sent where a token belongs does not come back.
//
//	status  code                    when
//	400     invalid_json            the body is not one JSON object
//	400     trailing_data           bytes follow the JSON object
//	400     unknown_field           a field the endpoint does not take, such as "Data"
//	                                for "data" (names are case-sensitive); the message
//	                                lists the fields the object takes
//	400     duplicate_field         a field twice, or a field followed by a key that
//	                                differs from it only in case
//	400     missing_field           a required field ("data", "token", "items", "tokens") is absent
//	400     null_value              null anywhere in the body
//	400     invalid_type            a value of the wrong JSON type, such as a number for "data"
//	400     invalid_utf8            invalid UTF-8, or an escaped lone surrogate, in a string
//	400     incomplete_body         the body could not be read to its end
//	400     invalid_card_number     type card and "data" is not a valid card number
//	400     invalid_data            type data and "data" is empty or over 64 KiB
//	400     invalid_option          an invalid type, format, scope, expires_in,
//	                                allow_non_luhn, reason or purpose
//	401     unauthorized            no valid "Authorization: Bearer SECRET"; the response
//	                                has "WWW-Authenticate: Bearer"
//	401     invalid_signature       /notifications from an unknown sender, or without a
//	                                valid, current Tokenvault-Signature
//	403     forbidden               the API key lacks the route's role
//	403     sender_not_allowed      a notification from a sender that Config.SenderBrands
//	                                limits, about a token or reissue outside its brands
//	403     host_not_allowed        with Config.NoAuth, a Host header other than localhost
//	                                or a loopback address
//	404     token_not_found         unknown, malformed or altered token: one identical
//	                                body, {"error":"Token not found","code":"token_not_found"}
//	404     not_found               no such endpoint, or /notifications without
//	                                Config.Senders
//	405     method_not_allowed      wrong method; the Allow header lists the right ones
//	409     token_suspended         detokenize of a suspended token, or activate of a token
//	                                that a notification sender suspended and has not
//	                                resumed: the message names the senders
//	409     token_closed            detokenize of a closed token, suspend or activate of one,
//	                                or a notification other than delete about one
//	410     token_expired           detokenize of an expired token
//	413     body_too_large          the body is over Config.MaxBodyBytes
//	413     too_many_items          a batch has over Config.MaxBatchItems items
//	413     response_too_large      an item of /detokenize/batch, in a 200 response, whose
//	                                value would take the values past Config.MaxBatchDataBytes
//	415     unsupported_media_type  Content-Type is not application/json, or names
//	                                a charset other than UTF-8
//	500     internal_error          an unexpected failure, logged to Config.Log with
//	                                the request id
//	503     unavailable             the vault is closed or, on /readyz, fails
//	503     draining                /readyz after SetDraining
//	503     canceled                the request's context ended before the vault
//	                                finished, usually because the client hung up
//	503     audit_unavailable       the audit record could not be written: no value is
//	                                returned, but a change whose "requested" record
//	                                was written, or a notification, may have been
//	                                applied, and retrying it is safe
//
// The checks run in this order: path (404), method (405), API key (401, 403),
// Content-Type (415), body size (413), decoding (400), then the vault. On
// /notifications the signature needs the whole body, so the order is path
// (404), method (405), body size (413), signature (401), Content-Type (415),
// decoding and field checks (400), the sender's brands (403), then the vault.
//
// A few malformed requests never reach the Handler: the http.Server responds
// to them itself, in plain text rather than JSON. Among them is 431 for
// headers over the server's MaxHeaderBytes plus the 4 KiB that net/http reads
// beyond it, about 20 KiB in tokenvault serve. Another is 400 for a request
// without a Host header or a plain HTTP request to a TLS port.
//
// # API keys
//
// Every route but /healthz, /readyz, /metrics and /notifications needs the
// header "Authorization: Bearer SECRET" with a key that Config.Keys
// authenticates. The tokenize role allows /tokenize and /tokenize/batch,
// detokenize allows /detokenize and /detokenize/batch, lifecycle allows
// /suspend, /activate and /close, and GET /tokens/{token} needs lifecycle or
// detokenize. The admin role allows everything. With Config.NoAuth every
// request acts as an admin key whose id is empty. /notifications takes no
// API key, with or without NoAuth: senders sign their requests.
//
// # Request ids
//
// A request's X-Request-Id header is used if it is 1 to 64 characters of
// [A-Za-z0-9._-]; otherwise the handler makes a random one. Either way the
// response carries it in X-Request-Id, and audit and log records name it.
//
// # Audit
//
// Config.Audit gets one Info record for each token of a detokenize request
// (each batch item, with its index as "item"), two for each lifecycle
// request, and one for each request to those routes that is rejected before
// any token is looked at: a 401 or 403, or a body or purpose that is
// invalid. The first record of a lifecycle request has the outcome
// "requested". It is written before the vault changes the token, so no
// change is made without a record. The second has the outcome, also when
// the vault rejects the reason. When only the second cannot be written, the
// response is 503 audit_unavailable if the change was made, and the vault's
// rejection (404, 409) if it was not. Requests to /tokenize, /tokenize/batch and
// /tokens/{token} get a record only when they are rejected with 401 or 403,
// because failed access
// attempts belong in the audit trail of every route. The message is the
// action (tokenize, detokenize, inspect, suspend, activate or close), and the
// attributes are request_id, key_id, route (the route pattern), token,
// outcome ("requested", "ok" or the error code) and purpose. Records never contain a
// value. A token string that no vault could have issued,
// such as a card number that passes the Luhn check, is written as
// "[redacted]".
//
// Each POST /notifications request gets one Info record with the message
// "notification" and the attributes request_id, route, sender, token,
// notification_id, action, sequence, outcome, and result (applied,
// duplicate or stale) when the outcome is "ok". A 401 record has the
// attribute signature_failure (missing_header, unknown_sender,
// invalid_signature or timestamp_out_of_range) and names the sender that the
// request claimed, unverified. Fields of a body that was not decoded are
// empty. An id or action of an invalid shape, and an id or token that
// contains a card number, are "[redacted]", and a claimed sender that
// contains one is empty. The records never contain the card number of a
// reissue or the reason. The sequence is written as sent.
//
// Anyone can send requests that fail before the signature is verified (413,
// 400 incomplete_body and 401), so their records share one rate limit with
// the 401 and 403 records of the other routes: bursts of 100, then 20 a
// second. Each such record has the attribute suppressed_before, the number
// of records dropped since the last one written.
//
// # Metrics
//
// The handler registers tokenvault_http_requests_total and
// tokenvault_http_request_duration_seconds, both labeled with route (the
// route pattern, such as "/tokens/{token}", or "unmatched") and code ("ok"
// or the error code), so the number of series is bounded whatever clients
// send. A batch counts as one request with code "ok".
//
// # Caveats
//
// The body of a batch is decoded as a whole, so a structural error in one
// item, such as a missing "data", rejects the batch; only errors about
// values are per item.
//
// The handler sets no timeouts: the http.Server must (ReadHeaderTimeout,
// ReadTimeout, WriteTimeout), since a slow client holds a goroutine and a
// buffer of up to MaxBodyBytes.
package httpapi
