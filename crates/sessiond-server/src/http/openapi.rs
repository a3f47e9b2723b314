//! The OpenAPI document: what the route declarations say, completed with what the shared
//! machinery answers on every route (unreadable bodies, missing credentials, unavailable
//! storage), one reusable `Problem` answer for every error, and the facts of this server's
//! configuration (its exchange providers). Client generators and fuzzers read this, so
//! each status here is one the server can really answer, and each request constraint is
//! one it really enforces.

use serde_json::{Value, json};
use sessiond_core::{Code, Email, RevokeReason};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "sessiond",
        description = "Sessions and tokens: logins, rotating refresh tokens, immediate revocation, per-device session lists. Every error is `application/problem+json` (RFC 9457) with a stable `code`; the `Problem` schema lists every code.",
    ),
    modifiers(&SecuritySchemes),
    components(schemas(super::dto::Except, super::dto::CookieTokenResponse)),
    tags(
        (name = "login", description = "Ways to start a session"),
        (name = "tokens", description = "Refresh, validation and introspection"),
        (name = "session", description = "The calling session and the person's other sessions"),
        (name = "account", description = "The person's password and email address"),
        (name = "admin", description = "Trusted backends (admin API key)"),
        (name = "revocations", description = "The revocation feed that token verifiers in app backends follow (verifier key)"),
        (name = "forward-auth", description = "Authentication at a reverse proxy (nginx `auth_request`, Traefik ForwardAuth, Caddy `forward_auth`)"),
        (name = "operations", description = "Health, metrics, keys"),
    )
)]
pub struct ApiDoc;

struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let mut bearer = Http::new(HttpAuthScheme::Bearer);
        bearer.bearer_format = Some("JWT".into());
        bearer.description = Some("An access token".into());
        components.add_security_scheme("bearer", SecurityScheme::Http(bearer));
        let mut admin = Http::new(HttpAuthScheme::Bearer);
        admin.description = Some("The admin API key".into());
        components.add_security_scheme("admin_key", SecurityScheme::Http(admin));
        let mut verifier = Http::new(HttpAuthScheme::Bearer);
        verifier.description = Some(
            "A verifier key (`verifier_api_keys`) or the admin API key: reads the revocation \
             feed and introspects tokens, nothing else"
                .into(),
        );
        components.add_security_scheme("verifier_key", SecurityScheme::Http(verifier));
        let cookie = ApiKey::Cookie(ApiKeyValue::with_description(
            "__Host-sessiond_at",
            "Cookie mode: the access token in its cookie (`sessiond_at` with `web.insecure_cookies`). When `Authorization: Bearer` is sent too, the bearer token is the one used. Unsafe requests authenticated by the cookie pass the CSRF check or answer `403 CSRF_REJECTED`.",
        ));
        components.add_security_scheme("access_cookie", SecurityScheme::ApiKey(cookie));
    }
}

/// What the document depends on beyond the code: this server's configuration.
pub struct Facts {
    /// Configured exchange providers, by name: the values `provider` takes.
    pub exchange_providers: Vec<String>,
}

const PROBLEM_REF: &str = "#/components/responses/Problem";
const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];

/// The finished document.
pub fn complete(document: utoipa::openapi::OpenApi, facts: &Facts) -> Value {
    let mut doc = serde_json::to_value(document).expect("the OpenAPI document serialises");
    add_components(&mut doc);
    constrain_requests(&mut doc, facts);
    describe_cookie_mode(&mut doc);
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            for method in METHODS {
                if let Some(operation) = item.get_mut(method) {
                    complete_answers(path, operation);
                }
            }
        }
    }
    doc
}

