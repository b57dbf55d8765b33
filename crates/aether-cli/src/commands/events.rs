//! `aether events [--follow]`: the event log of the control plane, the
//! last N events, then (with `--follow`) new ones as they arrive.

use std::collections::VecDeque;
use std::time::Duration;

use aether_proto::control::{EventsPage, StoredEvent};
use reqwest::Method;

use super::check_name;
use crate::cli::EventsArgs;
use crate::client::Client;
use crate::error::Usage;
use crate::output::{self, truncate};

/// The server's largest page (`MAX_EVENTS_LIMIT` of aether-control).
const PAGE_SIZE: usize = 1000;
/// How often `--follow` asks for new events: quick enough to feel live,
/// and one small request per second is nothing for the control plane.
const POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Longest `data` shown in a human line; `--json` shows all of it.
const MAX_DATA_SHOWN: usize = 120;

/// Runs `aether events`.
pub async fn run(args: EventsArgs, control: &Client, json: bool) -> anyhow::Result<()> {
    if let Some(name) = &args.function {
        check_name(name)?;
    }
    if args.limit == 0 {
        return Err(Usage("--limit must be at least 1".into()).into());
    }
    let (events, mut since) = last_events(control, &args).await?;
    if json && !args.follow {
        return output::json(&EventsPage {
            events: events.into(),
            next_since: since,
        });
    }
    if events.is_empty() && !args.follow && !json {
        eprintln!("no events");
    }
    for event in &events {
        show(event, json)?;
    }
    if !args.follow {
        return Ok(());
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(POLL_INTERVAL) => {}
            stop = tokio::signal::ctrl_c() => {
                stop.map_err(|e| anyhow::anyhow!("cannot listen for Ctrl-C: {e}"))?;
                return Ok(());
            }
        }
        let page = fetch(control, &args, since).await?;
        for event in &page.events {
            show(event, json)?;
        }
        since = page.next_since.or(since);
    }
}

/// Pages through everything after `--since` keeping the last `--limit`
/// events; returns them and the id to continue after.
async fn last_events(
    control: &Client,
    args: &EventsArgs,
) -> anyhow::Result<(VecDeque<StoredEvent>, Option<u64>)> {
    let mut kept = VecDeque::with_capacity(args.limit.min(PAGE_SIZE));
    let mut since = args.since;
    loop {
        let page = fetch(control, args, since).await?;
        let count = page.events.len();
        for event in page.events {
            if kept.len() == args.limit {
                kept.pop_front();
            }
            kept.push_back(event);
        }
        // A page that does not advance would loop forever; a short page is
        // the end.
        if count < PAGE_SIZE || page.next_since == since {
            return Ok((kept, page.next_since.or(since)));
        }
        since = page.next_since;
    }
}

async fn fetch(
    control: &Client,
    args: &EventsArgs,
    since: Option<u64>,
) -> anyhow::Result<EventsPage> {
    let mut query: Vec<(&str, String)> = vec![("limit", PAGE_SIZE.to_string())];
    if let Some(s) = since {
        query.push(("since", s.to_string()));
    }
    if let Some(f) = &args.function {
        query.push(("function", f.clone()));
    }
    control
        .json(control.request(Method::GET, "/api/events").query(&query))
        .await
}

fn show(event: &StoredEvent, json: bool) -> anyhow::Result<()> {
    if json {
        return output::json_line(event);
    }
    let mut line = format!("#{}  {}  {}", event.id, event.received_at, event.event);
    if let Some(node) = &event.node_id {
        line.push_str(&format!("  node={node}"));
    }
    if let Some(function) = &event.function {
        line.push_str(&format!("  function={function}"));
    }
    if !event.data.is_null() && event.data != serde_json::json!({}) {
        line.push_str("  ");
        line.push_str(&truncate(&event.data.to_string(), MAX_DATA_SHOWN));
    }
    output::line(&line)
}
