package node_test

import (
	"bytes"
	"context"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/catalog"
	"github.com/imtgt/imtgt-node/internal/testnet"
)

// BenchmarkSearchHTTP is a search as a marketplace makes it: GET
// /v1/catalog/search over loopback HTTP with a kept-alive connection,
// the whole body read, on a node of 20,000 listings. Its floors, measured
// in the same run: the same queries in-process (Catalog.Search), and a
// loopback request to /healthz (the transport, routing and a JSON reply
// with nothing to compute). What the API adds is the difference.
func BenchmarkSearchHTTP(b *testing.B) {
	fed := testnet.Federate(b, "TH")
	th := fed.Nodes["TH"]
	id, _ := th.ActiveSeller(testnet.THSeller("Surat Thani Rice & Coffee Co., Ltd.", 3))
	seller := catalog.SellerProfile{ID: id, LegalName: "Surat Thani Rice & Coffee Co., Ltd.", BusinessID: "0845560012346", Region: "TH-90"}
	ctx := context.Background()
	rng := rand.New(rand.NewPCG(2025, 12))
	for range 20 {
		rows, bad, err := catalog.ParseImport(bytes.NewReader(followerCSV(rng, 1000)), catalog.FormatCSV, "THB")
		require.NoError(b, err)
		_, err = th.Catalog.Import(ctx, seller, rows, bad)
		require.NoError(b, err)
	}
	mkt := marketplace(b, th, "Shopee-like TH")
	texts := []string{"หอมมะลิ", "ทุเรียน", "ผ้าไหม", "กาแฟ", "มะม่วงอบ", "น้ำพริก", "ชาไทย", "มัดหมี่"}
	client := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) time.Duration {
		req, err := http.NewRequest("GET", th.URL+path, nil)
		require.NoError(b, err)
		req.Header.Set("Authorization", "Bearer "+mkt)
		t0 := time.Now()
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %v %d", path, err, resp.StatusCode)
		}
		return time.Since(t0)
	}
	for _, q := range texts { // warm the connection and caches
		get("/v1/catalog/search?q=" + url.QueryEscape(q))
	}
	var viaHTTP, inProcess, health []time.Duration
	for i := 0; b.Loop(); i++ {
		q := texts[i%len(texts)]
		viaHTTP = append(viaHTTP, get("/v1/catalog/search?q="+url.QueryEscape(q)))
		t0 := time.Now()
		if _, err := th.Catalog.Search(catalog.Query{Text: q}); err != nil {
			b.Fatal(err)
		}
		inProcess = append(inProcess, time.Since(t0))
		health = append(health, get("/healthz"))
	}
	us := func(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }
	b.ReportMetric(us(pct(viaHTTP, 50)), "http-p50-µs")
	b.ReportMetric(us(pct(viaHTTP, 99)), "http-p99-µs")
	b.ReportMetric(us(pct(inProcess, 50)), "inprocess-p50-µs")
	b.ReportMetric(us(pct(health, 50)), "healthz-p50-µs")
	b.ReportMetric(us(pct(health, 50)+pct(inProcess, 50)), "floor-µs")
	b.ReportMetric(0, "ns/op")
}