/// Statuses the shared machinery can answer on an operation, from what it takes.
fn implied_answers(path: &str, operation: &Value) -> Vec<(&'static str, &'static str)> {
    let mut answers = Vec::new();
    let params = operation["parameters"].as_array();
    let takes = |place: &str| params.is_some_and(|ps| ps.iter().any(|p| p["in"] == place));
    if operation.get("requestBody").is_some() {
        answers.extend([
            (
                "400",
                "`VALIDATION_ERROR`: the body is not JSON of the expected types",
            ),
            (
                "413",
                "`PAYLOAD_TOO_LARGE`: the body is larger than the server takes",
            ),
            (
                "415",
                "`VALIDATION_ERROR`: the body is not `application/json`",
            ),
            (
                "422",
                "`VALIDATION_ERROR`: a field breaks a rule (`errors` names it)",
            ),
        ]);
    }
    if takes("path") || takes("query") || takes("header") {
        answers.push((
            "400",
            "`VALIDATION_ERROR`: a malformed path, query or header parameter",
        ));
    }
    let schemes: Vec<&str> = operation["security"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_object)
        .flat_map(|requirement| requirement.keys().map(String::as_str))
        .collect();
    if schemes.contains(&"bearer") {
        answers.push((
            "401",
            "`TOKEN_NOT_PROVIDED`, `TOKEN_INVALID`, `TOKEN_EXPIRED` (with `expired_at`), `SESSION_REVOKED` (with `revoked_reason`), `SESSION_EXPIRED`, `SESSION_INACTIVE`, `USER_INACTIVE`",
        ));
    }
    if schemes.contains(&"admin_key") {
        answers.extend([
            ("401", "`TOKEN_NOT_PROVIDED`: no API key"),
            ("403", "`FORBIDDEN`: not the admin API key"),
        ]);
    } else if schemes.contains(&"verifier_key") {
        answers.extend([
            ("401", "`TOKEN_NOT_PROVIDED`: no API key"),
            (
                "403",
                "`FORBIDDEN`: neither a verifier key nor the admin API key",
            ),
        ]);
    }
    if schemes.contains(&"access_cookie") || takes("header") {
        answers.push((
            "403",
            "`CSRF_REJECTED`: a cookie-authenticated or cookie-mode request failed the cross-site check",
        ));
    }
    // The forward-auth check answers 200 or 401 and nothing else (it fails closed).
    if path.starts_with("/v1/") && path != FORWARD_AUTH {
        answers.push(("503", "`STORAGE_UNAVAILABLE`: retry after `Retry-After`"));
    }
    answers
}

const FORWARD_AUTH: &str = "/v1/auth/check";
const TOKEN_RESPONSE_REF: &str = "#/components/schemas/TokenResponse";

/// Cookie mode: every operation a bearer access token authenticates also takes the access
/// cookie; every login and refresh answering a token response (admin-created sessions
/// aside: a backend sets its own cookies) takes the transport switch and may answer the
/// cookie-mode body instead.
fn describe_cookie_mode(doc: &mut Value) {
    let transport = json!({
        "name": "Sessiond-Token-Transport",
        "in": "header",
        "required": false,
        "description": "`cookie`: the tokens are answered as `Set-Cookie` (`__Host-sessiond_at`, `__Secure-sessiond_rt`) and the body is a `CookieTokenResponse` without them; the request passes the CSRF check. `body` (the default): the tokens are in the body.",
        "schema": { "type": "string", "enum": ["cookie", "body"] }
    });
    let Some(paths) = doc["paths"].as_object_mut() else {
        return;
    };
    for (path, item) in paths.iter_mut() {
        for method in METHODS {
            let Some(operation) = item.get_mut(method) else {
                continue;
            };
            // (`get_mut`: indexing a missing member mutably would insert a `null`.)
            if let Some(security) = operation.get_mut("security").and_then(Value::as_array_mut)
                && security.iter().any(|r| r.get("bearer").is_some())
                && !security.iter().any(|r| r.get("access_cookie").is_some())
            {
                security.push(json!({ "access_cookie": [] }));
            }
            if path.starts_with("/v1/admin/") {
                continue;
            }
            let Some(responses) = operation
                .get_mut("responses")
                .and_then(Value::as_object_mut)
            else {
                continue;
            };
            let mut issues_tokens = false;
            for (status, response) in responses.iter_mut() {
                let schema = response.pointer_mut("/content/application~1json/schema");
                if let Some(schema) = schema
                    && status.starts_with('2')
                    && schema["$ref"] == TOKEN_RESPONSE_REF
                {
                    *schema = json!({ "anyOf": [
                        { "$ref": TOKEN_RESPONSE_REF },
                        { "$ref": "#/components/schemas/CookieTokenResponse" }
                    ]});
                    issues_tokens = true;
                }
            }
            if issues_tokens {
                operation
                    .as_object_mut()
                    .expect("an operation is an object")
                    .entry("parameters")
                    .or_insert_with(|| json!([]))
                    .as_array_mut()
                    .expect("parameters are a list")
                    .push(transport.clone());
            }
        }
    }
}

