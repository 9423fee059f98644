//! The OpenAPI 3.1 document of the v1 API (`GET /openapi.json`), written by hand next to the
//! routes it describes; `tests/serve.rs` checks every route the router serves is in it.

use serde_json::{Value, json};

/// What a verify report says about a PDF's PAdES level and where its signer's revocation was
/// checked from (in its own `json!`: the recursion limit again).
fn pades_report_properties() -> Value {
    json!({
        "pades_level": {"type": "string", "enum": ["b-b", "b-t", "b-lt", "b-lta"]},
        "signed_revision": {"type": "integer", "minimum": 0},
        "revocation": {"type": "string", "enum": ["none", "given", "dss"]},
        "revocation_detail": {"type": "string"},
        "revisions": {"type": "integer", "minimum": 1},
        "document_timestamps": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["revision", "time", "serial", "trusted"],
                "properties": {
                    "revision": {"type": "integer", "minimum": 1},
                    "time": {"type": "string", "format": "date-time"},
                    "tsa": {"type": "string"},
                    "serial": {"type": "string"},
                    "trusted": {"type": "boolean"},
                    "detail": {"type": "string"}
                }
            }
        }
    })
}

/// The document.
pub fn document() -> Value {
    let problem = json!({"$ref": "#/components/responses/Problem"});
    let html = |description: &str| json!({"description": description, "content": {"text/html": {"schema": {"type": "string"}}}});
    let mut doc = json!({
        "openapi": "3.1.0",
        "info": {
            "title": "elicence registry API",
            "version": "1",
            "description": "Departments query the e-licence registry within their sharing rights; every call is audited. Errors are RFC 9457 problem details."
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "parameters": {
                "Reason": {
                    "name": "X-Reason", "in": "header", "required": true,
                    "description": "Why the department asks (事由), percent-encoded UTF-8, at most 200 characters.",
                    "schema": {"type": "string"}
                }
            },
            "schemas": {
                "Problem": {
                    "type": "object",
                    "required": ["type", "title", "status", "detail"],
                    "properties": {
                        "type": {"type": "string"}, "title": {"type": "string"},
                        "status": {"type": "integer"}, "detail": {"type": "string"}
                    }
                },
                "Field": {
                    "type": "object",
                    "required": ["key", "label", "value", "masked"],
                    "properties": {
                        "key": {"type": "string"}, "label": {"type": "string"},
                        "value": {"type": "string"}, "masked": {"type": "boolean"}
                    }
                },
                "Licence": {
                    "type": "object",
                    "required": ["identifier", "type_code", "type_name", "issuer_code", "printed_no", "version", "registry_status", "holder_name", "holder_code", "issue_date", "access", "unmasked", "fields"],
                    "properties": {
                        "identifier": {"type": "string"}, "type_code": {"type": "string"},
                        "type_name": {"type": "string"}, "issuer_code": {"type": "string"},
                        "printed_no": {"type": "string"}, "version": {"type": "integer"},
                        "registry_status": {"$ref": "#/components/schemas/RegistryStatus"},
                        "holder_name": {"type": "string"}, "holder_code": {"type": "string"},
                        "issue_date": {"type": "string", "format": "date"},
                        "valid_to": {"type": ["string", "null"], "format": "date"},
                        "access": {"type": "string"}, "unmasked": {"type": "boolean"},
                        "fields": {"type": "array", "items": {"$ref": "#/components/schemas/Field"}}
                    }
                },
                "RegistryStatus": {
                    "type": "object",
                    "required": ["status"],
                    "properties": {
                        "status": {"type": "string", "enum": ["current", "superseded", "revoked", "expired", "disputed", "unknown", "copy"]}
                    }
                },
                "VerifyReport": {
                    "type": "object",
                    "required": ["file", "kind", "status"],
                    "properties": {
                        "file": {"type": "string"},
                        "kind": {"type": "string", "enum": ["pdf", "xml", "ofd"]},
                        "status": {"type": "string", "enum": ["authentic", "tampered", "untrusted", "not-signed"]},
                        "reason": {"type": "string"}, "subject": {"type": "string"},
                        "signer": {"type": "string"},
                        "signing_time": {"type": "string", "format": "date-time"},
                        "signing_time_source": {"type": "string", "enum": ["timestamp", "claimed"]},
                        "signed_digest": {"type": "string"}, "detail": {"type": "string"},
                        "registry_status": {"$ref": "#/components/schemas/RegistryStatus"},
                        "identifier": {"type": "string"},
                        "log": {
                            "type": "object",
                            "required": ["leaf_index", "event", "proof_verified"],
                            "properties": {
                                "leaf_index": {"type": "integer", "minimum": 0},
                                "event": {"type": "string", "enum": ["issued", "changed"]},
                                "tree_size": {"type": "integer", "minimum": 1},
                                "root_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                                "checkpoint_time": {"type": "string", "format": "date-time"},
                                "proof_verified": {"type": "boolean"},
                                "checkpoint_signature": {"type": "string"},
                                "detail": {"type": "string"}
                            }
                        }
                    }
                },
                "QueryAnswer": {
                    "type": "object",
                    "required": ["department", "reason", "by", "licences"],
                    "properties": {
                        "department": {"type": "string"}, "reason": {"type": "string"},
                        "by": {"type": "string", "enum": ["identifier", "holder", "number", "qr"]},
                        "licences": {"type": "array", "items": {"$ref": "#/components/schemas/Licence"}}
                    }
                }
            },
            "responses": {
                "Problem": {
                    "description": "RFC 9457 problem details",
                    "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
                }
            }
        },
        "paths": {
            "/healthz": {"get": {"summary": "Liveness", "responses": {"200": {"description": "ok"}}}},
            "/readyz": {"get": {"summary": "Readiness (registry reachable)", "responses": {"200": {"description": "ready"}, "503": problem}}},
            "/metrics": {"get": {"summary": "Prometheus metrics", "responses": {"200": {"description": "text exposition format 0.0.4"}}}},
            "/openapi.json": {"get": {"summary": "This document", "responses": {"200": {"description": "OpenAPI 3.1"}}}},
            "/api/v1/token": {"post": {
                "summary": "A bearer token (at most one hour) for a department's credential",
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["department", "credential"], "additionalProperties": false,
                    "properties": {"department": {"type": "string"}, "credential": {"type": "string"}}
                }}}},
                "responses": {
                    "200": {"description": "token", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["access_token", "token_type", "expires_in"],
                        "properties": {"access_token": {"type": "string"}, "token_type": {"const": "Bearer"}, "expires_in": {"type": "integer"}}
                    }}}},
                    "400": problem, "401": problem, "403": problem, "413": problem, "429": problem
                }
            }},
            "/api/v1/licences": {"get": {
                "summary": "Licences by holder code, printed number or QR payload, within rights",
                "security": [{"bearer": []}],
                "parameters": [
                    {"$ref": "#/components/parameters/Reason"},
                    {"name": "holder", "in": "query", "schema": {"type": "string"}},
                    {"name": "number", "in": "query", "schema": {"type": "string"}},
                    {"name": "qr", "in": "query", "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "matches within rights (may be empty)", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryAnswer"}}}},
                    "400": problem, "401": problem, "403": problem, "429": problem
                }
            }},
            "/api/v1/licences/{identifier}": {"get": {
                "summary": "One licence by its GB/T 36904 identifier, within rights",
                "security": [{"bearer": []}],
                "parameters": [
                    {"$ref": "#/components/parameters/Reason"},
                    {"name": "identifier", "in": "path", "required": true, "schema": {"type": "string"}}
                ],
                "responses": {
                    "200": {"description": "the licence", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/QueryAnswer"}}}},
                    "400": problem, "401": problem, "403": problem, "404": problem, "429": problem
                }
            }},
            "/api/v1/licences/{identifier}/files/{kind}": {"get": {
                "summary": "The signed e-licence as issued (PDF, XML, or OFD when the run produced one), within rights; a type with personal or trade-secret fields needs a grant with unmasking",
                "security": [{"bearer": []}],
                "parameters": [
                    {"$ref": "#/components/parameters/Reason"},
                    {"name": "identifier", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "kind", "in": "path", "required": true, "schema": {"type": "string", "enum": ["pdf", "xml", "ofd"]}}
                ],
                "responses": {
                    "200": {"description": "the stored file, byte for byte", "content": {
                        "application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}},
                        "application/xml": {"schema": {"type": "string", "contentMediaType": "application/xml"}},
                        "application/ofd": {"schema": {"type": "string", "contentMediaType": "application/ofd"}}
                    }},
                    "400": problem, "401": problem, "403": problem, "404": problem, "429": problem
                }
            }},
            "/api/v1/verify": {"post": {
                "summary": "Check a presented PDF or XML e-licence (public, at most 20 MB): the JSON of `elicence verify --json --data`",
                "requestBody": {"required": true, "content": {
                    "application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}},
                    "application/xml": {"schema": {"type": "string", "contentMediaType": "application/xml"}},
                    "application/octet-stream": {"schema": {"type": "string"}}
                }},
                "responses": {
                    "200": {"description": "signature verdict and registry status", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/VerifyReport"}}}},
                    "400": problem, "413": problem, "429": problem
                }
            }},
            "/v/{identifier}": {"get": {
                "summary": "Public verification page (HTML in Chinese): type, issuer, number, validity, status; never personal data. The address a face's QR code opens (with d) when the registry has a public URL",
                "parameters": [
                    {"name": "identifier", "in": "path", "required": true, "schema": {"type": "string"}},
                    {"name": "d", "in": "query", "required": false, "description": "the first 16 hex digits of the content digest printed in the QR code: the page says whether the scanned face is this version", "schema": {"type": "string", "pattern": "^[0-9A-Fa-f]{16}$"}}
                ],
                "responses": {
                    "200": html("the licence's page"),
                    "400": html("not an identifier, or d is not 16 hex digits"),
                    "404": html("no such licence"),
                    "429": problem
                }
            }},
            "/v/{identifier}/check": {"post": {
                "summary": "The page's file check without JavaScript: a form with one file part (PDF, XML or OFD, at most 20 MB), answered by a verdict page in words (signature, and whether the file is this licence's registered version)",
                "parameters": [{"name": "identifier", "in": "path", "required": true, "schema": {"type": "string"}}],
                "requestBody": {"required": true, "content": {
                    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {"file": {"type": "string", "contentMediaType": "application/octet-stream"}}}}
                }},
                "responses": {
                    "200": html("the verdict page"),
                    "400": html("not an identifier, or no file part"),
                    "413": html("the file is over 20 MB"),
                    "429": problem
                }
            }}
        }
    });
    // The transparency log's routes, in their own `json!` (one macro for everything exceeds
    // the recursion limit).
    if let (Some(schemas), Value::Object(log_schemas)) =
        (doc["components"]["schemas"].as_object_mut(), log_schemas())
    {
        schemas.extend(log_schemas);
    }
    if let (Some(paths), Value::Object(log_paths)) =
        (doc["paths"].as_object_mut(), log_paths(&problem))
    {
        paths.extend(log_paths);
    }
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        schemas.insert("CheckRequest".into(), check_request_schema());
    }
    if let (Some(properties), Value::Object(pades)) = (
        doc["components"]["schemas"]["VerifyReport"]["properties"].as_object_mut(),
        pades_report_properties(),
    ) {
        properties.extend(pades);
    }
    if let (Some(paths), Value::Object(sharing)) =
        (doc["paths"].as_object_mut(), sharing_paths(&problem))
    {
        paths.extend(sharing);
    }
    if let (Some(paths), Value::Object(review)) =
        (doc["paths"].as_object_mut(), review_paths(&problem))
    {
        paths.extend(review);
    }
    doc
}

