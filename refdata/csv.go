package refdata

import (
	"encoding/csv"
	"fmt"
	"slices"
	"strings"
)

// readCSV parses an embedded CSV file whose first row must be exactly
// header, and returns the data rows. A UTF-8 byte-order mark is stripped
// because spreadsheet tools add one when the files are regenerated, and it
// would otherwise end up glued to the first column's name.
func readCSV(data string, header []string) ([][]string, error) {
	r := csv.NewReader(strings.NewReader(strings.TrimPrefix(data, "\uFEFF")))
	r.FieldsPerRecord = len(header)
	rows, err := r.ReadAll()
	if err != nil {
		return nil, err
	}
	if len(rows) == 0 || !slices.Equal(rows[0], header) {
		return nil, fmt.Errorf("header is not %s", strings.Join(header, ","))
	}
	return rows[1:], nil
}
