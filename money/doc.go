// Package money holds amounts of money as int64 minor units of an ISO 4217
// currency, and converts them to and from the decimal strings used on the
// wire ("1250.00"). There are no floats anywhere in this package: prices,
// duties and taxes are exact.
package money
