// Package zapier holds the zapier.action trigger: a recipe Zapier starts
// through POST /api/v1/zapier/actions/{name} (a Zap's "Start recipe"
// action), with the input fields it declares. The runtime serves the
// endpoint (engine/zapier); this package describes the trigger and checks
// its options.
package zapier
