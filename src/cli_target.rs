//! Where the command line's configuration commands act: on the database, as the operator (the
//! default), or on a running server through the management API (`--server URL` with the access
//! token in `GATEHOUSE_TOKEN`), as the token's member or service role, so CI needs no database
//! access. Both answer the same, so each command prints the same either way.

use serde_json::{json, Value};

use crate::model::describe::access_changes;
use crate::model::{AccessRules, ReleaseStage};
use crate::service::config_file::{self, ConfigFileError, Document};
use crate::service::{AccessChange, Actor, Change, FlagFilter, Grantee, NewFlag, Service, ServiceError};

/// The command line's target.
pub enum Target {
    Local(Service),
    Remote(Remote),
}

/// A flag as `flags list` prints it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct FlagLine {
    pub key: String,
    pub name: String,
    pub stage: String,
    /// temporary or permanent.
    #[serde(rename = "type")]
    pub kind: String,
    pub archived: bool,
}

/// Why an import did not happen: every problem of the document, or another error.
pub enum ImportError {
    Invalid(Vec<String>),
    Other(String),
}

/// A running server's management API.
pub struct Remote {
    base: String,
    token: String,
    client: reqwest::Client,
}

/// The message of a service error, as the command line prints it.
pub fn service_message(error: ServiceError) -> String {
    match error {
        ServiceError::Invalid { field, message } => format!("{field}: {message}"),
        other => other.to_string(),
    }
}

fn path_part(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes())
        .collect::<String>()
        .replace('+', "%20")
}

impl Remote {
    /// The server at `base` (`https://flags.example.com`), with the token of `GATEHOUSE_TOKEN`.
    pub fn new(base: &str, token: Option<String>) -> Result<Remote, String> {
        let token = token
            .filter(|t| !t.trim().is_empty())
            .ok_or("--server needs an access token in GATEHOUSE_TOKEN (gatehouse tokens create)")?;
        let parsed = url::Url::parse(base).map_err(|e| format!("--server {base:?} is not a URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!("--server {base:?} is not an http:// or https:// address"));
        }
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(60))
            .user_agent(concat!("gatehouse-cli/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up HTTP: {e}"))?;
        Ok(Remote {
            base: base.trim_end_matches('/').to_string(),
            token: token.trim().to_string(),
            client,
        })
    }

    /// Sends a request to `/api/v1{path}`; the answer's JSON, or the problem's detail.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(u16, Value), String> {
        let url = format!("{}/api/v1{path}", self.base);
        let mut request = self.client.request(method, &url).bearer_auth(&self.token);
        if let Some(body) = body {
            request = request.header("content-type", "application/json").body(body);
        }
        let answer = request
            .send()
            .await
            .map_err(|e| format!("cannot reach {}: {}", self.base, e.without_url()))?;
        let status = answer.status().as_u16();
        let text = answer
            .text()
            .await
            .map_err(|e| format!("{url}: the answer broke off: {}", e.without_url()))?;
        let value: Value = serde_json::from_str(&text)
            .map_err(|_| format!("{url} answered {status} without JSON; is --server a Gatehouse server?"))?;
        Ok((status, value))
    }

    /// [`Remote::call`], with any answer but a 2xx turned into its problem's detail.
    async fn ok(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Result<Value, String> {
        let body = body.map(|b| b.to_string().into_bytes());
        let (status, value) = self.call(method, path, body).await?;
        if (200..300).contains(&status) {
            return Ok(value);
        }
        let detail = value["detail"]
            .as_str()
            .unwrap_or("the server refused the request");
        Err(match value["field"].as_str() {
            Some(field) if status == 422 || status == 400 => format!("{field}: {detail}"),
            _ if status == 401 => format!("the server refused the token: {detail}"),
            _ => detail.to_string(),
        })
    }

    async fn stages(&self) -> Result<Vec<(i64, String)>, String> {
        let stages = self.ok(reqwest::Method::GET, "/stages", None).await?;
        Ok(stages["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|s| Some((s["id"].as_i64()?, s["name"].as_str()?.to_string())))
            .collect())
    }
}

/// The stage `stage` names: its name (any case) or its id.
fn stage_named<'s>(stages: &'s [(i64, String)], stage: &str) -> Result<&'s (i64, String), String> {
    stages
        .iter()
        .find(|(id, name)| name.eq_ignore_ascii_case(stage.trim()) || id.to_string() == stage.trim())
        .ok_or_else(|| {
            let names: Vec<&str> = stages.iter().map(|(_, n)| n.as_str()).collect();
            format!(
                "--stage: no release stage {stage:?}; the stages are {}",
                names.join(", ")
            )
        })
}

