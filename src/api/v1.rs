//! The management API, `/api/v1`: flags, their access per environment, environments, release
//! stages, the audit log and access tokens, for CI jobs, back-office tools and agents. Callers
//! send an access token (`Authorization: Bearer gth_…`, `gatehouse tokens create`); every call acts
//! as the token's member or service role and goes through the same service calls, and so the same
//! authorization decision and change pipeline, as the admin UI. Errors are problem details
//! (RFC 9457, `application/problem+json`) with a stable `type` per kind of error. The document is
//! `GET /api/v1/openapi.json` (`v1-openapi.json` beside this file).

use std::collections::HashMap;

use axum::body::Bytes;
use axum::extract::{FromRef, FromRequestParts, Path, Query, State};
use axum::http::request::Parts;
use axum::http::{header, HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{any, get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};

use crate::model::secret::digest;
use crate::model::token::TokenView;
use crate::model::{AccessRules, Environment, Flag, ReleaseStage, SegmentCondition};
use crate::service::access::Refusal;
use crate::service::{
    AccessChange, Actor, AuditFilter, Change, CheckFilter, FlagDetail, FlagFilter, NewFlag, Outcome,
    SegmentRecord, Service, ServiceError, TokenRefusal,
};
use crate::state::AppState;

/// The OpenAPI 3.1 description of the routes below.
const OPENAPI: &str = include_str!("v1-openapi.json");
/// Most items a list returns per page.
const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 50;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/openapi.json", get(openapi))
        .route("/api/v1/flags", get(list_flags).post(create_flag))
        .route("/api/v1/flags/{key}", get(get_flag).patch(update_flag))
        .route("/api/v1/flags/{key}/archive", post(archive_flag))
        .route("/api/v1/flags/{key}/restore", post(restore_flag))
        .route(
            "/api/v1/flags/{key}/access/{environment}",
            get(get_access).put(put_access),
        )
        .route(
            "/api/v1/flags/{key}/config/{environment}",
            get(get_config).put(put_config),
        )
        .route("/api/v1/flags/{key}/stage", post(move_stage))
        .route(
            "/api/v1/flags/{key}/access/{environment}/grant",
            post(grant_access),
        )
        .route(
            "/api/v1/flags/{key}/access/{environment}/revoke",
            post(revoke_access),
        )
        .route("/api/v1/export", get(export))
        .route("/api/v1/import", post(import))
        .route("/api/v1/segments", get(segments))
        .route("/api/v1/segments/{key}", axum::routing::put(put_segment))
        .route("/api/v1/companies", get(companies))
        .route("/api/v1/companies/{id}/access", get(company_access))
        .route("/api/v1/users", get(users))
        .route("/api/v1/users/{id}/access", get(user_access))
        .route("/api/v1/environments", get(environments))
        .route("/api/v1/stages", get(stages).post(add_stage))
        .route("/api/v1/stages/{id}", axum::routing::patch(update_stage))
        .route("/api/v1/audit", get(audit))
        .route("/api/v1/tokens", get(tokens))
        .route("/api/v1/tokens/{prefix}", axum::routing::delete(revoke_token))
        .route("/api/v1", any(unknown))
        .route("/api/v1/{*rest}", any(unknown))
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

async fn unknown() -> Problem {
    Problem::new(
        StatusCode::NOT_FOUND,
        "not-found",
        "no such route; see /api/v1/openapi.json",
    )
}

/// An error as problem details: `type` names the kind (`urn:gatehouse:problem:<kind>`).
#[derive(Debug)]
pub struct Problem {
    status: StatusCode,
    kind: &'static str,
    detail: String,
    field: Option<String>,
    /// Every problem of a document that does not pass (an import), so all can be fixed at once.
    problems: Vec<String>,
}

impl Problem {
    fn new(status: StatusCode, kind: &'static str, detail: impl Into<String>) -> Problem {
        Problem {
            status,
            kind,
            detail: detail.into(),
            field: None,
            problems: Vec::new(),
        }
    }

    fn bad_request(field: &str, detail: impl Into<String>) -> Problem {
        Problem {
            field: Some(field.to_string()),
            ..Problem::new(StatusCode::BAD_REQUEST, "bad-request", detail)
        }
    }
}

impl IntoResponse for Problem {
    fn into_response(self) -> Response {
        let mut body = json!({
            "type": format!("urn:gatehouse:problem:{}", self.kind),
            "title": self.status.canonical_reason().unwrap_or("Error"),
            "status": self.status.as_u16(),
            "detail": self.detail,
        });
        if let Some(field) = self.field {
            body["field"] = json!(field);
        }
        if !self.problems.is_empty() {
            body["problems"] = json!(self.problems);
        }
        let mut response = (self.status, Json(body)).into_response();
        response.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if self.status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

impl From<ServiceError> for Problem {
    fn from(error: ServiceError) -> Problem {
        let detail = error.to_string();
        match error {
            ServiceError::Invalid { field, .. } => Problem {
                field: Some(field),
                ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", detail)
            },
            ServiceError::Conflict(_) => Problem::new(StatusCode::CONFLICT, "conflict", detail),
            ServiceError::NotFound(_) => Problem::new(StatusCode::NOT_FOUND, "not-found", detail),
            ServiceError::Denied(Refusal::NotSignedIn) => {
                Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", detail)
            }
            ServiceError::Denied(_) => Problem::new(StatusCode::FORBIDDEN, "forbidden", detail),
            ServiceError::Refused(_) => Problem::new(StatusCode::CONFLICT, "refused", detail),
            ServiceError::TooManyAttempts(_) => {
                Problem::new(StatusCode::TOO_MANY_REQUESTS, "too-many-requests", detail)
            }
            ServiceError::LimitReached(_) => Problem::new(StatusCode::CONFLICT, "limit-reached", detail),
            ServiceError::Busy(_) => Problem::new(StatusCode::SERVICE_UNAVAILABLE, "busy", detail),
            ServiceError::Corrupt(_) => {
                Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt-data", detail)
            }
            ServiceError::Internal => Problem::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", detail),
        }
    }
}

type ApiResult = Result<Response, Problem>;

/// The caller: the actor its bearer token acts as, and the token's id.
pub struct Caller {
    actor: Actor,
    token_id: i64,
}

impl<S> FromRequestParts<S> for Caller
where
    S: Send + Sync,
    Service: FromRef<S>,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Caller, Problem> {
        let service = Service::from_ref(state);
        let unauthorized = |refusal: TokenRefusal| {
            Problem::new(StatusCode::UNAUTHORIZED, "unauthorized", refusal.to_string())
        };
        let token = super::key::bearer(&parts.headers).ok_or_else(|| unauthorized(TokenRefusal::Missing))?;
        match service.authenticate_token(token).await? {
            Ok((actor, token_id)) => Ok(Caller { actor, token_id }),
            Err(refusal) => Err(unauthorized(refusal)),
        }
    }
}

/// A path parameter, refused as a problem when it does not decode.
struct Param<T>(T);

impl<S, T> FromRequestParts<S> for Param<T>
where
    S: Send + Sync,
    T: DeserializeOwned + Send,
{
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Param<T>, Problem> {
        match Path::<T>::from_request_parts(parts, state).await {
            Ok(Path(value)) => Ok(Param(value)),
            Err(rejection) => Err(Problem::bad_request("path", rejection.body_text())),
        }
    }
}

/// A JSON body, refused as a problem when it is not one of `T`.
fn body<T: DeserializeOwned>(bytes: &Bytes) -> Result<T, Problem> {
    serde_json::from_slice(bytes)
        .map_err(|error| Problem::bad_request("body", format!("the body is not valid: {error}")))
}

/// Reads a query parameter as `T`.
fn query<T: std::str::FromStr>(params: &HashMap<String, String>, name: &str) -> Result<Option<T>, Problem> {
    match params.get(name).map(|v| v.trim()).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => text
            .parse()
            .map(Some)
            .map_err(|_| Problem::bad_request(name, format!("{name} is not valid: {text:?}"))),
    }
}

/// `page` (from 0) and `limit` (1 to [`MAX_LIMIT`]).
fn paging(params: &HashMap<String, String>) -> Result<(usize, usize), Problem> {
    let page = query::<usize>(params, "page")?.unwrap_or(0);
    let limit = query::<usize>(params, "limit")?.unwrap_or(DEFAULT_LIMIT);
    if limit == 0 || limit > MAX_LIMIT {
        return Err(Problem::bad_request(
            "limit",
            format!("limit is 1 to {MAX_LIMIT}"),
        ));
    }
    if page > 1_000_000 {
        return Err(Problem::bad_request("page", "page is at most 1000000"));
    }
    Ok((page, limit))
}

fn stage_json(stages: &[ReleaseStage], id: i64) -> Value {
    let name = stages.iter().find(|s| s.id == id).map(|s| s.name.as_str());
    json!({ "id": id, "name": name.unwrap_or("") })
}

fn flag_json(flag: &Flag, stages: &[ReleaseStage]) -> Value {
    json!({
        "key": flag.key.as_str(),
        "name": flag.name,
        "description": flag.description,
        "stage": stage_json(stages, flag.stage_id),
        "ownerId": flag.owner_id,
        "type": if flag.permanent { "permanent" } else { "temporary" },
        "archived": flag.archived,
        "createdAt": flag.created_at,
        "updatedAt": flag.updated_at,
    })
}

fn access_json(environment: &Environment, rules: &AccessRules, version: i64) -> Value {
    json!({ "environment": environment.key.as_str(), "rules": rules, "version": version })
}

fn environment_json(environment: &Environment) -> Value {
    json!({
        "key": environment.key.as_str(),
        "name": environment.name,
        "isProduction": environment.is_production,
        "requiredApprovals": environment.required_approvals,
    })
}

fn token_json(token: &TokenView) -> Value {
    json!({
        "prefix": token.prefix,
        "kind": token.kind,
        "name": token.name,
        "memberEmail": token.member_email,
        "role": token.role.as_str(),
        "createdBy": token.created_by,
        "createdAt": token.created_at,
        "expiresAt": token.expires_at,
        "revokedAt": token.revoked_at,
    })
}

/// `ETag` of a stored version.
fn etag(version: i64) -> HeaderValue {
    HeaderValue::from_str(&format!("\"{version}\"")).unwrap_or(HeaderValue::from_static("\"0\""))
}

async fn list_flags(
    caller: Caller,
    State(service): State<Service>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let (page, limit) = paging(&params)?;
    let filter = FlagFilter {
        search: params.get("q").cloned().unwrap_or_default(),
        stage: query(&params, "stageId")?,
        owner: query(&params, "ownerId")?,
        archived: query(&params, "archived")?.unwrap_or(false),
    };
    let list = service.flag_list(&caller.actor, &filter, page, limit).await?;
    let items: Vec<Value> = list
        .flags
        .iter()
        .map(|(flag, _)| flag_json(flag, &list.stages))
        .collect();
    Ok(Json(json!({ "items": items, "total": list.total, "page": page, "limit": limit })).into_response())
}

/// A flag with its access in every environment.
fn flag_with_access_json(detail: &FlagDetail) -> Value {
    let mut answer = flag_json(&detail.flag, &detail.stages);
    answer["access"] = detail
        .access
        .iter()
        .map(|(environment, rules, version)| access_json(environment, rules, *version))
        .collect();
    answer
}

/// The flag `key` with its access in every environment, as a response of `status`.
async fn flag_answer(service: &Service, actor: &Actor, key: &str, status: StatusCode) -> ApiResult {
    let detail = service.flag_detail(actor, key).await?;
    Ok((status, Json(flag_with_access_json(&detail))).into_response())
}

/// Applies a change of versioned rules or config; a version that moved since the caller's
/// `If-Match` is 412 `version-mismatch`, other conflicts are what they are.
async fn apply_versioned(
    service: &Service,
    actor: &Actor,
    change: Change,
    expected_version: Option<i64>,
) -> Result<(), Problem> {
    match service.apply(actor, change).await {
        Ok(_) => Ok(()),
        Err(ServiceError::Conflict(message)) if expected_version.is_some() => Err(Problem::new(
            StatusCode::PRECONDITION_FAILED,
            "version-mismatch",
            message,
        )),
        Err(error) => Err(error.into()),
    }
}

async fn get_flag(caller: Caller, State(service): State<Service>, Param(key): Param<String>) -> ApiResult {
    flag_answer(&service, &caller.actor, &key, StatusCode::OK).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CreateFlag {
    key: String,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(default, rename = "type")]
    kind: Option<FlagType>,
    #[serde(default)]
    owner_id: Option<i64>,
}

#[derive(Clone, Copy, Deserialize, PartialEq)]
#[serde(rename_all = "lowercase")]
enum FlagType {
    Temporary,
    Permanent,
}

async fn create_flag(
    caller: Caller,
    State(service): State<Service>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let request: CreateFlag = body(&bytes)?;
    let key = request.key.trim().to_string();
    let change = Change::CreateFlag(NewFlag {
        name: request.name.unwrap_or_else(|| key.clone()),
        key: key.clone(),
        description: request.description,
        owner_id: request.owner_id,
        permanent: request.kind == Some(FlagType::Permanent),
        ..Default::default()
    });
    let change = match headers.get("idempotency-key") {
        None => change,
        Some(value) => Change::Idempotent {
            token_id: caller.token_id,
            key: value
                .to_str()
                .map_err(|_| Problem::bad_request("Idempotency-Key", "an Idempotency-Key is ASCII text"))?
                .to_string(),
            fingerprint: digest(&format!(
                "{} /api/v1/flags {}",
                Method::POST,
                digest_bytes(&bytes)
            )),
            subject: key.clone(),
            change: Box::new(change),
        },
    };
    let (created, replayed) = match service.apply(&caller.actor, change).await? {
        Outcome::Replayed(first) => (first, true),
        outcome => (outcome.into_flag()?.key.to_string(), false),
    };
    let mut response = flag_answer(&service, &caller.actor, &created, StatusCode::CREATED).await?;
    if let Ok(location) = HeaderValue::from_str(&format!("/api/v1/flags/{created}")) {
        response.headers_mut().insert(header::LOCATION, location);
    }
    if replayed {
        response
            .headers_mut()
            .insert("idempotent-replayed", HeaderValue::from_static("true"));
    }
    Ok(response)
}

fn digest_bytes(bytes: &Bytes) -> String {
    digest(&String::from_utf8_lossy(bytes))
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct UpdateFlag {
    name: Option<String>,
    description: Option<String>,
    /// `null` clears the owner; absent keeps it.
    #[serde(default, with = "serde_with_double_option")]
    owner_id: Option<Option<i64>>,
    #[serde(rename = "type")]
    kind: Option<FlagType>,
}

/// `Option<Option<T>>` that tells an absent field (`None`) from `null` (`Some(None)`).
mod serde_with_double_option {
    use serde::{Deserialize, Deserializer};

    pub fn deserialize<'de, D, T>(deserializer: D) -> Result<Option<Option<T>>, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de>,
    {
        Option::<T>::deserialize(deserializer).map(Some)
    }
}

async fn update_flag(
    caller: Caller,
    State(service): State<Service>,
    Param(key): Param<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: UpdateFlag = body(&bytes)?;
    let flag = service.flag_detail(&caller.actor, &key).await?.flag;
    let change = Change::UpdateFlag {
        key: flag.key.to_string(),
        name: request.name.unwrap_or(flag.name),
        description: request.description.unwrap_or(flag.description),
        owner_id: request.owner_id.unwrap_or(flag.owner_id),
        permanent: request.kind.map_or(flag.permanent, |k| k == FlagType::Permanent),
        stage: crate::service::StageRef::Id(flag.stage_id),
        archived: flag.archived,
    };
    service.apply(&caller.actor, change).await?;
    flag_answer(&service, &caller.actor, flag.key.as_str(), StatusCode::OK).await
}

async fn set_archived(caller: Caller, service: Service, key: String, archived: bool) -> ApiResult {
    let change = Change::SetArchived {
        flag: key.clone(),
        archived,
    };
    service.apply(&caller.actor, change).await?;
    flag_answer(&service, &caller.actor, &key, StatusCode::OK).await
}

async fn archive_flag(
    caller: Caller,
    State(service): State<Service>,
    Param(key): Param<String>,
) -> ApiResult {
    set_archived(caller, service, key, true).await
}

async fn restore_flag(
    caller: Caller,
    State(service): State<Service>,
    Param(key): Param<String>,
) -> ApiResult {
    set_archived(caller, service, key, false).await
}

async fn get_access(
    caller: Caller,
    State(service): State<Service>,
    Param((key, environment)): Param<(String, String)>,
) -> ApiResult {
    let detail = service.flag_detail(&caller.actor, &key).await?;
    let Some((environment, rules, version)) =
        detail.access.iter().find(|(e, ..)| e.key.as_str() == environment)
    else {
        return Err(ServiceError::NotFound(format!("environment {environment:?}")).into());
    };
    let mut response = Json(access_json(environment, rules, *version)).into_response();
    response.headers_mut().insert(header::ETAG, etag(*version));
    Ok(response)
}

/// Whose access a grant or revoke is about: exactly one of them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Grantee {
    company: Option<String>,
    user: Option<String>,
    segment: Option<String>,
}

impl Grantee {
    fn parse(self) -> Result<crate::service::Grantee, Problem> {
        use crate::service::Grantee as G;
        match (self.company, self.user, self.segment) {
            (Some(id), None, None) => Ok(G::Company(id)),
            (None, Some(id), None) => Ok(G::User(id)),
            (None, None, Some(key)) => crate::model::SegmentKey::parse(key)
                .map(G::Segment)
                .map_err(|e| Problem::bad_request("segment", e.to_string())),
            _ => Err(Problem::bad_request(
                "body",
                "name exactly one of company, user or segment",
            )),
        }
    }
}

/// Gives or takes one company's, user's or segment's access, on the rules as they stand (no
/// `If-Match`: the change is made on the stored rules in one transaction); answers the access.
async fn change_access(
    caller: Caller,
    service: Service,
    (key, environment): (String, String),
    bytes: &Bytes,
    grant: bool,
) -> ApiResult {
    let grantee = body::<Grantee>(bytes)?.parse()?;
    let change = Change::SetAccess {
        flag: key.clone(),
        environment: environment.clone(),
        change: if grant {
            AccessChange::Grant(grantee)
        } else {
            AccessChange::Revoke(grantee)
        },
        expected_version: None,
    };
    service.apply(&caller.actor, change).await?;
    get_access(caller, State(service), Param((key, environment))).await
}

async fn grant_access(
    caller: Caller,
    State(service): State<Service>,
    Param(path): Param<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    change_access(caller, service, path, &bytes, true).await
}

async fn revoke_access(
    caller: Caller,
    State(service): State<Service>,
    Param(path): Param<(String, String)>,
    bytes: Bytes,
) -> ApiResult {
    change_access(caller, service, path, &bytes, false).await
}

/// The configuration as `gatehouse export` writes it.
async fn export(caller: Caller, State(service): State<Service>) -> ApiResult {
    let document = crate::service::config_file::export(&service, &caller.actor).await?;
    Ok(Json(document).into_response())
}

/// Makes the configuration match a document (`?dryRun=true`: only lists the changes); every
/// change is authorized as the caller and all apply in one transaction, or none.
async fn import(
    caller: Caller,
    State(service): State<Service>,
    Query(params): Query<HashMap<String, String>>,
    bytes: Bytes,
) -> ApiResult {
    use crate::service::config_file::{self, ConfigFileError, Document};
    let dry_run = query::<bool>(&params, "dryRun")?.unwrap_or(false);
    let text =
        std::str::from_utf8(&bytes).map_err(|_| Problem::bad_request("body", "the body is not UTF-8"))?;
    let result = match Document::parse(text) {
        Ok(document) if dry_run => config_file::plan(&service, &caller.actor, &document).await,
        Ok(document) => config_file::apply(&service, &caller.actor, &document).await,
        Err(error) => Err(error),
    };
    match result {
        Ok(changes) => {
            let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
            Ok(
                Json(json!({ "applied": !dry_run && !changes.is_empty(), "changes": changes }))
                    .into_response(),
            )
        }
        Err(ConfigFileError::Invalid(problems)) => Err(Problem {
            detail: format!("{} problem(s); nothing was imported", problems.len()),
            problems,
            ..Problem::new(StatusCode::UNPROCESSABLE_ENTITY, "invalid", "")
        }),
        Err(ConfigFileError::Service(error)) => Err(error.into()),
    }
}

/// The version an `If-Match` header names (`"3"`, `W/"3"` or `3`); `None` without the header.
fn if_match(headers: &HeaderMap) -> Result<Option<i64>, Problem> {
    let Some(value) = headers.get(header::IF_MATCH) else {
        return Ok(None);
    };
    let refused = || Problem::bad_request("If-Match", "If-Match names the version read, as its ETag: \"3\"");
    let text = value.to_str().map_err(|_| refused())?.trim();
    let text = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    text.parse::<i64>().map(Some).map_err(|_| refused())
}

async fn put_access(
    caller: Caller,
    State(service): State<Service>,
    Param((key, environment)): Param<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let expected_version = if_match(&headers)?;
    let rules: AccessRules = body(&bytes)?;
    let change = Change::SetAccess {
        flag: key.clone(),
        environment: environment.clone(),
        change: AccessChange::Set(rules),
        expected_version,
    };
    apply_versioned(&service, &caller.actor, change, expected_version).await?;
    get_access(caller, State(service), Param((key, environment))).await
}

/// A flag's remote config in an environment: its variants and their version.
async fn get_config(
    caller: Caller,
    State(service): State<Service>,
    Param((key, environment)): Param<(String, String)>,
) -> ApiResult {
    let config = service.flag_config(&caller.actor, &key, &environment).await?;
    let version = config.version as i64;
    let answer = json!({ "environment": environment, "variants": config.variants, "version": version });
    let mut response = Json(answer).into_response();
    response.headers_mut().insert(header::ETAG, etag(version));
    Ok(response)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ConfigBody {
    variants: Vec<crate::model::ConfigVariant>,
}

/// Replaces a flag's remote config in an environment (`If-Match`: the version read).
async fn put_config(
    caller: Caller,
    State(service): State<Service>,
    Param((key, environment)): Param<(String, String)>,
    headers: HeaderMap,
    bytes: Bytes,
) -> ApiResult {
    let expected_version = if_match(&headers)?;
    let config: ConfigBody = body(&bytes)?;
    let change = Change::SetRemoteConfig {
        flag: key.clone(),
        environment: environment.clone(),
        variants: config.variants,
        expected_version,
    };
    apply_versioned(&service, &caller.actor, change, expected_version).await?;
    get_config(caller, State(service), Param((key, environment))).await
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct StageMove {
    /// The target stage's id.
    stage_id: i64,
    /// Only say what would change.
    #[serde(default)]
    dry_run: bool,
}

/// Moves a flag to a stage (the stage's default rules apply where it has them), or with
/// `dryRun` only shows what that would change, as the flag page's preview does.
async fn move_stage(
    caller: Caller,
    State(service): State<Service>,
    Param(key): Param<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: StageMove = body(&bytes)?;
    let (detail, moves) = service.stage_move_preview(&caller.actor, &key).await?;
    if !detail.stages.iter().any(|s| s.id == request.stage_id) {
        return Err(ServiceError::invalid(
            "stageId",
            format!("no release stage has the id {}", request.stage_id),
        )
        .into());
    }
    let changes: Vec<Value> = moves
        .iter()
        .filter(|(stage_id, ..)| *stage_id == request.stage_id)
        .map(|(_, environment, from, to)| json!({ "environment": environment, "from": from, "to": to }))
        .collect();
    if !request.dry_run {
        let change = Change::MoveStage {
            flag: detail.flag.key.to_string(),
            stage_id: request.stage_id,
        };
        service.apply(&caller.actor, change).await?;
    }
    let detail = service
        .flag_detail(&caller.actor, detail.flag.key.as_str())
        .await?;
    let flag = flag_with_access_json(&detail);
    Ok(Json(json!({ "applied": !request.dry_run, "changes": changes, "flag": flag })).into_response())
}

async fn segments(caller: Caller, State(service): State<Service>) -> ApiResult {
    let list = service.segment_list(&caller.actor, "production").await?;
    let items: Vec<Value> = list
        .segments
        .iter()
        .map(|(record, used_by, _)| segment_json(record, used_by))
        .collect();
    Ok(Json(json!({ "items": items })).into_response())
}

fn segment_json(record: &SegmentRecord, used_by: &[String]) -> Value {
    json!({
        "key": record.segment.key.as_str(),
        "name": record.segment.name,
        "description": record.description,
        "conditions": record.segment.conditions,
        "usedBy": used_by,
    })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SegmentBody {
    name: Option<String>,
    description: Option<String>,
    conditions: Vec<SegmentCondition>,
}

/// Creates the segment `key` (201) or replaces its conditions, and its name and description
/// when given (200).
async fn put_segment(
    caller: Caller,
    State(service): State<Service>,
    Param(key): Param<String>,
    bytes: Bytes,
) -> ApiResult {
    let request: SegmentBody = body(&bytes)?;
    let existing = match service.segment_page(&caller.actor, &key).await {
        Ok((record, _)) => Some(record),
        Err(ServiceError::NotFound(_)) => None,
        Err(error) => return Err(error.into()),
    };
    let change = Change::SaveSegment {
        key: existing
            .as_ref()
            .map_or(key.clone(), |r| r.segment.key.to_string()),
        name: request
            .name
            .or_else(|| existing.as_ref().map(|r| r.segment.name.clone()))
            .unwrap_or_else(|| key.clone()),
        description: request
            .description
            .or_else(|| existing.as_ref().map(|r| r.description.clone()))
            .unwrap_or_default(),
        conditions: request.conditions,
        create: existing.is_none(),
    };
    service.apply(&caller.actor, change).await?;
    let (record, used_by) = service.segment_page(&caller.actor, &key).await?;
    let status = if existing.is_none() {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(segment_json(&record, &used_by))).into_response())
}

async fn companies(
    caller: Caller,
    State(service): State<Service>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    entities(caller, service, params, crate::service::EntityKind::Company).await
}

async fn users(
    caller: Caller,
    State(service): State<Service>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    entities(caller, service, params, crate::service::EntityKind::User).await
}

/// One page of the companies or users applications reported, found by id or name.
async fn entities(
    caller: Caller,
    service: Service,
    params: HashMap<String, String>,
    kind: crate::service::EntityKind,
) -> ApiResult {
    let (page, limit) = paging(&params)?;
    let environment = params.get("environment").map_or("production", String::as_str);
    let search = params.get("q").map_or("", String::as_str);
    let (_, _, found) = service
        .search_entities(&caller.actor, environment, kind, search, page, limit)
        .await?;
    let items: Vec<Value> = found
        .rows
        .iter()
        .map(|row| {
            json!({
                "id": row.id,
                "name": row.name,
                "attributes": row.attributes,
                "firstSeen": row.first_seen,
                "lastSeen": row.last_seen,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "total": found.total, "page": page, "limit": limit })).into_response())
}

async fn company_access(
    caller: Caller,
    State(service): State<Service>,
    Param(id): Param<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    entity_access(caller, service, id, params, crate::service::EntityKind::Company).await
}

async fn user_access(
    caller: Caller,
    State(service): State<Service>,
    Param(id): Param<String>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    entity_access(caller, service, id, params, crate::service::EntityKind::User).await
}

/// Which flags a company or user gets in an environment, and why: the company and user pages'
/// explanation.
async fn entity_access(
    caller: Caller,
    service: Service,
    id: String,
    params: HashMap<String, String>,
    kind: crate::service::EntityKind,
) -> ApiResult {
    let environment = params.get("environment").map_or("production", String::as_str);
    let check = service
        .check_access(&caller.actor, kind, environment, &id, &CheckFilter::all())
        .await?;
    let flags: Vec<Value> = check
        .flags
        .iter()
        .map(|(key, name, explanation)| {
            json!({
                "key": key,
                "name": name,
                "enabled": explanation.matched_rule.is_some(),
                "reason": explanation.reason,
                "missingContext": explanation.missing_context_fields,
            })
        })
        .collect();
    let subject = match kind {
        crate::service::EntityKind::Company => "company",
        crate::service::EntityKind::User => "user",
    };
    Ok(Json(json!({ subject: id, "environment": environment, "flags": flags })).into_response())
}

async fn environments(caller: Caller, State(service): State<Service>) -> ApiResult {
    let environments = service.environments(&caller.actor).await?;
    let items: Vec<Value> = environments.iter().map(environment_json).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

async fn stages(caller: Caller, State(service): State<Service>) -> ApiResult {
    let stages = service.release_stages(&caller.actor).await?;
    let items: Vec<Value> = stages.iter().map(stage_full_json).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

fn stage_full_json(s: &ReleaseStage) -> Value {
    json!({ "id": s.id, "name": s.name, "color": s.color, "position": s.sort_order })
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct StageBody {
    name: Option<String>,
    color: Option<String>,
}

/// Adds a release stage after the last one.
async fn add_stage(caller: Caller, State(service): State<Service>, bytes: Bytes) -> ApiResult {
    let request: StageBody = body(&bytes)?;
    let change = Change::AddStage {
        name: request.name.unwrap_or_default(),
        color: request.color.unwrap_or_else(|| DEFAULT_STAGE_COLOR.to_string()),
    };
    match service.apply(&caller.actor, change).await? {
        Outcome::Stage(stage) => Ok((StatusCode::CREATED, Json(stage_full_json(&stage))).into_response()),
        _ => Err(ServiceError::Internal.into()),
    }
}

/// The colour of a stage added without one (slate).
const DEFAULT_STAGE_COLOR: &str = "#64748b";

/// Renames and/or recolours a release stage.
async fn update_stage(
    caller: Caller,
    State(service): State<Service>,
    Param(id): Param<i64>,
    bytes: Bytes,
) -> ApiResult {
    let request: StageBody = body(&bytes)?;
    let find = |stages: &[ReleaseStage]| {
        stages
            .iter()
            .find(|s| s.id == id)
            .cloned()
            .ok_or_else(|| ServiceError::NotFound(format!("release stage {id}")))
    };
    let stage = find(&service.release_stages(&caller.actor).await?)?;
    let change = Change::UpdateStage {
        stage: crate::service::StageRef::Id(id),
        name: request.name.unwrap_or(stage.name),
        color: request.color.unwrap_or(stage.color),
    };
    service.apply(&caller.actor, change).await?;
    let stage = find(&service.release_stages(&caller.actor).await?)?;
    Ok(Json(stage_full_json(&stage)).into_response())
}

async fn audit(
    caller: Caller,
    State(service): State<Service>,
    Query(params): Query<HashMap<String, String>>,
) -> ApiResult {
    let (page, limit) = paging(&params)?;
    let filter = AuditFilter {
        actor: params.get("actor").cloned().unwrap_or_default(),
        subject: params.get("subject").cloned().unwrap_or_default(),
        from: query(&params, "from")?,
        to: query(&params, "to")?,
    };
    let found = service
        .audit_page(&caller.actor, &filter, page as i64, limit as i64)
        .await?;
    let items: Vec<Value> = found
        .entries
        .iter()
        .map(|e| {
            json!({
                "id": e.id,
                "at": e.at,
                "actor": e.actor_label,
                "action": e.action,
                "subjectType": e.subject_type,
                "subject": e.subject_key,
                "environment": e.environment_key,
                "before": e.before,
                "after": e.after,
            })
        })
        .collect();
    Ok(Json(json!({ "items": items, "total": found.total, "page": page, "limit": limit })).into_response())
}

async fn tokens(caller: Caller, State(service): State<Service>) -> ApiResult {
    let tokens = service.tokens(&caller.actor).await?;
    let items: Vec<Value> = tokens.iter().map(token_json).collect();
    Ok(Json(json!({ "items": items })).into_response())
}

async fn revoke_token(
    caller: Caller,
    State(service): State<Service>,
    Param(prefix): Param<String>,
) -> ApiResult {
    service
        .apply(&caller.actor, Change::RevokeToken { prefix })
        .await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}
