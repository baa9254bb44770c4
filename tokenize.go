package tokenvault

import (
	"bytes"
	"context"
	"errors"
	"math"
	"time"
	"unicode/utf8"
)

// MaxDataSize is the largest value Tokenize accepts, in bytes. Payment
// secrets such as account numbers are far smaller; the limit keeps one
// record within a bbolt page or two.
const MaxDataSize = 64 << 10

// MaxScopeSize is the largest scope Deterministic accepts, in bytes.
const MaxScopeSize = 255

// maxTokenAttempts bounds the draws of a new token when drawn tokens are
// already stored. Opaque tokens collide with probability about 2^-128 per
// draw, so only small card-shaped token spaces ever need more than one.
const maxTokenAttempts = 32

// TokenizeOption configures one Tokenize or TokenizeCard call.
type TokenizeOption func(*tokenizeConfig)

type tokenizeConfig struct {
	format        Format
	deterministic bool
	scope         string
	allowNonLuhn  bool

	expiries     int // expiry options given; more than one is an error
	expiryKind   expiryKind
	expiresAfter time.Duration
	expiresAt    time.Time
}

type expiryKind uint8

const (
	expiryNever expiryKind = iota // also the default without an option
	expiryAfter
	expiryAt
)

// WithFormat sets the token format. TokenizeCard accepts every format and
// defaults to FormatCard; Tokenize accepts FormatOpaque only.
func WithFormat(f Format) TokenizeOption {
	return func(c *tokenizeConfig) { c.format = f }
}

// Deterministic makes tokenization return the same token for the same value
// within scope (any name, "" included) and format, as long as that token is
// live. It finds the token by a keyed blind index, HMAC-SHA256 under the index
// key, and never by decrypting. A closed token is never returned: the value
// gets a new token. An expired one is closed and replaced. A suspended one is
// returned as it is. Options of later calls, such as the expiry, do not change
// the existing token.
func Deterministic(scope string) TokenizeOption {
	return func(c *tokenizeConfig) { c.deterministic = true; c.scope = scope }
}

// ExpiresAfter makes the token expire d after it is created. d must be
// positive: use NoExpiry, not zero, for a token that never expires.
func ExpiresAfter(d time.Duration) TokenizeOption {
	return func(c *tokenizeConfig) { c.expiries++; c.expiryKind = expiryAfter; c.expiresAfter = d }
}

// ExpiresAt makes the token expire at t, which must be in the future and no
// later than 2262-04-11T23:47:16Z, the latest time the bbolt store can record.
func ExpiresAt(t time.Time) TokenizeOption {
	return func(c *tokenizeConfig) { c.expiries++; c.expiryKind = expiryAt; c.expiresAt = t }
}

// NoExpiry states that the token never expires, which is also what happens
// without any expiry option.
func NoExpiry() TokenizeOption {
	return func(c *tokenizeConfig) { c.expiries++; c.expiryKind = expiryNever }
}

// AllowNonLuhn makes TokenizeCard accept card numbers that fail the Luhn check.
// Some real UnionPay cards do, as do a few published test numbers.
func AllowNonLuhn() TokenizeOption {
	return func(c *tokenizeConfig) { c.allowNonLuhn = true }
}

// maxExpiry is the latest expiry time a token can have: the bbolt store
// records times as int64 Unix nanoseconds, which end in April 2262.
var maxExpiry = time.Unix(0, math.MaxInt64).UTC()

// expiry returns the expiry time for a token created at now, zero for none.
func (c *tokenizeConfig) expiry(now time.Time) (time.Time, error) {
	if c.expiries > 1 {
		return time.Time{}, invalid(ErrInvalidOption, "more than one expiry option given")
	}

	switch c.expiryKind {
	case expiryAfter:
		if c.expiresAfter <= 0 {
			return time.Time{}, invalid(ErrInvalidOption, "expiry duration %s is not positive: use NoExpiry for a token that never expires", c.expiresAfter)
		}
		return checkMaxExpiry(now.Add(c.expiresAfter))
	case expiryAt:
		if !c.expiresAt.After(now) {
			return time.Time{}, invalid(ErrInvalidOption, "expiry time %s is not in the future", c.expiresAt.UTC().Format(time.RFC3339))
		}
		return checkMaxExpiry(c.expiresAt.Round(0).UTC())
	default:
		return time.Time{}, nil
	}
}

func checkMaxExpiry(expires time.Time) (time.Time, error) {
	if expires.After(maxExpiry) {
		return time.Time{}, invalid(ErrInvalidOption, "expiry time %s is after %s, the latest a vault can store: use NoExpiry for a token that never expires",
			expires.UTC().Format(time.RFC3339), maxExpiry.Format(time.RFC3339))
	}
	return expires, nil
}

