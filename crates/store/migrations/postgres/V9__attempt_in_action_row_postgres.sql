-- An action the store runs at append has exactly one attempt, which started
-- and finished when the row was written: its summary is kept here instead of
-- in an attempts row, as on SQLite (docs/store.md, "Local actions run inside
-- the store"). NULL for every other action, whose attempts are rows of
-- `attempts`. Adding a nullable column without a default rewrites nothing.
ALTER TABLE actions ADD COLUMN summary TEXT;
