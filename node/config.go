package node

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/imtgt/imtgt-node/refdata"
)

// ErrConfig is wrapped by every configuration error.
var ErrConfig = errors.New("invalid configuration")

// Config is a node's config.yaml.
type Config struct {
	Node   NodeConfig   `yaml:"node"`
	HTTP   HTTPConfig   `yaml:"http"`
	P2P    P2PConfig    `yaml:"p2p"`
	Store  StoreConfig  `yaml:"store"`
	Log    LogConfig    `yaml:"log"`
	Orders OrdersConfig `yaml:"orders"`
}

// OrdersConfig tunes the order and after-sale machinery.
type OrdersConfig struct {
	// IssueSweep is how often the federation leader escalates after-sale
	// issues whose deadline passed (0: DefaultIssueSweep). A deadline is
	// hours or days, so a sweep a minute late is no one's loss.
	IssueSweep Duration `yaml:"issue_sweep"`
}

// DefaultIssueSweep is the issue sweep of a config that sets none.
const DefaultIssueSweep = time.Minute

// Bounds of orders.issue_sweep.
const (
	MinIssueSweep = time.Second
	MaxIssueSweep = time.Hour
)

// Sweep is the issue sweep interval to use.
func (c OrdersConfig) Sweep() time.Duration {
	if c.IssueSweep == 0 {
		return DefaultIssueSweep
	}
	return time.Duration(c.IssueSweep)
}

// Duration is a time.Duration written as Go writes one ("90s", "5m").
type Duration time.Duration

// UnmarshalYAML reads "1m30s"-style durations; a bare number is refused,
// since its unit would be a guess.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: a duration such as \"1m\" or \"30s\" is required", n.Line)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration such as \"1m\" or \"30s\"", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// String is the duration as Go writes it.
func (d Duration) String() string { return time.Duration(d).String() }

// StoreConfig says where the node's store is.
type StoreConfig struct {
	// URL names a PostgreSQL database (postgres://user@host:5432/db) shared
	// by the node's replicas; "" keeps the embedded bbolt file
	// DIR/data/node.db. It never holds a password: libpq's PGPASSWORD or
	// passfile supply it.
	URL string `yaml:"url"`
}

// NodeConfig names the node.
type NodeConfig struct {
	Name    string `yaml:"name"`
	Country string `yaml:"country"`
}

// HTTPConfig is the HTTP API listener.
type HTTPConfig struct {
	Addr           string `yaml:"addr"`
	MaxBodyBytes   int64  `yaml:"max_body_bytes"`
	MaxImportBytes int64  `yaml:"max_import_bytes"`
}

// P2PConfig is the federation listener (used from the federation issue on).
type P2PConfig struct {
	Addr string `yaml:"addr"`
	// Advertise lists the addresses of every replica of the node (each
	// replica listens on its own, the federation leader's is the one that
	// answers). "imtgt-node member" puts them in the member descriptor;
	// empty means Addr alone.
	Advertise []string `yaml:"advertise,omitempty"`
}

// Addrs are the node's p2p addresses for its member descriptor.
func (p P2PConfig) Addrs() []string {
	if len(p.Advertise) > 0 {
		return p.Advertise
	}
	return []string{p.Addr}
}

// LogConfig sets the log level and format.
type LogConfig struct {
	Level  string `yaml:"level"`  // debug, info, warn, error
	Format string `yaml:"format"` // text or json
}

// Defaults.
const (
	DefaultHTTPAddr = "127.0.0.1:8081"
	DefaultP2PAddr  = "/ip4/127.0.0.1/tcp/4001"
)

// DefaultConfig returns the configuration init writes for country.
func DefaultConfig(country string) Config {
	name := country + " national node"
	if c, ok := refdata.CountryByCode(country); ok {
		name = c.Name + " national node"
	}
	return Config{
		Node:   NodeConfig{Name: name, Country: country},
		HTTP:   HTTPConfig{Addr: DefaultHTTPAddr, MaxBodyBytes: 1 << 20, MaxImportBytes: 32 << 20},
		P2P:    P2PConfig{Addr: DefaultP2PAddr},
		Log:    LogConfig{Level: "info", Format: "text"},
		Orders: OrdersConfig{IssueSweep: Duration(DefaultIssueSweep)},
	}
}

