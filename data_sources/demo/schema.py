"""Tables of the demo warehouse: what a province's shared data warehouse typically exposes.

Timestamps are naive local time (Asia/Ho_Chi_Minh, UTC+7, no daylight saving), which is how most
provincial warehouses store them. ``updated_at`` is the watermark the poller follows; every table
has an index on it and on the columns the drill-down filters and sorts on.

Rows dated before 1 July 2025 carry the pre-merger ward code, as real warehouses still hold them.
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
)

metadata = MetaData()


def _ward() -> Column:
    return Column("ward_code", String(5), nullable=True)


def _updated() -> Column:
    return Column("updated_at", DateTime, nullable=False)


ward_population = Table(
    "ward_population",
    metadata,
    Column("ward_code", String(5), primary_key=True),
    Column("population", Integer, nullable=False),
    Column("source", String(64), nullable=False),
)

# --- traffic -------------------------------------------------------------------------------------
traffic_segments = Table(
    "traffic_segments",
    metadata,
    Column("segment_id", String(16), primary_key=True),
    Column("name", Text, nullable=False),
    _ward(),
    Column("lat", Float),
    Column("lon", Float),
    Column("length_m", Integer),
    Column("free_flow_kmh", Float, nullable=False),
)

traffic_readings = Table(
    "traffic_readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("segment_id", String(16), nullable=False),
    _ward(),
    Column("observed_at", DateTime, nullable=False),
    Column("vehicle_count", Integer),
    Column("avg_speed_kmh", Float),
    Column("free_flow_kmh", Float),
    _updated(),
    Index("ix_traffic_readings_updated_at", "updated_at"),
    Index("ix_traffic_readings_observed_at", "observed_at"),
    Index("ix_traffic_readings_ward_observed", "ward_code", "observed_at"),
)

traffic_incidents = Table(
    "traffic_incidents",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kind", String(16), nullable=False),  # accident | flooding | breakdown
    _ward(),
    Column("lat", Float),
    Column("lon", Float),
    Column("description", Text),
    Column("status", String(16), nullable=False),  # open | cleared
    Column("reported_at", DateTime, nullable=False),
    Column("cleared_at", DateTime),
    Column("reporter_name", Text),
    Column("reporter_phone", String(16)),
    _updated(),
    Index("ix_traffic_incidents_updated_at", "updated_at"),
    Index("ix_traffic_incidents_reported_at", "reported_at"),
    Index("ix_traffic_incidents_ward_reported", "ward_code", "reported_at"),
    Index("ix_traffic_incidents_status", "status"),
)

# --- health --------------------------------------------------------------------------------------
health_facilities = Table(
    "health_facilities",
    metadata,
    Column("facility_id", String(16), primary_key=True),
    Column("name", Text, nullable=False),
    Column("kind", String(16), nullable=False),  # hospital | station
    _ward(),
    Column("lat", Float),
    Column("lon", Float),
    Column("beds", Integer, nullable=False),
)

health_occupancy = Table(
    "health_occupancy",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("facility_id", String(16), nullable=False),
    _ward(),
    Column("observed_at", DateTime, nullable=False),
    Column("beds", Integer),
    Column("occupied_beds", Integer),
    Column("emergency_visits", Integer),  # arrivals during the hour ending at observed_at
    _updated(),
    Index("ix_health_occupancy_updated_at", "updated_at"),
    Index("ix_health_occupancy_observed_at", "observed_at"),
    Index("ix_health_occupancy_ward_observed", "ward_code", "observed_at"),
)

health_cases = Table(
    "health_cases",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("disease", String(24), nullable=False),  # dengue | hand_foot_mouth | influenza
    _ward(),
    Column("facility_id", String(16)),
    Column("reported_at", DateTime, nullable=False),
    Column("patient_name", Text),
    Column("patient_phone", String(16)),
    Column("patient_id_number", String(12)),
    Column("patient_address", Text),
    Column("age", Integer),
    _updated(),
    Index("ix_health_cases_updated_at", "updated_at"),
    Index("ix_health_cases_reported_at", "reported_at"),
    Index("ix_health_cases_ward_reported", "ward_code", "reported_at"),
)

# --- environment ---------------------------------------------------------------------------------
env_air_stations = Table(
    "env_air_stations",
    metadata,
    Column("station_id", String(16), primary_key=True),
    Column("name", Text, nullable=False),
    _ward(),
    Column("lat", Float),
    Column("lon", Float),
)

env_air_readings = Table(
    "env_air_readings",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("station_id", String(16), nullable=False),
    _ward(),
    Column("observed_at", DateTime, nullable=False),
    Column("pm25", Float),  # µg/m³, mean of the interval ending at observed_at; -999 = "no value"
    Column("pm10", Float),
    Column("no2", Float),
    Column("o3", Float),
    Column("co", Float),
    Column("so2", Float),
    _updated(),
    Index("ix_env_air_readings_updated_at", "updated_at"),
    Index("ix_env_air_readings_observed_at", "observed_at"),
    Index("ix_env_air_readings_ward_observed", "ward_code", "observed_at"),
)

env_river_gauges = Table(
    "env_river_gauges",
    metadata,
    Column("gauge_id", String(16), primary_key=True),
    Column("name", Text, nullable=False),
    Column("river", Text, nullable=False),
    _ward(),
    Column("lat", Float),
    Column("lon", Float),
    Column("alert_level_1", Float, nullable=False),  # metres; báo động I/II/III
    Column("alert_level_2", Float, nullable=False),
    Column("alert_level_3", Float, nullable=False),
)

env_river_levels = Table(
    "env_river_levels",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("gauge_id", String(16), nullable=False),
    _ward(),
    Column("observed_at", DateTime, nullable=False),
    Column("water_level_m", Float),
    Column("rainfall_mm", Float),  # during the interval ending at observed_at
    _updated(),
    Index("ix_env_river_levels_updated_at", "updated_at"),
    Index("ix_env_river_levels_observed_at", "observed_at"),
    Index("ix_env_river_levels_ward_observed", "ward_code", "observed_at"),
)

# --- public services -----------------------------------------------------------------------------
dossier_procedures = Table(
    "dossier_procedures",
    metadata,
    Column("procedure_code", String(16), primary_key=True),
    Column("procedure_name", Text, nullable=False),
    Column("field", String(32), nullable=False),  # hộ tịch, chứng thực, đất đai, ...
    Column("days_allowed", Integer, nullable=False),  # statutory processing time
)

dossiers = Table(
    "dossiers",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("dossier_no", String(32), nullable=False),
    Column("procedure_code", String(16), nullable=False),
    Column("procedure_name", Text, nullable=False),
    _ward(),
    Column("channel", String(8), nullable=False),  # online | counter
    Column("status", String(16), nullable=False),  # processing | resolved | returned
    Column("received_at", DateTime, nullable=False),
    Column("due_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Column("applicant_name", Text),
    Column("applicant_phone", String(16)),
    Column("applicant_id_number", String(12)),
    _updated(),
    Index("ix_dossiers_updated_at", "updated_at"),
    Index("ix_dossiers_received_at", "received_at"),
    Index("ix_dossiers_ward_received", "ward_code", "received_at"),
    Index("ix_dossiers_status_due", "status", "due_at"),
)

# --- citizen feedback ----------------------------------------------------------------------------
feedback_reports = Table(
    "feedback_reports",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("ward_code", String(5)),
    Column("category", String(24), nullable=False),
    Column("title", Text, nullable=False),
    Column("lat", Float),
    Column("lon", Float),
    # received | assigned | in_progress | resolved | rejected
    Column("status", String(16), nullable=False),
    Column("assigned_unit", Text),
    Column("created_at", DateTime, nullable=False),
    Column("deadline_at", DateTime, nullable=False),
    Column("resolved_at", DateTime),
    Column("rating", Integer),  # 1..5, given by the citizen after resolution
    Column("citizen_name", Text),
    Column("citizen_phone", String(16)),
    Column("citizen_address", Text),
    Column("channel", String(16)),  # app | hotline | web | zalo
    _updated(),
    Index("ix_feedback_reports_updated_at", "updated_at"),
    Index("ix_feedback_reports_created_at", "created_at"),
    Index("ix_feedback_reports_ward_created", "ward_code", "created_at"),
    Index("ix_feedback_reports_status_deadline", "status", "deadline_at"),
)

OPEN_FEEDBACK_STATUSES = ("received", "assigned", "in_progress")
FEEDBACK_CATEGORIES = (
    "environment",
    "traffic",
    "urban_order",
    "infrastructure",
    "public_services",
    "security",
    "health",
    "other",
)