/// The review queue for operators (operator tokens) and the departments' change events.
fn review_paths(problem: &Value) -> Value {
    let item = json!({
        "type": "object",
        "required": ["id", "run", "action", "identifier", "state", "staged_by", "staged_at"],
        "properties": {
            "id": {"type": "integer"}, "run": {"type": "integer"},
            "action": {"type": "string"}, "identifier": {"type": "string"},
            "previous_identifier": {"type": ["string", "null"]},
            "state": {"enum": ["pending", "approved", "rejected"]},
            "staged_by": {"type": "string"}, "staged_at": {"type": "string", "format": "date-time"},
            "decided_by": {"type": ["string", "null"]},
            "preview_sha256": {"type": ["string", "null"]}
        }
    });
    let token = json!({"type": "object", "required": ["access_token", "token_type", "expires_in"],
        "properties": {"access_token": {"type": "string"}, "token_type": {"const": "Bearer"}, "expires_in": {"type": "integer"}}});
    json!({
        "/api/v1/operator-token": {"post": {
            "summary": "A bearer token (at most one hour) for a registered, enabled operator's credential: the review routes take it, the department routes do not. A registry without an admin operator authenticates nobody (403)",
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["operator", "credential"], "additionalProperties": false,
                "properties": {"operator": {"type": "string"}, "credential": {"type": "string"}}
            }}}},
            "responses": {
                "200": {"description": "the token", "content": {"application/json": {"schema": token}}},
                "400": problem, "401": problem, "403": problem, "413": problem, "429": problem
            }
        }},
        "/api/v1/review": {"get": {
            "summary": "The review queue (pending by default), as `elicence review list --json`; any operator",
            "security": [{"bearer": []}],
            "parameters": [
                {"name": "run", "in": "query", "schema": {"type": "integer"}},
                {"name": "state", "in": "query", "schema": {"enum": ["pending", "approved", "rejected", "all"]}}
            ],
            "responses": {
                "200": {"description": "items in staging order", "content": {"application/json": {"schema": {"type": "array", "items": item}}}},
                "400": problem, "401": problem, "403": problem, "429": problem
            }
        }},
        "/api/v1/review/{id}": {"get": {
            "summary": "One staged item: the fields it would issue, how they differ from the version it changes or revokes, the preview's SHA-256; as `elicence review show --json`",
            "security": [{"bearer": []}],
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "responses": {
                "200": {"description": "the item", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["item", "fields", "differences"],
                    "properties": {
                        "item": item,
                        "fields": {"type": "array", "items": {"type": "object", "required": ["key", "label", "value"]}},
                        "compared_with": {"type": ["string", "null"]},
                        "differences": {"type": "array", "items": {"type": "object", "required": ["key", "label", "current", "staged"]}},
                        "preview_sha256": {"type": ["string", "null"]}
                    }
                }}}},
                "400": problem, "401": problem, "403": problem, "404": problem, "429": problem
            }
        }},
        "/api/v1/review/{id}/preview": {"get": {
            "summary": "The staged item's unsigned preview PDF (what would be issued, not an e-licence), as `elicence review show` names it in the store",
            "security": [{"bearer": []}],
            "parameters": [{"name": "id", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "responses": {
                "200": {"description": "the preview, byte for byte as stored", "content": {
                    "application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}}
                }},
                "400": problem, "401": problem, "403": problem, "404": problem, "429": problem
            }
        }},
        "/api/v1/review/approve": {"post": {
            "summary": "Sign and commit staged items (reviewer role; not the operator who staged them: four eyes), as `elicence review approve --json`; a stale item (its licence changed since) is listed and left pending",
            "security": [{"bearer": []}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "additionalProperties": false,
                "properties": {"ids": {"type": "array", "items": {"type": "integer"}}, "run": {"type": "integer"}}
            }}}},
            "responses": {
                "200": {"description": "what the approval did", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["approved", "issued", "changed", "revoked", "stale", "not_pending"],
                    "properties": {
                        "run": {"type": ["integer", "null"]}, "approved": {"type": "integer"},
                        "issued": {"type": "integer"}, "changed": {"type": "integer"}, "revoked": {"type": "integer"},
                        "stale": {"type": "array"}, "not_pending": {"type": "array", "items": {"type": "integer"}},
                        "development_key": {"type": "boolean"}
                    }
                }}}},
                "400": problem, "401": problem, "403": problem, "413": problem, "429": problem
            }
        }},
        "/api/v1/review/reject": {"post": {
            "summary": "Reject staged items with a reason (reviewer role), as `elicence review reject`",
            "security": [{"bearer": []}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["ids", "reason"], "additionalProperties": false,
                "properties": {"ids": {"type": "array", "items": {"type": "integer"}}, "reason": {"type": "string"}}
            }}}},
            "responses": {
                "200": {"description": "each item's outcome", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["items"],
                    "properties": {"items": {"type": "array", "items": {
                        "type": "object", "required": ["id", "outcome"],
                        "properties": {"id": {"type": "integer"}, "outcome": {"enum": ["rejected", "already_decided", "unknown"]}}
                    }}}
                }}}},
                "400": problem, "401": problem, "403": problem, "413": problem, "429": problem
            }
        }},
        "/api/v1/events": {"get": {
            "summary": "Changes and revocations of the licences the department queried or was handed, after a cursor, as `elicence events --json`; at least once: pass next_cursor as since next time",
            "security": [{"bearer": []}],
            "parameters": [{"name": "since", "in": "query", "schema": {"type": "integer", "minimum": 0}}],
            "responses": {
                "200": {"description": "events and the next cursor", "content": {"application/json": {"schema": {
                    "type": "object", "required": ["department", "since", "next_cursor", "events"],
                    "properties": {
                        "department": {"type": "string"}, "since": {"type": "integer"}, "next_cursor": {"type": "integer"},
                        "events": {"type": "array", "items": {
                            "type": "object", "required": ["cursor", "kind", "identifier", "at", "relied_on"],
                            "properties": {
                                "cursor": {"type": "integer"}, "kind": {"enum": ["changed", "revoked"]},
                                "identifier": {"type": "string"}, "supersedes": {"type": ["string", "null"]},
                                "effective": {"type": ["string", "null"], "format": "date"},
                                "at": {"type": "string", "format": "date-time"}, "relied_on": {"type": "string"}
                            }
                        }}
                    }
                }}}},
                "400": problem, "401": problem, "429": problem
            }
        }}
    })
}