/// Adds the implied answers an operation does not declare itself, and makes every error
/// answer the one `Problem` response, keeping the operation's own description of it.
fn complete_answers(path: &str, operation: &mut Value) {
    let implied = implied_answers(path, operation);
    let Some(responses) = operation["responses"].as_object_mut() else {
        return;
    };
    for (status, description) in implied {
        responses
            .entry(status)
            .or_insert_with(|| json!({ "description": description }));
    }
    for (status, response) in responses.iter_mut() {
        let is_error = status.as_str() >= "400";
        if is_error && response.get("content").is_none() {
            let description = response["description"].as_str().unwrap_or("").to_owned();
            *response = json!({ "$ref": PROBLEM_REF, "description": description });
        }
    }
}

fn add_components(doc: &mut Value) {
    let codes: Vec<&str> = Code::ALL.iter().map(|c| c.as_str()).collect();
    let reasons: Vec<&str> = RevokeReason::ALL.iter().map(|r| r.as_str()).collect();
    let components = doc
        .as_object_mut()
        .expect("a document is an object")
        .entry("components")
        .or_insert_with(|| json!({}));
    let password_rules: Vec<&str> = sessiond_core::password_policy::Rule::ALL
        .iter()
        .map(|r| r.reason())
        .collect();
    components["schemas"]["Problem"] = json!({
        "type": "object",
        "description": "An RFC 9457 problem document; members beyond the standard ones appear where they apply.",
        "required": ["type", "title", "status", "code", "detail"],
        "properties": {
            "type": { "type": "string", "description": "`urn:sessiond:problem:<code in lower case>`" },
            "title": { "type": "string", "description": "The same for every occurrence of the code" },
            "status": { "type": "integer", "minimum": 400, "maximum": 599 },
            "code": { "type": "string", "enum": codes, "description": "Stable machine-readable code" },
            "detail": { "type": "string" },
            "instance": { "type": "string", "description": "`urn:sessiond:request:<X-Request-Id>`, for finding the request's log lines" },
            "errors": {
                "type": "array",
                "description": "`VALIDATION_ERROR`: the fields at fault",
                "items": {
                    "type": "object",
                    "required": ["field", "message"],
                    "properties": {
                        "field": { "type": "string" },
                        "message": { "type": "string" },
                        "reason": {
                            "type": "string",
                            "enum": password_rules,
                            "description": "The password rule the value broke"
                        }
                    }
                }
            },
            "expired_at": { "type": "string", "format": "date-time", "description": "`TOKEN_EXPIRED`" },
            "retry_after": { "type": "integer", "minimum": 0, "description": "Seconds, as in `Retry-After`" },
            "revoked_reason": { "type": "string", "enum": reasons, "description": "`SESSION_REVOKED`: why the session ended" },
            "sessions": {
                "type": "array",
                "description": "`SESSION_LIMIT_EXCEEDED`: the user's live sessions",
                "items": {
                    "type": "object",
                    "required": ["id", "device", "last_active_at"],
                    "properties": {
                        "id": { "type": "string", "format": "uuid" },
                        "device": { "$ref": "#/components/schemas/DeviceView" },
                        "last_active_at": { "type": "string", "format": "date-time" }
                    }
                }
            }
        }
    });
    components["responses"]["Problem"] = json!({
        "description": "An error, as `application/problem+json`",
        "headers": {
            "Retry-After": {
                "description": "On 429 and 503: seconds to wait before retrying",
                "schema": { "type": "integer", "minimum": 0 }
            },
            "WWW-Authenticate": {
                "description": "On 401 caused by the bearer token or API key (RFC 6750)",
                "schema": { "type": "string" }
            }
        },
        "content": {
            "application/problem+json": { "schema": { "$ref": "#/components/schemas/Problem" } }
        }
    });
}

