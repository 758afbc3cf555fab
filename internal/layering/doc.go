// Package layering holds no code, only the test that keeps Sous's packages
// layered: every package of the module sits in one layer, imports only
// packages of lower layers, and the connectors under triggers/ and actions/
// import nothing of the engine but engine/connector and the helpers made for
// them. The layers are listed, with why each package sits where it does, in
// layering_test.go.
package layering
