package access

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Role is what a principal may do.
type Role string

// The roles. Each HTTP route names the roles it admits.
const (
	Operator    Role = "operator"    // the national agency running the node
	Seller      Role = "seller"      // one registered seller
	Marketplace Role = "marketplace" // a buyer-facing shop (orders issue)
	Auditor     Role = "auditor"     // reads the audit routes and nothing else
)

// Valid reports whether r is one of the known roles.
func (r Role) Valid() bool {
	switch r {
	case Operator, Seller, Marketplace, Auditor:
		return true
	}
	return false
}

// ErrUnknownToken is returned when a token is not known to the node.
var ErrUnknownToken = errors.New("unknown token")

// Principal is who a token stands for.
type Principal struct {
	Role Role `json:"role"`
	// Subject is the ID of the seller, marketplace or auditor; for the
	// operator it is "operator".
	Subject   string    `json:"subject"`
	CreatedAt time.Time `json:"created_at"`
}

const tokenPrefix = "imtgt_"

// NewToken returns a fresh random bearer token for role and its hash.
func NewToken(role Role) (token, hash string, err error) {
	var b [32]byte
	if _, err := rand.Read(b[:]); err != nil {
		return "", "", fmt.Errorf("generate token: %w", err)
	}
	token = tokenPrefix + string(role) + "_" + base64.RawURLEncoding.EncodeToString(b[:])
	return token, HashToken(token), nil
}

// HashToken returns the hex SHA-256 of a token: the only form the node keeps.
func HashToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}

// LooksLikeToken is a cheap syntax check before a store look-up.
func LooksLikeToken(token string) bool {
	return strings.HasPrefix(token, tokenPrefix) && len(token) < 128
}
