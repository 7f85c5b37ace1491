//! `antix endpoint list|rename|duplicate`, `antix key list|revoke|update`, `antix credential
//! list|test`: the portal's management actions from a shell, under the same rules
//! ([`antix::access`]), acting as the user named by `--as`. Every command prints a line for a
//! person, or one JSON document (`--json`) for a script.

use antix::Services;
use antix::domain::{self, Provider, Role};
use serde_json::{Value, json};

use super::{Actor, actor, endpoint_urls, say};

/// Prints `value` as JSON, or each of `lines` for a person.
fn show(as_json: bool, value: &Value, lines: impl IntoIterator<Item = String>) {
    if as_json {
        say(&value.to_string());
    } else {
        for l in lines {
            say(&l);
        }
    }
}

fn time(ms: Option<i64>) -> Value {
    ms.and_then(chrono::DateTime::from_timestamp_millis)
        .map_or(Value::Null, |d| json!(d.to_rfc3339()))
}

fn endpoint_json(s: &Services, e: &domain::Endpoint) -> Value {
    json!({
        "id": e.id, "name": e.name, "scope": e.scope, "owner_id": e.owner_id,
        "created_at": time(Some(e.created_at)), "archived_at": time(e.archived_at),
        "passthrough": e.passthrough,
        "fallbacks": e.fallbacks.iter().map(ToString::to_string).collect::<Vec<_>>(),
        "urls": endpoint_urls(&s.settings.public_base(), e.id),
    })
}