/// What a stage move changes, in words: `production: mode Some → Everyone`.
fn described_moves<'a>(moves: impl Iterator<Item = (&'a str, AccessRules, AccessRules)>) -> Vec<String> {
    moves
        .map(|(environment, from, to)| format!("{environment}: {}", access_changes(&from, &to).join("; ")))
        .collect()
}

impl Target {
    /// The configuration as `gatehouse export` writes it.
    pub async fn export(&self) -> Result<Document, String> {
        match self {
            Target::Local(service) => config_file::export(service, &Actor::cli())
                .await
                .map_err(service_message),
            Target::Remote(remote) => {
                let document = remote.ok(reqwest::Method::GET, "/export", None).await?;
                Document::parse(&document.to_string()).map_err(|e| match e {
                    ConfigFileError::Invalid(problems) => problems.join("; "),
                    ConfigFileError::Service(error) => service_message(error),
                })
            }
        }
    }

    /// Imports the document `text` (or, with `dry_run`, lists what it would change).
    pub async fn import(&self, text: &str, dry_run: bool) -> Result<Vec<String>, ImportError> {
        match self {
            Target::Local(service) => {
                let result = match Document::parse(text) {
                    Ok(document) if dry_run => config_file::plan(service, &Actor::cli(), &document).await,
                    Ok(document) => config_file::apply(service, &Actor::cli(), &document).await,
                    Err(error) => Err(error),
                };
                match result {
                    Ok(changes) => Ok(changes.iter().map(ToString::to_string).collect()),
                    Err(ConfigFileError::Invalid(problems)) => Err(ImportError::Invalid(problems)),
                    Err(ConfigFileError::Service(error)) => Err(ImportError::Other(service_message(error))),
                }
            }
            Target::Remote(remote) => {
                let path = format!("/import?dryRun={dry_run}");
                let (status, answer) = remote
                    .call(reqwest::Method::POST, &path, Some(text.as_bytes().to_vec()))
                    .await
                    .map_err(ImportError::Other)?;
                let strings = |value: &Value| -> Vec<String> {
                    value
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|c| c.as_str().map(str::to_string))
                        .collect()
                };
                match status {
                    200..=299 => Ok(strings(&answer["changes"])),
                    422 if answer["problems"].is_array() => {
                        Err(ImportError::Invalid(strings(&answer["problems"])))
                    }
                    _ => Err(ImportError::Other(
                        answer["detail"]
                            .as_str()
                            .unwrap_or("the server refused the import")
                            .to_string(),
                    )),
                }
            }
        }
    }

    /// Every flag, archived ones only with `archived`.
    pub async fn flags(&self, archived: bool) -> Result<Vec<FlagLine>, String> {
        const PAGE: usize = 200;
        let mut lines = Vec::new();
        for page in 0.. {
            let (batch, total) = match self {
                Target::Local(service) => {
                    let filter = FlagFilter {
                        archived,
                        ..Default::default()
                    };
                    let list = service
                        .flag_list(&Actor::cli(), &filter, page, PAGE)
                        .await
                        .map_err(service_message)?;
                    let stages: &[ReleaseStage] = &list.stages;
                    let batch: Vec<FlagLine> = list
                        .flags
                        .iter()
                        .map(|(flag, _)| FlagLine {
                            key: flag.key.to_string(),
                            name: flag.name.clone(),
                            stage: stages
                                .iter()
                                .find(|s| s.id == flag.stage_id)
                                .map(|s| s.name.clone())
                                .unwrap_or_default(),
                            kind: if flag.permanent { "permanent" } else { "temporary" }.into(),
                            archived: flag.archived,
                        })
                        .collect();
                    (batch, list.total as usize)
                }
                Target::Remote(remote) => {
                    let path = format!("/flags?page={page}&limit={PAGE}&archived={archived}");
                    let list = remote.ok(reqwest::Method::GET, &path, None).await?;
                    let batch: Vec<FlagLine> = list["items"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|f| FlagLine {
                            key: f["key"].as_str().unwrap_or_default().to_string(),
                            name: f["name"].as_str().unwrap_or_default().to_string(),
                            stage: f["stage"]["name"].as_str().unwrap_or_default().to_string(),
                            kind: f["type"].as_str().unwrap_or_default().to_string(),
                            archived: f["archived"].as_bool().unwrap_or(false),
                        })
                        .collect();
                    (batch, list["total"].as_u64().unwrap_or(0) as usize)
                }
            };
            let last = batch.len() < PAGE;
            lines.extend(batch);
            if last || lines.len() >= total {
                break;
            }
        }
        Ok(lines)
    }

    /// Creates a flag in the first release stage.
    pub async fn create_flag(
        &self,
        key: &str,
        name: Option<&str>,
        description: &str,
        permanent: bool,
    ) -> Result<(), String> {
        match self {
            Target::Local(service) => {
                let change = Change::CreateFlag(NewFlag {
                    key: key.trim().to_string(),
                    name: name.unwrap_or(key).trim().to_string(),
                    description: description.to_string(),
                    permanent,
                    ..Default::default()
                });
                service
                    .apply(&Actor::cli(), change)
                    .await
                    .map(|_| ())
                    .map_err(service_message)
            }
            Target::Remote(remote) => {
                let body = json!({
                    "key": key.trim(), "name": name.unwrap_or(key).trim(), "description": description,
                    "type": if permanent { "permanent" } else { "temporary" },
                });
                remote
                    .ok(reqwest::Method::POST, "/flags", Some(body))
                    .await
                    .map(|_| ())
            }
        }
    }

    /// Moves a flag to the stage `stage` (name or id), applying its defaults; with `dry_run`, only
    /// says what would change. Returns the stage's name and the changes in words.
    pub async fn move_stage(
        &self,
        key: &str,
        stage: &str,
        dry_run: bool,
    ) -> Result<(String, Vec<String>), String> {
        match self {
            Target::Local(service) => {
                let stages: Vec<(i64, String)> = service
                    .release_stages(&Actor::cli())
                    .await
                    .map_err(service_message)?
                    .into_iter()
                    .map(|s| (s.id, s.name))
                    .collect();
                let (stage_id, name) = stage_named(&stages, stage)?.clone();
                let (_, moves) = service
                    .stage_move_preview(&Actor::cli(), key)
                    .await
                    .map_err(service_message)?;
                let moves = moves
                    .into_iter()
                    .filter(|(id, ..)| *id == stage_id)
                    .map(|(_, environment, from, to)| (environment, from, to))
                    .collect::<Vec<_>>();
                let changes =
                    described_moves(moves.iter().map(|(e, f, t)| (e.as_str(), f.clone(), t.clone())));
                if !dry_run {
                    let change = Change::MoveStage {
                        flag: key.to_string(),
                        stage_id,
                    };
                    service
                        .apply(&Actor::cli(), change)
                        .await
                        .map_err(service_message)?;
                }
                Ok((name, changes))
            }
            Target::Remote(remote) => {
                let stages = remote.stages().await?;
                let (stage_id, name) = stage_named(&stages, stage)?.clone();
                let path = format!("/flags/{}/stage", path_part(key));
                let body = json!({ "stageId": stage_id, "dryRun": dry_run });
                let answer = remote.ok(reqwest::Method::POST, &path, Some(body)).await?;
                let moves: Vec<(String, AccessRules, AccessRules)> = answer["changes"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|c| {
                        Some((
                            c["environment"].as_str()?.to_string(),
                            serde_json::from_value(c["from"].clone()).ok()?,
                            serde_json::from_value(c["to"].clone()).ok()?,
                        ))
                    })
                    .collect();
                let changes =
                    described_moves(moves.iter().map(|(e, f, t)| (e.as_str(), f.clone(), t.clone())));
                Ok((name, changes))
            }
        }
    }

    /// Gives (`grant`) or takes away a grantee's access to `flag` in `environment`; returns the
    /// new version of the rules.
    pub async fn change_access(
        &self,
        flag: &str,
        environment: &str,
        grantee: Grantee,
        grant: bool,
    ) -> Result<i64, String> {
        match self {
            Target::Local(service) => {
                let change = Change::SetAccess {
                    flag: flag.to_string(),
                    environment: environment.to_string(),
                    change: if grant {
                        AccessChange::Grant(grantee)
                    } else {
                        AccessChange::Revoke(grantee)
                    },
                    expected_version: None,
                };
                service
                    .apply(&Actor::cli(), change)
                    .await
                    .and_then(|outcome| outcome.into_version())
                    .map_err(service_message)
            }
            Target::Remote(remote) => {
                let body = match grantee {
                    Grantee::Company(id) => json!({ "company": id }),
                    Grantee::User(id) => json!({ "user": id }),
                    Grantee::Segment(key) => json!({ "segment": key.as_str() }),
                };
                let verb = if grant { "grant" } else { "revoke" };
                let path = format!(
                    "/flags/{}/access/{}/{verb}",
                    path_part(flag),
                    path_part(environment)
                );
                let answer = remote.ok(reqwest::Method::POST, &path, Some(body)).await?;
                answer["version"]
                    .as_i64()
                    .ok_or_else(|| "the server's answer has no version".to_string())
            }
        }
    }

    pub async fn close(self) {
        if let Target::Local(service) = self {
            service.close().await;
        }
    }
}
