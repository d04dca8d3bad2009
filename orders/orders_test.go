package orders_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation/pb"
	"github.com/imtgt/imtgt-node/orders"
)

var allStates = []orders.Status{
	orders.Created, orders.Submitted, orders.Received, orders.Accepted, orders.Rejected,
	orders.Packed, orders.Shipped, orders.Delivered, orders.Cancelled,
}

// legal is the state machine written out edge by edge (after ONDC
// retail): created → submitted → received → accepted | rejected → packed
// → shipped → delivered; cancelled from created, submitted, received,
// accepted and packed. submitted → rejected is the seller's node refusing
// a handoff it cannot take (listing gone, out of stock): the order is
// stored on both sides as rejected without ever having been received.
var legal = map[[2]orders.Status]bool{
	{orders.Created, orders.Submitted}:   true,
	{orders.Created, orders.Cancelled}:   true,
	{orders.Submitted, orders.Received}:  true,
	{orders.Submitted, orders.Rejected}:  true,
	{orders.Submitted, orders.Cancelled}: true,
	{orders.Received, orders.Accepted}:   true,
	{orders.Received, orders.Rejected}:   true,
	{orders.Received, orders.Cancelled}:  true,
	{orders.Accepted, orders.Packed}:     true,
	{orders.Accepted, orders.Cancelled}:  true,
	{orders.Packed, orders.Shipped}:      true,
	{orders.Packed, orders.Cancelled}:    true,
	{orders.Shipped, orders.Delivered}:   true,
}

func TestCanTransitionEveryPair(t *testing.T) {
	type tc struct {
		from, to orders.Status
		want     bool
	}
	var cases []tc
	for _, from := range allStates {
		for _, to := range allStates {
			cases = append(cases, tc{from, to, legal[[2]orders.Status{from, to}]})
		}
	}
	require.Len(t, cases, 81)
	for _, c := range cases {
		t.Run(fmt.Sprintf("%s→%s", c.from, c.to), func(t *testing.T) {
			require.Equal(t, c.want, orders.CanTransition(c.from, c.to))
		})
	}
}

func TestCanTransitionUnknownStates(t *testing.T) {
	for _, s := range allStates {
		require.False(t, orders.CanTransition("", s), "from empty to %s", s)
		require.False(t, orders.CanTransition("bogus", s), "from bogus to %s", s)
		require.False(t, orders.CanTransition(s, ""), "from %s to empty", s)
		require.False(t, orders.CanTransition(s, "bogus"), "from %s to bogus", s)
		require.False(t, orders.CanTransition(s, orders.Status(strings.ToUpper(string(s)))), "states are case-sensitive")
	}
}

func TestFinal(t *testing.T) {
	cases := []struct {
		s    orders.Status
		want bool
	}{
		{orders.Created, false},
		{orders.Submitted, false},
		{orders.Received, false},
		{orders.Accepted, false},
		{orders.Rejected, true},
		{orders.Packed, false},
		{orders.Shipped, false},
		{orders.Delivered, true},
		{orders.Cancelled, true},
	}
	require.Len(t, cases, len(allStates))
	for _, c := range cases {
		t.Run(string(c.s), func(t *testing.T) {
			require.Equal(t, c.want, orders.Final(c.s))
			// Final means exactly: no legal transition leaves it.
			leaves := false
			for _, to := range allStates {
				leaves = leaves || orders.CanTransition(c.s, to)
			}
			require.Equal(t, !leaves, orders.Final(c.s))
		})
	}
}

func TestCancelledReachableExactlyUpToPacked(t *testing.T) {
	for _, s := range allStates {
		want := s == orders.Created || s == orders.Submitted || s == orders.Received || s == orders.Accepted || s == orders.Packed
		require.Equal(t, want, orders.CanTransition(s, orders.Cancelled), "cancel from %s", s)
	}
}

func TestNoTransitionBackToAnEarlierState(t *testing.T) {
	rank := map[orders.Status]int{}
	for i, s := range []orders.Status{orders.Created, orders.Submitted, orders.Received, orders.Accepted, orders.Packed, orders.Shipped, orders.Delivered} {
		rank[s] = i
	}
	for _, from := range allStates {
		for _, to := range allStates {
			rf, okf := rank[from]
			rt, okt := rank[to]
			if okf && okt && rt <= rf {
				require.False(t, orders.CanTransition(from, to), "%s→%s goes backwards", from, to)
			}
		}
	}
}

func TestValidStatus(t *testing.T) {
	for _, s := range allStates {
		require.True(t, orders.ValidStatus(s), s)
	}
	for _, s := range []orders.Status{"", "bogus", "Created", "CANCELLED", "received "} {
		require.False(t, orders.ValidStatus(s), "%q", s)
	}
}

