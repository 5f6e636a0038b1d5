"""Quickstart: a prebuilt SQL task with a bound input feeding a Python task.

python examples/sql_quickstart.py                       # run locally
pyflyte run examples/sql_quickstart.py top_customers --min_amount 150
flyte-prebuilt run examples/sql_quickstart.py big_orders --input min_amount=150 [--in-container]
"""

import pandas as pd
from flytekit import task, workflow
from flytekitplugins.prebuilt.sql import SQLConfig, SQLTask

try:
    from shop_db import ensure_shop_db
except ImportError:  # imported as examples.sql_quickstart
    from examples.shop_db import ensure_shop_db

SHOP_DB = ensure_shop_db()

# min_amount is a bound parameter: whatever its value, it can never change the SQL.
big_orders = SQLTask(
    name="big_orders",
    query_template="""
        select customer, count(*) as orders, round(sum(amount), 2) as total
        from orders
        where amount >= {{ .inputs.min_amount }}   -- upstream-style placeholder, bound, not pasted
        group by customer
        order by total desc
    """,
    config=SQLConfig(url=f"sqlite:///{SHOP_DB}"),
    inputs={"min_amount": float},
)


@task
def report(df: pd.DataFrame) -> str:
    lines = [f"{row.customer:<10} {row.orders:>3} orders  {row.total:>9.2f}" for row in df.itertuples()]
    return "\n".join(["customer   big orders      total", *lines])


@workflow
def top_customers(min_amount: float = 150.0) -> str:
    return report(df=big_orders(min_amount=min_amount))


if __name__ == "__main__":
    print(top_customers(min_amount=150.0))
