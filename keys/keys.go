package keys

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// File names inside a node's keys directory.
const (
	NodeKeyFile       = "node.key"
	GovernanceKeyFile = "governance.key"
	DataKeyFile       = "data.key"
)

const dataKeyPEMType = "IMTGT DATA KEY"

// ErrExists is returned by Generate when a key file is already there.
var ErrExists = errors.New("key file already exists")

// ErrPermissions is returned by Load when a key file is readable by others.
var ErrPermissions = errors.New("key file permissions too open")

// Set is the keys of one node.
type Set struct {
	Node       ed25519.PrivateKey
	Governance ed25519.PrivateKey
	Data       *DataKey
}

// Generate creates a new key set in dir (created 0700 if missing) and
// writes it with mode 0600. It refuses to overwrite any existing key.
func Generate(dir string) (*Set, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create keys directory: %w", err)
	}
	for _, name := range []string{NodeKeyFile, GovernanceKeyFile, DataKeyFile} {
		if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
			return nil, fmt.Errorf("%w: %s", ErrExists, filepath.Join(dir, name))
		}
	}
	_, nodeKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate node key: %w", err)
	}
	_, govKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("generate governance key: %w", err)
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return nil, fmt.Errorf("generate data key: %w", err)
	}
	dk, err := NewDataKey(raw)
	if err != nil {
		return nil, err
	}
	for _, f := range []struct {
		name  string
		block *pem.Block
	}{
		{NodeKeyFile, mustPKCS8(nodeKey)},
		{GovernanceKeyFile, mustPKCS8(govKey)},
		{DataKeyFile, &pem.Block{Type: dataKeyPEMType, Bytes: raw}},
	} {
		if err := WriteFileExclusive(filepath.Join(dir, f.name), pem.EncodeToMemory(f.block)); err != nil {
			return nil, err
		}
	}
	return &Set{Node: nodeKey, Governance: govKey, Data: dk}, nil
}

func mustPKCS8(k ed25519.PrivateKey) *pem.Block {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		// Only fails for key types x509 does not know; Ed25519 it does.
		panic(err)
	}
	return &pem.Block{Type: "PRIVATE KEY", Bytes: der}
}

// WriteFileExclusive writes a new 0600 file, durably, refusing to replace an
// existing one.
func WriteFileExclusive(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create %s: %w", path, err)
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("write %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("sync %s: %w", path, err)
	}
	return f.Close()
}

// Load reads the key set from dir.
func Load(dir string) (*Set, error) {
	nodeKey, err := loadEd25519(filepath.Join(dir, NodeKeyFile))
	if err != nil {
		return nil, err
	}
	govKey, err := loadEd25519(filepath.Join(dir, GovernanceKeyFile))
	if err != nil {
		return nil, err
	}
	block, err := readPEM(filepath.Join(dir, DataKeyFile), dataKeyPEMType)
	if err != nil {
		return nil, err
	}
	dk, err := NewDataKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", filepath.Join(dir, DataKeyFile), err)
	}
	return &Set{Node: nodeKey, Governance: govKey, Data: dk}, nil
}

// LoadGovernanceKey reads only the governance key (for signing commands
// that run apart from the node).
func LoadGovernanceKey(dir string) (ed25519.PrivateKey, error) {
	return loadEd25519(filepath.Join(dir, GovernanceKeyFile))
}

func loadEd25519(path string) (ed25519.PrivateKey, error) {
	block, err := readPEM(path, "PRIVATE KEY")
	if err != nil {
		return nil, err
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%s: parse private key: %w", path, err)
	}
	ek, ok := k.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("%s: not an Ed25519 key (%T)", path, k)
	}
	return ek, nil
}

func readPEM(path, wantType string) (*pem.Block, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v; run: chmod 600 %s", ErrPermissions, path, fi.Mode().Perm(), path)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != wantType {
		return nil, fmt.Errorf("%s: not a PEM %q block", path, wantType)
	}
	return block, nil
}

// DataKey seals and opens personal fields with AES-256-GCM.
type DataKey struct {
	aead cipher.AEAD
	fp   string
}

// fingerprintLabel separates the fingerprint's HMAC from any other use of
// the key, so the fingerprint says nothing about what the key seals.
const fingerprintLabel = "imtgt data key fingerprint v1"

// ErrSealed is returned when sealed data cannot be opened: it was altered,
// bound to another record, or sealed under another key.
var ErrSealed = errors.New("sealed data cannot be opened")

// NewDataKey wraps a 32-byte key.
func NewDataKey(raw []byte) (*DataKey, error) {
	if len(raw) != 32 {
		return nil, fmt.Errorf("data key must be 32 bytes, got %d", len(raw))
	}
	block, err := aes.NewCipher(raw)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("data key: %w", err)
	}
	mac := hmac.New(sha256.New, raw)
	mac.Write([]byte(fingerprintLabel))
	return &DataKey{aead: aead, fp: hex.EncodeToString(mac.Sum(nil))}, nil
}

// Fingerprint identifies the key without revealing it: hex
// HMAC-SHA256(key, "imtgt data key fingerprint v1"). The store records it,
// so a node started with another node's data.key is refused before it
// seals anything under the wrong key.
func (k *DataKey) Fingerprint() string { return k.fp }

// Seal encrypts plaintext, binding it to aad (the record's ID) so that a
// sealed blob cannot be moved to another record unnoticed. The result is
// nonce || ciphertext || tag.
func (k *DataKey) Seal(plaintext, aad []byte) []byte {
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(plaintext)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		// crypto/rand never fails on supported platforms (Go 1.24+ it
		// crashes the program instead), so this is unreachable.
		panic(err)
	}
	return k.aead.Seal(nonce, nonce, plaintext, aad)
}

// Open decrypts a blob made by Seal with the same aad.
func (k *DataKey) Open(sealed, aad []byte) ([]byte, error) {
	ns := k.aead.NonceSize()
	if len(sealed) < ns+k.aead.Overhead() {
		return nil, ErrSealed
	}
	pt, err := k.aead.Open(nil, sealed[:ns], sealed[ns:], aad)
	if err != nil {
		return nil, ErrSealed
	}
	return pt, nil
}

// IsNotExist reports whether err means a key file is missing.
func IsNotExist(err error) bool { return errors.Is(err, fs.ErrNotExist) }
