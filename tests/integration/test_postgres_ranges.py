"""A plain read of one PostgreSQL table split into block ranges (``executors/sql/postgres_ranges.py``) on a real
server: the same rows in the same order as one reader, one snapshot while other sessions commit, the timeout still
cancels every reader, and statements that are not plain reads stay on one connection.

The split starts at ``MIN_BLOCKS_PER_READER`` blocks per reader (32 MB); the tables here are a few MB, so the tests
lower that threshold to 16 blocks (128 kB) in this process, where the task runs. The image's test keeps the
threshold: its table is stored sparsely (``fillfactor``) to span the blocks of two readers with few rows."""

import datetime
import random
import threading

import psycopg2
import pyarrow.parquet as pq
import pytest
from flytekit import Secret
from flytekitplugins.prebuilt.emulator import Emulator
from flytekitplugins.prebuilt.executors.sql import postgres_ranges
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

PASSWORD = Secret(group="warehouse", key="password")
ACCOUNTS, BALANCE = 20_000, 100


@pytest.fixture
def small_ranges(monkeypatch, postgres):
    monkeypatch.setattr(postgres_ranges, "MIN_BLOCKS_PER_READER", 16)
    monkeypatch.setenv("_FSEC_WAREHOUSE_PASSWORD", postgres.password)
    return postgres


@pytest.fixture
def accounts(small_ranges):
    """``accounts``: ids 1..ACCOUNTS with BALANCE each; a padding column so that rows fill a few hundred blocks."""
    small_ranges.execute(
        "drop table if exists accounts; create table accounts (id int primary key, balance int, pad text);"
        f"insert into accounts select g, {BALANCE}, repeat('x', 100) from generate_series(1, {ACCOUNTS}) g;"
        "analyze accounts"
    )
    return small_ranges


def read(pg, query: str, connections: int, **task):
    config = SQLConfig(url=pg.url_without_password, password_secret=PASSWORD, read_connections=connections)
    result = SQLTask(f"read_{connections}", query, config, **task)()
    return pq.read_table(result.literal.uri)


def split_into(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "block ranges, one snapshot" in r.getMessage()]


@pytest.mark.postgres
def test_the_split_read_gives_the_single_reads_rows_in_its_order(accounts, caplog):
    caplog.set_level("INFO", logger="flytekit")
    single = read(accounts, "select * from accounts", 1)
    assert not split_into(caplog)
    split = read(accounts, "select * from accounts", 4)
    assert split_into(caplog) == ["sql: reading accounts in 4 block ranges, one snapshot"]
    assert split.num_rows == ACCOUNTS and split.equals(single)
    where = "select id, balance as b from accounts a where a.id % 3 = 0 and pad like 'x%'"
    assert read(accounts, where, 3).equals(read(accounts, where, 1))
    assert split_into(caplog)[1:] == ["sql: reading accounts in 3 block ranges, one snapshot"]  # a scan anyway


@pytest.mark.postgres
def test_the_split_read_sees_one_snapshot_while_others_commit(accounts, caplog):
    """A writer moves balance between random accounts (a row's new version lands in another block, so in another
    range) and inserts accounts, committing all the time. Readers with snapshots of their own would see a moved
    row twice or not at all; in one snapshot, the total is BALANCE per initial account, ids are unique, and the
    inserted ones are a prefix of the insertions, committed in order."""
    caplog.set_level("INFO", logger="flytekit")
    stop, moves = threading.Event(), [0]

    def write():
        rng = random.Random(7)
        with psycopg2.connect(accounts.url) as connection, connection.cursor() as cursor:
            next_id = ACCOUNTS + 1
            while not stop.is_set():
                a, b = rng.sample(range(1, ACCOUNTS + 1), 2)
                cursor.execute("update accounts set balance = balance - 1 where id = %s", (a,))
                cursor.execute("update accounts set balance = balance + 1 where id = %s", (b,))
                cursor.execute("insert into accounts values (%s, 0, repeat('y', 100))", (next_id,))
                connection.commit()
                next_id += 1
                moves[0] += 1

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        while moves[0] < 50:  # the writer is busy before the read starts
            threading.Event().wait(0.01)
        tables = [read(accounts, "select id, balance from accounts", 4) for _ in range(3)]
    finally:
        stop.set()
        writer.join()
    assert len(split_into(caplog)) == 3 and moves[0] > 100
    for table in tables:
        ids = table["id"].to_pylist()
        assert len(set(ids)) == len(ids), "a row seen twice"
        assert sum(table["balance"].to_pylist()) == ACCOUNTS * BALANCE, "a moved balance seen twice or never"
        assert sorted(ids) == list(range(1, len(ids) + 1)) and len(ids) > ACCOUNTS, "inserts not a committed prefix"
    final = read(accounts, "select * from accounts", 4)  # and at rest, exactly one reader's rows, in its order
    assert final.equals(read(accounts, "select * from accounts", 1))


