package main

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5/pgxpool"
)

// The results table has no unique constraint on job_id on purpose: a job
// processed twice would show up as two rows, which the checks look for,
// rather than fail the second transaction.
var schema = []string{
	`DROP TABLE IF EXISTS jobqueue_results, jobqueue_jobs`,
	`CREATE TABLE jobqueue_jobs (
		id      bigint      PRIMARY KEY,
		payload text        NOT NULL,
		done_at timestamptz
	)`,
	// A partial index on the ready jobs keeps each claim from scanning
	// the jobs already done.
	`CREATE INDEX jobqueue_jobs_ready ON jobqueue_jobs (id) WHERE done_at IS NULL`,
	`CREATE TABLE jobqueue_results (
		job_id bigint NOT NULL REFERENCES jobqueue_jobs,
		worker int    NOT NULL,
		result text   NOT NULL
	)`,
}

// setup drops and recreates the tables and enqueues jobs 1..n.
func setup(ctx context.Context, pool *pgxpool.Pool, jobs int) error {
	for _, stmt := range schema {
		if _, err := pool.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("creating the tables: %w", err)
		}
	}
	_, err := pool.Exec(ctx, `INSERT INTO jobqueue_jobs (id, payload) SELECT g, 'job ' || g FROM generate_series(1, $1::int) g`, jobs)
	if err != nil {
		return fmt.Errorf("enqueueing: %w", err)
	}
	return nil
}