func newTokenizeConfig(opts []TokenizeOption) (*tokenizeConfig, error) {
	c := &tokenizeConfig{}
	for _, opt := range opts {
		opt(c)
	}
	if len(c.scope) > MaxScopeSize {
		return nil, invalid(ErrInvalidOption, "scope is %d bytes, the maximum is %d", len(c.scope), MaxScopeSize)
	}
	if !utf8.ValidString(c.scope) {
		return nil, invalid(ErrInvalidOption, "scope must be valid UTF-8")
	}
	return c, nil
}

// TokenizeCard returns a token for the card number pan, which it normalizes
// as ParseCardNumber does. Unless AllowNonLuhn is given, a number that fails
// the Luhn check is rejected. The default format is FormatCard.
//
// Errors wrap ErrInvalidCardNumber or ErrInvalidOption for bad input and
// never contain the number.
func (v *Vault) TokenizeCard(ctx context.Context, pan string, opts ...TokenizeOption) (string, error) {
	cfg, err := newCardConfig(opts)
	if err != nil {
		return "", err
	}
	value, meta, err := cfg.card(pan)
	if err != nil {
		return "", err
	}
	return v.tokenize(ctx, value, meta, cfg)
}

// newCardConfig returns the configuration of a card tokenization, with the
// format defaulted to FormatCard and checked.
func newCardConfig(opts []TokenizeOption) (*tokenizeConfig, error) {
	cfg, err := newTokenizeConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.format == 0 {
		cfg.format = FormatCard
	}
	if cfg.format != FormatOpaque && cfg.format != FormatCard && cfg.format != FormatCardFirstSix {
		return nil, invalid(ErrInvalidOption, "unknown format %s", cfg.format)
	}
	return cfg, nil
}

// card validates pan and returns its digits and metadata.
func (c *tokenizeConfig) card(pan string) ([]byte, Metadata, error) {
	card, err := parseCardNumber(pan, !c.allowNonLuhn)
	if err != nil {
		return nil, Metadata{}, err
	}

	digits := card.Digits()
	if c.format == FormatCardFirstSix && len(digits) < MinFirstSixDigits {
		return nil, Metadata{}, invalid(ErrInvalidOption, "format card-first-six needs a card number of at least %d digits, this one has %d: use FormatCard", MinFirstSixDigits, len(digits))
	}
	meta := Metadata{Kind: KindCard, Format: c.format, Brand: brandOf(digits), Last4: digits[len(digits)-4:]}
	if c.format == FormatCardFirstSix {
		meta.First6 = digits[:6]
	}
	return []byte(digits), meta, nil
}

// Tokenize returns a FormatOpaque token for data, which may be any bytes from
// 1 to MaxDataSize long. Use TokenizeCard for card numbers, so that they are
// validated and get card metadata. Errors wrap ErrInvalidData or
// ErrInvalidOption for bad input and never contain the data.
func (v *Vault) Tokenize(ctx context.Context, data []byte, opts ...TokenizeOption) (string, error) {
	cfg, err := newDataConfig(opts)
	if err != nil {
		return "", err
	}
	meta, err := cfg.data(data)
	if err != nil {
		return "", err
	}
	return v.tokenize(ctx, data, meta, cfg)
}

// newDataConfig returns the configuration of a data tokenization, with the
// format defaulted to FormatOpaque and checked.
func newDataConfig(opts []TokenizeOption) (*tokenizeConfig, error) {
	cfg, err := newTokenizeConfig(opts)
	if err != nil {
		return nil, err
	}
	if cfg.format == 0 {
		cfg.format = FormatOpaque
	}
	if cfg.format != FormatOpaque {
		return nil, invalid(ErrInvalidOption, "format %s is for card numbers: use TokenizeCard", cfg.format)
	}
	return cfg, nil
}

// data validates data and returns its metadata.
func (c *tokenizeConfig) data(data []byte) (Metadata, error) {
	if len(data) == 0 {
		return Metadata{}, invalid(ErrInvalidData, "data is empty")
	}
	if len(data) > MaxDataSize {
		return Metadata{}, invalid(ErrInvalidData, "data is %d bytes, the maximum is %d", len(data), MaxDataSize)
	}
	return Metadata{Kind: KindData, Format: c.format}, nil
}

func (v *Vault) tokenize(ctx context.Context, value []byte, meta Metadata, cfg *tokenizeConfig) (string, error) {
	done, err := v.enter()
	if err != nil {
		return "", err
	}
	defer done()
	return v.tokenizeEntered(ctx, value, meta, cfg)
}

