//! `aether functions [list|show|rm|rollback]`: the function registry.

use aether_proto::control::{
    DeleteResponse, DeployResponse, FunctionInfo, Manifest, RollbackRequest,
};
use reqwest::Method;

use super::check_name;
use crate::cli::{FunctionsAction, FunctionsArgs};
use crate::client::Client;
use crate::output::{self, Table, short_sha};

/// Runs `aether functions ...`.
pub async fn run(args: FunctionsArgs, control: &Client, json: bool) -> anyhow::Result<()> {
    match args.action.unwrap_or(FunctionsAction::List) {
        FunctionsAction::List => list(control, json).await,
        FunctionsAction::Show { name } => show(control, &name, json).await,
        FunctionsAction::Rm { name } => remove(control, &name, json).await,
        FunctionsAction::Rollback { name, version } => {
            rollback(control, &name, version, json).await
        }
    }
}

async fn list(control: &Client, json: bool) -> anyhow::Result<()> {
    let manifest: Manifest = control.get("/api/functions").await?;
    if json {
        return output::json(&manifest);
    }
    if manifest.functions.is_empty() {
        eprintln!(
            "no functions on {}; deploy one with `aether deploy PATH`",
            control.base()
        );
        return Ok(());
    }
    let mut table = Table::new(&["NAME", "KIND", "VERSION", "SIZE", "SHA256", "DEPLOYED"]);
    for f in &manifest.functions {
        table.row(vec![
            f.name.clone(),
            f.kind.to_string(),
            f.version.to_string(),
            format!("{} KiB", f.size_kb),
            short_sha(&f.sha256).to_owned(),
            f.uploaded_at.clone(),
        ]);
    }
    table.print();
    Ok(())
}

async fn show(control: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    check_name(name)?;
    let info: FunctionInfo = control.get(&format!("/api/functions/{name}")).await?;
    if json {
        return output::json(&info);
    }
    println!("name:     {}", info.name);
    println!("current:  version {}", info.current_version);
    if let Some(current) = info
        .versions
        .iter()
        .find(|v| v.version == info.current_version)
    {
        println!("kind:     {}", current.kind);
        println!("sha256:   {}", current.sha256);
        if !current.args.is_empty() {
            println!("args:     {}", current.args.join(" "));
        }
        for (key, value) in &current.env {
            println!("env:      {key}={value}");
        }
        if let Some(t) = &current.limits.timeout {
            println!("timeout:  {t}");
        }
        if let Some(m) = &current.limits.memory {
            println!("memory:   {m}");
        }
        for host in &current.allowed_outbound_hosts {
            println!("outbound: {host}");
        }
    }
    println!();
    let mut table = Table::new(&["", "VERSION", "KIND", "SIZE", "SHA256", "DEPLOYED"]);
    for v in &info.versions {
        let mark = if v.version == info.current_version {
            "*"
        } else {
            ""
        };
        table.row(vec![
            mark.to_owned(),
            v.version.to_string(),
            v.kind.to_string(),
            format!("{} KiB", v.size_kb),
            short_sha(&v.sha256).to_owned(),
            v.deployed_at.clone(),
        ]);
    }
    table.print();
    Ok(())
}

async fn remove(control: &Client, name: &str, json: bool) -> anyhow::Result<()> {
    check_name(name)?;
    let deleted: DeleteResponse = control
        .json(control.request(Method::DELETE, &format!("/api/functions/{name}")))
        .await?;
    if json {
        return output::json(&deleted);
    }
    let plural = if deleted.versions_removed == 1 {
        ""
    } else {
        "s"
    };
    println!(
        "removed {} ({} version{plural})",
        deleted.function_id, deleted.versions_removed
    );
    Ok(())
}

async fn rollback(control: &Client, name: &str, version: u64, json: bool) -> anyhow::Result<()> {
    check_name(name)?;
    let req = control
        .request(Method::POST, &format!("/api/functions/{name}/rollback"))
        .json(&RollbackRequest { version });
    let done: DeployResponse = control.json(req).await?;
    if json {
        return output::json(&done);
    }
    println!(
        "{} now runs version {} (sha256 {})",
        done.function_id, done.version, done.sha256
    );
    Ok(())
}
