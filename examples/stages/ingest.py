#!/usr/bin/env python3
"""Generate a deterministic synthetic e-commerce event dataset.

The data is shaped like the Kaggle "eCommerce behavior data from multi category
store" 2019-Oct.csv: one row per event, in time order over October 2019.

Usage:
    ingest.py --out DIR [--events N] [--seed S] [--files K]

    --out DIR     output directory, created if missing. Defaults to the
                  RESPAWN_OUTPUT environment variable when --out is not given.
    --events N    total number of events (default 200000, about 18 MB;
                  5000000 gives about 450 MB).
    --seed S      integer seed of the random generator (default 42).
    --files K     number of CSV part files (default 4).

Writes DIR/part-00000.csv ... DIR/part-{K-1:05d}.csv, each with the header
    event_time,event_type,product_id,price,user_id,user_session
Events are split across files in contiguous time ranges, so the concatenation
of the parts (without their headers) depends only on N and S, not on K.

Same arguments give byte-identical output: all randomness comes from
random.Random(S) (random(), getrandbits(), randrange()), and only integer
arithmetic and basic IEEE float operations are used (no libm functions such
as exp/log/cos), so the output should not vary across platforms either.
Tested with CPython 3.11.

Shape of the data: about 88% view, 6% cart, 2% remove_from_cart, 3.5%
purchase; sessions have 2 or more events (about 6 on average) and about 1.5%
of sessions see a second user_id; each product has one fixed price; traffic
follows a daily cycle (UTC afternoon peak) and weekends are a bit busier.

Rows are streamed to disk; memory use is bounded by the product catalogue and
the set of open sessions (about 60 MB at most), not by N. Each part is
written to a hidden temporary file and renamed into place, so a killed run
never leaves a half-written part-*.csv behind.

Exit status: 0 on success, 1 if writing fails, 2 on bad arguments or an
unusable output path.
"""

import os
import random
import sys

import stagelib

PROG = "ingest.py"
HEADER = ["event_time", "event_type", "product_id", "price", "user_id", "user_session"]
DAYS = 31  # October 2019; 2019-10-01 was a Tuesday.
MINUTES = DAYS * 24 * 60
# Relative traffic per UTC hour (quiet at night, peak in the afternoon).
HOURLY_WEIGHT = [4, 3, 3, 4, 6, 8, 10, 12, 13, 14, 15, 16,
                 17, 18, 19, 20, 20, 19, 17, 15, 12, 9, 7, 5]
# Price bands in cents: (low, high, weight).
PRICE_BANDS = [(88, 1000, 10), (1000, 5000, 25), (5000, 15000, 25),
               (15000, 40000, 20), (40000, 100000, 12), (100000, 257407, 8)]


def parse_args(argv):
    p = stagelib.parser("Generate synthetic e-commerce events.")
    p.add_argument("--events", type=int, default=200_000, help="number of events")
    p.add_argument("--seed", type=int, default=42, help="random seed")
    p.add_argument("--files", type=int, default=4, help="number of part files")
    args = stagelib.parse_args(p, argv)
    if args.events < 0:
        p.error(f"--events must be >= 0, got {args.events}")
    if args.files < 1:
        p.error(f"--files must be >= 1, got {args.files}")
    return args


