// Package gatewaytest holds test helpers for the agent gateway: a throwaway TLS certificate and a
// minimal agent that speaks the real protocol (hello and welcome on the TLS connection, then yamux).
package gatewaytest

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/jeturing/sajet-domains/shared/protocol"
)

// Certificate returns a self-signed certificate for 127.0.0.1, valid for an hour.
func Certificate(t testing.TB) tls.Certificate {
	t.Helper()
	cert, _, _ := generate(t)
	return cert
}

// CertificateFiles writes a self-signed certificate and key as PEM files and returns their paths.
func CertificateFiles(t testing.TB) (certFile, keyFile string) {
	t.Helper()
	_, certPEM, keyPEM := generate(t)
	dir := t.TempDir()
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, keyPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	return certFile, keyFile
}

func generate(t testing.TB) (tls.Certificate, []byte, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "127.0.0.1"},
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatal(err)
	}
	return cert, certPEM, keyPEM
}

// Agent is the agent side of one session.
type Agent struct {
	Session *yamux.Session
}

// Dial connects to the gateway at addr, sends hello and returns the session with the reply
// (a protocol.Welcome or a protocol.Error). The session closes at the end of the test.
func Dial(t testing.TB, addr string, hello protocol.Hello) (*Agent, protocol.Message) {
	t.Helper()
	ys, reply, err := Connect(addr, hello)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ys.Close() })
	return &Agent{Session: ys}, reply
}

// Connect is Dial without a test: for benchmarks that open many sessions from goroutines and
// retry refused ones. The caller closes the session.
func Connect(addr string, hello protocol.Hello) (*yamux.Session, protocol.Message, error) {
	return ConnectFrom(nil, addr, hello)
}

// ConnectFrom is Connect from the local address local (nil: the system's choice), e.g. another
// loopback address: Linux routes all of 127.0.0.0/8 to lo.
//
// Protocol 3: hello and its answer are frames on the TLS connection itself; yamux starts after
// Welcome. On an Error the session returned is already closed.
func ConnectFrom(local *net.TCPAddr, addr string, hello protocol.Hello) (*yamux.Session, protocol.Message, error) {
	conn, err := DialTLS(local, addr)
	if err != nil {
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
	if err := protocol.WriteMessage(conn, hello); err != nil {
		conn.Close()
		return nil, nil, err
	}
	reply, err := protocol.ReadMessage(conn, protocol.MaxHandshakeReplySize)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	_ = conn.SetDeadline(time.Time{})
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	ys, err := yamux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, nil, err
	}
	if _, ok := reply.(protocol.Welcome); !ok {
		ys.Close()
	}
	return ys, reply, nil
}

// DialTLS opens a TLS 1.3 connection to the gateway at addr (any certificate) from local (nil:
// the system's choice) and completes the TLS handshake.
func DialTLS(local *net.TCPAddr, addr string) (*tls.Conn, error) {
	d := &net.Dialer{Timeout: 30 * time.Second}
	if local != nil {
		d.LocalAddr = local
	}
	conn, err := tls.DialWithDialer(d, "tcp", addr, &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13}) //nolint:gosec // self-signed test certificate
	if err != nil {
		return nil, err
	}
	return conn, nil
}

// ConnectLegacy speaks protocol 2 and older: yamux first, hello on the first stream. Only tests
// use it, to see what an agent that was not upgraded is told.
func ConnectLegacy(addr string, hello protocol.Hello) (protocol.Message, error) {
	conn, err := DialTLS(nil, addr)
	if err != nil {
		return nil, err
	}
	cfg := yamux.DefaultConfig()
	cfg.LogOutput = io.Discard
	ys, err := yamux.Client(conn, cfg)
	if err != nil {
		conn.Close()
		return nil, err
	}
	defer ys.Close()
	stream, err := ys.OpenStream()
	if err != nil {
		return nil, err
	}
	defer stream.Close()
	_ = stream.SetDeadline(time.Now().Add(30 * time.Second))
	if err := protocol.WriteMessage(stream, hello); err != nil {
		return nil, err
	}
	return protocol.ReadMessage(stream, 1<<20)
}

// Next accepts the next push and answers it with answer(desired).
func (a *Agent) Next(t testing.TB, answer func(protocol.Desired) protocol.Ack) protocol.Desired {
	t.Helper()
	type result struct {
		d   protocol.Desired
		err error
	}
	done := make(chan result, 1)
	go func() {
		stream, err := a.Session.AcceptStream()
		if err != nil {
			done <- result{err: err}
			return
		}
		defer stream.Close()
		_ = stream.SetDeadline(time.Now().Add(15 * time.Second))
		m, err := protocol.ReadMessage(stream, protocol.MaxFrameSize)
		if err != nil {
			done <- result{err: err}
			return
		}
		d, ok := m.(protocol.Desired)
		if !ok {
			done <- result{err: &protocol.UnknownTypeError{Type: m.MessageType()}}
			return
		}
		done <- result{d: d, err: protocol.WriteMessage(stream, answer(d))}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("agent: %v", r.err)
		}
		return r.d
	case <-time.After(15 * time.Second):
		t.Fatal("no desired state pushed within 15s")
		return protocol.Desired{}
	}
}

// ACK answers a push as applied.
func ACK(d protocol.Desired) protocol.Ack {
	return protocol.Ack{Nonce: d.Nonce, Version: d.Version, OK: true, AppliedVersion: d.Version,
		SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"}
}

// Fingerprint returns the SHA-256 of the PEM certificate in certFile, as agents pin it.
func Fingerprint(t testing.TB, certFile string) string {
	t.Helper()
	data, err := os.ReadFile(certFile)
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(data)
	if block == nil {
		t.Fatalf("%s: no PEM block", certFile)
	}
	sum := sha256.Sum256(block.Bytes)
	return hex.EncodeToString(sum[:])
}

// FingerprintOf returns the SHA-256 of cert's leaf, as agents pin it.
func FingerprintOf(cert tls.Certificate) string {
	sum := sha256.Sum256(cert.Certificate[0])
	return hex.EncodeToString(sum[:])
}

// Send writes msg on a stream of its own, as the agent sends status and base reports.
func (a *Agent) Send(t testing.TB, msg protocol.Message) {
	t.Helper()
	stream, err := a.Session.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Close()
	_ = stream.SetDeadline(time.Now().Add(15 * time.Second))
	if err := protocol.WriteMessage(stream, msg); err != nil {
		t.Fatal(err)
	}
}