/// Request constraints that come from the domain's rules (the route declarations carry
/// the literal ones; `the_document_states_the_domain_limits` keeps both equal).
fn constrain_requests(doc: &mut Value, facts: &Facts) {
    let schemas = &mut doc["components"]["schemas"];
    let email = json!({
        "type": "string",
        "maxLength": Email::MAX_CHARS,
        "pattern": Email::PATTERN,
        "description": "An email address; surrounding blanks are trimmed and it is lower-cased",
    });
    for name in [
        "RegisterRequest",
        "PasswordLoginRequest",
        "OtpRequest",
        "PasswordResetRequest",
        "EmailChangeRequest",
    ] {
        if let Some(properties) = schemas[name]["properties"].as_object_mut() {
            properties.insert("email".into(), email.clone());
        }
    }
    let mut nullable_email = email.clone();
    nullable_email["type"] = json!(["string", "null"]);
    nullable_email["description"] = json!(
        "A new address (unverified unless `email_verified` is sent too); surrounding blanks are trimmed and it is lower-cased"
    );
    if let Some(properties) = schemas["PatchUserRequest"]["properties"].as_object_mut() {
        properties.insert("email".into(), nullable_email);
    }
    if let Some(properties) = schemas["CookieTokenResponse"]["properties"].as_object_mut() {
        properties.insert(
            "token_transport".into(),
            json!({ "type": "string", "enum": ["cookie"], "description": "Always `cookie`: the tokens are in `Set-Cookie`" }),
        );
    }
    if let Some(properties) = schemas["ExchangeRequest"]["properties"].as_object_mut() {
        let names = &facts.exchange_providers;
        let description = "A configured provider: one of `enum`; a server with none configured (JSON Schema has no empty `enum`) answers every exchange with `422`";
        let provider = if names.is_empty() {
            json!({ "type": "string", "description": description })
        } else {
            json!({ "type": "string", "enum": names, "description": description })
        };
        properties.insert("provider".into(), provider);
    }
    let event_types: Vec<&str> = sessiond_core::EventType::ALL
        .iter()
        .map(|t| t.as_str())
        .collect();
    let events = &mut doc["paths"]["/v1/admin/events"]["get"]["parameters"];
    if let Some(parameter) = events
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == "type"))
    {
        parameter["schema"] = json!({ "type": "string", "enum": event_types });
    }
    let users = &mut doc["paths"]["/v1/admin/users"]["get"]["parameters"];
    if let Some(parameter) = users
        .as_array_mut()
        .and_then(|ps| ps.iter_mut().find(|p| p["name"] == "email"))
    {
        parameter["schema"] = email;
    }
}

#[cfg(test)]
mod tests {
    use serde_json::Map;
    use sessiond_core::fields::{
        MAX_DEVICE_FIELD_CHARS, MAX_EXCHANGE_NONCE_CHARS, MAX_EXCHANGE_TOKEN_CHARS, MAX_NAME_CHARS,
    };
    use sessiond_core::password::Password;

    use super::*;

