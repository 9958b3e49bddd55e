-- This version gives PostgreSQL's action rows what SQLite's have had since
-- versions 7 and 8 (`actions.summary`, the partial status index). The
-- version is kept so both backends number their schema alike.
SELECT 1;