/// The department routes that act: copies for use and check requests.
fn sharing_paths(problem: &Value) -> Value {
    json!({
        "/api/v1/copies": {"post": {
            "summary": "A copy for use (加注件) for the token's department, as `elicence copy`: the stored face watermarked with the reason, department and expiry, signed by the registry's key, recorded and audited. Needs the rights to the whole face (a grant with unmasking when the type has personal or trade-secret fields); only a current or expired version, not a superseded, revoked or disputed one",
            "security": [{"bearer": []}],
            "parameters": [{"$ref": "#/components/parameters/Reason"}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["identifier", "expires"], "additionalProperties": false,
                "properties": {
                    "identifier": {"type": "string"},
                    "expires": {"type": "string", "format": "date", "description": "last day the copy may be used, today or later"}
                }
            }}}},
            "responses": {
                "201": {
                    "description": "the signed copy",
                    "headers": {
                        "X-Copy-Id": {"description": "the copy's number in the registry", "schema": {"type": "integer"}},
                        "X-Copy-Sha256": {"description": "SHA-256 of the copy, as recorded", "schema": {"type": "string", "pattern": "^[0-9a-f]{64}$"}}
                    },
                    "content": {"application/pdf": {"schema": {"type": "string", "contentMediaType": "application/pdf"}}}
                },
                "400": problem, "401": problem, "403": problem, "404": problem, "409": problem,
                "413": problem, "429": problem, "503": problem
            }
        }},
        "/api/v1/check-requests": {
            "post": {
                "summary": "Ask the issuer of a licence the department may see to check it (核查), as `elicence check-request`; due within the type's working days",
                "security": [{"bearer": []}],
                "parameters": [{"$ref": "#/components/parameters/Reason"}],
                "requestBody": {"required": true, "content": {"application/json": {"schema": {
                    "type": "object", "required": ["identifier"], "additionalProperties": false,
                    "properties": {"identifier": {"type": "string"}}
                }}}},
                "responses": {
                    "201": {"description": "the request opened", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["request", "identifier", "issuer", "due_on"],
                        "properties": {
                            "request": {"type": "integer"}, "identifier": {"type": "string"},
                            "issuer": {"type": "string"}, "due_on": {"type": "string", "format": "date"}
                        }
                    }}}},
                    "400": problem, "401": problem, "403": problem, "404": problem, "413": problem, "429": problem
                }
            },
            "get": {
                "summary": "The check requests the department made or must answer (open ones; every one with all=true), as `elicence check-request --list --json`",
                "security": [{"bearer": []}],
                "parameters": [{"name": "all", "in": "query", "schema": {"type": "boolean"}}],
                "responses": {
                    "200": {"description": "requests, oldest first", "content": {"application/json": {"schema": {
                        "type": "array", "items": {"$ref": "#/components/schemas/CheckRequest"}
                    }}}},
                    "400": problem, "401": problem, "429": problem
                }
            }
        },
        "/api/v1/check-requests/{number}/answer": {"post": {
            "summary": "The issuer's answer to a check request, once, as `elicence check-answer`; only the licence's issuer may answer. An `inconsistent` answer makes the licence `disputed` while it stands",
            "security": [{"bearer": []}],
            "parameters": [{"name": "number", "in": "path", "required": true, "schema": {"type": "integer"}}],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {
                "type": "object", "required": ["result", "note"], "additionalProperties": false,
                "properties": {
                    "result": {"type": "string", "enum": ["consistent", "inconsistent"]},
                    "note": {"type": "string", "description": "what the check found, at most 200 characters"}
                }
            }}}},
            "responses": {
                "200": {"description": "the request as answered", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/CheckRequest"}}}},
                "400": problem, "401": problem, "403": problem, "404": problem, "409": problem, "413": problem, "429": problem
            }
        }}
    })
}

