package federation

import (
	"crypto/ed25519"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Identity converts the node's Ed25519 key into its libp2p key and peer ID.
func Identity(k ed25519.PrivateKey) (crypto.PrivKey, peer.ID, error) {
	priv, err := crypto.UnmarshalEd25519PrivateKey(k)
	if err != nil {
		return nil, "", fmt.Errorf("node key: %w", err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		return nil, "", fmt.Errorf("node key: %w", err)
	}
	return priv, id, nil
}
