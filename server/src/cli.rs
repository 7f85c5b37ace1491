//! The command line: argument definitions, and the scripted administration commands (first
//! admin, endpoints, virtual keys, provider credentials, traces). Each command loads settings
//! and opens the database like the server does, so it works next to a running server.

use std::io::{IsTerminal, Read};

use antix::Services;
use antix::config::{Settings, VARS};
use antix::domain::{self, KeyLimits, Membership, Provider, Scope, User};
use clap::{Parser, Subcommand};
use secrecy::{ExposeSecret, SecretString};
use serde_json::json;

use crate::output::say;

mod admin;
mod manage;
mod traces;
pub use admin::{admin_create, forget_retired_keys, rotate_master_key, setup_token};
pub use manage::KeyChanges;
pub use traces::{TracesCommand, traces};

#[derive(Parser)]
#[command(
    name = "antix",
    version,
    about = "Antix: LLM API gateway and observability portal"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Administration for scripted set-ups.
    Admin {
        #[command(subcommand)]
        command: AdminCommand,
    },
    /// Create endpoints.
    Endpoint {
        #[command(subcommand)]
        command: EndpointCommand,
    },
    /// Issue and revoke virtual keys.
    Key {
        #[command(subcommand)]
        command: KeyCommand,
    },
    /// Organization API tokens for the management REST API (`/api/v1`).
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// Set an organization's provider credentials.
    Credential {
        #[command(subcommand)]
        command: CredentialCommand,
    },
    /// Read recorded traces.
    Traces {
        #[command(subcommand)]
        command: TracesCommand,
    },
    /// List every configuration variable with its current value (secrets hidden).
    Config,
    /// Run the mock LLM provider (OpenAI, Anthropic and Gemini APIs) for tests and offline
    /// demos. Point ANTIX_UPSTREAM_* at it.
    MockProvider {
        #[arg(long, default_value = "127.0.0.1:9999")]
        listen: std::net::SocketAddr,
    },
}

/// Who is acting: a user by e-mail, in one of their organizations (the first by default).
#[derive(clap::Args)]
pub struct Actor {
    /// E-mail of the acting user.
    #[arg(long = "as")]
    email: String,
    /// Organization name (default: the user's first organization).
    #[arg(long)]
    org: Option<String>,
}

#[derive(Subcommand)]
pub enum AdminCommand {
    /// Create the first administrator and organization (only on an empty database). The
    /// password is read from stdin when it is piped, else generated and printed once.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long)]
        org: String,
        #[arg(long, default_value = "Administrator")]
        name: String,
    },
    /// Re-encrypt every stored provider credential under a new master key, without downtime:
    /// servers running with the current key keep working throughout. The new key is written to
    /// `<data_dir>/master.key.next` first, so an interrupted run resumes with it. With the key
    /// in `<data_dir>/master.key`, the files are swapped at the end; with `ANTIX_MASTER_KEY`,
    /// the new key is printed once, to be set on every server.
    RotateMasterKey,
    /// Print the one-time token that first-run setup asks for (also in the server's log when
    /// it starts with an empty database).
    SetupToken,
    /// After a rotation, once every server runs on the new key: delete the new key's copy
    /// wrapped under the old one, so the old key (kept in backups, say) opens nothing any more.
    ForgetRetiredKeys,
}

