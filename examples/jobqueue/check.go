package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/txkit/txkit/examples/internal/report"
)

// check is one invariant and whether it held.
type check = report.Check

// verify checks the tables against each other and against what the
// workers saw committed.
func verify(ctx context.Context, pool *pgxpool.Pool, cfg config, res *results) ([]check, error) {
	var notDone, results, distinct, wrong int
	err := pool.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM jobqueue_jobs WHERE done_at IS NULL),
		(SELECT count(*) FROM jobqueue_results),
		(SELECT count(DISTINCT job_id) FROM jobqueue_results),
		(SELECT count(*) FROM jobqueue_results r JOIN jobqueue_jobs j ON j.id = r.job_id
		  WHERE r.result <> upper(j.payload) OR j.done_at IS NULL)`).Scan(&notDone, &results, &distinct, &wrong)
	if err != nil {
		return nil, err
	}
	seenOnce, seenTwice, sum := 0, 0, 0
	for _, n := range res.committed[1:] {
		switch {
		case n == 1:
			seenOnce++
		case n > 1:
			seenTwice++
		}
		sum += n
	}
	return []check{
		{Name: "every job done", OK: notDone == 0,
			Detail: fmt.Sprintf("%d of %d not done", notDone, cfg.Jobs)},
		{Name: "one result per job", OK: results == cfg.Jobs && distinct == cfg.Jobs,
			Detail: fmt.Sprintf("%d results for %d distinct jobs, %d jobs", results, distinct, cfg.Jobs)},
		{Name: "results match their jobs", OK: wrong == 0,
			Detail: fmt.Sprintf("%d wrong", wrong)},
		{Name: "workers committed each job once", OK: seenOnce == cfg.Jobs && seenTwice == 0,
			Detail: fmt.Sprintf("%d once, %d more than once, %d commits in all", seenOnce, seenTwice, sum)},
	}, nil
}
