-- Most actions end `succeeded`, and an action the store runs at append is
-- written that way: the status index leaves them out, so such an append
-- writes no entry in it (docs/store.md, "Schema"). Queries on another
-- status repeat this condition so SQLite can use the index (rows.rs).
DROP INDEX actions_by_status;
CREATE INDEX actions_by_status ON actions (status, id) WHERE status <> 'succeeded';
