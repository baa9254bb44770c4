package tokenvault

import "encoding/binary"

// sealVersion is the first byte of every sealed payload.
const sealVersion = 1

// seal returns the plaintext that the vault encrypts for value: a version
// byte, the token, then the value. Binding the token into the ciphertext
// means a ciphertext copied onto another record in the store fails to open,
// instead of returning the wrong value for that token.
func seal(token string, value []byte) []byte {
	b := make([]byte, 0, 1+binary.MaxVarintLen16+len(token)+len(value))
	b = append(b, sealVersion)
	b = binary.AppendUvarint(b, uint64(len(token)))
	b = append(b, token...)
	return append(b, value...)
}

// unseal returns the value of a payload made by seal for token, or
// ErrIntegrity if the payload is malformed or was sealed for another token.
func unseal(token string, payload []byte) ([]byte, error) {
	if len(payload) < 1 || payload[0] != sealVersion {
		return nil, ErrIntegrity
	}
	n, size := binary.Uvarint(payload[1:])
	if size <= 0 || n != uint64(len(token)) {
		return nil, ErrIntegrity
	}
	rest := payload[1+size:]
	if len(rest) < len(token) || string(rest[:len(token)]) != token {
		return nil, ErrIntegrity
	}
	return rest[len(token):], nil
}
