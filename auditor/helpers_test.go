package auditor_test

import (
	"bytes"

	"github.com/imtgt/imtgt-node/audit"
	"github.com/imtgt/imtgt-node/auditor"
	"github.com/imtgt/imtgt-node/federation"
)

// btVerifyOpts are the options the CLI passes.
var btVerifyOpts = auditor.VerifyOptions{OpenReceipt: federation.OpenReceipt}

// btVerify reads and verifies a bundle as `audit verify FILE` does.
func btVerify(data []byte, opt auditor.VerifyOptions) (*auditor.Summary, error) {
	b, err := audit.ReadBundle(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	return auditor.Verify(b, opt)
}
