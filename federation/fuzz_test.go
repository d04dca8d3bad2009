package federation

import (
	"crypto/ed25519"
	"errors"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// fuzzIdentity is a fixed key, so the seeds are valid signed messages.
func fuzzIdentity(f *testing.F) identity {
	key, id, err := Identity(ed25519.NewKeyFromSeed(make([]byte, 32)))
	if err != nil {
		f.Fatal(err)
	}
	return identity{country: "MY", key: key, id: id}
}

func FuzzOpenMessage(f *testing.F) {
	me := fuzzIdentity(f)
	seal := sealerFor(me, time.Now(), "imtgt-test")
	for _, m := range []*pb.Message{
		headsRequest(),
		{Body: &pb.Message_RangeRequest{RangeRequest: &pb.RangeRequest{Origin: "TH", FromSeq: 1, MaxCount: 1024}}},
		{Body: &pb.Message_Heads{Heads: &pb.Heads{Heads: map[string]uint64{"TH": 9}}}},
		{Body: &pb.Message_RecoverRequest{RecoverRequest: &pb.RecoverRequest{SinceUnixMs: 1, AfterOrderId: "ord_1", MaxCount: 200}}},
		{Body: &pb.Message_RecoverReply{RecoverReply: &pb.RecoverReply{More: true, Orders: []*pb.RecoveredOrder{{OrderId: "ord_1", Status: "shipped", StatusSeq: 2,
			Handoff: &pb.OrderHandoff{OrderId: "ord_1", BuyerCountry: "MY"}, Receipt: []byte("r")}}}}},
	} {
		b, err := seal.Seal(m)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		o := &Opener{now: time.Now, isMember: func(peer.ID) bool { return true },
			federation: func() string { return "imtgt-test" }, seen: newSeenSet()}
		msg, err := o.Open(data, me.id)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("rejection without a reason label: %v", err)
			}
			return
		}
		if len(msg.Id) != 16 {
			t.Fatalf("accepted a message with a %d-byte id", len(msg.Id))
		}
		// The same bytes a second time are a replay.
		if _, err := o.Open(data, me.id); !errors.Is(err, ErrReplay) {
			t.Fatalf("second delivery not refused as a replay: %v", err)
		}
	})
}

func FuzzOpenRecord(f *testing.F) {
	me := fuzzIdentity(f)
	rec := &pb.ListingRecord{Origin: "ID", Seq: 1, Op: pb.ListingRecord_OP_UPSERT, ListingId: "lst_1",
		Listing: &pb.Listing{Id: "lst_1", Seller: &pb.SellerProfile{Id: "sel_1"}, Title: "Kopi Gayo", HsCode: "090111",
			Price: &pb.Money{Minor: 100, Currency: "IDR"}, ShipFrom: "ID-AC"}}
	b, err := SealRecord(me.key, rec)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	del, _ := SealRecord(me.key, &pb.ListingRecord{Origin: "ID", Seq: 2, Op: pb.ListingRecord_OP_DELETE, ListingId: "lst_1"})
	f.Add(del)
	f.Add([]byte("not an envelope"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, signer, err := OpenRecord(data)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("rejection without a reason label: %v", err)
			}
			return
		}
		if signer == "" {
			t.Fatal("accepted a record without a signer")
		}
		// Content checks never panic, and refuse with a reason.
		if _, err := toRemote(r, data); err != nil && !errors.Is(err, ErrBadRecord) {
			t.Fatalf("content check error without ErrBadRecord: %v", err)
		}
	})
}

// FuzzRecordContent drives the content checks with arbitrary (validly
// signed, so past the signature) record payloads.
func FuzzRecordContent(f *testing.F) {
	seed, _ := proto.Marshal(&pb.ListingRecord{Origin: "ID", Seq: 1, Op: pb.ListingRecord_OP_UPSERT, ListingId: "lst_1",
		Listing: &pb.Listing{Id: "lst_1", Seller: &pb.SellerProfile{}, HsCode: "090111", Price: &pb.Money{Minor: 1, Currency: "IDR"}, ShipFrom: "ID-AC"}})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, payload []byte) {
		var rec pb.ListingRecord
		if proto.Unmarshal(payload, &rec) != nil {
			return
		}
		r, err := toRemote(&rec, payload)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("content check error without ErrBadRecord: %v", err)
			}
			return
		}
		if (r.Listing == nil) == (r.DeleteID == "") {
			t.Fatal("an accepted record must be exactly one of upsert or delete")
		}
	})
}

func FuzzParsePSK(f *testing.F) {
	good, _ := NewPSK()
	f.Add(good)
	f.Add([]byte("/key/swarm/psk/1.0.0/\n/base16/\nzz\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		psk, err := ParsePSK(data)
		if err == nil && len(psk) != 32 {
			t.Fatalf("accepted a %d-byte key", len(psk))
		}
	})
}

func FuzzOpenReceipt(f *testing.F) {
	me := fuzzIdentity(f)
	b, err := SealReceipt(me.key, &pb.Receipt{OrderId: "ord_1", Kind: "handoff", Seq: 1, PayloadHash: make([]byte, 32), Receiver: "TH", Result: "received", Status: "received"})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte("receipt"))
	f.Fuzz(func(t *testing.T, data []byte) {
		r, signer, err := OpenReceipt(data)
		if err != nil {
			if Reason(err) == "other" {
				t.Fatalf("refusal without a reason label: %v", err)
			}
			return
		}
		if r == nil || signer == "" {
			t.Fatal("accepted a receipt without content or signer")
		}
	})
}
