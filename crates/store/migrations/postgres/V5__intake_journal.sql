-- The intake journal is SQLite's alone: PostgreSQL commits each append
-- itself. The version is kept so both backends number their schema alike.
SELECT 1;