/// An endpoint the actor may see, or the same "not found" for anything else.
async fn visible(
    s: &Services,
    user: &domain::User,
    id: domain::EndpointId,
) -> anyhow::Result<(domain::Endpoint, domain::Membership)> {
    antix::access::visible_endpoint(&s.store, user, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--id: no endpoint {id} that you can see"))
}

pub async fn endpoint_list(s: &Services, a: &Actor, as_json: bool) -> anyhow::Result<()> {
    let (user, m) = actor(s, a).await?;
    let list = s.store.visible_endpoints(m.org.id, user.id).await?;
    let value = Value::Array(list.iter().map(|e| endpoint_json(s, e)).collect());
    show(
        as_json,
        &value,
        list.iter().map(|e| {
            format!(
                "{}  {:<10} {}{}",
                e.id,
                e.scope.as_str(),
                e.name,
                if e.archived_at.is_some() {
                    "  (archived)"
                } else {
                    ""
                }
            )
        }),
    );
    Ok(())
}

pub async fn endpoint_rename(
    s: &Services,
    a: &Actor,
    id: domain::EndpointId,
    name: &str,
    as_json: bool,
) -> anyhow::Result<()> {
    let (user, _) = actor(s, a).await?;
    let (e, m) = visible(s, &user, id).await?;
    if !antix::access::can_manage_endpoint(&e, &user, &m) {
        anyhow::bail!("only the owner (or an admin, for org-shared endpoints) can rename it");
    }
    let name = domain::validate_name("name", name)
        .map_err(|e| anyhow::anyhow!("--name: {}", e.message))?;
    s.store.rename_endpoint(e.id, &name).await?;
    let renamed = s.store.endpoint(e.id).await?.unwrap_or(e);
    show(
        as_json,
        &endpoint_json(s, &renamed),
        [format!("Renamed {} to \"{}\".", renamed.id, renamed.name)],
    );
    Ok(())
}

pub async fn endpoint_duplicate(
    s: &Services,
    a: &Actor,
    id: domain::EndpointId,
    as_json: bool,
) -> anyhow::Result<()> {
    let (user, _) = actor(s, a).await?;
    let (e, m) = visible(s, &user, id).await?;
    if !antix::access::can_duplicate_endpoint(&e, &m) {
        anyhow::bail!(
            "only an admin can duplicate an endpoint, and only an active personal one, as an org endpoint"
        );
    }
    let copy = s
        .store
        .duplicate_endpoint_as_shared(&e, user.id)
        .await
        .map_err(|err| anyhow::anyhow!("{err}"))?;
    let urls = endpoint_urls(&s.settings.public_base(), copy.id);
    let mut lines = vec![format!(
        "Org endpoint \"{}\" ({}): keep these URLs secret.",
        copy.name, copy.id
    )];
    for (k, v) in urls.as_object().into_iter().flatten() {
        lines.push(format!("  {k:<10} {}", v.as_str().unwrap_or_default()));
    }
    show(as_json, &endpoint_json(s, &copy), lines);
    Ok(())
}

fn dollars(nanos: Option<i64>) -> Value {
    nanos.map_or(Value::Null, |n| json!(antix::export::dollars(n)))
}

fn key_json(k: &domain::VirtualKey) -> Value {
    let l = &k.limits;
    json!({
        "id": k.id, "name": k.name, "display": k.display, "created_by": k.created_by,
        "created_at": time(Some(k.created_at)), "expires_at": time(k.expires_at),
        "revoked_at": time(k.revoked_at), "last_used_at": time(k.last_used_at),
        "limits": {
            "budget_daily_usd": dollars(l.budget_daily_nanos),
            "budget_monthly_usd": dollars(l.budget_monthly_nanos),
            "budget_total_usd": dollars(l.budget_total_nanos),
            "rpm": l.rpm, "tpm": l.tpm,
            "allowed_models": l.allowed_models,
            "allowed_endpoints": l.allowed_endpoints,
            "allow_unmetered": l.allow_unmetered,
        },
    })
}

pub async fn key_list(s: &Services, a: &Actor, as_json: bool) -> anyhow::Result<()> {
    let (user, m) = actor(s, a).await?;
    // Members see the keys they issued; admins every key of the organization.
    let keys: Vec<_> = s
        .store
        .list_virtual_keys(m.org.id)
        .await?
        .into_iter()
        .filter(|k| m.role == Role::Admin || k.created_by == user.id)
        .collect();
    show(
        as_json,
        &Value::Array(keys.iter().map(key_json).collect()),
        keys.iter().map(|k| {
            let state = match k.unusable_reason(domain::now_ms()) {
                Some(why) => format!("  ({why})"),
                None => String::new(),
            };
            format!("{}  {}  {}{state}", k.id, k.display, k.name)
        }),
    );
    Ok(())
}

async fn managed_key(
    s: &Services,
    a: &Actor,
    id: domain::VirtualKeyId,
) -> anyhow::Result<(domain::User, domain::Membership, domain::VirtualKey)> {
    let (user, m) = actor(s, a).await?;
    let k = antix::access::managed_key(&s.store, &user, &m, id)
        .await?
        .ok_or_else(|| anyhow::anyhow!("--id: no key {id} that you can manage"))?;
    Ok((user, m, k))
}

pub async fn key_revoke(
    s: &Services,
    a: &Actor,
    id: domain::VirtualKeyId,
    as_json: bool,
) -> anyhow::Result<()> {
    let (_, m, k) = managed_key(s, a, id).await?;
    s.store
        .revoke_virtual_key(m.org.id, k.id, domain::now_ms())
        .await?;
    let k = s.store.virtual_key(k.id).await?.unwrap_or(k);
    show(
        as_json,
        &key_json(&k),
        [format!(
            "Revoked \"{}\" ({}): it is refused from now on.",
            k.name, k.display
        )],
    );
    Ok(())
}

/// What `key update` changes; `None` leaves a setting as it is, `Some("none")` clears a limit.
#[derive(Debug, Default, clap::Args)]
pub struct KeyChanges {
    #[arg(long)]
    pub name: Option<String>,
    /// Daily budget in US dollars, or `none`.
    #[arg(long)]
    pub budget_daily: Option<String>,
    /// Monthly budget in US dollars, or `none`.
    #[arg(long)]
    pub budget_monthly: Option<String>,
    /// Lifetime budget in US dollars, or `none`.
    #[arg(long)]
    pub budget_total: Option<String>,
    /// Requests per minute, or `none`.
    #[arg(long)]
    pub rpm: Option<String>,
    /// Tokens per minute, or `none`.
    #[arg(long)]
    pub tpm: Option<String>,
    /// Comma-separated model patterns (`gpt-4o*`), or `none` for any model.
    #[arg(long)]
    pub models: Option<String>,
}

fn cleared(v: &str) -> bool {
    matches!(v.trim(), "none" | "")
}

fn usd(flag: &str, v: &str) -> anyhow::Result<Option<i64>> {
    if cleared(v) {
        return Ok(None);
    }
    app::format::parse_usd(v).map_err(|e| anyhow::anyhow!("--{flag}: {e}"))
}

fn per_minute(flag: &str, v: &str) -> anyhow::Result<Option<i64>> {
    if cleared(v) {
        return Ok(None);
    }
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|n| *n > 0)
        .map(Some)
        .ok_or_else(|| anyhow::anyhow!("--{flag}: a whole number above 0, or none"))
}

