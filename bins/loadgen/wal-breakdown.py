#!/usr/bin/env python3
"""Where a SQLite store's WAL bytes go: reads the frame headers of the WAL's
current cycle (their page numbers, and which frames end a commit), maps each
page to its table or index with SQLite's `dbstat`, and prints frames per
B-tree and per commit, then the bytes per stored event in each B-tree.
Run it on a copy of a store taken while the server runs (the server
checkpoints and truncates the WAL when it stops):
    python3 bins/loadgen/wal-breakdown.py STORE_COPY_DIR
`bench-bytes.sh` makes the copy and runs this."""
import collections
import os
import shutil
import sqlite3
import struct
import sys
import tempfile


def frames_of(wal_path):
    data = open(wal_path, "rb").read()
    _magic, _version, page_size, _seq, salt1, salt2, _c1, _c2 = struct.unpack(">8I", data[:32])
    frames, offset = [], 32
    while offset + 24 + page_size <= len(data):
        page, db_size_after_commit, s1, s2 = struct.unpack(">4I", data[offset : offset + 16])
        if (s1, s2) != (salt1, salt2):
            break  # frames left over from an earlier cycle of the log
        frames.append((page, db_size_after_commit != 0))
        offset += 24 + page_size
    return page_size, frames


def main(directory):
    db = os.path.join(directory, "tributary.db")
    page_size, frames = frames_of(db + "-wal")
    # dbstat reads the WAL as well; on a scratch copy, since opening the
    # database may checkpoint it.
    with tempfile.TemporaryDirectory() as scratch:
        for suffix in ("", "-wal"):
            shutil.copy(db + suffix, os.path.join(scratch, "tributary.db" + suffix))
        conn = sqlite3.connect(os.path.join(scratch, "tributary.db"))
        owner = dict(conn.execute("SELECT pageno, name FROM dbstat"))
        # What each B-tree holds per stored event: its pages' bytes, and the
        # cell bytes (payload plus cell overhead) the rows themselves take.
        events = conn.execute("SELECT count(*) FROM events").fetchone()[0]
        sizes = conn.execute(
            "SELECT name, sum(pgsize), sum(pgsize - unused) FROM dbstat GROUP BY name "
            "ORDER BY sum(pgsize) DESC"
        ).fetchall()
        conn.close()
    per_tree = collections.Counter(owner.get(page, "free or other pages") for page, _ in frames)
    commits = sum(1 for _, ends in frames if ends)
    print(f"page size {page_size} bytes; {len(frames)} frames in the WAL's current cycle, "
          f"{commits} commits, {len(frames) / max(commits, 1):.1f} frames per commit")
    print(f"{'B-tree':32} {'frames':>7} {'share':>6} {'per commit':>10}")
    for name, count in per_tree.most_common():
        print(f"{name:32} {count:7d} {100 * count / len(frames):5.1f}% {count / max(commits, 1):10.2f}")
    print(f"\n{events} events stored; bytes per event in each B-tree (pages, and used within them)")
    print(f"{'B-tree':32} {'pages':>7} {'used':>7}")
    for name, pages, used in sizes:
        print(f"{name:32} {pages / max(events, 1):7.0f} {used / max(events, 1):7.0f}")


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    main(sys.argv[1])
