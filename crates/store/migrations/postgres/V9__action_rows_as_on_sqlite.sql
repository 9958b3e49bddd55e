-- PostgreSQL's action rows as SQLite's (docs/store.md, "Local actions run
-- inside the store").
--
-- An action the store runs at append has exactly one attempt, which started
-- and finished when the row was written: its summary is kept here instead of
-- in an attempts row. NULL for every other action, whose attempts are rows
-- of `attempts`. Adding a nullable column without a default rewrites nothing.
ALTER TABLE actions ADD COLUMN summary TEXT;

-- The status index leaves out `succeeded`, the status most actions end in,
-- so appending an action that succeeds at once writes no entry in it. The
-- queries by another status state the index's condition. The new index is
-- built before the old one is dropped: appends wait for the build (seconds
-- on millions of actions), reads only for the drop.
CREATE INDEX actions_by_status_open ON actions (status, id) WHERE status <> 'succeeded';
DROP INDEX actions_by_status;
ALTER INDEX actions_by_status_open RENAME TO actions_by_status;
