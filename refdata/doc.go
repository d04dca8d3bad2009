// Package refdata holds the reference code lists every node needs, compiled
// into the binary so that validation works offline and is identical on every
// node of the federation:
//
//   - the Harmonized System 2022 nomenclature (chapters, headings and
//     subheadings) used to classify listings and to key trade rules by HS
//     prefix: see [HS], [ValidListingHS] and [HSPrefixExists];
//   - the ISO 3166-2 subdivisions of Thailand, Malaysia and Indonesia, with
//     the 32 IMT-GT growth-triangle members marked: see [Subdivision],
//     [ValidRegion] and [Subdivisions];
//   - the three member countries and their ISO 4217 currencies: see
//     [Country] and [Countries].
//
// The tables are parsed from embedded CSV files (data/, whose README gives
// their sources and licences) on first use and are read-only afterwards, so
// every lookup is a map access that is safe for concurrent use. A corrupt
// embedded file is a build defect, not a runtime condition, and panics on
// first use; the package's tests parse every file.
package refdata
