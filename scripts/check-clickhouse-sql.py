#!/usr/bin/env python3
"""Runs the cloud service's ClickHouse SQL on a current engine (chdb, ClickHouse 26.x in-process).

The Rust tests run the same files on Debian's ClickHouse 18.16 server; together they show that
one schema and query set works on both. Here every migration applies, including those held back
on 18.16 (TTL), every query in cloud-api/queries/ runs with its example values, and a row
written twice collapses to one under FINAL, which the ingest's exactly-once design relies on.
"""
import pathlib
import sys
import tempfile

import chdb.session

ROOT = pathlib.Path(__file__).resolve().parent.parent / "cloud-api"


def statements(text):
    """Splits a file the way cloud-api's schema::statements does."""
    out, current = [], []
    for line in text.splitlines():
        if line.lstrip().startswith("--"):
            continue
        current.append(line)
        if line.rstrip().endswith(";"):
            s = "\n".join(current).strip().rstrip(";").strip()
            if s:
                out.append(s)
            current = []
    s = "\n".join(current).strip()
    if s:
        out.append(s)
    return out


def header(text, key):
    for line in text.splitlines():
        if line.startswith(f"-- {key}:"):
            return line.split(":", 1)[1].strip()
    return None


def with_examples(text):
    """The query with `?fields` and each `?` replaced by the file's example values."""
    (sql,) = statements(text)
    fields = header(text, "fields")
    if fields:
        sql = sql.replace("?fields", fields)
    example = header(text, "example")
    values = [v.strip() for v in example.split("|")] if example else []
    parts = sql.split("?")
    if len(parts) - 1 != len(values):
        raise SystemExit(f"{len(parts) - 1} placeholders but {len(values)} example values")
    return "".join(p + v for p, v in zip(parts, values + [""]))


def main():
    session = chdb.session.Session(tempfile.mkdtemp(prefix="chdb-"))
    q = session.query
    version = str(q("SELECT version()", "CSV")).strip().strip('"')
    q("CREATE DATABASE IF NOT EXISTS polyvision")
    q("USE polyvision")
    ran = 0
    q(with_examples((ROOT / "queries/migrations_table.sql").read_text()))
    for path in sorted((ROOT / "migrations").glob("*.sql")):
        for stmt in statements(path.read_text()):
            q(stmt)
            ran += 1
        print(f"migration {path.name}: applied")
    queries = sorted((ROOT / "queries").glob("*.sql"))
    for path in queries:
        q(with_examples(path.read_text()))
    print(f"{len(queries)} queries ran with their example values")

    engine = str(q("SELECT engine_full FROM system.tables WHERE database = 'polyvision' AND name = 'detections'", "TSV"))
    assert "TTL" in engine, f"no TTL on detections: {engine}"
    org = "0190a1b2-0000-7000-8000-00000000000a"
    match = "0190a1b2-0000-7000-8000-0000000000cc"
    row = f"('{org}', '{match}', now(), 10, 3, 1, 1234, -500, 200)"
    q(f"INSERT INTO detections VALUES {row}")
    q(f"INSERT INTO detections VALUES {row}")
    raw = int(str(q("SELECT count() FROM detections", "CSV")).strip())
    final = int(str(q("SELECT count() FROM detections FINAL", "CSV")).strip())
    assert (raw, final) == (2, 1), (raw, final)
    print(f"a row written twice: {raw} copies, {final} under FINAL")

    # A match summary sent twice: the newer one wins under FINAL; the export names each row's
    # player.
    for received, distance in [(1, 100.0), (2, 150.5)]:
        q(f"INSERT INTO player_summaries VALUES ('{org}', '{match}', 3, {received}, 1, 'team_a', [3, 17], 1500,"
          f" {distance}, 1, 2, 3, 4, 5, 9, 7.5, 1, 2, 3)")
    rows = str(q(with_examples((ROOT / "queries/player_summaries.sql").read_text()), "CSV")).strip().splitlines()
    assert len(rows) == 1 and ",150.5," in rows[0], rows
    print("a summary sent twice: the newer one only under FINAL")
    export = with_examples((ROOT / "queries/export.sql").read_text())
    csv = str(q(export, "CSVWithNames")).strip().splitlines()
    assert csv[0] == '"frame","time_s","track","player","class","x_m","y_m","confidence"', csv[0]
    assert csv[1].split(",")[:5] == ["10", "0.4", "3", "3", "1"], csv[1]
    print("export: every row with its player")
    print(f"ClickHouse {version} (chdb): {ran} migration statements and {len(queries)} queries ok")
    print("check-clickhouse-sql: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