@pytest.mark.postgres
@pytest.mark.parametrize(
    "query",
    [
        "select * from accounts order by id desc",
        "select * from accounts limit 5000",
        "select count(*) as n from accounts",
        "select distinct balance from accounts",
        "select * from accounts where id <= 10",  # the primary key's index answers it
        "select a.id from accounts a join accounts b on a.id = b.id",
    ],
)
def test_statements_that_are_not_plain_reads_stay_on_one_connection(accounts, caplog, query):
    caplog.set_level("INFO", logger="flytekit")
    assert read(accounts, query, 4).equals(read(accounts, query, 1))
    assert not split_into(caplog)


@pytest.mark.postgres
def test_the_tasks_timeout_cancels_every_range_reader(small_ranges, caplog):
    """Each reader sleeps per row: the deadline cancels all of them, and the task fails as USER:Timeout."""
    from flytekitplugins.prebuilt.kit import UserError

    caplog.set_level("INFO", logger="flytekit")
    small_ranges.execute(
        "drop table if exists slow; create table slow (id int, pad text);"
        "insert into slow select g, repeat('x', 100) from generate_series(1, 20000) g; analyze slow"
    )
    with pytest.raises(Exception) as failure:
        read(
            small_ranges,
            "select id from slow where pg_sleep(0.01) is not null",
            2,
            timeout=datetime.timedelta(seconds=2),
        )
    assert isinstance(failure.value.value, UserError) and failure.value.error_code == "USER:Timeout"
    assert split_into(caplog) == ["sql: reading slow in 2 block ranges, one snapshot"]
    with psycopg2.connect(small_ranges.url) as connection, connection.cursor() as cursor:
        for _ in range(50):  # the server ends a cancelled statement at its next check: none is left running
            cursor.execute(
                "select count(*) from pg_stat_activity where state = 'active' and pid <> pg_backend_pid() "
                "and query like '%%pg_sleep(0.01)%%'"
            )
            if cursor.fetchone()[0] == 0:
                break
            threading.Event().wait(0.1)
        assert cursor.fetchone() is None and _ < 49


@pytest.mark.postgres
def test_a_server_that_refuses_more_connections_is_read_on_one(accounts, caplog, monkeypatch):
    """A role limited to one connection: the other readers cannot connect, and the task reads on its own."""
    caplog.set_level("INFO", logger="flytekit")
    accounts.execute(
        "drop role if exists one_conn; create role one_conn login password 'one-pw' connection limit 1;"
        "grant select on accounts to one_conn"
    )
    monkeypatch.setenv("_FSEC_LIMITED_PASSWORD", "one-pw")
    url = f"postgresql://one_conn@127.0.0.1:{accounts.port}/postgres"
    config = SQLConfig(url=url, password_secret=Secret(group="limited", key="password"), read_connections=4)
    table = pq.read_table(SQLTask("limited", "select * from accounts", config)().literal.uri)
    assert table.equals(read(accounts, "select * from accounts", 1))
    assert not split_into(caplog)
    assert any("a range reader could not start (OperationalError)" in r.getMessage() for r in caplog.records)


@pytest.mark.docker
@pytest.mark.postgres
def test_the_image_reads_a_large_table_in_ranges_as_one_reader_would(postgres, sql_image, tmp_path, monkeypatch):
    """Through pyflyte-execute in the image, at the executor's own threshold: two readers (the split needs at least
    two of MIN_BLOCKS_PER_READER blocks), the rows and order of one connection read in process."""
    monkeypatch.setenv("_FSEC_WAREHOUSE_PASSWORD", postgres.password)
    postgres.execute(
        "drop table if exists sparse; create table sparse (id int, name text) with (fillfactor = 10);"
        "insert into sparse select g, 'row ' || g from generate_series(1, 250000) g; analyze sparse"
    )
    task = SQLTask(
        "sparse",
        "select * from sparse",
        SQLConfig(url=postgres.url_without_password, password_secret=PASSWORD, read_connections=2),
    )
    secrets = {("warehouse", "password"): postgres.password}
    emulator = Emulator(str(tmp_path), secrets=secrets, env={"FLYTE_SDK_LOGGING_LEVEL": "20"})  # INFO: the split
    in_image = emulator.run(task, in_container=True, retries=0)
    assert "sql: reading sparse in 2 block ranges, one snapshot" in in_image.logs
    one = SQLTask("sparse_one", "select * from sparse", SQLConfig(url=postgres.url_without_password,
                  password_secret=PASSWORD, read_connections=1))()  # fmt: skip
    split = pq.read_table(in_image.literals.literals["results"].scalar.structured_dataset.uri)
    assert split.num_rows == 250_000 and split.equals(pq.read_table(one.literal.uri))
