-- SQLite compares text as bytes (BINARY) unless told otherwise; this version
-- gives PostgreSQL's identifier columns the same order. The version is kept so
-- both backends number their schema alike.
SELECT 1;
