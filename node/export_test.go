package node_test

import (
	"crypto/ed25519"
	"path/filepath"

	"github.com/imtgt/imtgt-node/keys"
	"github.com/imtgt/imtgt-node/node"
)

func keysLoadGovernance(dir string) (ed25519.PrivateKey, error) {
	return keys.LoadGovernanceKey(filepath.Join(dir, node.KeysDir))
}