// ParseConfig decodes and validates a config file. Unknown keys are errors
// (a misspelt key must not silently fall back to a default); errors name the
// file and line.
func ParseConfig(name string, data []byte) (Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return Config{}, fmt.Errorf("%w: %s: the file is empty", ErrConfig, name)
		}
		return Config{}, fmt.Errorf("%w: %s: %s", ErrConfig, name, strings.TrimPrefix(err.Error(), "yaml: "))
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Config{}, fmt.Errorf("%w: %s: more than one YAML document", ErrConfig, name)
	}
	if err := c.Validate(); err != nil {
		return Config{}, fmt.Errorf("%w: %s: %v", ErrConfig, name, err)
	}
	return c, nil
}

// LoadConfig reads and validates a config file.
func LoadConfig(path string) (Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Config{}, fmt.Errorf("read config: %w", err)
	}
	return ParseConfig(path, data)
}

// Validate checks every field and names the first bad one.
func (c *Config) Validate() error {
	if _, ok := refdata.CountryByCode(c.Node.Country); !ok {
		return fmt.Errorf("node.country %q is not a member country (one of %s)", c.Node.Country, countryCodes())
	}
	if strings.TrimSpace(c.Node.Name) == "" {
		return errors.New("node.name is required")
	}
	if _, port, err := net.SplitHostPort(c.HTTP.Addr); err != nil {
		return fmt.Errorf("http.addr %q is not host:port: %v", c.HTTP.Addr, err)
	} else if n, err := strconv.Atoi(port); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("http.addr %q: port must be 0-65535", c.HTTP.Addr)
	}
	if c.HTTP.MaxBodyBytes < 1024 || c.HTTP.MaxBodyBytes > 64<<20 {
		return fmt.Errorf("http.max_body_bytes %d must be between 1024 and %d", c.HTTP.MaxBodyBytes, 64<<20)
	}
	if c.HTTP.MaxImportBytes < 1024 || c.HTTP.MaxImportBytes > 1<<30 {
		return fmt.Errorf("http.max_import_bytes %d must be between 1024 and %d", c.HTTP.MaxImportBytes, 1<<30)
	}
	if err := validateP2PAddr(c.P2P.Addr); err != nil {
		return err
	}
	for _, a := range c.P2P.Advertise {
		if err := validateP2PAddr(a); err != nil {
			return fmt.Errorf("p2p.advertise: %w", err)
		}
	}
	if d := time.Duration(c.Orders.IssueSweep); d != 0 && (d < MinIssueSweep || d > MaxIssueSweep) {
		return fmt.Errorf("orders.issue_sweep %s must be between %s and %s (or absent: %s)", d, MinIssueSweep, MaxIssueSweep, DefaultIssueSweep)
	}
	if c.Store.URL != "" {
		if err := ValidateStoreURL(c.Store.URL); err != nil {
			return fmt.Errorf("store.url: %w", err)
		}
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(c.Log.Level)); err != nil {
		return fmt.Errorf("log.level %q must be debug, info, warn or error", c.Log.Level)
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		return fmt.Errorf("log.format %q must be text or json", c.Log.Format)
	}
	return nil
}

// validateP2PAddr checks the shape of a TCP multiaddr (/ip4|ip6|dns/HOST/tcp/PORT)
// without pulling in the multiaddr library before the federation needs it.
func validateP2PAddr(a string) error {
	parts := strings.Split(a, "/")
	if len(parts) != 5 || parts[0] != "" || parts[3] != "tcp" {
		return fmt.Errorf("p2p.addr %q must look like /ip4/127.0.0.1/tcp/4001", a)
	}
	switch parts[1] {
	case "ip4", "ip6":
		if net.ParseIP(parts[2]) == nil {
			return fmt.Errorf("p2p.addr %q: %q is not an IP address", a, parts[2])
		}
	case "dns", "dns4", "dns6":
		if parts[2] == "" {
			return fmt.Errorf("p2p.addr %q: empty host name", a)
		}
	default:
		return fmt.Errorf("p2p.addr %q must start with /ip4, /ip6 or /dns", a)
	}
	if n, err := strconv.Atoi(parts[4]); err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("p2p.addr %q: port must be 0-65535", a)
	}
	return nil
}

