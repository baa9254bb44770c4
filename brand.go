package tokenvault

// Brand is a card brand guessed from the issuer identification number (the
// leading digits). The guess is for display and routing hints only: issuer
// ranges overlap and change, and "" means no rule matched.
type Brand string

// Brands that brandOf recognizes.
const (
	BrandVisa       Brand = "visa"
	BrandMastercard Brand = "mastercard"
	BrandAmex       Brand = "amex"
	BrandDiscover   Brand = "discover"
	BrandDiners     Brand = "diners"
	BrandJCB        Brand = "jcb"
	BrandUnionPay   Brand = "unionpay"
	BrandMaestro    Brand = "maestro"
	BrandBancontact Brand = "bancontact"
	BrandBankcardAU Brand = "bankcard_au"
)

// brandRange maps the issuer prefixes from lo to hi to a brand. lo and hi
// have the same number of digits, so comparing them as strings compares
// them as numbers.
type brandRange struct {
	lo, hi string
	brand  Brand
}

// brandRanges lists the prefixes from the most specific (longest) to the
// least, so that the first match wins: Bancontact's 6703 before Maestro's 67,
// Australian Bankcard's 5610 before Maestro's 56.
var brandRanges = []brandRange{
	{"560221", "560225", BrandBankcardAU},
	{"2221", "2720", BrandMastercard},
	{"3528", "3589", BrandJCB},
	{"3095", "3095", BrandDiners},
	{"5610", "5610", BrandBankcardAU},
	{"6011", "6011", BrandDiscover},
	{"6703", "6703", BrandBancontact},
	{"300", "305", BrandDiners},
	{"644", "649", BrandDiscover},
	{"34", "34", BrandAmex},
	{"37", "37", BrandAmex},
	{"36", "36", BrandDiners},
	{"38", "39", BrandDiners},
	{"51", "55", BrandMastercard},
	{"50", "50", BrandMaestro},
	{"56", "58", BrandMaestro},
	{"62", "62", BrandUnionPay},
	{"63", "63", BrandMaestro},
	{"65", "65", BrandDiscover},
	{"67", "67", BrandMaestro},
	{"4", "4", BrandVisa},
}

// brandOf returns the brand of a card number given as ASCII digits.
func brandOf(digits string) Brand {
	for _, r := range brandRanges {
		if len(digits) < len(r.lo) {
			continue
		}
		prefix := digits[:len(r.lo)]
		if prefix >= r.lo && prefix <= r.hi {
			return r.brand
		}
	}
	return ""
}
