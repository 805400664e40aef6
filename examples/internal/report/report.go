package report

import (
	"io"
	"text/tabwriter"
)

// Check is one invariant an example verifies at the end of a run.
type Check struct {
	Name   string
	OK     bool
	Detail string
}

// Failed reports whether any check failed.
func Failed(checks []Check) bool {
	for _, c := range checks {
		if !c.OK {
			return true
		}
	}
	return false
}

// Write prints rows as two aligned columns, a blank line, then each check
// as "ok" or "FAILED" with its name and detail.
func Write(out io.Writer, rows [][2]string, checks []Check) error {
	rows = append(rows, [2]string{"", ""})
	for _, c := range checks {
		verdict := "ok"
		if !c.OK {
			verdict = "FAILED"
		}
		rows = append(rows, [2]string{verdict, c.Name + ": " + c.Detail})
	}
	// A line without a tab ends a tabwriter column block: the figures and
	// the checks are aligned separately.
	w := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	for _, r := range rows {
		line := r[0] + "\t" + r[1] + "\n"
		if r[0] == "" {
			line = "\n"
		}
		if _, err := io.WriteString(w, line); err != nil {
			return err
		}
	}
	return w.Flush()
}
