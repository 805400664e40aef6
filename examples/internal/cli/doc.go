// Package cli is the main function the example programs share: parse the
// flags, run until done or interrupted, and exit with a status that says
// which went wrong.
package cli