// ErrStorePassword refuses a store URL that carries a password: it would
// sit in config.yaml (and in process listings) in clear.
var ErrStorePassword = errors.New("the store URL holds a password: leave it out and give it through PGPASSWORD or a passfile (~/.pgpass, PGPASSFILE)")

// ValidateStoreURL checks a PostgreSQL store URL: postgres:// or
// postgresql://, a database name, and no password.
func ValidateStoreURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		// url.Error quotes the whole URL, password and all: keep only why.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		return fmt.Errorf("the store URL is not a URL: %v", err)
	}
	if u.Scheme != "postgres" && u.Scheme != "postgresql" {
		return fmt.Errorf("%q must start with postgres:// or postgresql://", redactURL(s))
	}
	if _, ok := u.User.Password(); ok || u.Query().Has("password") {
		return ErrStorePassword
	}
	if strings.Trim(u.Path, "/") == "" {
		return fmt.Errorf("%q names no database (postgres://user@host:5432/DBNAME)", s)
	}
	return nil
}

// redactURL hides a password in a URL that is about to be shown.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable URL)"
	}
	return u.Redacted()
}

func countryCodes() string {
	var cs []string
	for _, c := range refdata.Countries() {
		cs = append(cs, c.Code)
	}
	return strings.Join(cs, ", ")
}

// configTemplate is the commented config.yaml that init writes: an
// operator reads it before anything else, so every key says what it does.
var configTemplate = template.Must(template.New("config").Parse(`# imtgt-node configuration: {{.Node.Name}}
# Written by "imtgt-node init". Unknown keys are refused at start-up, so a
# misspelt key cannot silently fall back to a default.

node:
  # Shown to operators and peers.
  name: {{printf "%q" .Node.Name}}
  # ISO 3166-1 alpha-2 country this node serves (TH, MY or ID). It decides
  # the validation of sellers' identifiers, regions and the currency.
  # Changing it after sellers registered is not supported.
  country: {{.Node.Country}}

http:
  # Address of the HTTP API (host:port). Keep it on loopback or behind a
  # TLS-terminating proxy: tokens travel in the Authorization header.
  addr: {{printf "%q" .HTTP.Addr}}
  # Largest JSON request body, in bytes (413 above it).
  max_body_bytes: {{.HTTP.MaxBodyBytes}}
  # Largest bulk-import file (POST /v1/listings/import), in bytes.
  max_import_bytes: {{.HTTP.MaxImportBytes}}

p2p:
  # libp2p listen address for federation peers (a TCP multiaddr). Each
  # replica may override it: imtgt-node run --p2p-addr MULTIADDR.
  addr: {{printf "%q" .P2P.Addr}}
{{- if .P2P.Advertise}}
  # Every replica's address: the member descriptor lists them all, and
  # peers dial them in turn (only the federation leader answers).
  advertise:
{{- range .P2P.Advertise}}
    - {{printf "%q" .}}
{{- end}}
{{- end}}

store:
  # Empty: the embedded store file DIR/data/node.db. A PostgreSQL URL
  # (postgres://user@host:5432/db) lets several replicas of this node share
  # one database. Never put the password here: use PGPASSWORD or a passfile.
  url: {{printf "%q" .Store.URL}}

orders:
  # How often the node escalates after-sale issues whose deadline (the
  # buyer country's policy: consumer.respond_within_hours and
  # resolve_within_days) passed: 1s to 1h.
  issue_sweep: {{printf "%q" .Orders.Sweep.String}}

log:
  # debug, info, warn or error. Personal fields are never logged at any level.
  level: {{.Log.Level}}
  # text (for people) or json (for log shippers).
  format: {{.Log.Format}}
`))

// Render writes the commented YAML form of c.
func (c Config) Render() ([]byte, error) {
	var b bytes.Buffer
	if err := configTemplate.Execute(&b, c); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}
