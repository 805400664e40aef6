package main

import (
	"context"
	"fmt"
	"os"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

const schema = `
DROP TABLE IF EXISTS leader_example_state, leader_example_ticks, leader_example_refused;
CREATE TABLE leader_example_state (id int PRIMARY KEY, term bigint NOT NULL, updated_at timestamptz);
INSERT INTO leader_example_state VALUES (1, 0, NULL);
CREATE TABLE leader_example_ticks (
	id bigserial PRIMARY KEY, term bigint NOT NULL, contender int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp());
CREATE TABLE leader_example_refused (term bigint NOT NULL, contender int NOT NULL)`

func createTables(ctx context.Context, pool *pgxpool.Pool) error {
	_, err := pool.Exec(ctx, schema)
	return err
}

func dropTables(pool *pgxpool.Pool) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, _ = pool.Exec(ctx, "DROP TABLE IF EXISTS leader_example_state, leader_example_ticks, leader_example_refused")
}

// term is what the database saw of one leadership.
type term struct {
	term        int64
	contender   int
	ticks       int
	first, last time.Time
	refused     int
}

type report struct {
	terms      []*term
	ticks      int
	refused    int
	violations []error
}

// check reads the ticks in the order their writes committed (each takes
// the state row's lock, so ids follow commit order) and checks mutual
// exclusion as the database saw it: terms never go back, and each term is
// written by one contender. Two leaders writing at once would interleave
// their terms.
func check(ctx context.Context, pool *pgxpool.Pool) (*report, error) {
	rows, err := pool.Query(ctx, "SELECT term, contender, at FROM leader_example_ticks ORDER BY id")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	r := &report{}
	var cur *term
	for rows.Next() {
		var t int64
		var c int
		var at time.Time
		if err := rows.Scan(&t, &c, &at); err != nil {
			return nil, err
		}
		r.ticks++
		switch {
		case cur != nil && t < cur.term:
			r.violations = append(r.violations, fmt.Errorf("tick %d: term %d wrote after term %d: two leaders at once", r.ticks, t, cur.term))
			continue
		case cur != nil && t == cur.term:
			if c != cur.contender {
				r.violations = append(r.violations, fmt.Errorf("term %d written by contenders %d and %d", t, cur.contender, c))
			}
			cur.ticks++
			cur.last = at
			continue
		}
		cur = &term{term: t, contender: c, ticks: 1, first: at, last: at}
		r.terms = append(r.terms, cur)
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if r.ticks == 0 {
		r.violations = append(r.violations, fmt.Errorf("no leader ever ran the job"))
	}
	refused, err := pool.Query(ctx, "SELECT term, count(*) FROM leader_example_refused GROUP BY term")
	if err != nil {
		return nil, err
	}
	defer refused.Close()
	for refused.Next() {
		var t int64
		var n int
		if err := refused.Scan(&t, &n); err != nil {
			return nil, err
		}
		r.refused += n
		for _, tt := range r.terms {
			if tt.term == t {
				tt.refused = n
			}
		}
	}
	return r, refused.Err()
}

func (r *report) print(kills []kill, g *group) {
	fmt.Println()
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	_, _ = fmt.Fprintln(w, "term\tcontender\tticks\tfrom\tto\tstale writes refused")
	for _, t := range r.terms {
		_, _ = fmt.Fprintf(w, "%d\t%d\t%d\t%s\t%s\t%d\n", t.term, t.contender, t.ticks,
			t.first.Format("15:04:05.000"), t.last.Format("15:04:05.000"), t.refused)
	}
	_ = w.Flush()
	fmt.Printf("\n%d ticks in %d terms; %d stale writes refused by the fence\n", r.ticks, len(r.terms), r.refused)
	for _, k := range kills {
		if k.next == 0 {
			fmt.Printf("killed backend %d: no new leader within %v\n", k.pid, takeoverBound)
			continue
		}
		fmt.Printf("killed backend %d: backend %d held the lock %v later\n", k.pid, k.next, k.takeover.Round(time.Millisecond))
	}
	if g.believers != nil {
		fmt.Printf("process view: at most %d contender(s) believed they led at once", g.believers.max.Load())
		if g.believers.max.Load() > 1 {
			fmt.Print(" (a killed leader had not yet seen its loss; the fence refuses what it writes then)")
		}
		fmt.Println()
	}
	fmt.Printf("database view: terms in commit order never overlap: %v\n", len(r.violations) == 0)
	for _, v := range r.violations {
		fmt.Println("VIOLATION:", v)
	}
}
