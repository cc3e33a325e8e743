// A module of its own, so `go ./...` in the repository does not walk into node_modules (npm
// packages may ship .go files). Nothing here is Go.
module ignore
