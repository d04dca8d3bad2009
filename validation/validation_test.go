package validation_test

import (
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/imtgt/imtgt-node/validation"
)

func TestError(t *testing.T) {
	sentinel := errors.New("bad check digit")
	err := fmt.Errorf("register: %w", validation.Wrap("business_id", "invalid_business_id", sentinel))
	require.ErrorIs(t, err, validation.ErrInvalid)
	require.ErrorIs(t, err, sentinel)
	ve, ok := validation.As(err)
	require.True(t, ok)
	require.Equal(t, "business_id", ve.Field)
	require.Equal(t, "business_id: bad check digit", ve.Error())
	f := validation.Field("title", "required", "%s is required", "title")
	require.Equal(t, "title: title is required", f.Error())
	require.ErrorIs(t, f, validation.ErrInvalid)
	_, ok = validation.As(errors.New("other"))
	require.False(t, ok)
}