    fn property<'a>(doc: &'a Value, schema: &str, field: &str) -> &'a Map<String, Value> {
        doc["components"]["schemas"][schema]["properties"][field]
            .as_object()
            .unwrap_or_else(|| panic!("{schema}.{field} is described"))
    }

    fn document() -> Value {
        let (_, openapi) = super::super::api();
        complete(
            openapi,
            &Facts {
                exchange_providers: vec!["rapido".into()],
            },
        )
    }

    #[test]
    fn the_document_states_the_domain_limits() {
        let doc = document();
        let limit = |schema, field| property(&doc, schema, field)["maxLength"].as_u64();
        let min = |schema, field| property(&doc, schema, field)["minLength"].as_u64();
        assert_eq!(
            limit("RegisterRequest", "password"),
            Some(Password::MAX_CHARS as u64)
        );
        assert_eq!(
            min("RegisterRequest", "password"),
            Some(Password::MIN_CHARS as u64)
        );
        assert_eq!(
            limit("RegisterRequest", "name"),
            Some(MAX_NAME_CHARS as u64)
        );
        for field in ["device_id", "user_agent", "label"] {
            assert_eq!(
                limit("DeviceInput", field),
                Some(MAX_DEVICE_FIELD_CHARS as u64)
            );
        }
        assert_eq!(
            limit("ExchangeRequest", "token"),
            Some(MAX_EXCHANGE_TOKEN_CHARS as u64)
        );
        assert_eq!(min("ExchangeRequest", "token"), Some(1));
        assert_eq!(
            limit("ExchangeRequest", "nonce"),
            Some(MAX_EXCHANGE_NONCE_CHARS as u64)
        );
        assert_eq!(limit("OtpRequest", "email"), Some(Email::MAX_CHARS as u64));
    }

    /// A generator that reads the document sends only addresses the server takes.
    #[test]
    fn every_email_a_request_carries_states_the_address_rules() {
        let doc = document();
        let mut checked = 0;
        for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
            if let Some(email) = schema["properties"]
                .get("email")
                .filter(|_| name.ends_with("Request"))
            {
                assert_eq!(email["pattern"], Email::PATTERN, "{name}");
                assert_eq!(email["maxLength"], Email::MAX_CHARS, "{name}");
                checked += 1;
            }
        }
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                let parameters = operation["parameters"].as_array().into_iter().flatten();
                for parameter in parameters.filter(|p| p["name"] == "email") {
                    assert_eq!(
                        parameter["schema"]["pattern"],
                        Email::PATTERN,
                        "{method} {path}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked >= 7, "{checked}");
    }

    #[test]
    fn every_error_answer_is_the_problem_response_and_lists_every_code() {
        let doc = document();
        let codes = doc["components"]["schemas"]["Problem"]["properties"]["code"]["enum"]
            .as_array()
            .unwrap();
        assert_eq!(codes.len(), Code::ALL.len());
        let mut errors = 0;
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, operation) in item.as_object().unwrap() {
                for (status, response) in operation["responses"].as_object().unwrap() {
                    if status.as_str() >= "400" && path != "/readyz" {
                        errors += 1;
                        assert_eq!(
                            response["$ref"], PROBLEM_REF,
                            "{method} {path} {status}: {response}"
                        );
                        assert!(
                            response["description"]
                                .as_str()
                                .is_some_and(|d| !d.is_empty())
                        );
                    }
                }
            }
        }
        assert!(errors > 50, "{errors}");
    }

    #[test]
    fn protected_operations_declare_their_credentials_and_the_401() {
        let doc = document();
        let session = &doc["paths"]["/v1/sessions"]["get"];
        assert_eq!(
            session["security"],
            json!([{ "bearer": [] }, { "access_cookie": [] }])
        );
        assert!(session["responses"]["401"].is_object());
        let admin = &doc["paths"]["/v1/admin/cleanup"]["post"];
        assert!(admin["responses"]["401"].is_object());
        assert!(admin["responses"]["403"].is_object());
    }

    #[test]
    fn the_api_guide_explains_every_code() {
        let guide = include_str!("../../../../docs/api.md");
        for code in Code::ALL {
            let start = format!("| `{code}` | ");
            let row = guide.lines().find_map(|l| l.strip_prefix(start.as_str()));
            let statuses = row.and_then(|r| r.split(" | ").next()).unwrap_or_default();
            assert!(
                statuses.contains(&code.status().to_string()),
                "docs/api.md lacks the row for {code} with its status"
            );
        }
    }

    #[test]
    fn the_exchange_provider_is_one_of_the_configured_ones() {
        let doc = document();
        assert_eq!(
            property(&doc, "ExchangeRequest", "provider")["enum"],
            json!(["rapido"])
        );
    }
}
