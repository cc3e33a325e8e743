package webhooks

import (
	"bytes"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
)

// A sealed secret opens only with its key and for its endpoint, and never contains the secret.
func TestSealedSecretsOpenOnlyWithTheirKeyAndEndpoint(t *testing.T) {
	t.Parallel()
	key, err := ParseKey(NewKey())
	if err != nil {
		t.Fatal(err)
	}
	s, _ := NewSealer(key)
	secret := NewSecret()
	sealed := s.Seal(7, secret)
	if bytes.Contains(sealed, []byte(secret)) || bytes.Contains(sealed, []byte(secret[len(SecretPrefix):])) {
		t.Fatal("the sealed value contains the secret in clear")
	}
	if got, err := s.Open(7, sealed); err != nil || got != secret {
		t.Fatalf("Open = %q, %v", got, err)
	}
	if _, err := s.Open(8, sealed); err != ErrUnseal {
		t.Errorf("another endpoint's row opened: %v", err)
	}
	other, _ := NewSealer(bytes.Repeat([]byte{1}, KeySize))
	if _, err := other.Open(7, sealed); err != ErrUnseal {
		t.Errorf("another key opened it: %v", err)
	}
	sealed[len(sealed)-1] ^= 1
	if _, err := s.Open(7, sealed); err != ErrUnseal {
		t.Errorf("a tampered value opened: %v", err)
	}
	if bytes.Equal(s.Seal(7, secret)[:12], s.Seal(7, secret)[:12]) {
		t.Error("two seals share a nonce")
	}
}

func TestKeysAreThirtyTwoBytes(t *testing.T) {
	t.Parallel()
	good := []string{NewKey(), hex.EncodeToString(bytes.Repeat([]byte{0xab}, KeySize))}
	for _, k := range good {
		if _, err := ParseKey(k); err != nil {
			t.Errorf("ParseKey(%q): %v", k, err)
		}
	}
	for _, k := range []string{"", "short", hex.EncodeToString([]byte("sixteen bytes!!!"))} {
		if _, err := ParseKey(k); err == nil {
			t.Errorf("ParseKey(%q) accepted it", k)
		}
	}
	if _, err := NewSealer([]byte("short")); err == nil {
		t.Error("NewSealer accepted a short key")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := os.WriteFile(path, []byte(NewKey()+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err == nil {
		t.Error("a world-readable key file was accepted")
	}
	if err := os.Chmod(path, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKey(path); err != nil {
		t.Errorf("a private key file was refused: %v", err)
	}
}
