package federation

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"

	"github.com/libp2p/go-libp2p/core/pnet"
)

// NewPSK returns a new random federation key in the swarm.key format that
// go-libp2p (and IPFS) read:
//
//	/key/swarm/psk/1.0.0/
//	/base16/
//	<64 hex digits>
func NewPSK() ([]byte, error) {
	var k [32]byte
	if _, err := rand.Read(k[:]); err != nil {
		return nil, err
	}
	return []byte("/key/swarm/psk/1.0.0/\n/base16/\n" + hex.EncodeToString(k[:]) + "\n"), nil
}

// ParsePSK reads a swarm.key file.
func ParsePSK(data []byte) (pnet.PSK, error) {
	psk, err := pnet.DecodeV1PSK(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("federation key (swarm.key): %w", err)
	}
	if len(psk) != 32 {
		return nil, fmt.Errorf("federation key (swarm.key): %d bytes, want 32", len(psk))
	}
	return psk, nil
}
