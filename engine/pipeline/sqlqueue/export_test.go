package sqlqueue

// ClaimQuery is claimQuery, for the plan test.
var ClaimQuery = claimQuery
