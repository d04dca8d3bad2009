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

// Transfer says what a projection let through and why: the evidence an
// auditor needs.
type Transfer struct {
	Record      string   `json:"record"`
	Destination string   `json:"destination"`
	Purpose     Purpose  `json:"purpose"`
	Fields      []string `json:"fields"`
	LegalBasis  string   `json:"legal_basis"`
	Rules       []string `json:"rules"`
	Version     uint64   `json:"policy_version"`
}

// allowed finds the transfer rules for a record kind, destination and
// purpose: rules naming the destination, else rules for every member.
func (p *Policy) allowed(record, destination string, purpose Purpose) (*compiledTransfer, error) {
	c := p.compiled
	if ct := c.transfers[transferKey{record, purpose, destination}]; ct != nil {
		return ct, nil
	}
	if ct := c.transfers[transferKey{record, purpose, AllMembers}]; ct != nil {
		return ct, nil
	}
	return nil, fmt.Errorf("%w: %s to %s for %s under %s policy version %d", ErrNoRule, record, destination, purpose, p.Country, p.Version)
}

// Transfer returns what may cross for a record kind, destination and
// purpose, without building the record.
func (p *Policy) Transfer(record, destination string, purpose Purpose) (*Transfer, error) {
	ct, err := p.allowed(record, destination, purpose)
	if err != nil {
		return nil, err
	}
	return p.transfer(ct, record, destination, purpose), nil
}

// transfer is the evidence of a crossing the compiled rules ct allow.
func (p *Policy) transfer(ct *compiledTransfer, record, destination string, purpose Purpose) *Transfer {
	t := &Transfer{Record: record, Destination: destination, Purpose: purpose, LegalBasis: ct.basis, Version: p.Version}
	t.Fields = slices.Sorted(maps.Keys(ct.fields))
	for _, r := range ct.rules {
		t.Rules = append(t.Rules, r.ID)
	}
	return t
}

// Project returns the wire form of record that may leave for destination
// and purpose, holding only the fields the policy's transfer rules allow,
// and the evidence of what crossed. It is the only function that turns a
// domain record into bytes for a peer: a field no rule allows never leaves.
func (p *Policy) Project(record any, destination string, purpose Purpose) (proto.Message, *Transfer, error) {
	switch r := record.(type) {
	case *catalog.Listing:
		ct, err := p.allowed(KindListing, destination, purpose)
		if err != nil {
			return nil, nil, err
		}
		return projectListing(r, ct.fields), p.transfer(ct, KindListing, destination, purpose), nil
	case *OrderHandoff:
		if purpose != PurposeOrderHandoff {
			break
		}
		return p.projectHandoff(r, destination)
	case *OrderStatus:
		if purpose != PurposeOrderStatus {
			break
		}
		return p.projectStatus(r, destination)
	case *IssueEvent:
		if purpose != PurposeIssue {
			break
		}
		return p.projectIssue(r, destination)
	}
	return nil, nil, fmt.Errorf("%w: %T to %s for %s", ErrNoRule, record, destination, purpose)
}

// ProjectListing is Project for a listing in the catalog, without the
// evidence: the catalog seals every listing change with it, and the
// crossing is recorded when records are served (see Transfer).
func (p *Policy) ProjectListing(l *catalog.Listing, destination string) (*pb.Listing, error) {
	ct, err := p.allowed(KindListing, destination, PurposeCatalog)
	if err != nil {
		return nil, err
	}
	return projectListing(l, ct.fields), nil
}

// projectListing copies the allowed fields only. The listing ID always
// travels: it names the record (a rule must still allow it, see validate).
func projectListing(l *catalog.Listing, f map[string]bool) *pb.Listing {
	out := &pb.Listing{Id: l.ID}
	if f["seller.id"] || f["seller.legal_name"] || f["seller.business_id"] || f["seller.region"] {
		out.Seller = &pb.SellerProfile{}
		if f["seller.id"] {
			out.Seller.Id = l.Seller.ID
		}
		if f["seller.legal_name"] {
			out.Seller.LegalName = l.Seller.LegalName
		}
		if f["seller.business_id"] {
			out.Seller.BusinessId = l.Seller.BusinessID
		}
		if f["seller.region"] {
			out.Seller.Region = l.Seller.Region
		}
	}
	if f["title"] {
		out.Title = l.Title
	}
	if f["description"] {
		out.Description = l.Description
	}
	if f["hs_code"] {
		out.HsCode = l.HSCode
	}
	if f["price"] {
		out.Price = pbMoney(l.Price)
	}
	if f["quantity"] {
		out.Quantity = l.Quantity
	}
	if f["ship_from"] {
		out.ShipFrom = l.ShipFrom
	}
	if f["images"] {
		out.Images = slices.Clone(l.Images)
	}
	if f["attributes"] {
		out.Attributes = maps.Clone(l.Attributes)
	}
	if f["created_at"] {
		out.CreatedUnixMs = l.CreatedAt.UnixMilli()
	}
	if f["updated_at"] {
		out.UpdatedUnixMs = l.UpdatedAt.UnixMilli()
	}
	if f["version"] {
		out.Version = l.Version
	}
	return out
}
