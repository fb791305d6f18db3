#!/usr/bin/env python3
"""Counts what the IOC stand-in received (mosquitto_sub -v output: "TOPIC PAYLOAD" per line).

--brief            one line: readings received, distinct seqs
--db OUTBOX.DB     the full check after the daemon stopped: every seq the outbox ever committed
                   (1 .. meta 'seq') was received by the IOC, is still in the outbox, or is
                   named by a gap event. Exit 1 if any is missing.
"""
import argparse
import json
import sqlite3
import sys


def read(path):
    seqs, readings, gaps = set(), 0, set()
    with open(path, encoding="utf-8", errors="replace") as f:
        for line in f:
            topic, _, payload = line.rstrip("\n").partition(" ")
            if "/data/" not in topic and "/event/" not in topic:
                continue
            try:
                batch = json.loads(payload)
            except ValueError:
                continue  # a line cut short while the consumer was still writing
            for r in batch.get("readings", []):
                seqs.add(r["seq"])
                readings += 1
                if r.get("point") == "gap":
                    for first, last in r["value"]["ranges"]:
                        gaps.update(range(first, last + 1))
    return seqs, readings, gaps


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("received")
    ap.add_argument("--brief", action="store_true")
    ap.add_argument("--db")
    a = ap.parse_args()
    seqs, readings, gaps = read(a.received)
    if a.brief or not a.db:
        print(f"{readings} readings ({len(seqs)} distinct seqs)")
        return 0
    db = sqlite3.connect(f"file:{a.db}?mode=ro", uri=True)
    # The highest seq ever given (schema 4 keeps it in meta, written by every commit that gives seqs).
    last = (db.execute("SELECT value FROM meta WHERE key='seq'").fetchone() or [0])[0]
    # A row holds n readings: seqs seq-n+1 .. seq.
    left = {s for last, n in db.execute("SELECT seq, n FROM records") for s in range(last - n + 1, last + 1)}
    missing = [s for s in range(1, last + 1) if s not in seqs and s not in left and s not in gaps]
    print(f"  the outbox committed seqs 1..{last}")
    print(f"  the IOC received {readings} readings: {len(seqs)} distinct seqs, {readings - len(seqs)} duplicates")
    print(f"  still in the outbox (not yet acknowledged at stop): {len(left)}; named in gap events: {len(gaps)}")
    if missing:
        print(f"  MISSING: {len(missing)} seqs, first {missing[:10]}")
        return 1
    print("  nothing missing: every committed reading reached the IOC or is still safely queued")
    return 0


if __name__ == "__main__":
    sys.exit(main())
