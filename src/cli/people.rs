//! The commands for people: look at what the sessions do, and step in when one is stuck.

use std::fmt::Write as _;

use super::table::{Cell, Paint, Table, ago, color_wanted, countdown, one_line};
use super::{CliError, Purpose, existing, person, show};
use crate::clock::Timestamp;
use crate::config::Database;
use crate::coordinator::{Coordinator, LockListQuery, Outgoing, Overview, Queued, Sender};
use crate::flags::{
    ContextArgs, EndSessionArgs, JsonFlag, LocksArgs, MessagesArgs, ReleaseArgs, Scope, SendArgs,
};
use crate::model::{ContextEntry, Intent, Lock, LockType, Message, Priority};

/// Longest message or context text shown on one line before it is cut.
const TEXT_WIDTH: usize = 100;

pub fn status(coordinator: &Coordinator, args: &Scope) -> Result<String, CliError> {
    let overview = coordinator.overview(args.project.as_deref())?;
    show(&overview, &args.output, |o| {
        render_overview(o, color_wanted())
    })
}

pub fn locks(coordinator: &Coordinator, args: &LocksArgs) -> Result<String, CliError> {
    let list = coordinator.list_locks(
        None,
        LockListQuery {
            project: args.scope.project.clone(),
            session_id: args.session.clone(),
            file_path: args.path.clone(),
            group: args.group.clone(),
            limit: Some(1_000),
        },
    )?;
    let now = coordinator.now();
    show(&list, &args.scope.output, |list| {
        section("LOCKS", &locks_table(&list.locks, now), color_wanted())
    })
}

pub fn messages(coordinator: &Coordinator, args: &MessagesArgs) -> Result<String, CliError> {
    let messages = coordinator.project_messages(
        args.scope.project.as_deref(),
        args.channel,
        Some(args.limit),
    )?;
    let now = coordinator.now();
    show(&messages, &args.scope.output, |messages| {
        render_messages(messages, now, color_wanted())
    })
}

pub fn send(coordinator: &Coordinator, args: &SendArgs) -> Result<String, CliError> {
    let sent = coordinator.send_message(Outgoing {
        from: Sender::Person {
            name: person(args.from.as_deref()),
            project: args.project.clone(),
            who: None,
        },
        to_session: args.to.clone(),
        to_group: args.group.clone(),
        channel: args.channel,
        priority: args.priority,
        content: args.text.join(" "),
    })?;
    show(&sent, &args.output, |sent| {
        let names = if sent.recipients.is_empty() {
            "no live session of the project".to_owned()
        } else {
            sent.recipients.join(", ")
        };
        format!(
            "Sent {} to {} session{}: {names}\n",
            sent.message_id,
            sent.delivered_to,
            if sent.delivered_to == 1 { "" } else { "s" }
        )
    })
}

pub fn context(coordinator: &Coordinator, args: &ContextArgs) -> Result<String, CliError> {
    let keywords = args.keywords.join(" ");
    let list = coordinator.query_context(
        None,
        args.scope.project.as_deref(),
        args.context_type,
        Some(keywords.as_str()).filter(|k| !k.trim().is_empty()),
        Some(args.limit),
    )?;
    let now = coordinator.now();
    show(&list, &args.scope.output, |list| {
        render_context(&list.entries, now, color_wanted())
    })
}

pub fn release(coordinator: &Coordinator, args: &ReleaseArgs) -> Result<String, CliError> {
    if !args.force {
        return Err(CliError::Usage(format!(
            "a lock belongs to the session that holds it; to take {} away from its holder \
             (who is told in its inbox), add --force",
            args.path
        )));
    }
    let by = person(args.by.as_deref());
    let done = coordinator.force_release(
        &args.project,
        &args.path,
        args.session.as_deref(),
        &by,
        None,
    )?;
    show(&done, &args.output, |done| {
        let mut text = String::new();
        for lock in &done.released {
            let _ = writeln!(
                text,
                "Released {} in {}: {} lock of '{}' ({}, fencing token {}); the holder was told.",
                done.file_path,
                done.project,
                lock.lock_type,
                lock.holder_name,
                lock.session_id,
                lock.fencing_token
            );
        }
        text
    })
}

