#!/usr/bin/env python3
"""A CQRS read model fed by tallyd's change stream.

The write side stores orders as hashes, `HSET {orders}:<id> customer <name> amount <cents>`, and
removes them with `DEL {orders}:<id>`. This consumer keeps a read model the write side never
computes: the total amount per customer. It reads the change stream of the partition holding the
`{orders}` hash tag through a consumer group, so several copies share the work, a restarted copy
resumes where the group left off (its own unacknowledged changes first), and each change is applied
once per group. The model is saved to a JSON file before the changes that built it are acknowledged,
and applying a change twice gives the same model, so a crash between the two loses nothing.

    tallyd --change-stream yes &
    python3 examples/cqrs_read_model.py --model /tmp/model.json --until-idle 2
"""
import argparse
import json
import os
import sys

import redis
from redis.crc import key_slot

TAG = "{orders}"
GROUP = "read-model"


def change_stream_of(r, key):
    """The change stream key of the partition that holds `key` (TALLY CHANGES lists them)."""
    slot = key_slot(key.encode())
    for partition, stream, first, last in r.execute_command("TALLY", "CHANGES"):
        if first <= slot <= last:
            return stream
    raise RuntimeError("no partition holds slot %d" % slot)


class ReadModel:
    def __init__(self, path):
        self.path = path
        self.orders = {}  # order key -> {"customer": ..., "amount": ...}
        if os.path.exists(path):
            with open(path) as f:
                self.orders = json.load(f)["orders"]

    def apply(self, change):
        """One change entry (a dict of its fields). Idempotent: applying it again changes nothing."""
        key = change.get("key", "")
        op = change["op"]
        if op == "flushall" or op == "flushdb":
            self.orders.clear()
            return
        if not key.startswith(TAG + ":"):
            return
        if change.get("type") != "hash":  # deleted, expired, or no longer an order
            self.orders.pop(key, None)
            return
        if op in ("hset", "hmset"):
            order = self.orders.setdefault(key, {})
            args = [change["arg%d" % i] for i in range(2, int(change["argc"]) + 1)]
            for field, value in zip(args[0::2], args[1::2]):
                order[field] = value
        elif op == "hdel":
            order = self.orders.get(key, {})
            for i in range(2, int(change["argc"]) + 1):
                order.pop(change["arg%d" % i], None)

    def totals(self):
        out = {}
        for order in self.orders.values():
            if "customer" in order and "amount" in order:
                out[order["customer"]] = out.get(order["customer"], 0) + int(order["amount"])
        return out

    def save(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump({"orders": self.orders, "totals": self.totals()}, f, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=6379)
    ap.add_argument("--model", required=True, help="JSON file holding the read model")
    ap.add_argument("--consumer", default="c1")
    ap.add_argument("--until-idle", type=float, default=0, help="stop after this many idle seconds (0: run on)")
    ap.add_argument("--max-changes", type=int, default=0, help="stop after applying this many (0: no limit)")
    args = ap.parse_args()

    r = redis.Redis(host=args.host, port=args.port, decode_responses=True)
    stream = change_stream_of(r, TAG)
    try:
        r.xgroup_create(stream, GROUP, id="0", mkstream=True)
    except redis.ResponseError as e:
        if "BUSYGROUP" not in str(e):
            raise
    model = ReadModel(args.model)
    applied = 0
    # First what this consumer was handed before and never acknowledged, then new changes.
    next_id = "0"
    while True:
        count = 500 if not args.max_changes else min(500, args.max_changes - applied)
        block = None if next_id == "0" else int(args.until_idle * 1000) or 0
        res = r.xreadgroup(GROUP, args.consumer, {stream: next_id}, count=count, block=block)
        entries = res[0][1] if res else []
        if next_id == "0" and not entries:
            next_id = ">"
            continue
        if not entries:
            if args.until_idle:
                break
            continue
        for _, change in entries:
            if change is not None:  # None: the change was trimmed before it was acknowledged
                model.apply(change)
        model.save()
        r.xack(stream, GROUP, *[eid for eid, _ in entries])
        applied += len(entries)
        if args.max_changes and applied >= args.max_changes:
            break
    json.dump(model.totals(), sys.stdout, sort_keys=True)
    print()


if __name__ == "__main__":
    main()