/// A check request as stored (and, in a list, whether it is overdue).
fn check_request_schema() -> Value {
    json!({
        "type": "object",
        "required": ["id", "identifier", "requester", "issuer_code", "reason", "opened_at"],
        "properties": {
            "id": {"type": "integer"}, "identifier": {"type": "string"},
            "requester": {"type": "string"}, "issuer_code": {"type": "string"},
            "reason": {"type": "string"},
            "opened_at": {"type": "string", "format": "date-time"},
            "answered_at": {"type": ["string", "null"], "format": "date-time"},
            "answerer": {"type": ["string", "null"]},
            "result": {"enum": ["consistent", "inconsistent", null]},
            "note": {"type": ["string", "null"]},
            "due_on": {"type": ["string", "null"], "format": "date"},
            "overdue": {"type": "boolean"}
        }
    })
}

/// Schemas of the transparency log's answers.
fn log_schemas() -> Value {
    json!({
                "Checkpoint": {
                    "type": "object",
                    "required": ["log_id", "tree_size", "root_hash", "time", "audit_seq", "audit_head", "body", "signature"],
                    "properties": {
                        "log_id": {"type": "string"},
                        "tree_size": {"type": "integer", "minimum": 0},
                        "root_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                        "time": {"type": "string", "format": "date-time"},
                        "audit_seq": {"type": "integer", "minimum": 0},
                        "audit_head": {"type": "string"},
                        "body": {"type": "string", "description": "the signed text"},
                        "signature": {"type": "string", "description": "detached CMS over body, DER, base64"}
                    }
                },
                "LogLeaf": {
                    "type": "object",
                    "required": ["index", "audit_seq", "identifier", "event", "leaf", "leaf_hash"],
                    "properties": {
                        "index": {"type": "integer", "minimum": 0},
                        "audit_seq": {"type": "integer"},
                        "identifier": {"type": "string"},
                        "event": {"type": "string", "enum": ["issued", "changed", "revoked"]},
                        "leaf": {"type": "string", "description": "canonical JSON; its hash is SHA-256(0x00 ‖ leaf)"},
                        "leaf_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"}
                    }
                }
    })
}

