//! `antix admin …`: the first administrator without the browser, the first-run setup token,
//! and master key rotation.

use antix::accounts;
use antix::config::Settings;
use secrecy::{ExposeSecret, SecretString};

use super::{read_stdin_line, say, start};

pub async fn rotate_master_key(settings: Settings) -> anyhow::Result<()> {
    let data_dir = settings.data_dir.clone();
    let from_env = settings.master_key.is_some();
    let services = start(settings).await?;
    let next_path = data_dir.join("master.key.next");
    let (new, resumed) = if next_path.exists() {
        (antix::crypto::MasterKey::read(&next_path)?, true)
    } else {
        let k = antix::crypto::MasterKey::generate();
        k.write_new(&next_path)?;
        (k, false)
    };
    let old_id = services.keys.key_id().to_owned();
    let new_id = new.keys().key_id().to_owned();
    if new_id == old_id {
        anyhow::bail!("master.key.next holds the current key: nothing to rotate (remove it)");
    }
    say(&format!(
        "{} rotation from key {old_id} to key {new_id}",
        if resumed {
            "Resuming the"
        } else {
            "Starting the"
        }
    ));
    let r = antix::keyring::rotate(&services.store, &services.keys, &new, None).await?;
    if r.remaining > 0 {
        anyhow::bail!(
            "{} credentials moved, {} changed while moving: run the command again",
            r.moved,
            r.remaining
        );
    }
    say(&format!(
        "{} credentials re-encrypted; virtual keys, sessions and invitations unchanged",
        r.moved
    ));
    if from_env {
        let kept = data_dir.join(format!("master.key.{new_id}"));
        std::fs::rename(&next_path, &kept)?;
        say(
            "Set ANTIX_MASTER_KEY to this key on every server and restart them (the old key keeps working until you do):",
        );
        say(&new.to_text());
        say(&format!(
            "(also in {}: delete it once it is in place)",
            kept.display()
        ));
    } else {
        let current = data_dir.join("master.key");
        let retired = data_dir.join(format!("master.key.{old_id}.retired"));
        std::fs::rename(&current, &retired)?;
        std::fs::rename(&next_path, &current)?;
        say(&format!(
            "{} now holds the new key; the old one is kept as {} until you delete it. Restart the servers.",
            current.display(),
            retired.display()
        ));
    }
    say("Once every server runs on the new key: antix admin forget-retired-keys");
    Ok(())
}

pub async fn setup_token(settings: Settings) -> anyhow::Result<()> {
    let base = settings.public_base();
    let services = start(settings).await?;
    if services.store.is_initialized().await? {
        anyhow::bail!("this instance already has an administrator: setup is closed");
    }
    let token = services.keys.setup_token();
    say(&format!("Setup token: {token}"));
    say(&format!("Or open: {base}/setup?token={token}"));
    Ok(())
}

pub async fn forget_retired_keys(settings: Settings) -> anyhow::Result<()> {
    let services = start(settings).await?;
    let n = antix::keyring::forget_retired(&services.store, &services.keys).await?;
    if n == 0 && !antix::keyring::rotation_done(&services.store, &services.keys).await? {
        anyhow::bail!(
            "this server's key is not the one every credential uses: finish the rotation (antix admin rotate-master-key) and run this with the new key"
        );
    }
    say(&format!(
        "{} retired master {} forgotten",
        n,
        if n == 1 { "key" } else { "keys" }
    ));
    Ok(())
}

pub async fn admin_create(
    settings: Settings,
    email: &str,
    org: &str,
    name: &str,
) -> anyhow::Result<()> {
    let services = start(settings).await?;
    let (password, generated) = match read_stdin_line()? {
        Some(p) => (p, false),
        None => (antix::crypto::random_base62(20), true),
    };
    let password = SecretString::from(password);
    let result = accounts::create_first_admin(
        &services.store,
        accounts::FirstAdmin {
            email,
            name,
            password: password.expose_secret(),
            org_name: org,
        },
    )
    .await;
    let (user, org) = match result {
        Ok(v) => v,
        Err(accounts::AccountError::Invalid(fields)) => {
            let msgs: Vec<String> = fields
                .iter()
                .map(|f| format!("--{}: {}", f.field, f.message))
                .collect();
            anyhow::bail!("invalid input: {}", msgs.join("; "));
        }
        Err(e) => anyhow::bail!("{e}"),
    };
    say(&format!(
        "Created administrator {} in organization \"{}\".",
        user.email, org.name
    ));
    if generated {
        say(&format!(
            "Password (shown once, store it now): {}",
            password.expose_secret()
        ));
    }
    say(&format!(
        "Log in at {}/login",
        services.settings.public_base()
    ));
    services.store.close().await;
    Ok(())
}
