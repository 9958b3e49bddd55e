-- SQLite has kept the attempt of an action run at append in the action's row
-- since version 7; this version gives PostgreSQL the same column. The
-- version is kept so both backends number their schema alike.
SELECT 1;