pub fn end_session(coordinator: &Coordinator, args: &EndSessionArgs) -> Result<String, CliError> {
    let gone = coordinator.end_session(&args.session, args.project.as_deref())?;
    show(&gone, &args.output, |gone| {
        format!(
            "Ended session {}: {} lock{} released, {} intent{} cleared.\n",
            gone.session_id,
            gone.locks_released,
            if gone.locks_released == 1 { "" } else { "s" },
            gone.intents_cleared,
            if gone.intents_cleared == 1 { "" } else { "s" },
        )
    })
}

/// The database's health; fails when it is missing, unsound or read-only.
pub fn doctor(database: &Database, args: &JsonFlag) -> Result<(String, bool), CliError> {
    let location = database.location()?;
    let Some(coordinator) = existing(database, Purpose::Read)? else {
        let text = format!(
            "No database at {location}: nothing has run with this path yet. Servers create it on \
             start; set MCP_COORDINATOR_DB_PATH or --db-path if they use another.\n"
        );
        return Ok((text, false));
    };
    let diagnosis = coordinator.diagnose()?;
    let sound = diagnosis.store.is_sound();
    // Intact but read-only is still a failure: no server can start on it.
    let usable = sound && !diagnosis.store.read_only;
    let now = coordinator.now();
    let text = show(&diagnosis, args, |d| {
        let color = color_wanted();
        let s = &d.store;
        let mut text = String::new();
        let _ = writeln!(
            text,
            "database      {} ({} KiB)",
            s.database,
            s.size_bytes / 1024
        );
        let _ = writeln!(text, "engine        {}", s.engine_version);
        if let Some(tls) = &s.tls {
            let _ = writeln!(text, "tls           {tls}");
        }
        if let Some(mode) = &s.journal_mode {
            let _ = writeln!(text, "journal mode  {mode}");
        }
        if s.read_only {
            let problem = "read-only: servers refuse to start on it; fix its permissions";
            let _ = writeln!(text, "access        {}", Paint::Red.apply(problem, color));
        }
        let _ = writeln!(text, "schema        {}", s.schema_version);
        let integrity = one_line(&s.integrity.join("; "), 200);
        let _ = writeln!(
            text,
            "integrity     {}",
            if sound {
                Paint::Green.apply(&integrity, color)
            } else {
                Paint::Red.apply(&format!("FAILED: {integrity}"), color)
            }
        );
        let _ = writeln!(
            text,
            "sessions      {} ({} stale)",
            d.sessions,
            d.stale_sessions.len()
        );
        for stale in &d.stale_sessions {
            let _ = writeln!(
                text,
                "  stale: '{}' ({}, project {}) last seen {}; a running server sweeps it within its cleanup interval, or end-session removes it now",
                stale.name,
                stale.session_id,
                stale.project,
                ago(now, stale.last_heartbeat)
            );
        }
        text
    })?;
    Ok((text, usable))
}

/// A titled section: the table, or "none" when it has no rows.
fn section(title: &str, table: &Table, color: bool) -> String {
    let title = Paint::Bold.apply(title, color);
    if table.is_empty() {
        format!("{title}: none\n")
    } else {
        format!("{title}\n{}", table.render(color))
    }
}

fn render_overview(overview: &Overview, color: bool) -> String {
    let now = overview.now;
    let mut sessions = Table::new(&[
        "NAME", "ID", "PROJECT", "GROUP", "BRANCH", "SEEN", "STATE", "LOCKS", "INTENTS", "UNREAD",
    ]);
    for s in &overview.sessions {
        let session = &s.activity.session;
        let state = match s.state {
            "active" => Paint::Green,
            _ => Paint::Yellow,
        };
        let unread = match s.activity.unread {
            0 => Cell::new("0", Paint::Dim),
            n => Cell::new(n.to_string(), Paint::Bold),
        };
        sessions.row(vec![
            session.name.as_str().into(),
            Cell::new(session.session_id.as_str(), Paint::Dim),
            session.project.as_str().into(),
            session.group.as_deref().unwrap_or("-").into(),
            session.branch.as_deref().unwrap_or("-").into(),
            ago(now, session.last_heartbeat).into(),
            Cell::new(s.state, state),
            s.activity.locks_held.to_string().into(),
            s.activity.active_intents.to_string().into(),
            unread,
        ]);
    }
    let mut text = section("SESSIONS", &sessions, color);
    text.push('\n');
    text.push_str(&section("LOCKS", &locks_table(&overview.locks, now), color));
    if !overview.queue.is_empty() {
        text.push('\n');
        text.push_str(&section("QUEUE", &queue_table(&overview.queue, now), color));
    }
    text.push('\n');
    text.push_str(&section(
        "INTENTS",
        &intents_table(&overview.intents),
        color,
    ));
    text
}

