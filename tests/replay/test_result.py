"""ReplayResult for analysis: NumPy columns (always), pandas and Arrow (when installed);
parallel jobs combine into one summary."""

from __future__ import annotations

import numpy as np
import pytest

from meltica_nb.errors import ConfigError
from meltica_nb.parallel_replay import ReplayJob, combine, run_job
from meltica_nb.replay import replay
from meltica_nb.schema import EventType

from .conftest import SMALL


@pytest.fixture(scope="module")
def result():
    return replay([SMALL[0]], keep_events=True)


def test_columns_are_numpy_arrays_with_names_and_exponents(result):
    cols = result.columns()
    n = sum(result.events.values())
    assert all(isinstance(v, np.ndarray) and v.shape == (n,) for v in cols.values())
    assert set(cols["venue_name"].tolist()) == {"binance"}
    assert set(cols["symbol"].tolist()) == {"NKN-USDT", "BLZ-ETH", "LRC-BTC", "RUNE-EUR"}
    assert (cols["event"] == "trade").sum() == result.events["trade"]
    assert (cols["price_exp"] == 8).all() and (cols["qty_exp"] == 8).all()
    trades = cols["event_type"] == EventType.TRADE
    assert (cols["price"][trades] > 0).all()
    with pytest.raises(ConfigError, match="keep_events"):
        replay([SMALL[0]]).columns()


def test_to_pandas(result):
    pd = pytest.importorskip("pandas")
    frame = result.to_pandas()
    assert isinstance(frame, pd.DataFrame) and len(frame) == sum(result.events.values())
    assert frame.groupby("event").size().to_dict() == result.events


def test_to_arrow(result):
    pa = pytest.importorskip("pyarrow")
    table = result.to_arrow()
    assert isinstance(table, pa.Table) and table.num_rows == sum(result.events.values())
    assert table.column("symbol").to_pylist()[0] in {"NKN-USDT", "BLZ-ETH", "LRC-BTC",
                                                     "RUNE-EUR"}


def test_jobs_are_pure_and_combine():
    job = ReplayJob((str(SMALL[0]),), {"levels": 3})
    first, second = run_job(job), run_job(job)
    assert first["digest"] == second["digest"] and first["instruments"] == second["instruments"]
    other = run_job(ReplayJob((str(SMALL[2]),), {"levels": 3}))
    both = combine([first, other])
    assert both["frames"] == first["frames"] + other["frames"]
    assert both["events"]["bbo"] == first["events"]["bbo"] + other["events"]["bbo"]
    assert set(both["instruments"]) == set(first["instruments"]) | set(other["instruments"])
    assert both["digest"] != first["digest"] and combine([first, other])["digest"] == both[
        "digest"]
    with pytest.raises(ConfigError):
        combine([])
