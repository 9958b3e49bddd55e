-- `running` is no longer stored: a claim writes only the outbox lease, and an
-- action reads as running while it is pending and leased (rows.rs).
UPDATE actions SET status = 'pending' WHERE status = 'running';
