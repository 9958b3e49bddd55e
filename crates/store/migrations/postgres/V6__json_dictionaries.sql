-- Compression dictionaries are SQLite's alone: PostgreSQL stores its JSON
-- as it is. The version is kept so both backends number their schema alike.
SELECT 1;
