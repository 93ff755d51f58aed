package store

// SetHashLogNForTest makes HashPassword use N = 2^logN, so that tests stay
// fast; it must be called before any test runs (from TestMain).
func SetHashLogNForTest(logN int) { hashLogN = logN }
