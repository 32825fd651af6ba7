//! The MCP server at `/mcp` (Model Context Protocol, Streamable HTTP, with the official Rust SDK
//! `rmcp`): tools a coding agent uses to list, read and create flags, grant and revoke access,
//! move stages, check a company's access and find companies. It answers statelessly (no session
//! to keep, so any replica answers any request) with JSON. Every request carries an access token
//! (`Authorization: Bearer gth_…`), checked before the MCP layer sees it; each tool then acts as
//! the token's actor through the same service calls, authorization and change pipeline as the
//! admin UI and `/api/v1`. A refusal is a tool error with readable text.

use axum::extract::{Request, State};
use axum::http::request::Parts;
use axum::http::{header, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Json as AxumJson, Router};
use rmcp::handler::server::tool::Extension;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, Implementation, ServerCapabilities, ServerConfig};
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
use rmcp::transport::streamable_http_server::{StreamableHttpServerConfig, StreamableHttpService};
use rmcp::{schemars, tool, tool_handler, tool_router, ErrorData, ServerHandler};
use serde::Deserialize;
use serde_json::{json, Value};

use crate::service::{
    AccessChange, Actor, Change, CheckFilter, EntityKind, FlagFilter, Grantee, NewFlag, Service,
    ServiceError, StageRef,
};
use crate::state::AppState;

/// The actor of the request's token, put into the request by [`authenticate`].
#[derive(Clone, Debug)]
struct McpActor(Actor);

/// Refuses a request without a live access token; otherwise passes it on with its actor.
async fn authenticate(State(service): State<Service>, mut request: Request, next: Next) -> Response {
    let token = super::key::bearer(request.headers()).map(str::to_string);
    let refusal = match token {
        None => "send an access token as `Authorization: Bearer <token>`".to_string(),
        Some(token) => match service.authenticate_token(&token).await {
            Ok(Ok((actor, _))) => {
                request.extensions_mut().insert(McpActor(actor));
                return next.run(request).await;
            }
            Ok(Err(refusal)) => refusal.to_string(),
            Err(error) => return (StatusCode::INTERNAL_SERVER_ERROR, error.to_string()).into_response(),
        },
    };
    let body = json!({ "error": "unauthorized", "message": refusal });
    (
        StatusCode::UNAUTHORIZED,
        [(header::WWW_AUTHENTICATE, "Bearer")],
        AxumJson(body),
    )
        .into_response()
}

