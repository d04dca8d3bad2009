package refdata_test

import (
	"errors"
	"fmt"

	"github.com/imtgt/imtgt-node/refdata"
)

func ExampleValidListingHS() {
	for _, code := range []string{"854340", "9999", "85434"} {
		err := refdata.ValidListingHS(code)
		fmt.Println(code, err == nil, errors.Is(err, refdata.ErrUnknownHS), errors.Is(err, refdata.ErrMalformedHS))
	}
	// Output:
	// 854340 true false false
	// 9999 false true false
	// 85434 false false true
}

func ExampleValidRegion() {
	fmt.Println(refdata.ValidRegion("TH", "TH-90"))
	fmt.Println(refdata.ValidRegion("MY", "TH-90"))
	// Output:
	// <nil>
	// unknown region "TH-90": not a subdivision of MY
}
