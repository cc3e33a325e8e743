package webhooks

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
)

// KeySize is the length of the key that seals signing secrets: AES-256.
const KeySize = 32

// Sealer encrypts signing secrets for the database with AES-256-GCM under the key given to
// `serve`. Signing needs the secret itself, so unlike API tokens it cannot be stored as a hash;
// sealed, a copy of the database alone reveals nothing. Each sealed value is bound to its
// endpoint (the id is the additional data), so a row copied onto another endpoint does not open.
type Sealer struct {
	aead cipher.AEAD
}

// NewSealer returns a Sealer for a 32-byte key.
func NewSealer(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("webhook secret key: %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// ParseKey reads a key written as base64 (standard or URL alphabet, padded or not) of 32 bytes,
// or as 64 hex digits.
func ParseKey(s string) ([]byte, error) {
	s = strings.TrimSpace(s)
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if b, err := enc.DecodeString(s); err == nil && len(b) == KeySize {
			return b, nil
		}
	}
	if b, err := hex.DecodeString(s); err == nil && len(b) == KeySize {
		return b, nil
	}
	return nil, fmt.Errorf("a webhook secret key is %d random bytes as base64 (e.g. `head -c 32 /dev/urandom | base64`)", KeySize)
}

// LoadKey reads a key from a file (ParseKey's formats), refusing a file others can read.
func LoadKey(path string) ([]byte, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key file: %w", err)
	}
	if st.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("webhook secret key file %s is readable by others (mode %o): chmod 600 it", path, st.Mode().Perm())
	}
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("webhook secret key file: %w", err)
	}
	return ParseKey(string(b))
}

// NewKey returns a fresh random key, base64.
func NewKey() string {
	b := make([]byte, KeySize)
	_, _ = rand.Read(b)
	return base64.StdEncoding.EncodeToString(b)
}

// Seal encrypts secret for endpoint: nonce || ciphertext.
func (s *Sealer) Seal(endpointID int64, secret string) []byte {
	nonce := make([]byte, s.aead.NonceSize())
	_, _ = rand.Read(nonce)
	return s.aead.Seal(nonce, nonce, []byte(secret), endpointAD(endpointID))
}

// ErrUnseal is returned for a sealed value that does not open: another key, another endpoint's
// row, or tampering.
var ErrUnseal = errors.New("webhook secret does not open with this key")

// Open decrypts a value Seal made for endpoint.
func (s *Sealer) Open(endpointID int64, sealed []byte) (string, error) {
	n := s.aead.NonceSize()
	if len(sealed) < n {
		return "", ErrUnseal
	}
	plain, err := s.aead.Open(nil, sealed[:n], sealed[n:], endpointAD(endpointID))
	if err != nil {
		return "", ErrUnseal
	}
	return string(plain), nil
}

func endpointAD(id int64) []byte {
	ad := make([]byte, 8+len("sajet-webhook-endpoint"))
	copy(ad, "sajet-webhook-endpoint")
	binary.BigEndian.PutUint64(ad[len("sajet-webhook-endpoint"):], uint64(id))
	return ad
}
