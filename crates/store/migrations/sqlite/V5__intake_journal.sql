-- The last intake-journal record the database holds (docs/store.md, "The
-- intake journal"): appends are made durable in the journal first and
-- committed here later; reading the journal back re-applies what follows.
CREATE TABLE intake_journal (
    id INTEGER PRIMARY KEY CHECK (id = 1),
    applied_seq INTEGER NOT NULL
);
INSERT INTO intake_journal (id, applied_seq) VALUES (1, 0);