// tokenizeEntered is tokenize for a caller that has entered the vault.
func (v *Vault) tokenizeEntered(ctx context.Context, value []byte, meta Metadata, cfg *tokenizeConfig) (string, error) {
	now := v.now()
	expires, err := cfg.expiry(now)
	if err != nil {
		return "", err
	}
	meta.Created, meta.Updated, meta.Expires = now, now, expires
	meta.Deterministic, meta.Scope = cfg.deterministic, cfg.scope
	fingerprint := v.keys.fingerprint(meta.Kind, value)
	if !cfg.deterministic {
		return v.create(ctx, value, meta, fingerprint, nil)
	}

	detKey := v.keys.deterministicKey(fingerprint, cfg.scope, cfg.format)
	return v.tokenizeDeterministic(ctx, value, meta, fingerprint, detKey)
}

// maxDeterministicRounds bounds the lookup-then-create rounds of a
// deterministic tokenization. Each round ends in a result unless another
// caller changed the same index entry meanwhile.
const maxDeterministicRounds = 8

// tokenizeDeterministic returns the live token under detKey, or creates one.
// The store's unique index decides races: a caller whose Create loses reads
// the winner's token in the next round.
func (v *Vault) tokenizeDeterministic(ctx context.Context, value []byte, meta Metadata, fingerprint, detKey []byte) (string, error) {
	for range maxDeterministicRounds {
		rec, err := v.store.FindByDeterministicKey(ctx, detKey)
		switch {
		case err == nil && !rec.Expired(meta.Created):
			return rec.Token, nil
		case err == nil:
			if err := v.closeExpired(ctx, rec.Key(), detKey); err != nil {
				return "", err
			}
			continue
		case !errors.Is(err, ErrNotFound):
			return "", err
		}

		token, err := v.create(ctx, value, meta, fingerprint, detKey)
		if errors.Is(err, ErrDeterministicKeyExists) {
			continue
		}
		return token, err
	}
	return "", errors.New("tokenvault: deterministic tokenization did not settle: the index entry kept changing")
}

// closeExpired closes an expired deterministic token, stored under key, so
// that its value can get a new one. It checks again, inside the store's
// transaction, that the token still holds detKey and is still expired.
// Between the lookup and the close, a reissue may have given it a new value
// and expiry, which closing it would destroy.
func (v *Vault) closeExpired(ctx context.Context, key string, detKey []byte) error {
	change := Change{Reason: "expired; replaced by a new deterministic token", Actor: "tokenvault"}
	_, err := v.store.Update(ctx, key, func(rec *Record) (*Change, error) {
		now := v.now()
		if !bytes.Equal(rec.DeterministicKey, detKey) || !rec.Expired(now) {
			return nil, nil
		}
		return applyTransition(rec, StateClosed, LocalParty, change, now)
	})
	if errors.Is(err, ErrNotFound) {
		return nil
	}
	if err != nil {
		return err
	}
	v.notifyWritten()
	return nil
}

// create stores value under a new random token, drawing again when the token
// is taken.
func (v *Vault) create(ctx context.Context, value []byte, meta Metadata, fingerprint, detKey []byte) (string, error) {
	for range maxTokenAttempts {
		rec, err := v.newRecord(ctx, value, meta, fingerprint, detKey)
		if err != nil {
			return "", err
		}
		err = v.store.Create(ctx, rec)
		if errors.Is(err, ErrTokenExists) {
			continue
		}
		if err != nil {
			return "", err
		}
		v.notifyWritten()
		return rec.Token, nil
	}
	return "", ErrTokenSpaceExhausted
}

// newRecord draws a new token for value and encrypts value bound to it.
func (v *Vault) newRecord(ctx context.Context, value []byte, meta Metadata, fingerprint, detKey []byte) (*Record, error) {
	token, locator, err := v.newToken(ctx, meta, value)
	if err != nil {
		return nil, err
	}
	keyID, ciphertext, err := v.keys.encrypt(seal(token, value), meta.Created)
	if err != nil {
		return nil, err
	}

	return &Record{
		Token:            token,
		Locator:          locator,
		State:            StateActive,
		Metadata:         meta,
		KeyID:            keyID,
		Ciphertext:       ciphertext,
		Fingerprint:      fingerprint,
		DeterministicKey: detKey,
	}, nil
}

// newToken returns a new token for value and its locator, or "" when it has
// none. A FormatCard token has one when the store hands out locator numbers
// and the number still fits in the token's digits.
func (v *Vault) newToken(ctx context.Context, meta Metadata, value []byte) (token, locator string, err error) {
	switch meta.Format {
	case FormatCard:
		located, locator, ok, err := v.locators.newToken(ctx, string(value))
		if ok || err != nil {
			return located, locator, err
		}
		token, err = newCardToken(string(value), false)
	case FormatCardFirstSix:
		token, err = newCardToken(string(value), true)
	default:
		token = newOpaqueToken(meta.Created)
	}
	return token, "", err
}