pub async fn key_update(
    s: &Services,
    a: &Actor,
    id: domain::VirtualKeyId,
    c: &KeyChanges,
    as_json: bool,
) -> anyhow::Result<()> {
    let (_, m, k) = managed_key(s, a, id).await?;
    let name = match &c.name {
        Some(n) => domain::validate_name("name", n)
            .map_err(|e| anyhow::anyhow!("--name: {}", e.message))?,
        None => k.name.clone(),
    };
    let mut limits = k.limits.clone();
    if let Some(v) = &c.budget_daily {
        limits.budget_daily_nanos = usd("budget-daily", v)?;
    }
    if let Some(v) = &c.budget_monthly {
        limits.budget_monthly_nanos = usd("budget-monthly", v)?;
    }
    if let Some(v) = &c.budget_total {
        limits.budget_total_nanos = usd("budget-total", v)?;
    }
    if let Some(v) = &c.rpm {
        limits.rpm = per_minute("rpm", v)?;
    }
    if let Some(v) = &c.tpm {
        limits.tpm = per_minute("tpm", v)?;
    }
    if let Some(v) = &c.models {
        limits.allowed_models = if cleared(v) {
            Vec::new()
        } else {
            v.split(',')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .map(str::to_owned)
                .collect()
        };
    }
    // The same rule as the portal: limits are the admins' promise about the organization's
    // credential; a member may rename their key, never lift its limits.
    if m.role != Role::Admin && limits != k.limits {
        anyhow::bail!("only organization admins can change a key's limits");
    }
    s.store
        .update_virtual_key(m.org.id, k.id, &name, k.expires_at, &limits)
        .await?;
    let k = s.store.virtual_key(k.id).await?.unwrap_or(k);
    show(
        as_json,
        &key_json(&k),
        [format!("Updated \"{}\" ({}).", k.name, k.display)],
    );
    Ok(())
}

pub async fn credential_list(s: &Services, a: &Actor, as_json: bool) -> anyhow::Result<()> {
    let (_, m) = actor(s, a).await?;
    let list = s.store.list_credentials(m.org.id).await?;
    let value = Value::Array(
        list.iter()
            .map(|c| {
                json!({"id": c.id, "provider": c.provider, "name": c.name, "last4": c.last4,
                    "base_url": c.base_url, "weight": c.weight, "rpm": c.rpm, "tpm": c.tpm,
                    "enabled": c.enabled})
            })
            .collect(),
    );
    show(
        as_json,
        &value,
        list.iter().map(|c| {
            format!(
                "{:<10} {:<16} …{}  weight {}{}",
                c.provider,
                c.name,
                c.last4,
                c.weight,
                if c.enabled { "" } else { "  (off)" }
            )
        }),
    );
    Ok(())
}

/// Calls the provider's model list with the credential: whether the key works, from here.
pub async fn credential_test(
    s: &Services,
    a: &Actor,
    provider: &str,
    name: &str,
    as_json: bool,
) -> anyhow::Result<bool> {
    let (_, m) = actor(s, a).await?;
    if m.role != Role::Admin {
        anyhow::bail!("only organization admins can test provider credentials");
    }
    let p = Provider::parse(provider)
        .ok_or_else(|| anyhow::anyhow!("--provider: use openai, anthropic or gemini"))?;
    let row = s
        .store
        .credentials_for(m.org.id, p)
        .await?
        .into_iter()
        .find(|c| c.name == name)
        .ok_or_else(|| anyhow::anyhow!("no {} credential named \"{name}\"", p.as_str()))?;
    let cred = antix::credentials::open_or_learn(&s.store, &s.keys, &row)
        .await
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    let t = antix::credentials::test(&s.settings, &cred, p).await;
    show(
        as_json,
        &json!({"provider": p.as_str(), "name": name, "ok": t.ok, "status": t.status,
            "message": t.message, "latency_ms": t.latency_ms}),
        [format!(
            "{} {} \"{name}\": {} ({} ms)",
            if t.ok { "OK" } else { "FAILED" },
            p.as_str(),
            t.message,
            t.latency_ms
        )],
    );
    Ok(t.ok)
}

/// A management refusal as one line for the terminal.
pub fn describe(e: &antix::manage::ManageError) -> String {
    use antix::manage::ManageError as M;
    match e {
        M::NotFound => "not found".into(),
        M::Forbidden(m) | M::Conflict(m) => m.clone(),
        M::Invalid(fields) => fields
            .iter()
            .map(|f| format!("--{}: {}", f.field.replace('_', "-"), f.message))
            .collect::<Vec<_>>()
            .join("; "),
        M::Store(s) => s.to_string(),
    }
}