/// The public routes of the transparency log.
fn log_paths(problem: &Value) -> Value {
    json!({
            "/api/v1/log/checkpoint": {"get": {
                "summary": "The newest signed checkpoint of the transparency log (public)",
                "responses": {
                    "200": {"description": "checkpoint", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Checkpoint"}}}},
                    "404": problem, "429": problem
                }
            }},
            "/api/v1/log/checkpoints/{size}": {"get": {
                "summary": "The checkpoint of a tree of `size` leaves (public)",
                "parameters": [{"name": "size", "in": "path", "required": true, "schema": {"type": "integer", "minimum": 0}}],
                "responses": {
                    "200": {"description": "checkpoint", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Checkpoint"}}}},
                    "400": problem, "404": problem, "429": problem
                }
            }},
            "/api/v1/log/proof/{identifier}": {"get": {
                "summary": "A version's log leaves and their inclusion proofs in the newest checkpoint (public; RFC 9162 §2.1.3)",
                "parameters": [{"name": "identifier", "in": "path", "required": true, "schema": {"type": "string"}}],
                "responses": {
                    "200": {"description": "leaves and proofs", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["identifier", "leaves", "proofs"],
                        "properties": {
                            "identifier": {"type": "string"},
                            "leaves": {"type": "array", "items": {"$ref": "#/components/schemas/LogLeaf"}},
                            "proofs": {"type": "array", "items": {
                                "type": "object", "required": ["leaf", "tree_size", "audit_path", "checkpoint"],
                                "properties": {
                                    "leaf": {"$ref": "#/components/schemas/LogLeaf"},
                                    "tree_size": {"type": "integer", "minimum": 1},
                                    "audit_path": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
                                    "checkpoint": {"$ref": "#/components/schemas/Checkpoint"}
                                }
                            }},
                            "checkpoint": {"oneOf": [{"$ref": "#/components/schemas/Checkpoint"}, {"type": "null"}]}
                        }
                    }}}},
                    "400": problem, "404": problem, "429": problem
                }
            }},
            "/api/v1/log/consistency": {"get": {
                "summary": "Consistency proof from a tree of `from` leaves to a stored checkpoint (public; RFC 9162 §2.1.4)",
                "parameters": [
                    {"name": "from", "in": "query", "required": true, "schema": {"type": "integer", "minimum": 0}},
                    {"name": "to", "in": "query", "schema": {"type": "integer", "minimum": 0}}
                ],
                "responses": {
                    "200": {"description": "proof", "content": {"application/json": {"schema": {
                        "type": "object", "required": ["from", "to", "root_hash", "proof", "checkpoint"],
                        "properties": {
                            "from": {"type": "integer"}, "to": {"type": "integer"},
                            "root_hash": {"type": "string", "pattern": "^[0-9a-f]{64}$"},
                            "proof": {"type": "array", "items": {"type": "string", "pattern": "^[0-9a-f]{64}$"}},
                            "checkpoint": {"$ref": "#/components/schemas/Checkpoint"}
                        }
                    }}}},
                    "400": problem, "404": problem, "429": problem
                }
            }}
    })
}