fn lock_paint(lock_type: LockType) -> Paint {
    match lock_type {
        LockType::Exclusive => Paint::Red,
        LockType::Shared => Paint::Yellow,
        LockType::Intent => Paint::Cyan,
    }
}

fn locks_table(locks: &[Lock], now: Timestamp) -> Table {
    let mut table = Table::new(&["PATH", "PROJECT", "TYPE", "HOLDER", "EXPIRES", "TOKEN"]);
    for lock in locks {
        table.row(vec![
            lock.file_path.as_str().into(),
            lock.project.as_str().into(),
            Cell::new(lock.lock_type.as_str(), lock_paint(lock.lock_type)),
            lock.holder_name.as_str().into(),
            match lock.last_edit_at {
                Some(_) => "at commit".into(),
                None => countdown(now, lock.expires_at).into(),
            },
            lock.fencing_token.to_string().into(),
        ]);
    }
    table
}

fn queue_table(queue: &[Queued], now: Timestamp) -> Table {
    let mut table = Table::new(&["PATH", "PROJECT", "WANTS", "SESSION", "PLACE", "QUEUED"]);
    for Queued {
        project,
        request: waiter,
    } in queue
    {
        table.row(vec![
            waiter.file_path.as_str().into(),
            project.as_str().into(),
            Cell::new(waiter.lock_type.as_str(), lock_paint(waiter.lock_type)),
            waiter.session_name.as_str().into(),
            waiter.position.to_string().into(),
            ago(now, waiter.queued_at).into(),
        ]);
    }
    table
}

fn intents_table(intents: &[Intent]) -> Table {
    let mut table = Table::new(&["ID", "PROJECT", "TYPE", "SESSION", "STATUS", "ON"]);
    for intent in intents {
        let on = intent
            .target
            .iter()
            .cloned()
            .chain(intent.files.iter().cloned())
            .collect::<Vec<_>>()
            .join(", ");
        table.row(vec![
            intent.intent_id.to_string().into(),
            intent.project.as_str().into(),
            intent.intent_type.as_str().into(),
            intent.session_name.as_str().into(),
            intent.status.as_str().into(),
            one_line(&on, TEXT_WIDTH).into(),
        ]);
    }
    table
}

fn render_messages(messages: &[Message], now: Timestamp, color: bool) -> String {
    if messages.is_empty() {
        return "No messages.\n".to_owned();
    }
    let mut text = String::new();
    for m in messages {
        let to = match (&m.to_session, &m.to_group) {
            (Some(session), _) => session.clone(),
            (None, Some(group)) => format!("group {group}"),
            (None, None) => "everyone".to_owned(),
        };
        let priority = match m.priority {
            Priority::Urgent => Paint::Red,
            Priority::High => Paint::Yellow,
            _ => Paint::Dim,
        };
        let unread = if m.read { "" } else { "  (unread)" };
        let _ = writeln!(
            text,
            "{} {}  #{}  {}  {} -> {}{unread}",
            m.message_id,
            ago(now, m.created_at),
            m.channel,
            priority.apply(m.priority.as_str(), color),
            Paint::Bold.apply(&m.from_name, color),
            to,
        );
        let _ = writeln!(text, "    {}", one_line(&m.content, TEXT_WIDTH * 2));
    }
    text
}

fn render_context(entries: &[ContextEntry], now: Timestamp, color: bool) -> String {
    if entries.is_empty() {
        return "No shared context.\n".to_owned();
    }
    let mut text = String::new();
    for e in entries {
        let tags = if e.tags.is_empty() {
            String::new()
        } else {
            format!("  [{}]", e.tags.join(", "))
        };
        let _ = writeln!(
            text,
            "{} {}  {}  {}  by {}{tags}",
            e.context_id,
            Paint::Bold.apply(e.context_type.as_str(), color),
            e.project,
            ago(now, e.created_at),
            e.shared_by,
        );
        let _ = writeln!(text, "    {}", one_line(&e.content, TEXT_WIDTH * 2));
    }
    text
}
