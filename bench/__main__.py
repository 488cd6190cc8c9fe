"""`python -m bench [all|rls|retrieval|chat|deployments|billing|compliance] [--quick] [--only PARTS]`.

`rls`: RLS overhead and the isolation traps. A full run takes about 20 minutes on 2 cores once the data
exists (building 1,000 tenants × 1,000 rows takes about a minute, once); `--quick` takes about 2.
`retrieval`: knowledge search latency over 100,000 chunks of one twin among 1,000 twins (building the
data takes about 12 minutes, once). `deployments`: deployment resolution, public page times and the
widget's size (about two minutes). `billing`: month-end statements for 1,000 talents × 10,000
transactions and the chat turn's quota lookup (building the data takes a few minutes, once).
`compliance`: events → signed evidence rows (ledger, HTTP API, outbox) and verifying a 1,000,000-record
export (building it takes a few minutes, once). `all` (the default, what `make bench` does) runs every suite.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType

from bench import (
    api_overhead,
    billing,
    chat,
    compliance,
    deployments,
    isolation_traps,
    retrieval,
    rls_overhead,
    rls_protocol,
)
from bench.datagen import Dataset, ensure_dataset
from bench.report import machine, tool_version
from bench.target import bench_target, pg_binary

PARTS = ("db", "protocol", "policy", "wrapper", "api", "traps")
COMPLIANCE_PARTS = ("ledger", "api", "outbox", "drain", "verify")


def _stop_on_term(signum: int, frame: FrameType | None) -> None:
    # SIGTERM unwinds like Ctrl-C, so every server and database this run started is stopped.
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "suite",
        nargs="?",
        default="all",
        choices=["all", "rls", "retrieval", "chat", "deployments", "billing", "compliance"],
        help="the benchmark suite",
    )
    parser.add_argument("--quick", action="store_true", help="short runs (one round, a few seconds each)")
    parser.add_argument(
        "--only",
        default=None,
        help=f"comma-separated parts: rls {PARTS}, billing {billing.PARTS}, compliance {COMPLIANCE_PARTS}",
    )
    parser.add_argument("--records", type=int, default=1_000_000, help="compliance: records in the export")
    parser.add_argument("--tenants", type=int, default=1000)
    parser.add_argument("--rows-per-tenant", type=int, default=1000)
    parser.add_argument("--seconds", type=int, help="duration of each pgbench / HTTP run")
    parser.add_argument("--rounds", type=int, help="alternating rounds per variant")
    parser.add_argument("--fans", default="8,50,200", help="chat: comma-separated concurrent fans")
    parser.add_argument(
        "--searches", default="text,vector,hybrid", help="retrieval: comma-separated of text, vector, hybrid"
    )
    args = parser.parse_args(argv)
    known = {"compliance": COMPLIANCE_PARTS, "billing": billing.PARTS}.get(args.suite, PARTS)
    parts = [p.strip() for p in (args.only or ",".join(known)).split(",") if p.strip()]
    unknown = set(parts) - set(known)
    if unknown:
        parser.error(f"unknown part(s): {', '.join(sorted(unknown))}")
    seconds = args.seconds or (3 if args.quick else 10)
    rounds = args.rounds or (1 if args.quick else 3)
    signal.signal(signal.SIGTERM, _stop_on_term)
    started = time.perf_counter()
    if args.suite in ("all", "rls"):
        run_rls(args, parts, seconds=seconds, rounds=rounds)
    if args.suite in ("all", "retrieval"):
        print("\n# Retrieval — full-text, vector and hybrid search through search()")
        print(machine())
        kinds = tuple(k.strip() for k in args.searches.split(",") if k.strip())
        print(retrieval.run(quick=args.quick, kinds=kinds))
    if args.suite in ("all", "chat"):
        print("\n# Chat turns — the platform over HTTP/SSE beside a bare FastAPI + asyncpg ceiling")
        print(machine())
        with chat.chat_target() as target:
            fans = tuple(int(n) for n in args.fans.split(",") if n.strip())
            print(
                chat.run_chat(
                    target, seconds=args.seconds or (4 if args.quick else 10), fans=fans, rounds=rounds
                )
            )
    if args.suite in ("all", "deployments"):
        print("\n# Deployments — resolution, public pages, widget size")
        print(machine())
        print(deployments.run(quick=args.quick))
    if args.suite in ("all", "billing"):
        print("\n# Billing — month-end statements and the chat turn's quota lookup")
        print(machine())
        print(billing.run(parts=parts if args.suite == "billing" else billing.PARTS))
    if args.suite in ("all", "compliance"):
        print("\n# Compliance evidence — events to signed, chained evidence; offline verification")
        print(machine())
        compliance_parts = parts if args.suite == "compliance" else list(COMPLIANCE_PARTS)
        print(compliance.run(quick=args.quick, parts=compliance_parts, records=args.records))
    print(f"\ndone in {time.perf_counter() - started:.0f} s")
    return 0


def run_rls(args: argparse.Namespace, parts: list[str], *, seconds: int, rounds: int) -> None:
    dataset = Dataset(args.tenants, args.rows_per_tenant)
    print(f"# RLS overhead — {dataset.tenants:,} tenants × {dataset.rows_per_tenant:,} celebrities")
    print(machine())
    print(tool_version(pg_binary("pgbench")))
    with bench_target() as target:
        print(f"database: {target.database} (owner {target.owner.username}, app role {target.app.username})")
        ensure_dataset(target, dataset)
        sections: list[str] = []
        if "db" in parts:
            for clients, what in (
                (1, "one client: each transaction's own time"),
                (8, "8 clients: 2 cores busy"),
            ):
                print(
                    f"\n## Inside the database: pgbench -c {clients} -T {seconds}, {rounds} round(s) ({what})"
                )
                plan = rls_overhead.PgbenchPlan(seconds=seconds, rounds=rounds, clients=clients)
                sections.append(
                    f"### Inside the database (pgbench, {what})\n\n"
                    + rls_overhead.run_pgbench(target, dataset, plan)
                )
                print(sections[-1])
        if "protocol" in parts:
            for clients in (1, 8):
                window = seconds * rounds
                print(f"\n## Inside the database, the platform's protocol: {clients} client(s), {window} s")
                sections.append(
                    f"### Inside the database (direct SQL, {clients} client(s), shapes interleaved)\n\n"
                    + rls_protocol.run_protocol(target, dataset, clients=clients, seconds=window)
                )
                print(sections[-1])
        if "policy" in parts:
            print("\n## What the policy costs: the by-id query in a PL/pgSQL loop, per role and policy")
            runs = 10_000 if args.quick else 40_000
            sections.append(
                "### The policy's own cost\n\n" + rls_overhead.run_policy(target, dataset, runs=runs)
            )
            print(sections[-1])
        if "wrapper" in parts:
            print(
                "\n## The transaction wrapper through SQLAlchemy (before/after folding set_config into BEGIN)"
            )
            transactions = 1500 if args.quick else 6000
            sections.append(
                "### Transaction wrapper\n\n"
                + rls_overhead.run_wrapper(target, dataset, transactions=transactions)
            )
            print(sections[-1])
        if "api" in parts:
            print(f"\n## End to end through the API: 8 in flight, {seconds} s per run, {rounds} round(s)")
            sections.append(
                "### End to end (uvicorn + httpx)\n\n"
                + api_overhead.run_api(target, dataset, seconds=seconds, rounds=rounds)
            )
            print(sections[-1])
        if "traps" in parts:
            print("\n## Known traps: EXPLAIN ANALYZE")
            sections.append(isolation_traps.run(target, dataset))
            print(sections[-1])


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("interrupted; servers and the embedded database were stopped", file=sys.stderr)
        sys.exit(130)