/// `/mcp`, behind the token check.
pub fn routes(state: &AppState) -> Router<AppState> {
    let service = state.service.clone();
    let config = StreamableHttpServerConfig::default()
        .with_legacy_session_mode(false)
        .with_json_response(true)
        // Every request needs a token, so a page that rebinds a hostname gains nothing.
        .disable_allowed_hosts();
    let mcp = StreamableHttpService::new(
        move || Ok(GatehouseMcp::new(service.clone())),
        LocalSessionManager::default().into(),
        config,
    );
    Router::new()
        .nest_service("/mcp", mcp)
        // The MCP layer reads whole bodies: cap them as the rest of the API is capped.
        .layer(tower_http::limit::RequestBodyLimitLayer::new(
            super::limits::max_body_bytes(),
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.service.clone(),
            authenticate,
        ))
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ListFlags {
    /// Text found in the key or name.
    #[serde(default)]
    pub query: Option<String>,
    /// Archived flags instead of live ones.
    #[serde(default)]
    pub archived: Option<bool>,
    /// At most this many (1 to 200, default 50).
    #[serde(default)]
    pub limit: Option<usize>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct FlagRef {
    /// The flag's key.
    pub key: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CreateFlag {
    /// Letters, digits, `-` and `_`; unique regardless of case.
    pub key: String,
    /// Defaults to the key.
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub description: Option<String>,
    /// A permanent flag (kill switch, entitlement) is never reported stale.
    #[serde(default)]
    pub permanent: Option<bool>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct AccessTarget {
    /// The flag's key.
    pub flag: String,
    /// The environment's key, e.g. production.
    pub environment: String,
    /// Exactly one of company, user and segment.
    #[serde(default)]
    pub company: Option<String>,
    #[serde(default)]
    pub user: Option<String>,
    /// A segment's key.
    #[serde(default)]
    pub segment: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct MoveStage {
    /// The flag's key.
    pub flag: String,
    /// The release stage's name (as list_stages shows it).
    pub stage: String,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct CheckAccess {
    /// The company's id.
    pub company: String,
    /// The environment's key (default production).
    #[serde(default)]
    pub environment: Option<String>,
}

#[derive(Deserialize, schemars::JsonSchema)]
pub struct ListCompanies {
    /// Text in the id or name.
    #[serde(default)]
    pub query: Option<String>,
    /// The environment's key (default production).
    #[serde(default)]
    pub environment: Option<String>,
}

/// A tool's answer: the value as JSON text, or a refusal as a tool error.
fn answer(result: Result<Value, ServiceError>) -> Result<CallToolResult, ErrorData> {
    Ok(match result {
        Ok(value) => {
            let text = serde_json::to_string_pretty(&value).unwrap_or_default();
            CallToolResult::success(vec![ContentBlock::text(text)])
        }
        Err(error) => CallToolResult::error(vec![ContentBlock::text(error.to_string())]),
    })
}

/// The actor the token check put into the request.
fn actor(parts: &Parts) -> Result<Actor, ServiceError> {
    parts
        .extensions
        .get::<McpActor>()
        .map(|a| a.0.clone())
        .ok_or(ServiceError::Denied(crate::service::Refusal::NotSignedIn))
}

fn flag_value(detail: &crate::service::FlagDetail) -> Value {
    let stage = detail.stages.iter().find(|s| s.id == detail.flag.stage_id);
    json!({
        "key": detail.flag.key.as_str(),
        "name": detail.flag.name,
        "description": detail.flag.description,
        "stage": stage.map(|s| s.name.as_str()),
        "type": if detail.flag.permanent { "permanent" } else { "temporary" },
        "archived": detail.flag.archived,
        "access": detail.access.iter().map(|(environment, rules, version)| json!({
            "environment": environment.key.as_str(),
            "rules": rules,
            "version": version,
        })).collect::<Vec<_>>(),
    })
}

/// The tools, each acting as the request's token.
#[derive(Clone)]
pub struct GatehouseMcp {
    service: Service,
}

#[tool_router]
impl GatehouseMcp {
    fn new(service: Service) -> GatehouseMcp {
        GatehouseMcp { service }
    }

    #[tool(description = "List feature flags (key, name, release stage), newest first.")]
    async fn list_flags(
        &self,
        Parameters(p): Parameters<ListFlags>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.list_flags_value(&parts, p).await)
    }

    #[tool(description = "A flag with who has access to it in every environment.")]
    async fn get_flag(
        &self,
        Parameters(p): Parameters<FlagRef>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let detail = self.service.flag_detail(&actor(&parts)?, &p.key).await?;
            Ok(flag_value(&detail))
        };
        answer(result.await)
    }

    #[tool(
        description = "Create a feature flag in the first release stage, with no one given access in any environment."
    )]
    async fn create_flag(
        &self,
        Parameters(p): Parameters<CreateFlag>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let actor = actor(&parts)?;
            let change = Change::CreateFlag(NewFlag {
                name: p.name.unwrap_or_else(|| p.key.clone()),
                key: p.key.clone(),
                description: p.description.unwrap_or_default(),
                permanent: p.permanent.unwrap_or(false),
                ..Default::default()
            });
            let flag = self.service.apply(&actor, change).await?.into_flag()?;
            Ok(flag_value(
                &self.service.flag_detail(&actor, flag.key.as_str()).await?,
            ))
        };
        answer(result.await)
    }

    #[tool(description = "Give one company, user or segment access to a flag in one environment.")]
    async fn grant_access(
        &self,
        Parameters(p): Parameters<AccessTarget>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.change_access(&parts, p, true).await)
    }

    #[tool(description = "Take one company's, user's or segment's access to a flag away in one environment.")]
    async fn revoke_access(
        &self,
        Parameters(p): Parameters<AccessTarget>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        answer(self.change_access(&parts, p, false).await)
    }

    #[tool(
        description = "Move a flag to another release stage; the stage's default access rules apply where it has them."
    )]
    async fn move_stage(
        &self,
        Parameters(p): Parameters<MoveStage>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let actor = actor(&parts)?;
            let stages = self.service.release_stages(&actor).await?;
            let stage = crate::service::resolve_stage(&stages, &StageRef::Name(p.stage.clone()))?;
            let change = Change::MoveStage {
                flag: p.flag.clone(),
                stage_id: stage.id,
            };
            self.service.apply(&actor, change).await?;
            Ok(flag_value(&self.service.flag_detail(&actor, &p.flag).await?))
        };
        answer(result.await)
    }

    #[tool(description = "List the release stages in their order.")]
    async fn list_stages(&self, Extension(parts): Extension<Parts>) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let stages = self.service.release_stages(&actor(&parts)?).await?;
            Ok(json!(stages.iter().map(|s| s.name.as_str()).collect::<Vec<_>>()))
        };
        answer(result.await)
    }

    #[tool(
        description = "Which flags a company gets in an environment, and why (the rule that matched or the reason none did)."
    )]
    async fn check_access(
        &self,
        Parameters(p): Parameters<CheckAccess>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let environment = p.environment.unwrap_or_else(|| "production".into());
            let check = self
                .service
                .check_access(
                    &actor(&parts)?,
                    EntityKind::Company,
                    &environment,
                    &p.company,
                    &CheckFilter::all(),
                )
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
                    })
                })
                .collect();
            Ok(json!({ "company": p.company, "environment": environment, "flags": flags }))
        };
        answer(result.await)
    }

    #[tool(
        description = "Find companies by id or name in an environment (the companies applications reported)."
    )]
    async fn list_companies(
        &self,
        Parameters(p): Parameters<ListCompanies>,
        Extension(parts): Extension<Parts>,
    ) -> Result<CallToolResult, ErrorData> {
        let result = async {
            let environment = p.environment.unwrap_or_else(|| "production".into());
            let query = p.query.unwrap_or_default();
            let (_, _, page) = self
                .service
                .search_entities(&actor(&parts)?, &environment, EntityKind::Company, &query, 0, 50)
                .await?;
            let companies: Vec<Value> = page
                .rows
                .iter()
                .map(|row| json!({ "id": row.id, "name": row.name, "attributes": row.attributes }))
                .collect();
            Ok(json!({ "total": page.total, "companies": companies }))
        };
        answer(result.await)
    }
}

