package catalog

import (
	"bufio"
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/imtgt/imtgt-node/validation"
)

// MaxImportRows bounds one bulk import, so that one request is one bounded
// transaction.
const MaxImportRows = 50_000

// Import formats.
const (
	FormatCSV    = "csv"
	FormatNDJSON = "ndjson"
)

// ErrImportFile is wrapped by errors that make a whole import file unusable
// (bad header, unknown column, too many rows); row errors are reported per line.
var ErrImportFile = errors.New("unusable import file")

// Row is one parsed line of an import file.
type Row struct {
	Line  int
	Input Input
}

// RowError is a line of an import file that was not stored, and why.
type RowError struct {
	Line    int    `json:"line"`
	Field   string `json:"field,omitempty"`
	Code    string `json:"code"`
	Message string `json:"message"`
}

// csvColumns are the columns a CSV import may have; "attr:NAME" columns
// become attributes. title, hs_code, price, quantity and ship_from are required.
var csvColumns = map[string]bool{
	"title": true, "description": true, "hs_code": true, "price": true,
	"currency": true, "quantity": true, "ship_from": true, "images": true,
}

var csvRequired = []string{"title", "hs_code", "price", "quantity", "ship_from"}

// ParseImport reads a CSV or NDJSON import file. It returns the rows that
// parsed and the lines that did not; a file-level problem (unknown format,
// bad header, too many rows) is an error wrapping ErrImportFile.
// defaultCurrency fills a CSV row without a currency column.
func ParseImport(r io.Reader, format, defaultCurrency string) ([]Row, []RowError, error) {
	switch format {
	case FormatCSV:
		return parseCSV(r, defaultCurrency)
	case FormatNDJSON:
		return parseNDJSON(r)
	default:
		return nil, nil, fmt.Errorf("%w: format %q is not csv or ndjson", ErrImportFile, format)
	}
}

func parseCSV(r io.Reader, defaultCurrency string) ([]Row, []RowError, error) {
	cr := csv.NewReader(r)
	cr.ReuseRecord = false
	cr.FieldsPerRecord = 0 // every row must have as many fields as the header
	header, err := cr.Read()
	if err == io.EOF {
		return nil, nil, fmt.Errorf("%w: the file is empty; the first line must be a header such as %s", ErrImportFile, strings.Join(csvRequired, ","))
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: header: %w", ErrImportFile, err)
	}
	if len(header) > 0 {
		header[0] = strings.TrimPrefix(header[0], "\ufeff") // spreadsheets write a BOM
	}
	col := make(map[string]int, len(header))
	for i, h := range header {
		h = strings.TrimSpace(strings.ToLower(h))
		if !csvColumns[h] && !strings.HasPrefix(h, "attr:") {
			return nil, nil, fmt.Errorf("%w: line 1: unknown column %q (columns: title, description, hs_code, price, currency, quantity, ship_from, images, attr:NAME)", ErrImportFile, header[i])
		}
		if _, dup := col[h]; dup {
			return nil, nil, fmt.Errorf("%w: line 1: column %q appears twice", ErrImportFile, h)
		}
		col[h] = i
	}
	for _, req := range csvRequired {
		if _, ok := col[req]; !ok {
			return nil, nil, fmt.Errorf("%w: line 1: missing column %q", ErrImportFile, req)
		}
	}
	var rows []Row
	var bad []RowError
	for {
		rec, err := cr.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			var pe *csv.ParseError
			if errors.As(err, &pe) {
				if pe.Err == csv.ErrFieldCount {
					bad = append(bad, RowError{Line: pe.StartLine, Code: "field_count", Message: fmt.Sprintf("has %d fields; the header has %d", len(rec), len(header))})
					continue
				}
				// A broken quote leaves the reader unable to find the next
				// row reliably: stop, and say where.
				return nil, nil, fmt.Errorf("%w: line %d: %v", ErrImportFile, pe.Line, pe.Err)
			}
			return nil, nil, fmt.Errorf("%w: %w", ErrImportFile, err)
		}
		line, _ := cr.FieldPos(0) // only valid after a successful Read
		if len(rows)+len(bad) >= MaxImportRows {
			return nil, nil, fmt.Errorf("%w: more than %d rows; split the file", ErrImportFile, MaxImportRows)
		}
		get := func(name string) string {
			if i, ok := col[name]; ok {
				return strings.TrimSpace(rec[i])
			}
			return ""
		}
		in := Input{
			Title:       get("title"),
			Description: get("description"),
			HSCode:      get("hs_code"),
			ShipFrom:    get("ship_from"),
		}
		in.Price.Amount = get("price")
		in.Price.Currency = get("currency")
		if in.Price.Currency == "" {
			in.Price.Currency = defaultCurrency
		}
		if q := get("quantity"); q != "" {
			n, err := strconv.ParseInt(q, 10, 64)
			if err != nil {
				bad = append(bad, RowError{Line: line, Field: "quantity", Code: "invalid_number", Message: fmt.Sprintf("quantity %q is not a whole number", q)})
				continue
			}
			in.Quantity = n
		}
		if imgs := get("images"); imgs != "" {
			for _, img := range strings.Split(imgs, "|") {
				if img = strings.TrimSpace(img); img != "" {
					in.Images = append(in.Images, img)
				}
			}
		}
		for name, i := range col {
			if attr, ok := strings.CutPrefix(name, "attr:"); ok && strings.TrimSpace(rec[i]) != "" {
				if in.Attributes == nil {
					in.Attributes = make(map[string]string)
				}
				in.Attributes[attr] = strings.TrimSpace(rec[i])
			}
		}
		rows = append(rows, Row{Line: line, Input: in})
	}
	return rows, bad, nil
}

func parseNDJSON(r io.Reader) ([]Row, []RowError, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 1<<20)
	var rows []Row
	var bad []RowError
	line := 0
	for sc.Scan() {
		line++
		b := bytes.TrimSpace(sc.Bytes())
		if len(b) == 0 {
			continue
		}
		if len(rows)+len(bad) >= MaxImportRows {
			return nil, nil, fmt.Errorf("%w: more than %d rows; split the file", ErrImportFile, MaxImportRows)
		}
		var in Input
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&in); err != nil {
			bad = append(bad, RowError{Line: line, Code: "malformed_json", Message: err.Error()})
			continue
		}
		if dec.More() {
			bad = append(bad, RowError{Line: line, Code: "malformed_json", Message: "more than one JSON value on the line"})
			continue
		}
		// The decoder turned invalid UTF-8 and lone surrogates into U+FFFD;
		// the raw line says whether the seller sent them.
		if err := validation.JSONStrings(b); err != nil {
			ve, _ := validation.As(err)
			bad = append(bad, RowError{Line: line, Field: ve.Field, Code: ve.Code, Message: strings.Replace(ve.Error(), "of the body", "of the line", 1)})
			continue
		}
		rows = append(rows, Row{Line: line, Input: in})
	}
	if err := sc.Err(); err != nil {
		return nil, nil, fmt.Errorf("%w: line %d: %w", ErrImportFile, line+1, err)
	}
	return rows, bad, nil
}
