//! Strata query layer: the JSON query of `POST /api/v1/query`, planned over the engine's scan
//! API, with aggregation over time buckets and group-by tags.
