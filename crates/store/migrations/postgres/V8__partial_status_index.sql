-- SQLite's status index leaves out `succeeded` actions; PostgreSQL keeps
-- its full index for now (rebuilding it would block writes at upgrade).
-- The version is kept so both backends number their schema alike.
SELECT 1;
