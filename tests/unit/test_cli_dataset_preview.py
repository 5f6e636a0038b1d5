"""A dataset output's first rows as ``flyte-prebuilt run`` prints them (plugins/cli/dataset_preview.py)."""

import pyarrow as pa
import pyarrow.parquet as pq
from flytekitplugins.prebuilt.cli.dataset_preview import preview


def test_the_first_rows_of_a_folder_of_parquet_files(tmp_path):
    pq.write_table(pa.table({"n": list(range(8)), "note": ["x" * 40] * 8}), tmp_path / "00000.parquet")
    pq.write_table(pa.table({"n": list(range(8, 15)), "note": ["y"] * 7}), tmp_path / "00001.parquet")
    lines = preview(str(tmp_path))
    assert lines[0] == "15 row(s), 2 column(s), the first 10"
    assert lines[1].split() == ["n", "note"] and len(lines) == 2 + 10
    assert lines[2] == "0  " + "x" * 27 + "..."  # a long cell is cut
    assert lines[-1].split() == ["9", "y"]


def test_what_cannot_be_shown_says_why(tmp_path):
    (tmp_path / "data.csv").write_text("a,b\n1,2\n")
    assert preview(str(tmp_path / "data.csv"))[0].startswith("(cannot read it as parquet: ")
    assert preview("s3://bucket/results") == ["(not a local path: s3://bucket/results)"]
