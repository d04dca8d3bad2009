package node_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/node"
)

func TestRenderedConfigParses(t *testing.T) {
	for _, country := range []string{"TH", "MY", "ID"} {
		c := node.DefaultConfig(country)
		data, err := c.Render()
		require.NoError(t, err)
		got, err := node.ParseConfig("config.yaml", data)
		require.NoError(t, err)
		require.Equal(t, c, got)
		require.Contains(t, string(data), "# ", "the config is commented")
	}
}

func TestParseConfigErrors(t *testing.T) {
	good, err := node.DefaultConfig("TH").Render()
	require.NoError(t, err)
	tests := []struct {
		name, yaml, want string
	}{
		{"empty", "", "empty"},
		{"unknown key", string(good) + "\nextra: 1\n", "field extra not found"},
		{"misspelt nested key", strings.Replace(string(good), "  addr: \"127.0.0.1:8081\"", "  adr: \"127.0.0.1:8081\"", 1), "line"},
		{"bad country", strings.Replace(string(good), "country: TH", "country: SG", 1), `node.country "SG"`},
		{"lower-case country", strings.Replace(string(good), "country: TH", "country: th", 1), "node.country"},
		{"bad http addr", strings.Replace(string(good), `"127.0.0.1:8081"`, `"8081"`, 1), "http.addr"},
		{"bad port", strings.Replace(string(good), `"127.0.0.1:8081"`, `"127.0.0.1:99999"`, 1), "port"},
		{"bad p2p addr", strings.Replace(string(good), `/ip4/127.0.0.1/tcp/4001`, `127.0.0.1:4001`, 1), "p2p.addr"},
		{"bad log level", strings.Replace(string(good), "level: info", "level: loud", 1), "log.level"},
		{"bad log format", strings.Replace(string(good), "format: text", "format: xml", 1), "log.format"},
		{"tiny body limit", strings.Replace(string(good), "max_body_bytes: 1048576", "max_body_bytes: 10", 1), "http.max_body_bytes"},
		{"wrong type", strings.Replace(string(good), "max_body_bytes: 1048576", "max_body_bytes: lots", 1), "line"},
		{"issue sweep not a duration", strings.Replace(string(good), `issue_sweep: "1m0s"`, `issue_sweep: "often"`, 1), `"often" is not a duration`},
		{"issue sweep without a unit", strings.Replace(string(good), `issue_sweep: "1m0s"`, `issue_sweep: 60`, 1), `"60" is not a duration`},
		{"issue sweep too short", strings.Replace(string(good), `issue_sweep: "1m0s"`, `issue_sweep: "10ms"`, 1), "orders.issue_sweep 10ms"},
		{"issue sweep negative", strings.Replace(string(good), `issue_sweep: "1m0s"`, `issue_sweep: "-1m"`, 1), "orders.issue_sweep -1m0s"},
		{"issue sweep too long", strings.Replace(string(good), `issue_sweep: "1m0s"`, `issue_sweep: "48h"`, 1), "orders.issue_sweep 48h0m0s"},
		{"two documents", string(good) + "\n---\nnode: {}\n", "more than one"},
		{"not a mapping", "- a\n- b\n", "line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := node.ParseConfig("config.yaml", []byte(tt.yaml))
			require.ErrorIs(t, err, node.ErrConfig)
			require.ErrorContains(t, err, tt.want)
			require.ErrorContains(t, err, "config.yaml", "the error names the file")
		})
	}
}

// A config written before the orders section (no orders: key) still
// loads, with the default sweep; one that sets it gets it.
func TestIssueSweepConfig(t *testing.T) {
	good, err := node.DefaultConfig("TH").Render()
	require.NoError(t, err)
	require.Contains(t, string(good), `issue_sweep: "1m0s"`)
	for _, tt := range []struct {
		name, yaml string
		want       time.Duration
	}{
		{"default", string(good), time.Minute},
		{"set", strings.Replace(string(good), `issue_sweep: "1m0s"`, `issue_sweep: "15s"`, 1), 15 * time.Second},
		{"older config", withoutSection(string(good), "orders:", "log:"), time.Minute},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c, err := node.ParseConfig("config.yaml", []byte(tt.yaml))
			require.NoError(t, err)
			require.Equal(t, tt.want, c.Orders.Sweep())
		})
	}
}

