//! The OpenAPI 3.1 description served at `/v1/openapi.json`.

use serde_json::{Value, json};

fn error_responses(codes: &[&str]) -> Value {
    let mut m = serde_json::Map::new();
    for c in codes {
        m.insert(
            (*c).to_string(),
            json!({"description": "refused", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}),
        );
    }
    Value::Object(m)
}

fn merge(mut a: Value, b: Value) -> Value {
    if let (Some(a), Value::Object(b)) = (a.as_object_mut(), b) {
        a.extend(b);
    }
    a
}

/// The document.
pub fn document() -> Value {
    json!({
        "openapi": "3.1.0",
        "info": {"title": "Polyvision cloud API", "version": env!("CARGO_PKG_VERSION")},
        "paths": {
            "/v1/factory/devices": {"post": {
                "summary": "Enrol a device (serial, Ed25519 public key, organisation). Admin token.",
                "security": [{"admin": []}],
                "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Enrolment"}}}},
                "responses": merge(json!({"201": {"description": "enrolled"}}), error_responses(&["400", "401", "403", "404", "409", "503"]))
            }},
            "/v1/devices/challenge": {"post": {
                "summary": "A single-use nonce for an enrolled device (60 s).",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["serial"], "properties": {"serial": {"type": "string"}}}}}},
                "responses": merge(json!({"200": {"description": "nonce", "content": {"application/json": {"schema": {"type": "object", "properties": {"nonce": {"type": "string"}, "expires_in_s": {"type": "integer"}}}}}}}), error_responses(&["400", "401", "413", "429", "503"]))
            }},
            "/v1/devices/token": {"post": {
                "summary": "Exchange a signed nonce for a device token (EdDSA JWT, 30 days).",
                "requestBody": {"content": {"application/json": {"schema": {"type": "object", "required": ["serial", "nonce", "signature"], "properties": {"serial": {"type": "string"}, "nonce": {"type": "string"}, "signature": {"type": "string", "description": "Ed25519 over \"polyvision-device-auth-v1\\0\" serial \"\\0\" nonce, base64url"}}}}}},
                "responses": merge(json!({"200": {"description": "token", "content": {"application/json": {"schema": {"type": "object", "properties": {"token": {"type": "string"}, "expires_in_s": {"type": "integer"}}}}}}}), error_responses(&["400", "401", "413", "429", "503"]))
            }},
            "/v1/ingest/batches": {"post": {
                "summary": "Store a signed batch (wire format v1, see the cloud-sync crate). Idempotent by batch id.",
                "security": [{"device": []}],
                "requestBody": {"content": {"application/vnd.polyvision.batch": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": merge(json!({"200": {"description": "stored, or stored before (duplicate: true)", "content": {"application/json": {"schema": {"type": "object", "properties": {"batch_id": {"type": "string"}, "rows": {"type": "integer"}, "duplicate": {"type": "boolean"}}}}}}}), error_responses(&["400", "401", "403", "408", "413", "429", "503"]))
            }},
            "/v1/ingest/summaries": {"post": {
                "summary": "Store a rig's signed match summary (each player's metrics; see cloud-sync's summary module). A summary sent again replaces the earlier one.",
                "security": [{"device": []}],
                "requestBody": {"content": {"application/vnd.polyvision.summary": {"schema": {"type": "string", "format": "binary"}}}},
                "responses": merge(json!({"200": {"description": "stored (batch_id: the match id, rows: players)"}}), error_responses(&["400", "401", "403", "413", "429", "503"]))
            }},
            "/v1/matches/{id}/summary": {"get": {
                "summary": "Each player's distance, distance per speed zone, top speed, sprints, accelerations and decelerations, as the rig measured them (user token). complete is false until the rig's summary arrived.",
                "security": [{"user": []}],
                "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}}],
                "responses": merge(json!({"200": {"description": "players", "content": {"application/json": {"schema": {"type": "object", "properties": {
                    "fps": {"type": "number"}, "complete": {"type": "boolean"},
                    "players": {"type": "array", "items": {"$ref": "#/components/schemas/PlayerSummary"}}}}}}}}), error_responses(&["400", "401", "404", "503"]))
            }},
            "/v1/matches/{id}/export": {"get": {
                "summary": "Every position of the match: frame, time_s, track, player, class, x_m, y_m, confidence (user token).",
                "security": [{"user": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
                    {"name": "format", "in": "query", "schema": {"type": "string", "enum": ["csv", "parquet"], "default": "csv"}}
                ],
                "responses": merge(json!({"200": {"description": "the file, streamed", "content": {"text/csv": {}, "application/vnd.apache.parquet": {}}}}), error_responses(&["400", "401", "404", "501", "503"]))
            }},
            "/v1/matches": {"get": {
                "summary": "The organisation's matches, newest first (user token).",
                "security": [{"user": []}],
                "responses": merge(json!({"200": {"description": "matches", "content": {"application/json": {"schema": {"type": "object", "properties": {"matches": {"type": "array", "items": {"type": "object", "properties": {"match_id": {"type": "string"}, "device_serial": {"type": "string"}, "started_ms": {"type": "integer"}, "fps": {"type": "number"}, "frames": {"type": "integer"}, "tracks": {"type": "integer"}}}}}}}}}}), error_responses(&["401", "503"]))
            }},
            "/v1/matches/{id}/heatmap": {"get": {
                "summary": "Seconds spent per pitch cell (user token; another organisation's match is 404).",
                "security": [{"user": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
                    {"name": "cell_m", "in": "query", "schema": {"type": "number", "minimum": 0.5, "maximum": 20, "default": 2}},
                    {"name": "track", "in": "query", "description": "one of the tracker's tracks", "schema": {"type": "integer"}},
                    {"name": "player", "in": "query", "description": "one player of the match summary (all tracks linked into them)", "schema": {"type": "integer"}},
                    {"name": "team", "in": "query", "schema": {"type": "string", "enum": ["team_a", "team_b", "goalkeeper", "referee", "unknown"]}},
                    {"name": "class", "in": "query", "schema": {"type": "integer", "minimum": 1, "maximum": 4}},
                    {"name": "from_s", "in": "query", "schema": {"type": "number"}},
                    {"name": "to_s", "in": "query", "schema": {"type": "number"}}
                ],
                "responses": merge(json!({"200": {"description": "cells [column, row, seconds]: column i spans x in [i·cell_m, (i+1)·cell_m) from the centre spot along the touchline, row j likewise across (negative left of and nearer the rig than the centre spot)"}}), error_responses(&["400", "401", "404", "503"]))
            }},
            "/v1/matches/{id}/trajectories": {"get": {
                "summary": "Positions per track, [seconds, x m, y m], every Nth frame (user token).",
                "security": [{"user": []}],
                "parameters": [
                    {"name": "id", "in": "path", "required": true, "schema": {"type": "string", "format": "uuid"}},
                    {"name": "track", "in": "query", "schema": {"type": "integer"}},
                    {"name": "every", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 1}},
                    {"name": "from_s", "in": "query", "schema": {"type": "number"}},
                    {"name": "to_s", "in": "query", "schema": {"type": "number"}}
                ],
                "responses": merge(json!({"200": {"description": "tracks; truncated when over 500,000 positions"}}), error_responses(&["400", "401", "404", "503"]))
            }},
            "/healthz": {"get": {"summary": "The process answers.", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "ClickHouse answers and the service is not shutting down.", "responses": {"200": {"description": "ready"}, "503": {"description": "not ready"}}}},
            "/metrics": {"get": {"summary": "Prometheus metrics.", "responses": {"200": {"description": "text exposition format"}}}}
        },
        "components": {
            "securitySchemes": {
                "admin": {"type": "http", "scheme": "bearer"},
                "device": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (EdDSA)"},
                "user": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT (RS256, key id from the JWKS)"}
            },
            "schemas": {
                "Error": {"type": "object", "properties": {"error": {"type": "string"}}},
                "PlayerSummary": {"type": "object", "properties": {
                    "player": {"type": "integer"}, "class": {"type": "integer", "description": "1 player, 2 goalkeeper, 3 referee"},
                    "team": {"type": "string"}, "fragments": {"type": "array", "items": {"type": "integer"}},
                    "frames": {"type": "integer"}, "distance_m": {"type": "number"},
                    "walking_m": {"type": "number", "description": "below 7.2 km/h"}, "jogging_m": {"type": "number", "description": "7.2–14.4 km/h"},
                    "running_m": {"type": "number", "description": "14.4–19.8 km/h"}, "high_speed_running_m": {"type": "number", "description": "19.8–25.2 km/h"},
                    "sprinting_m": {"type": "number", "description": "25.2 km/h and above"}, "high_speed_m": {"type": "number"},
                    "top_speed_mps": {"type": "number"}, "sprints": {"type": "integer"}, "accelerations": {"type": "integer"}, "decelerations": {"type": "integer"}
                }},
                "Enrolment": {"type": "object", "required": ["serial", "public_key", "organization_id"], "properties": {
                    "serial": {"type": "string", "pattern": "^[A-Za-z0-9._-]{1,64}$"},
                    "public_key": {"type": "string", "description": "Ed25519 public key, 32 bytes, base64url"},
                    "organization_id": {"type": "string", "format": "uuid"},
                    "replace": {"type": "boolean"},
                    "revoke": {"type": "boolean"}
                }}
            }
        }
    })
}