func TestSellerTransitionsAreStates(t *testing.T) {
	for _, s := range orders.SellerTransitions {
		require.True(t, orders.ValidStatus(s))
		require.NotEqual(t, orders.Created, s)
		require.NotEqual(t, orders.Submitted, s)
		require.NotEqual(t, orders.Received, s, "received is the seller node's, not the seller's")
	}
}

func TestTransitionErrorWrapsErrIllegal(t *testing.T) {
	err := error(&orders.TransitionError{From: orders.Shipped, To: orders.Accepted})
	require.ErrorIs(t, err, orders.ErrIllegal)
	require.Equal(t, "illegal transition from shipped to accepted", err.Error())
}

func TestInboxKey(t *testing.T) {
	cases := []struct {
		origin, id, kind string
		seq              uint64
		want             string
	}{
		{"MY", "ord_1", orders.KindHandoff, 1, "MY\x00ord_1\x00handoff\x001"},
		{"TH", "ord_01J", orders.KindStatus, 0, "TH\x00ord_01J\x00status\x000"},
		{"ID", "ord_x", orders.KindStatus, 10, "ID\x00ord_x\x00status\x0010"},
		{"ID", "ord_x", orders.KindStatus, math.MaxUint64, "ID\x00ord_x\x00status\x0018446744073709551615"},
		{"", "", "", 0, "\x00\x00\x000"},
	}
	for _, c := range cases {
		require.Equal(t, c.want, orders.InboxKey(c.origin, c.id, c.kind, c.seq))
	}
	// Every decimal rendering matches strconv.
	for _, n := range []uint64{0, 1, 9, 10, 11, 99, 100, 101, 1 << 32, 1<<63 - 1, 1 << 63, math.MaxUint64} {
		require.Equal(t, "o\x00i\x00k\x00"+strconv.FormatUint(n, 10), orders.InboxKey("o", "i", "k", n))
	}
}

func TestInboxKeyDistinguishesEveryPart(t *testing.T) {
	base := orders.InboxKey("MY", "ord_A", orders.KindHandoff, 1)
	seen := map[string]string{base: "base"}
	for name, k := range map[string]string{
		"origin": orders.InboxKey("ID", "ord_A", orders.KindHandoff, 1),
		"order":  orders.InboxKey("MY", "ord_B", orders.KindHandoff, 1),
		"kind":   orders.InboxKey("MY", "ord_A", orders.KindStatus, 1),
		"seq":    orders.InboxKey("MY", "ord_A", orders.KindHandoff, 2),
		"seq 11": orders.InboxKey("MY", "ord_A", orders.KindHandoff, 11),
		// Parts cannot run into each other: the separator is not
		// allowed in a country code, an order ID or a kind.
		"shifted": orders.InboxKey("MYo", "rd_A", orders.KindHandoff, 1),
	} {
		require.NotContains(t, seen, k, "%s collides with %s", name, seen[k])
		seen[k] = name
	}
	require.Equal(t, base, orders.InboxKey("MY", "ord_A", orders.KindHandoff, 1), "deterministic")
}

func handoff() *pb.OrderHandoff {
	return &pb.OrderHandoff{
		OrderId: "ord_01JABCDEFGHJKMNPQRSTVWXYZ0", BuyerCountry: "MY", SellerId: "sel_01J",
		Items: []*pb.OrderItem{
			{ListingId: "lst_1", Quantity: 2, UnitPrice: &pb.Money{Minor: 26500, Currency: "THB"}, Title: "ข้าวหอมมะลิ 5 กก.", HsCode: "100630"},
			{ListingId: "lst_2", Quantity: 1, UnitPrice: &pb.Money{Minor: 35000, Currency: "THB"}, Title: "coffee", HsCode: "090111"},
		},
		Quote: &pb.OrderQuote{ItemTotal: &pb.Money{Minor: 12000, Currency: "MYR"}, LandedTotal: &pb.Money{Minor: 13000, Currency: "MYR"},
			RatesDate: "2025-01-01", PolicyVersion: 3},
		Recipient:     &pb.Recipient{Name: "Nurul Aina", Phone: "+60 12 345 6789", Line1: "12 Jalan Burma", City: "George Town", Region: "MY-07", Postcode: "10050", Country: "MY"},
		Consent:       &pb.Consent{CrossBorderTransfer: true, RecordedUnixMs: 1700000000000},
		CreatedUnixMs: 1700000000000,
		LegalBasis:    "contract_necessity",
		Rules:         []string{"MY-TR-1", "MY-TR-2"},
	}
}