impl GatehouseMcp {
    async fn list_flags_value(&self, parts: &Parts, p: ListFlags) -> Result<Value, ServiceError> {
        let limit = p.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(ServiceError::invalid("limit", "limit is 1 to 200"));
        }
        let filter = FlagFilter {
            search: p.query.unwrap_or_default(),
            archived: p.archived.unwrap_or(false),
            ..Default::default()
        };
        let list = self.service.flag_list(&actor(parts)?, &filter, 0, limit).await?;
        let flags: Vec<Value> = list
            .flags
            .iter()
            .map(|(flag, _)| {
                let stage = list.stages.iter().find(|s| s.id == flag.stage_id);
                json!({
                    "key": flag.key.as_str(),
                    "name": flag.name,
                    "stage": stage.map(|s| s.name.as_str()),
                    "archived": flag.archived,
                })
            })
            .collect();
        Ok(json!({ "total": list.total, "flags": flags }))
    }

    async fn change_access(
        &self,
        parts: &Parts,
        p: AccessTarget,
        grant: bool,
    ) -> Result<Value, ServiceError> {
        let actor = actor(parts)?;
        let grantee = match (p.company, p.user, p.segment) {
            (Some(company), None, None) => Grantee::Company(company),
            (None, Some(user), None) => Grantee::User(user),
            (None, None, Some(segment)) => Grantee::Segment(
                crate::model::SegmentKey::parse(segment)
                    .map_err(|e| ServiceError::invalid("segment", e.to_string()))?,
            ),
            _ => {
                return Err(ServiceError::invalid(
                    "company",
                    "give exactly one of company, user and segment",
                ))
            }
        };
        let change = Change::SetAccess {
            flag: p.flag.clone(),
            environment: p.environment.clone(),
            change: if grant {
                AccessChange::Grant(grantee)
            } else {
                AccessChange::Revoke(grantee)
            },
            expected_version: None,
        };
        self.service.apply(&actor, change).await?;
        Ok(flag_value(&self.service.flag_detail(&actor, &p.flag).await?))
    }
}

#[tool_handler]
impl ServerHandler for GatehouseMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(Implementation::new("gatehouse", env!("CARGO_PKG_VERSION")))
            .with_instructions(
                "Gatehouse feature flags: list, read and create flags, grant or revoke access per \
                 environment, move release stages, check which flags a company gets. Every change is \
                 authorized and audited as the token you connect with.",
            )
    }
}
