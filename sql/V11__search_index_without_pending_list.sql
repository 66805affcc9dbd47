-- The search index without GIN's pending list ("fastupdate", on by default): each insert updates
-- the index itself. Measured on sends (BENCHMARKS.md, issue 14): about 7,900/s without against
-- 7,600/s with, and no insert ever waits for a full pending list to be merged, nor does a search
-- scan one.
ALTER INDEX messages_search_idx SET (fastupdate = off);
SELECT gin_clean_pending_list('messages_search_idx');