#[derive(Subcommand)]
pub enum EndpointCommand {
    /// Create an endpoint and print its base URLs.
    Create {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        name: String,
        /// Shared with the whole organization (admins only) instead of personal.
        #[arg(long)]
        shared: bool,
        #[arg(long)]
        json: bool,
    },
    /// Archive an endpoint: from then on the proxy answers 410 Gone. Irreversible.
    Archive {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        id: domain::EndpointId,
    },
    /// The endpoints you can see in the organization (yours and the org-shared ones).
    List {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        json: bool,
    },
    /// Rename an endpoint (its URL does not change).
    Rename {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        id: domain::EndpointId,
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Copy a personal endpoint into a new org-shared one (admins; a new URL, same settings).
    Duplicate {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        id: domain::EndpointId,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum KeyCommand {
    /// Issue a virtual key and print it (shown this once only).
    Create {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// The organization's virtual keys (members: the ones they issued), never the secrets.
    List {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a key: every call with it is refused from now on.
    Revoke {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        id: domain::VirtualKeyId,
        #[arg(long)]
        json: bool,
    },
    /// Rename a key or change its limits (limits: admins only).
    Update {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        id: domain::VirtualKeyId,
        #[command(flatten)]
        changes: KeyChanges,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue an API token and print it (shown this once only). Admins only.
    Create {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        name: String,
        /// Allow changes (default: read-only).
        #[arg(long)]
        write: bool,
        #[arg(long)]
        json: bool,
    },
    /// The organization's API tokens, never the secrets.
    List {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token: the API refuses it from now on.
    Revoke {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        id: domain::ApiTokenId,
    },
}

#[derive(Subcommand)]
pub enum CredentialCommand {
    /// Add a provider credential, or replace one by name; the key is read from stdin.
    Set {
        #[command(flatten)]
        actor: Actor,
        /// openai, anthropic or gemini.
        #[arg(long)]
        provider: String,
        /// Its name among the provider's credentials.
        #[arg(long, default_value = "default")]
        name: String,
        /// An OpenAI-compatible server's base URL (openai only).
        #[arg(long)]
        base_url: Option<String>,
        /// Share of the provider's calls (0: only when the others fail).
        #[arg(long, default_value_t = 1)]
        weight: u32,
        /// Requests per minute this credential may take (per replica).
        #[arg(long)]
        rpm: Option<i64>,
        /// Tokens per minute this credential may take (per replica).
        #[arg(long)]
        tpm: Option<i64>,
        /// Store it turned off.
        #[arg(long)]
        disabled: bool,
    },
    /// The organization's credentials (never the keys).
    List {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        json: bool,
    },
    /// Check a credential against its provider (lists its models); fails when it does not work.
    Test {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        provider: String,
        #[arg(long, default_value = "default")]
        name: String,
        #[arg(long)]
        json: bool,
    },
    /// Remove a credential.
    Delete {
        #[command(flatten)]
        actor: Actor,
        #[arg(long)]
        provider: String,
        #[arg(long, default_value = "default")]
        name: String,
    },
}

pub async fn start(settings: Settings) -> anyhow::Result<Services> {
    let (services, notes) = Services::start(settings).await?;
    if notes.generated_master_key {
        tracing::warn!(
            path = %services.settings.data_dir.join("master.key").display(),
            "no ANTIX_MASTER_KEY given: generated one into the data folder. Back it up: \
             stored provider credentials cannot be decrypted without it"
        );
    }
    Ok(services)
}

/// Reads one line from stdin when it is piped.
fn read_stdin_line() -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        return Ok(None);
    }
    let mut text = String::new();
    stdin.lock().read_to_string(&mut text)?;
    Ok(text
        .lines()
        .next()
        .map(str::to_owned)
        .filter(|l| !l.is_empty()))
}

async fn actor(services: &Services, a: &Actor) -> anyhow::Result<(User, Membership)> {
    let email =
        domain::normalize_email(&a.email).map_err(|e| anyhow::anyhow!("--as: {}", e.message))?;
    let (user, _) = services
        .store
        .user_for_login(&email)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--as: no user {email}"))?;
    let memberships = services.store.memberships(user.id).await?;
    let m = match &a.org {
        Some(name) => memberships.into_iter().find(|m| &m.org.name == name),
        None => memberships.into_iter().next(),
    }
    .ok_or_else(|| anyhow::anyhow!("--org: {email} is not a member of that organization"))?;
    Ok((user, m))
}

/// The base URL of an endpoint for each SDK.
pub fn endpoint_urls(public_base: &str, id: domain::EndpointId) -> serde_json::Value {
    let base = format!("{public_base}/v1/{id}");
    json!({
        "openai": format!("{base}/openai"),
        "anthropic": format!("{base}/anthropic"),
        "gemini": format!("{base}/gemini"),
        "multi": format!("{base}/multi"),
    })
}

/// `antix endpoint …`
pub async fn endpoint(settings: Settings, command: EndpointCommand) -> anyhow::Result<()> {
    match command {
        EndpointCommand::Create {
            actor,
            name,
            shared,
            json,
        } => return endpoint_create(settings, &actor, &name, shared, json).await,
        EndpointCommand::Archive { actor, id } => {
            return endpoint_archive(settings, &actor, id).await;
        }
        _ => {}
    }
    let services = start(settings).await?;
    let result = match command {
        EndpointCommand::List { actor, json } => {
            manage::endpoint_list(&services, &actor, json).await
        }
        EndpointCommand::Rename {
            actor,
            id,
            name,
            json,
        } => manage::endpoint_rename(&services, &actor, id, &name, json).await,
        EndpointCommand::Duplicate { actor, id, json } => {
            manage::endpoint_duplicate(&services, &actor, id, json).await
        }
        EndpointCommand::Create { .. } | EndpointCommand::Archive { .. } => Ok(()),
    };
    services.store.close().await;
    result
}

/// `antix token …`
pub async fn token(settings: Settings, command: TokenCommand) -> anyhow::Result<()> {
    use antix::manage::tokens;
    use secrecy::ExposeSecret;
    let services = start(settings).await?;
    let result = async {
        match command {
            TokenCommand::Create {
                actor: who,
                name,
                write,
                json,
            } => {
                let (user, m) = actor(&services, &who).await?;
                let a = antix::manage::Actor::portal(user, m);
                let issued = tokens::issue(&services.store, &services.keys, &a, &name, write)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", manage::describe(&e)))?;
                let secret = issued.secret.expose_secret();
                if json {
                    say(&json!({"id": issued.token.id, "name": issued.token.name,
                        "write": issued.token.can_write, "token": secret})
                    .to_string());
                } else {
                    say(secret);
                }
                Ok(())
            }
            TokenCommand::List { actor: who, json } => {
                let (user, m) = actor(&services, &who).await?;
                let a = antix::manage::Actor::portal(user, m);
                let list = tokens::list(&services.store, &a)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", manage::describe(&e)))?;
                for t in list {
                    if json {
                        say(&json!({"id": t.id, "name": t.name, "display": t.display,
                            "write": t.can_write, "created_at": t.created_at,
                            "last_used_at": t.last_used_at, "revoked_at": t.revoked_at})
                        .to_string());
                    } else {
                        say(&format!(
                            "{}  {:<24} {:<10} {}{}",
                            t.id,
                            t.name,
                            if t.can_write {
                                "read-write"
                            } else {
                                "read-only"
                            },
                            t.display,
                            if t.revoked_at.is_some() {
                                "  (revoked)"
                            } else {
                                ""
                            }
                        ));
                    }
                }
                Ok(())
            }
            TokenCommand::Revoke { actor: who, id } => {
                let (user, m) = actor(&services, &who).await?;
                let a = antix::manage::Actor::portal(user, m);
                tokens::revoke(&services.store, &a, id)
                    .await
                    .map_err(|e| anyhow::anyhow!("{}", manage::describe(&e)))?;
                say(&format!("Revoked {id}."));
                Ok(())
            }
        }
    }
    .await;
    services.store.close().await;
    result
}

/// `antix key …`
pub async fn key(settings: Settings, command: KeyCommand) -> anyhow::Result<()> {
    if let KeyCommand::Create { actor, name, json } = &command {
        return key_create(settings, actor, name, *json).await;
    }
    let services = start(settings).await?;
    let result = match command {
        KeyCommand::List { actor, json } => manage::key_list(&services, &actor, json).await,
        KeyCommand::Revoke { actor, id, json } => {
            manage::key_revoke(&services, &actor, id, json).await
        }
        KeyCommand::Update {
            actor,
            id,
            changes,
            json,
        } => manage::key_update(&services, &actor, id, &changes, json).await,
        KeyCommand::Create { .. } => Ok(()),
    };
    services.store.close().await;
    result
}

pub async fn endpoint_create(
    settings: Settings,
    actor_: &Actor,
    name: &str,
    shared: bool,
    as_json: bool,
) -> anyhow::Result<()> {
    let services = start(settings).await?;
    let (user, m) = actor(&services, actor_).await?;
    if shared && m.role != domain::Role::Admin {
        anyhow::bail!("only organization admins can create org-shared endpoints");
    }
    let name = domain::validate_name("name", name)
        .map_err(|e| anyhow::anyhow!("--name: {}", e.message))?;
    let e = services
        .store
        .create_endpoint(&antix::store::endpoints::NewEndpoint {
            org: m.org.id,
            owner: user.id,
            scope: if shared {
                Scope::OrgShared
            } else {
                Scope::Personal
            },
            name: &name,
        })
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let urls = endpoint_urls(&services.settings.public_base(), e.id);
    if as_json {
        say(&json!({"id": e.id, "name": e.name, "scope": e.scope, "urls": urls}).to_string());
    } else {
        say(&format!(
            "Endpoint \"{}\" ({}): keep these URLs secret.",
            e.name, e.id
        ));
        for (k, v) in urls.as_object().into_iter().flatten() {
            say(&format!("  {k:<10} {}", v.as_str().unwrap_or_default()));
        }
    }
    services.store.close().await;
    Ok(())
}

pub async fn endpoint_archive(
    settings: Settings,
    actor_: &Actor,
    id: domain::EndpointId,
) -> anyhow::Result<()> {
    let services = start(settings).await?;
    let (user, m) = actor(&services, actor_).await?;
    let e = services
        .store
        .endpoint(id)
        .await?
        .filter(|e| e.org_id == m.org.id)
        .ok_or_else(|| anyhow::anyhow!("--id: no such endpoint in \"{}\"", m.org.name))?;
    let allowed = match e.scope {
        Scope::Personal => e.owner_id == user.id,
        Scope::OrgShared => m.role == domain::Role::Admin,
    };
    if !allowed {
        anyhow::bail!("not allowed to archive this endpoint");
    }
    services
        .store
        .archive_endpoint(id, domain::now_ms())
        .await?;
    say(&format!(
        "Archived \"{}\"; it now answers 410 Gone.",
        e.name
    ));
    services.store.close().await;
    Ok(())
}

pub async fn key_create(
    settings: Settings,
    actor_: &Actor,
    name: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let services = start(settings).await?;
    let (user, m) = actor(&services, actor_).await?;
    if m.role != domain::Role::Admin && !m.org.members_can_create_keys {
        anyhow::bail!("only organization admins can issue keys in this organization");
    }
    let name = domain::validate_name("name", name)
        .map_err(|e| anyhow::anyhow!("--name: {}", e.message))?;
    let issued = antix::virtual_keys::issue(
        &services.store,
        &services.keys,
        m.org.id,
        user.id,
        &name,
        None,
        &KeyLimits::default(),
    )
    .await?;
    if as_json {
        say(&json!({"id": issued.key.id, "key": issued.secret.expose_secret()}).to_string());
    } else {
        say(&format!(
            "Virtual key \"{}\" (shown once, store it now):",
            issued.key.name
        ));
        say(issued.secret.expose_secret());
    }
    services.store.close().await;
    Ok(())
}

pub async fn credential(settings: Settings, command: CredentialCommand) -> anyhow::Result<()> {
    let services = start(settings).await?;
    match command {
        CredentialCommand::Set {
            actor: actor_,
            provider,
            name,
            base_url,
            weight,
            rpm,
            tpm,
            disabled,
        } => {
            let (user, m) = actor(&services, &actor_).await?;
            let provider = Provider::parse(&provider)
                .ok_or_else(|| anyhow::anyhow!("--provider: use openai, anthropic or gemini"))?;
            let secret = read_stdin_line()?
                .ok_or_else(|| anyhow::anyhow!("pipe the provider key on stdin"))?;
            let spec = antix::manage::credentials::CredentialSpec {
                provider,
                name: name.clone(),
                api_key: SecretString::from(secret),
                base_url,
                weight,
                rpm: rpm.filter(|n| *n > 0),
                tpm: tpm.filter(|n| *n > 0),
                enabled: !disabled,
            };
            let org = m.org.name.clone();
            let who = antix::manage::Actor::portal(user, m);
            antix::manage::credentials::set(
                &services.store,
                &services.keys,
                &services.settings,
                &who,
                &spec,
            )
            .await
            .map_err(|e| anyhow::anyhow!("{}", manage::describe(&e)))?;
            say(&format!(
                "Set the {} credential \"{name}\" of \"{}\".",
                provider.as_str(),
                org
            ));
        }
        CredentialCommand::List {
            actor: actor_,
            json,
        } => manage::credential_list(&services, &actor_, json).await?,
        CredentialCommand::Test {
            actor: actor_,
            provider,
            name,
            json,
        } => {
            if !manage::credential_test(&services, &actor_, &provider, &name, json).await? {
                services.store.close().await;
                anyhow::bail!("the {provider} credential \"{name}\" does not work");
            }
        }
        CredentialCommand::Delete {
            actor: actor_,
            provider,
            name,
        } => {
            let (_, m) = actor(&services, &actor_).await?;
            if m.role != domain::Role::Admin {
                anyhow::bail!("only organization admins can remove provider credentials");
            }
            let provider = Provider::parse(&provider)
                .ok_or_else(|| anyhow::anyhow!("--provider: use openai, anthropic or gemini"))?;
            let found = services
                .store
                .credentials_for(m.org.id, provider)
                .await?
                .into_iter()
                .find(|c| c.name == name)
                .ok_or_else(|| {
                    anyhow::anyhow!("no {} credential named \"{name}\"", provider.as_str())
                })?;
            services.store.delete_credential(m.org.id, found.id).await?;
            say(&format!(
                "Removed the {} credential \"{name}\".",
                provider.as_str()
            ));
        }
    }
    services.store.close().await;
    Ok(())
}

pub fn print_config(settings: &Settings) {
    for var in VARS {
        let value = match var.key {
            "master_key" => settings
                .master_key
                .as_ref()
                .map(|_| "<set>".to_owned())
                .unwrap_or_else(|| "<generated into data_dir/master.key>".into()),
            "database_url" => settings.database_url.redacted(),
            // Secrets: only whether they are set.
            "metrics.token" | "otel.headers" => match std::env::var(var.env) {
                Ok(v) if !v.is_empty() => "<set>".into(),
                _ => String::new(),
            },
            "public_url" => settings.public_base(),
            _ => std::env::var(var.env)
                .ok()
                .or_else(|| var.default.map(str::to_owned))
                .unwrap_or_default(),
        };
        say(&format!("{:<30} {:<30} {}", var.env, var.key, value));
    }
}
