package federation

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/imtgt/imtgt-node/federation/pb"
)

// ProtoOrders carries order handoffs, status changes and after-sale issue
// changes; the reply is a signed receipt.
const ProtoOrders = protocol.ID("/imtgt/orders/1.0.0")

// ReceiptDomain is the signing domain of receipts.
const ReceiptDomain = "imtgt-receipt"

var receiptCodec = []byte("/imtgt/receipt/1")

// OrderHandler is the order service as the federation calls it.
type OrderHandler interface {
	HandleHandoff(ctx context.Context, from string, h *pb.OrderHandoff) ([]byte, error)
	HandleStatus(ctx context.Context, from string, st *pb.OrderStatus) ([]byte, error)
	// HandleIssue takes one change of an after-sale issue of an order.
	HandleIssue(ctx context.Context, from string, m *pb.IssueMessage) ([]byte, error)
	// HandleHandoffs handles a batch of handoffs as one group: one
	// receipt or error per handoff, in order.
	HandleHandoffs(ctx context.Context, from string, hs []*pb.OrderHandoff) ([][]byte, []error)
}

// MaxBatch is the most handoffs one order_batch message may carry.
const MaxBatch = 64

// SealReceipt signs a receipt with the node key.
func SealReceipt(key crypto.PrivKey, r *pb.Receipt) ([]byte, error) {
	return sealProto(key, ReceiptDomain, receiptCodec, r)
}

// OpenReceipt verifies a receipt envelope and returns it with its signer.
func OpenReceipt(data []byte) (*pb.Receipt, peer.ID, error) {
	r := &pb.Receipt{}
	signer, err := openProto(data, ReceiptDomain, receiptCodec, r)
	if err != nil {
		return nil, "", err
	}
	return r, signer, nil
}

// SignReceipt signs a receipt with this node's key.
func (s *Service) SignReceipt(r *pb.Receipt) ([]byte, error) { return SealReceipt(s.cfg.Key, r) }

// memberPeer returns the peer ID of country's node in the manifest.
func (s *Service) memberPeer(country string) (peer.ID, error) {
	st, err := s.current()
	if err != nil {
		return "", err
	}
	id, ok := st.byCountry[country]
	if !ok {
		return "", fmt.Errorf("%s is not a member of the federation", country)
	}
	return id, nil
}

// OpenReceipt verifies a receipt signed by country's node.
func (s *Service) OpenReceipt(data []byte, country string) (*pb.Receipt, error) {
	want, err := s.memberPeer(country)
	if err != nil {
		return nil, err
	}
	r, signer, err := OpenReceipt(data)
	if err != nil {
		return nil, err
	}
	if signer != want {
		s.metrics.rejected.WithLabelValues(ErrBadSignature.Error()).Inc()
		return nil, fmt.Errorf("%w: receipt signed by %s, not by %s's node", ErrBadSignature, signer, country)
	}
	return r, nil
}

// DeliverOrder sends an order message to country's node and returns its
// receipt envelope (unverified: see OpenReceipt).
func (s *Service) DeliverOrder(ctx context.Context, country string, msg *pb.Message) ([]byte, error) {
	if s.Host() == nil {
		return nil, ErrNoManifest
	}
	p, err := s.memberPeer(country)
	if err != nil {
		return nil, err
	}
	reply, err := s.request(ctx, p, ProtoOrders, msg, false)
	if err != nil {
		return nil, err
	}
	if len(reply.GetReceipt()) == 0 {
		return nil, fmt.Errorf("%w: expected a receipt", ErrMalformed)
	}
	return reply.GetReceipt(), nil
}

// DeliverOrders sends a batch of handoffs to country's node in one
// message and returns, per handoff, its receipt envelope (unverified: see
// OpenReceipt) or the reason the receiver refused it.
func (s *Service) DeliverOrders(ctx context.Context, country string, hs []*pb.OrderHandoff) ([][]byte, []error, error) {
	if s.Host() == nil {
		return nil, nil, ErrNoManifest
	}
	if len(hs) == 0 || len(hs) > MaxBatch {
		return nil, nil, fmt.Errorf("a batch holds 1 to %d handoffs, not %d", MaxBatch, len(hs))
	}
	p, err := s.memberPeer(country)
	if err != nil {
		return nil, nil, err
	}
	reply, err := s.request(ctx, p, ProtoOrders, &pb.Message{Body: &pb.Message_OrderBatch{OrderBatch: &pb.OrderBatch{Handoffs: hs}}}, false)
	if err != nil {
		return nil, nil, err
	}
	results := reply.GetReceiptBatch().GetResults()
	if len(results) != len(hs) {
		return nil, nil, fmt.Errorf("%w: %d results for %d handoffs", ErrMalformed, len(results), len(hs))
	}
	receipts, errs := make([][]byte, len(hs)), make([]error, len(hs))
	for i, r := range results {
		switch {
		case r.Error != "":
			errs[i] = fmt.Errorf("peer refused: %s", r.Error)
		case len(r.Receipt) == 0:
			errs[i] = fmt.Errorf("%w: expected a receipt", ErrMalformed)
		default:
			receipts[i] = r.Receipt
		}
	}
	return receipts, errs, nil
}

// countryOf returns the manifest country of a member peer.
func (s *Service) countryOf(p peer.ID) (string, error) {
	st, err := s.current()
	if err != nil {
		return "", err
	}
	m, ok := st.byPeer[p]
	if !ok {
		return "", ErrUnknownPeer
	}
	return m.Country, nil
}

func (s *Service) serveOrders(ctx context.Context, from peer.ID, msg *pb.Message) (*pb.Message, error) {
	h := s.cfg.Orders
	if h == nil || h() == nil {
		return nil, errors.New("this node takes no orders yet")
	}
	country, err := s.countryOf(from)
	if err != nil {
		return nil, err
	}
	var receipt []byte
	switch b := msg.Body.(type) {
	case *pb.Message_OrderHandoff:
		receipt, err = h().HandleHandoff(ctx, country, b.OrderHandoff)
	case *pb.Message_OrderStatus:
		receipt, err = h().HandleStatus(ctx, country, b.OrderStatus)
	case *pb.Message_IssueMessage:
		receipt, err = h().HandleIssue(ctx, country, b.IssueMessage)
	case *pb.Message_OrderBatch:
		hs := b.OrderBatch.GetHandoffs()
		if len(hs) == 0 || len(hs) > MaxBatch {
			return nil, fmt.Errorf("%w: a batch holds 1 to %d handoffs, not %d", ErrMalformed, MaxBatch, len(hs))
		}
		receipts, errs := h().HandleHandoffs(ctx, country, hs)
		out := &pb.ReceiptBatch{Results: make([]*pb.BatchResult, len(hs))}
		for i := range hs {
			out.Results[i] = &pb.BatchResult{Receipt: receipts[i]}
			if errs[i] != nil {
				out.Results[i] = &pb.BatchResult{Error: errs[i].Error()}
			}
		}
		return &pb.Message{Body: &pb.Message_ReceiptBatch{ReceiptBatch: out}}, nil
	default:
		return nil, fmt.Errorf("%w: expected order_handoff, order_status, order_batch or issue_message", ErrMalformed)
	}
	if err != nil {
		return nil, err
	}
	return &pb.Message{Body: &pb.Message_Receipt{Receipt: receipt}}, nil
}