def build_time_warp():
    """Per-minute weights and their cumulative sums over the month (integers)."""
    weights = []
    cdf = [0]
    for m in range(MINUTES):
        day, minute_of_day = divmod(m, 24 * 60)
        w = HOURLY_WEIGHT[minute_of_day // 60] * 10
        if (day + 1) % 7 in (4, 5):  # Saturday, Sunday: a bit busier
            w += w // 10
        weights.append(w)
        cdf.append(cdf[-1] + w)
    return weights, cdf


def build_catalogue(rng, n_products):
    """Distinct product ids with a fixed price each (ids, prices as strings)."""
    seen = set()
    ids = []
    prices = []
    total_weight = sum(w for _, _, w in PRICE_BANDS)
    while len(ids) < n_products:
        pid = 1_000_000 + rng.randrange(99_000_000)
        if pid in seen:
            continue
        seen.add(pid)
        pick = rng.randrange(total_weight)
        for lo, hi, w in PRICE_BANDS:
            if pick < w:
                break
            pick -= w
        cents = lo + rng.randrange(hi - lo)
        ids.append(str(pid))
        prices.append(f"{cents // 100}.{cents % 100:02d}")
    return ids, prices


def session_id(rng):
    h = f"{rng.getrandbits(128):032x}"
    variant = "89ab"[int(h[16], 16) & 3]
    return f"{h[0:8]}-{h[8:12]}-4{h[13:16]}-{variant}{h[17:20]}-{h[20:32]}"


def generate(args):
    n = args.events
    rng = random.Random(args.seed)
    rnd = rng.random

    n_products = max(1000, min(200_000, n // 20))
    pids, prices = build_catalogue(rng, n_products)
    user_space = max(100, n // 20)  # about 3 sessions per user on average
    # Concurrently open sessions: keeps a typical session to minutes of wall time.
    n_slots = max(8, n // 30_000)

    def new_session():
        length = 2
        while rnd() < 0.8:  # 2 + geometric, mean about 6 events
            length += 1
        user = str(512_000_000 + rng.randrange(user_space))
        other = None
        if rnd() < 0.02:  # rarely, a second user shows up in the same session
            other = str(512_000_000 + rng.randrange(user_space))
            if other == user:
                other = None
        # [events left, user, second user, session id, last product index]
        return [length, user, other, session_id(rng), -1]

    slots = [new_session() for _ in range(n_slots)]

    weights, cdf = build_time_warp()
    # "2019-10-DD HH:MM:" for every minute of the month, "SS UTC" for every second.
    minute_prefix = [f"2019-10-{m // 1440 + 1:02d} {m // 60 % 24:02d}:{m % 60:02d}:"
                     for m in range(MINUTES)]
    second_suffix = [f"{s:02d} UTC" for s in range(60)]
    scale = cdf[-1] / n if n else 0.0
    m = 0                       # current minute; only moves forward
    m_start, m_next = cdf[0], cdf[1]
    m_inv = 60 / weights[0]
    last_s = -1
    ts = ""

    for part in range(args.files):
        lo = part * n // args.files
        hi = (part + 1) * n // args.files
        path = os.path.join(args.out, f"part-{part:05d}.csv")
        with stagelib.atomic_write(path, buffering=1 << 20) as fh:
            # Fields never contain commas, quotes or newlines, so plain joining
            # gives exactly what csv.writer would write, about 4x faster.
            write = fh.write
            write(",".join(HEADER) + "\n")
            for i in range(lo, hi):
                # Monotone map of event index to a second of the month that
                # follows the per-minute traffic weights.
                target = (i + rnd()) * scale
                if target >= m_next and m < MINUTES - 1:
                    while m < MINUTES - 1 and cdf[m + 1] <= target:
                        m += 1
                    m_start, m_next = cdf[m], cdf[m + 1]
                    m_inv = 60 / weights[m]
                    last_s = -1
                s = int((target - m_start) * m_inv)
                if s > 59:
                    s = 59
                if s != last_s:
                    last_s = s
                    ts = minute_prefix[m] + second_suffix[s]

                k = int(rnd() * n_slots)
                sess = slots[k]
                r = rnd()
                last = sess[4]
                if r < 0.885:
                    etype = "view"
                    if last >= 0 and rnd() < 0.3:
                        p = last
                    else:
                        p = int(n_products * rnd() * rnd())  # skewed popularity
                        sess[4] = p
                else:
                    if r < 0.945:
                        etype = "cart"
                    elif r < 0.965:
                        etype = "remove_from_cart"
                    else:
                        etype = "purchase"
                    if last >= 0:
                        p = last
                    else:
                        p = int(n_products * rnd() * rnd())
                        sess[4] = p
                user = sess[1]
                if sess[2] is not None and rnd() < 0.3:
                    user = sess[2]
                write(f"{ts},{etype},{pids[p]},{prices[p]},{user},{sess[3]}\n")
                sess[0] -= 1
                if sess[0] == 0:
                    slots[k] = new_session()


def main(argv=None):
    stagelib.start(PROG)
    args = parse_args(argv)
    stagelib.prepare_out_dir(args.out)
    try:
        generate(args)
    except OSError as e:
        stagelib.die(f"cannot write to {args.out}: {e.strerror}", code=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
