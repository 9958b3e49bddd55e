-- SQLite keeps the one attempt of an action run at append in the action's
-- row; PostgreSQL runs no action at append. The version is kept so both
-- backends number their schema alike.
SELECT 1;
