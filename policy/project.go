package policy

import (
	"errors"
	"fmt"
	"maps"
	"slices"

	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/federation/pb"
)

// Purpose is why data crosses a border.
type Purpose string

// Purposes of a transfer.
const (
	PurposeCatalog      Purpose = "catalog"
	PurposeOrderHandoff Purpose = "order_handoff"
	PurposeOrderStatus  Purpose = "order_status"
)

// AllMembers is the destination of records every member receives (catalog
// records are signed once and relayed by any member).
const AllMembers = "*"

// ErrNoRule means no rule allows this record to leave for this destination
// and purpose: it does not leave.
var ErrNoRule = errors.New("no policy rule allows this transfer")

// Project returns the wire form of record that may leave for destination
// and purpose, or ErrNoRule. It is the only function that turns a domain
// record into bytes for a peer.
func Project(record any, destination string, purpose Purpose) (proto.Message, error) {
	switch r := record.(type) {
	case *catalog.Listing:
		if purpose != PurposeCatalog {
			return nil, fmt.Errorf("%w: listing for purpose %q", ErrNoRule, purpose)
		}
		return projectListing(r), nil
	}
	return nil, fmt.Errorf("%w: %T to %s for %s", ErrNoRule, record, destination, purpose)
}

// ProjectListing is Project for a listing in the catalog: its public
// fields and the seller's public profile.
func ProjectListing(l *catalog.Listing, destination string) (*pb.Listing, error) {
	m, err := Project(l, destination, PurposeCatalog)
	if err != nil {
		return nil, err
	}
	return m.(*pb.Listing), nil
}

func projectListing(l *catalog.Listing) *pb.Listing {
	return &pb.Listing{
		Id: l.ID,
		Seller: &pb.SellerProfile{
			Id: l.Seller.ID, LegalName: l.Seller.LegalName,
			BusinessId: l.Seller.BusinessID, Region: l.Seller.Region,
		},
		Title:         l.Title,
		Description:   l.Description,
		HsCode:        l.HSCode,
		Price:         &pb.Money{Minor: l.Price.Minor, Currency: l.Price.Currency},
		Quantity:      l.Quantity,
		ShipFrom:      l.ShipFrom,
		Images:        slices.Clone(l.Images),
		Attributes:    maps.Clone(l.Attributes),
		CreatedUnixMs: l.CreatedAt.UnixMilli(),
		UpdatedUnixMs: l.UpdatedAt.UnixMilli(),
		Version:       l.Version,
	}
}
