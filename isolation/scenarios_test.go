package isolation_test

import "github.com/txkit/txkit/isolation"

// scenarios holds the canonical demonstration of each phenomenon. T1 and T2
// begin together, before any step, so both see the data as the schema left
// it until the interleaving says otherwise.
var scenarios = map[isolation.Phenomenon]scenario{
	isolation.DirtyRead: {
		schema: `CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
			INSERT INTO items VALUES (1, 'committed')`,
		run: func(s *script, _ querier, t1, t2 *tx) bool {
			var seen string
			s.exec(t1, `UPDATE items SET v = 'uncommitted' WHERE id = 1`)
			s.read(t2, &seen, `SELECT v FROM items WHERE id = 1`)
			s.rollback(t1)
			s.commit(t2)
			return seen == "uncommitted"
		},
	},

	isolation.NonRepeatableRead: {
		schema: `CREATE TABLE items (id int PRIMARY KEY, v text NOT NULL);
			INSERT INTO items VALUES (1, 'before')`,
		run: func(s *script, _ querier, t1, t2 *tx) bool {
			var first, second string
			s.read(t2, &first, `SELECT v FROM items WHERE id = 1`)
			s.exec(t1, `UPDATE items SET v = 'after' WHERE id = 1`)
			s.commit(t1)
			s.read(t2, &second, `SELECT v FROM items WHERE id = 1`)
			s.commit(t2)
			return first != second
		},
	},

	isolation.PhantomRead: {
		schema: `CREATE TABLE orders (id int PRIMARY KEY, amount int NOT NULL);
			INSERT INTO orders VALUES (1, 5), (2, 20)`,
		run: func(s *script, _ querier, t1, t2 *tx) bool {
			const large = `SELECT count(*) FROM orders WHERE amount > 10`
			var before, after int
			s.read(t2, &before, large)
			s.exec(t1, `INSERT INTO orders VALUES (3, 30)`)
			s.commit(t1)
			s.read(t2, &after, large)
			s.commit(t2)
			return before != after
		},
	},

	isolation.LostUpdate: {
		schema: `CREATE TABLE counter (id int PRIMARY KEY, n int NOT NULL);
			INSERT INTO counter VALUES (1, 0)`,
		run: func(s *script, db querier, t1, t2 *tx) bool {
			// Read-modify-write in the application, not SET n = n + 1:
			// that form re-reads the row at READ COMMITTED and loses nothing.
			const get = `SELECT n FROM counter WHERE id = 1`
			const set = `UPDATE counter SET n = $1 WHERE id = 1`
			var n1, n2, final int
			s.read(t1, &n1, get)
			s.read(t2, &n2, get)
			s.exec(t1, set, n1+1)
			wait := s.execBlocked(t2, set, n2+1) // waits for T1's row lock
			s.commit(t1)
			wait()
			s.commit(t2)
			s.read(db, &final, get)
			return final != 2
		},
	},

	isolation.ReadSkew: {
		schema: `CREATE TABLE accounts (name text PRIMARY KEY, balance int NOT NULL);
			INSERT INTO accounts VALUES ('x', 50), ('y', 50)`,
		run: func(s *script, _ querier, t1, t2 *tx) bool {
			const balance = `SELECT balance FROM accounts WHERE name = $1`
			var x, y int
			s.read(t2, &x, balance, "x")
			s.exec(t1, `UPDATE accounts SET balance = balance - 10 WHERE name = 'x'`)
			s.exec(t1, `UPDATE accounts SET balance = balance + 10 WHERE name = 'y'`)
			s.commit(t1)
			s.read(t2, &y, balance, "y")
			s.commit(t2)
			return x+y != 100
		},
	},

	isolation.WriteSkew: {
		schema: `CREATE TABLE doctors (name text PRIMARY KEY, on_call bool NOT NULL);
			INSERT INTO doctors VALUES ('alice', true), ('bob', true)`,
		run: func(s *script, db querier, t1, t2 *tx) bool {
			const onCall = `SELECT count(*) FROM doctors WHERE on_call`
			const leave = `UPDATE doctors SET on_call = false WHERE name = $1`
			var seen1, seen2, left int
			s.read(t1, &seen1, onCall)
			s.read(t2, &seen2, onCall)
			// Each doctor goes off call only if someone else stays on.
			if seen1 >= 2 {
				s.exec(t1, leave, "alice")
			}
			if seen2 >= 2 {
				s.exec(t2, leave, "bob")
			}
			s.commit(t1)
			s.commit(t2)
			s.read(db, &left, onCall)
			return left == 0
		},
	},

	// The example from the PostgreSQL manual's section on SERIALIZABLE.
	isolation.SerializationAnomaly: {
		schema: `CREATE TABLE mytab (class int NOT NULL, value int NOT NULL);
			INSERT INTO mytab VALUES (1, 10), (1, 20), (2, 100), (2, 200)`,
		run: func(s *script, db querier, t1, t2 *tx) bool {
			const sum = `SELECT sum(value) FROM mytab WHERE class = $1`
			var sum1, sum2, both int
			s.read(t1, &sum1, sum, 1)
			s.read(t2, &sum2, sum, 2)
			s.exec(t1, `INSERT INTO mytab VALUES (2, $1)`, sum1)
			s.exec(t2, `INSERT INTO mytab VALUES (1, $1)`, sum2)
			s.commit(t1)
			s.commit(t2)
			// Run one after the other, the second would have counted the
			// first one's row in its sum; both rows as computed here means
			// each ran blind to the other.
			s.read(db, &both, `SELECT count(*) FROM mytab WHERE (class, value) IN ((2, $1), (1, $2))`, sum1, sum2)
			return both == 2
		},
	},
}
