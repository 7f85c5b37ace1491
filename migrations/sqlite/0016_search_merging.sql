-- FTS5 starts merging a level's segments once `automerge` of them exist (default 4). Every
-- batch the recorder commits adds a segment, so at 4 each indexed trace was rewritten once per
-- level of a 4-way tree, on the proxy's one writer thread (12 % of the gateway's CPU under
-- load). Merging 16 at a time halves the levels. `crisismerge` (default 16) is the count at
-- which FTS5 stops merging a little per write and merges a whole level at once, inside one
-- commit: left at 16 it fired at every level, and a commit took up to 325 ms instead of 31.
-- Measured on 150,000 trace-like documents committed 100 at a time: 27 % less CPU to index them
-- (61 instead of 83 us each), the slowest commit 26 ms instead of 31. Stored in the index.
INSERT INTO trace_fts(trace_fts, rank) VALUES('automerge', 16);
INSERT INTO trace_fts(trace_fts, rank) VALUES('crisismerge', 64);
