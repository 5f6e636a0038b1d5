"""The embedded example database: a small shop in SQLite, created on first use (examples/data/shop.db)."""

import random
import sqlite3
from pathlib import Path

SHOP_DB = Path(__file__).resolve().parent / "data" / "shop.db"


def ensure_shop_db(path: Path = SHOP_DB) -> Path:
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = random.Random(7)
    customers = ["ada", "grace", "linus", "margaret", "ken", "barbara", "dennis", "frances"]
    tmp = path.with_suffix(".tmp")
    tmp.unlink(missing_ok=True)
    with sqlite3.connect(tmp) as db:
        db.execute("create table orders (id integer primary key, customer text, amount real, placed_at timestamp)")
        db.executemany(
            "insert into orders values (?, ?, ?, ?)",
            [
                (
                    i,
                    rng.choice(customers),
                    round(rng.uniform(1, 200), 2),
                    f"2026-{1 + i % 12:02d}-{1 + i % 28:02d} 12:00:00",
                )
                for i in range(1, 1001)
            ],
        )
    tmp.rename(path)
    return path