// withoutSection cuts y from the line starting with from to the one
// starting with to.
func withoutSection(y, from, to string) string {
	return y[:strings.Index(y, "\n"+from)+1] + y[strings.Index(y, "\n"+to)+1:]
}

func FuzzParseConfig(f *testing.F) {
	good, _ := node.DefaultConfig("TH").Render()
	f.Add(string(good))
	f.Add("node: {country: MY, name: x}\n")
	f.Add("&a [*a]")
	f.Fuzz(func(t *testing.T, data string) {
		c, err := node.ParseConfig("fuzz.yaml", []byte(data))
		if err != nil {
			if !errors.Is(err, node.ErrConfig) {
				t.Fatalf("error does not wrap ErrConfig: %v", err)
			}
			return
		}
		// Whatever parses is valid.
		if err := c.Validate(); err != nil {
			t.Fatalf("parsed config fails validation: %v", err)
		}
	})
}

func TestStoreURLAndAdvertise(t *testing.T) {
	c := node.DefaultConfig("TH")
	c.Store.URL = "postgres://imtgt@db:5432/imtgt_th"
	c.P2P.Advertise = []string{"/ip4/10.0.0.1/tcp/4001", "/dns/th-b.example/tcp/4001"}
	data, err := c.Render()
	require.NoError(t, err)
	got, err := node.ParseConfig("config.yaml", data)
	require.NoError(t, err)
	require.Equal(t, c, got)
	require.Equal(t, c.P2P.Advertise, got.P2P.Addrs())
	require.Equal(t, []string{node.DefaultP2PAddr}, node.DefaultConfig("TH").P2P.Addrs())

	for _, tt := range []struct{ url, want string }{
		{"postgres://imtgt:secret@db:5432/imtgt_th", "PGPASSWORD"},
		{"postgres://imtgt@db:5432/imtgt_th?password=secret", "PGPASSWORD"},
		{"mysql://imtgt@db/imtgt_th", "postgres://"},
		{"postgres://imtgt@db:5432/", "names no database"},
		{"postgres://u:secret@db:5432/x y\x7f", "not a URL"},
	} {
		err := node.ValidateStoreURL(tt.url)
		require.ErrorContains(t, err, tt.want, tt.url)
		require.NotContains(t, err.Error(), "secret", "a password is never shown")
	}
	require.NoError(t, node.ValidateStoreURL("postgresql://imtgt@db:5432/imtgt_th?sslmode=verify-full"))
}

func TestInitRefusesPasswordInStoreURL(t *testing.T) {
	dir := t.TempDir() + "/th"
	_, err := node.Init(node.InitOptions{Dir: dir, Country: "TH", StoreURL: "postgres://imtgt:secret@db/imtgt_th"})
	require.ErrorIs(t, err, node.ErrConfig)
	require.ErrorIs(t, err, node.ErrStorePassword)
}

func TestInitSeveralP2PAddrs(t *testing.T) {
	dir := t.TempDir() + "/th"
	addrs := []string{"/ip4/127.0.0.1/tcp/4101", "/ip4/127.0.0.1/tcp/4102"}
	res, err := node.Init(node.InitOptions{Dir: dir, Country: "TH", P2PAddrs: addrs})
	require.NoError(t, err)
	require.Equal(t, addrs[0], res.Config.P2P.Addr)
	m, err := node.MemberDescriptor(dir)
	require.NoError(t, err)
	require.Equal(t, addrs, m.Addrs, "the member descriptor lists every replica's address")
}