func TestPayloadHashStable(t *testing.T) {
	h := handoff()
	first, err := orders.PayloadHash(h)
	require.NoError(t, err)
	require.Len(t, first, sha256.Size)
	// The same message, many times, and a fresh copy of it.
	for range 50 {
		again, err := orders.PayloadHash(h)
		require.NoError(t, err)
		require.Equal(t, first, again)
	}
	copied, err := orders.PayloadHash(handoff())
	require.NoError(t, err)
	require.Equal(t, first, copied)
	cloned, err := orders.PayloadHash(proto.Clone(h))
	require.NoError(t, err)
	require.Equal(t, first, cloned)
	// It is the SHA-256 of the deterministic encoding, the bytes the
	// buyer's outbox stores.
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	require.Equal(t, sum[:], first)
	// The relay hashes the message it parsed from the outbox row; the
	// seller's node hashes the one it parsed off the wire: a round trip
	// keeps the hash.
	var parsed pb.OrderHandoff
	require.NoError(t, proto.Unmarshal(b, &parsed))
	rt, err := orders.PayloadHash(&parsed)
	require.NoError(t, err)
	require.Equal(t, first, rt)
	// Pinned: a change of the encoding would make every stored inbox
	// entry look like a conflict after an upgrade.
	require.Equal(t, "f86dc4606fa33a2c7e52ba314fd70335da8db74b29918374b3af275f2e17d6c2", hex.EncodeToString(first))
}

func TestPayloadHashKeepsUnknownFields(t *testing.T) {
	// A newer buyer's node may send fields this node does not know; they
	// survive the round trip, so the hash both sides compute agrees.
	h := handoff()
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(h)
	require.NoError(t, err)
	b = protowire.AppendTag(b, 99, protowire.BytesType)
	b = protowire.AppendString(b, "from the future")
	sum := sha256.Sum256(b)
	var parsed pb.OrderHandoff
	require.NoError(t, proto.Unmarshal(b, &parsed))
	got, err := orders.PayloadHash(&parsed)
	require.NoError(t, err)
	require.Equal(t, sum[:], got)
}

func TestPayloadHashChangesWithContent(t *testing.T) {
	base, err := orders.PayloadHash(handoff())
	require.NoError(t, err)
	for name, mutate := range map[string]func(*pb.OrderHandoff){
		"quantity":     func(h *pb.OrderHandoff) { h.Items[0].Quantity++ },
		"listing":      func(h *pb.OrderHandoff) { h.Items[1].ListingId = "lst_3" },
		"item order":   func(h *pb.OrderHandoff) { h.Items[0], h.Items[1] = h.Items[1], h.Items[0] },
		"recipient":    func(h *pb.OrderHandoff) { h.Recipient.Line1 = "13 Jalan Burma" },
		"consent":      func(h *pb.OrderHandoff) { h.Consent.CrossBorderTransfer = false },
		"price":        func(h *pb.OrderHandoff) { h.Items[0].UnitPrice.Minor++ },
		"created":      func(h *pb.OrderHandoff) { h.CreatedUnixMs++ },
		"rules":        func(h *pb.OrderHandoff) { h.Rules = h.Rules[:1] },
		"buyer":        func(h *pb.OrderHandoff) { h.BuyerCountry = "ID" },
		"order id":     func(h *pb.OrderHandoff) { h.OrderId += "1" },
		"quote":        func(h *pb.OrderHandoff) { h.Quote.PolicyVersion++ },
		"no recipient": func(h *pb.OrderHandoff) { h.Recipient = nil },
	} {
		h := handoff()
		mutate(h)
		got, err := orders.PayloadHash(h)
		require.NoError(t, err)
		require.False(t, bytes.Equal(base, got), "%s: the hash must change", name)
	}
}

func TestPayloadHashOfStatus(t *testing.T) {
	st := &pb.OrderStatus{OrderId: "ord_1", Seq: 2, Status: "shipped", Tracking: "TH123", UpdatedUnixMs: 1700000000000}
	a, err := orders.PayloadHash(st)
	require.NoError(t, err)
	b, err := orders.PayloadHash(proto.Clone(st))
	require.NoError(t, err)
	require.Equal(t, a, b)
	st.Seq = 3
	c, err := orders.PayloadHash(st)
	require.NoError(t, err)
	require.NotEqual(t, a, c)
	// An empty message hashes to the SHA-256 of no bytes.
	e, err := orders.PayloadHash(&pb.OrderStatus{})
	require.NoError(t, err)
	empty := sha256.Sum256(nil)
	require.Equal(t, empty[:], e)
}
