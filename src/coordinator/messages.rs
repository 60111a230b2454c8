//! Messages to sessions: direct, to a group, or broadcast to the sender's project; sent by a
//! session or by a person.

use schemars::JsonSchema;
use serde::Serialize;

use super::events::{self, EventKind, Occurrence};
use super::{Coordinator, MAX_MESSAGE_CHARS, limit, optional_label, required_label, required_text};
use crate::clock::Timestamp;
use crate::error::{Error, Result};
use crate::ids::MessageId;
use crate::model::{Channel, Message, Priority, Session};
use crate::store::{InboxFilter, MarkRead, NewMessage, WriteTx};

/// Who sends a message.
#[derive(Debug, Clone)]
pub enum Sender {
    /// A registered session (an AI), which must exist; the call is its heartbeat.
    Session(String),
    /// A person at the command line or on the dashboard, writing into a project under a
    /// name; `who`, whose access token they came with (the dashboard's), for the event.
    Person {
        name: String,
        project: String,
        who: Option<String>,
    },
}

#[derive(Debug, Clone)]
pub struct Outgoing {
    pub from: Sender,
    /// A session id, or the name of a live session of the sender's project; with neither
    /// this nor `to_group`, the message is broadcast to the project.
    pub to_session: Option<String>,
    /// Every live session of this group in the sender's project.
    pub to_group: Option<String>,
    pub channel: Channel,
    pub priority: Priority,
    pub content: String,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Sent {
    pub message_id: MessageId,
    /// Always "sent".
    pub status: &'static str,
    /// The recipient's id; absent for a broadcast.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_session: Option<String>,
    /// The group it went to, when it was sent to one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub to_group: Option<String>,
    /// How many sessions received it.
    pub delivered_to: usize,
    /// The names of the sessions that received it.
    pub recipients: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct InboxQuery {
    pub session_id: String,
    pub channel: Option<Channel>,
    pub unread_only: bool,
    /// A UTC time, or a duration before now like "15m".
    pub since: Option<String>,
    pub limit: Option<u64>,
    pub mark_read: bool,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct Inbox {
    /// Newest first.
    pub messages: Vec<Message>,
    pub count: usize,
    /// Unread messages left in the inbox after this call.
    pub unread_count: i64,
}

#[derive(Debug, Clone, Serialize, JsonSchema)]
pub struct MarkedRead {
    /// How many messages went from unread to read.
    pub marked_read: usize,
    /// Ids that are not in this session's inbox.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_found: Vec<MessageId>,
    pub unread_count: i64,
}

impl Coordinator {
    pub fn send_message(&self, message: Outgoing) -> Result<Sent> {
        let content = required_text("content", &message.content, MAX_MESSAGE_CHARS)?;
        let to = message
            .to_session
            .as_deref()
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let group = optional_label("to_group", message.to_group.as_deref())?;
        if to.is_some() && group.is_some() {
            return Err(Error::invalid(
                "to_group",
                "cannot be combined with to_session: pass one of them, or neither to broadcast",
            ));
        }
        // A person's name is marked, so no one mistakes it for a session they could answer.
        let from = match message.from {
            Sender::Person { name, project, who } => Sender::Person {
                name: format!("{} (person)", required_label("from", &name)?),
                project: required_label("project", &project)?,
                who,
            },
            session => session,
        };
        let now = self.now();
        let (sent, wakes) = self.store.write(|tx| {
            let (project, from_session, from_name, who) = match &from {
                Sender::Session(id) => {
                    let me = Self::acting(tx, id, now)?;
                    (me.project, Some(me.session_id), me.name, me.who)
                }
                Sender::Person { name, project, who } => {
                    (project.clone(), None, name.clone(), who.clone())
                }
            };
            let sender = from_session.as_deref();
            let recipients = match (to, &group) {
                (Some(to), _) => vec![self.recipient(tx, &project, sender, to, now)?],
                (None, Some(group)) => self.group_recipients(tx, &project, sender, group, now)?,
                (None, None) => tx
                    .live_sessions(&project, self.alive_since(now))?
                    .into_iter()
                    .filter(|s| Some(s.session_id.as_str()) != sender)
                    .collect(),
            };
            let to_session = to.and(recipients.first().map(|s| s.session_id.clone()));
            let message_id = tx.insert_message(&NewMessage {
                project: &project,
                from_session: sender,
                from_name: &from_name,
                to_session: to_session.as_deref(),
                to_group: group.as_deref(),
                channel: message.channel,
                priority: message.priority,
                content: &content,
                now,
            })?;
            for recipient in &recipients {
                tx.deliver(message_id, &recipient.session_id)?;
            }
            if message.priority == Priority::Urgent || message.channel == Channel::Alerts {
                events::record(
                    tx,
                    Occurrence {
                        kind: EventKind::UrgentMessage,
                        project: &project,
                        subject: &message_id.to_string(),
                        text: &format!(
                            "{} ({} on {}): {content}",
                            from_name, message.priority, message.channel
                        ),
                        data: serde_json::json!({
                            "message_id": message_id,
                            "from_name": from_name,
                            "from_session": sender,
                            "channel": message.channel,
                            "priority": message.priority,
                            "recipients": recipients.len(),
                        }),
                        who: who.as_deref(),
                    },
                    now,
                )?;
            }
            let wakes: Vec<String> = recipients.iter().filter_map(|s| s.wake.clone()).collect();
            tx.announce(&wakes);
            let sent = Sent {
                message_id,
                status: "sent",
                to_session,
                to_group: group.clone(),
                delivered_to: recipients.len(),
                recipients: recipients.into_iter().map(|s| s.name).collect(),
            };
            Ok::<_, Error>((sent, wakes))
        })?;
        // After the commit, so a woken process finds the message.
        self.wake(&wakes);
        Ok(sent)
    }

    /// Finds a direct message's recipient by id, or by name among the live sessions of the
    /// sender's project (language models remember names better than ids).
    fn recipient(
        &self,
        tx: &WriteTx<'_>,
        project: &str,
        sender: Option<&str>,
        to: &str,
        now: Timestamp,
    ) -> Result<Session> {
        if Some(to) == sender {
            return Err(Error::invalid(
                "to_session",
                "is this session itself; name another session",
            ));
        }
        if let Some(session) = tx.session(to)? {
            return Ok(session);
        }
        let mut named: Vec<Session> = tx
            .named(to, Some(project), self.alive_since(now))?
            .into_iter()
            .filter(|s| Some(s.session_id.as_str()) != sender)
            .collect();
        match named.len() {
            1 => Ok(named.remove(0)),
            0 => Err(Error::invalid(
                "to_session",
                format!(
                    "no session has the id or name '{to}' in project {project}; session_list shows who is here"
                ),
            )),
            n => Err(Error::invalid(
                "to_session",
                format!(
                    "{n} sessions are named '{to}'; pass one of their ids: {}",
                    named
                        .iter()
                        .map(|s| s.session_id.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            )),
        }
    }

    /// The live members of a group, but the sender. A group nobody else is in is refused, so
    /// a misspelled group does not swallow the message.
    fn group_recipients(
        &self,
        tx: &WriteTx<'_>,
        project: &str,
        sender: Option<&str>,
        group: &str,
        now: Timestamp,
    ) -> Result<Vec<Session>> {
        let live = tx.live_sessions(project, self.alive_since(now))?;
        let members: Vec<Session> = live
            .iter()
            .filter(|s| s.group.as_deref() == Some(group) && Some(s.session_id.as_str()) != sender)
            .cloned()
            .collect();
        if members.is_empty() {
            let mut groups: Vec<&str> = live.iter().filter_map(|s| s.group.as_deref()).collect();
            groups.sort_unstable();
            groups.dedup();
            let known = if groups.is_empty() {
                "no live session of the project is in a group".to_owned()
            } else {
                format!("groups with live sessions: {}", groups.join(", "))
            };
            return Err(Error::invalid(
                "to_group",
                format!(
                    "no other live session of project {project} is in group '{group}'; {known}"
                ),
            ));
        }
        Ok(members)
    }

    /// A session's inbox, newest first; with `mark_read`, what it returns is marked as read.
    pub fn list_messages(&self, query: InboxQuery) -> Result<Inbox> {
        let limit = limit(query.limit, 50, 500)?;
        let now = self.now();
        let since = query
            .since
            .as_deref()
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(|s| Timestamp::parse_since(s, now).map_err(|e| Error::invalid("since", e)))
            .transpose()?;
        let filter = InboxFilter {
            channel: query.channel,
            unread_only: query.unread_only,
            since,
            limit,
        };
        let session_id = query.session_id.as_str();
        if query.mark_read {
            self.store.write(|tx| {
                Self::acting(tx, session_id, now)?;
                let messages = tx.inbox(session_id, filter)?;
                for message in messages.iter().filter(|m| !m.read) {
                    tx.mark_read(session_id, message.message_id, now)?;
                }
                let (unread_count, _) = tx.unread(session_id)?;
                Ok(Inbox {
                    count: messages.len(),
                    messages,
                    unread_count,
                })
            })
        } else {
            self.look(Some(session_id), |tx, _, _| {
                let messages = tx.inbox(session_id, filter)?;
                let (unread_count, _) = tx.unread(session_id)?;
                Ok(Inbox {
                    count: messages.len(),
                    messages,
                    unread_count,
                })
            })
        }
    }

    /// Marks the given messages (all unread ones when `message_ids` is empty) as read.
    pub fn mark_read(&self, session_id: &str, message_ids: &[MessageId]) -> Result<MarkedRead> {
        let now = self.now();
        self.store.write(|tx| {
            Self::acting(tx, session_id, now)?;
            let mut marked_read = 0;
            let mut not_found = Vec::new();
            if message_ids.is_empty() {
                marked_read = tx.mark_all_read(session_id, now)?;
            }
            for &id in message_ids {
                match tx.mark_read(session_id, id, now)? {
                    MarkRead::Marked => marked_read += 1,
                    MarkRead::AlreadyRead => {}
                    MarkRead::NotInInbox => not_found.push(id),
                }
            }
            let (unread_count, _) = tx.unread(session_id)?;
            Ok(MarkedRead {
                marked_read,
                not_found,
                unread_count,
            })
        })
    }
}

/// What the coordinator tells one session in its inbox.
pub(super) struct Notice<'a> {
    /// The session's project.
    pub project: &'a str,
    pub session_id: &'a str,
    pub channel: Channel,
    pub content: &'a str,
}

/// Tells one session, in its inbox, something the coordinator did to it (a grant from the
/// queue, a forced release, a revival), in the transaction that did it.
pub(super) fn notify(tx: &WriteTx<'_>, notice: Notice<'_>, now: Timestamp) -> Result<()> {
    let Notice {
        project,
        session_id,
        channel,
        content,
    } = notice;
    let message_id = tx.insert_message(&NewMessage {
        project,
        from_session: None,
        from_name: "coordinator",
        to_session: Some(session_id),
        to_group: None,
        channel,
        priority: Priority::High,
        content,
        now,
    })?;
    tx.deliver(message_id, session_id)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::super::testing::*;
    use super::*;

    fn send(
        h: &Harness,
        from: &str,
        to: Option<&str>,
        priority: Priority,
        content: &str,
    ) -> Result<Sent> {
        h.coordinator.send_message(Outgoing {
            from: Sender::Session(from.into()),
            to_session: to.map(Into::into),
            to_group: None,
            channel: Channel::Coordination,
            priority,
            content: content.into(),
        })
    }

    fn inbox(session: &str) -> InboxQuery {
        InboxQuery {
            session_id: session.into(),
            channel: None,
            unread_only: false,
            since: None,
            limit: None,
            mark_read: false,
        }
    }

    #[test]
    fn broadcasts_reach_the_live_sessions_of_the_project_but_not_the_sender() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let c = h.session("c", "app", None);
        let elsewhere = h.session("d", "other", None);
        let sent = send(&h, &a, None, Priority::Normal, "heads up").expect("sent");
        assert_eq!(sent.delivered_to, 2);
        let mut recipients = sent.recipients.clone();
        recipients.sort();
        assert_eq!(recipients, ["b", "c"]);
        for (session, expected) in [(&a, 0), (&b, 1), (&c, 1), (&elsewhere, 0)] {
            assert_eq!(
                h.coordinator
                    .list_messages(inbox(session))
                    .expect("inbox")
                    .count,
                expected
            );
        }
    }

    #[test]
    fn direct_messages_go_by_id_or_by_name() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("profile-page", "app", None);
        let sent = send(&h, &a, Some(&b), Priority::High, "by id").expect("sent");
        assert_eq!(sent.to_session.as_deref(), Some(b.as_str()));
        send(&h, &a, Some("profile-page"), Priority::Normal, "by name").expect("sent");
        let err = send(&h, &a, Some("nobody"), Priority::Normal, "x")
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`to_session`") && e.contains("nobody")));
        assert!(send(&h, &a, Some(&a), Priority::Normal, "me").is_err());
        assert!(
            send(&h, &a, None, Priority::Normal, "  ").is_err(),
            "empty content"
        );

        let got = h.coordinator.list_messages(inbox(&b)).expect("inbox");
        let contents: Vec<_> = got.messages.iter().map(|m| m.content.as_str()).collect();
        assert_eq!(contents, ["by name", "by id"], "newest first");
        assert_eq!(got.messages[0].from_name, "a");
    }

    #[test]
    fn read_state_is_per_recipient_and_unread_counts_urgent_mail() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        let c = h.session("c", "app", None);
        let first = send(&h, &a, None, Priority::Urgent, "build is broken").expect("sent");
        send(&h, &a, None, Priority::Low, "fyi").expect("sent");
        assert_eq!(
            h.coordinator.news(&b).expect("news").unread,
            Some(super::super::Unread {
                count: 2,
                urgent: 1
            })
        );

        let marked = h
            .coordinator
            .mark_read(&b, &[first.message_id, MessageId(999)])
            .expect("mark");
        assert_eq!(marked.marked_read, 1);
        assert_eq!(marked.not_found, [MessageId(999)]);
        assert_eq!(marked.unread_count, 1);
        assert_eq!(
            h.coordinator
                .news(&c)
                .expect("news")
                .unread
                .map(|u| u.count),
            Some(2),
            "c's copy is untouched"
        );

        let unread = h
            .coordinator
            .list_messages(InboxQuery {
                unread_only: true,
                ..inbox(&b)
            })
            .expect("inbox");
        assert_eq!(
            unread
                .messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>(),
            ["fyi"]
        );
        assert_eq!(
            h.coordinator.mark_read(&b, &[]).expect("all").marked_read,
            1
        );
        assert_eq!(h.coordinator.news(&b).expect("news").unread, None);
    }

    #[test]
    fn filters_by_channel_since_and_limit_and_marks_what_it_shows() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let b = h.session("b", "app", None);
        send(&h, &a, None, Priority::Normal, "old").expect("sent");
        h.advance(Duration::from_secs(200));
        h.coordinator
            .send_message(Outgoing {
                from: Sender::Session(a.clone()),
                to_session: None,
                to_group: None,
                channel: Channel::Git,
                priority: Priority::Normal,
                content: "pushed main".into(),
            })
            .expect("sent");
        let recent = h
            .coordinator
            .list_messages(InboxQuery {
                since: Some("100s".into()),
                ..inbox(&b)
            })
            .expect("inbox");
        assert_eq!(recent.count, 1);
        let git = h
            .coordinator
            .list_messages(InboxQuery {
                channel: Some(Channel::Git),
                mark_read: true,
                ..inbox(&b)
            })
            .expect("inbox");
        assert_eq!(git.count, 1);
        assert_eq!(git.unread_count, 1, "only the git message was marked");
        let one = h
            .coordinator
            .list_messages(InboxQuery {
                limit: Some(1),
                ..inbox(&b)
            })
            .expect("inbox");
        assert_eq!(
            one.messages
                .iter()
                .map(|m| m.content.as_str())
                .collect::<Vec<_>>(),
            ["pushed main"]
        );
        let bad = h
            .coordinator
            .list_messages(InboxQuery {
                since: Some("last tuesday".into()),
                ..inbox(&b)
            })
            .err()
            .map(|e| e.to_string());
        assert!(bad.is_some_and(|e| e.starts_with("invalid argument `since`")));
    }

    fn to_group(h: &Harness, from: Sender, group: &str) -> Result<Sent> {
        h.coordinator.send_message(Outgoing {
            from,
            to_session: None,
            to_group: Some(group.into()),
            channel: Channel::Coordination,
            priority: Priority::High,
            content: "API schema changed".into(),
        })
    }

    #[test]
    fn a_group_message_reaches_the_live_members_of_the_group_but_the_sender() {
        let h = Harness::new();
        let a = h.member("a", "app", "backend");
        let b = h.member("b", "app", "backend");
        let c = h.member("c", "app", "frontend");
        let elsewhere = h.member("d", "other", "backend");
        let sent = to_group(&h, Sender::Session(a.clone()), "backend").expect("sent");
        assert_eq!(
            (sent.delivered_to, sent.recipients.clone()),
            (1, vec!["b".to_owned()])
        );
        assert_eq!(sent.to_group.as_deref(), Some("backend"));
        for (session, expected) in [(&a, 0), (&b, 1), (&c, 0), (&elsewhere, 0)] {
            let inbox = h.coordinator.list_messages(inbox(session)).expect("inbox");
            assert_eq!(inbox.count, expected, "inbox of {session}");
        }
        let got = h.coordinator.list_messages(inbox(&b)).expect("inbox");
        assert_eq!(got.messages[0].to_group.as_deref(), Some("backend"));
    }

    #[test]
    fn an_unknown_group_or_two_addresses_are_refused_with_what_exists() {
        let h = Harness::new();
        let a = h.member("a", "app", "backend");
        h.member("b", "app", "frontend");
        let err = to_group(&h, Sender::Session(a.clone()), "backedn")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            err.as_deref(),
            Some(
                "invalid argument `to_group`: no other live session of project app is in group 'backedn'; groups with live sessions: backend, frontend"
            )
        );
        let both = h.coordinator.send_message(Outgoing {
            from: Sender::Session(a),
            to_session: Some("b".into()),
            to_group: Some("frontend".into()),
            channel: Channel::General,
            priority: Priority::Normal,
            content: "hi".into(),
        });
        assert!(
            both.err()
                .is_some_and(|e| e.to_string().contains("`to_group`"))
        );
    }

    #[test]
    fn a_person_writes_into_a_project_under_a_marked_name() {
        let h = Harness::new();
        let a = h.session("a", "app", None);
        let person = Sender::Person {
            name: "dana".into(),
            project: "app".into(),
            who: None,
        };
        let sent = h
            .coordinator
            .send_message(Outgoing {
                from: person,
                to_session: None,
                to_group: None,
                channel: Channel::Alerts,
                priority: Priority::Urgent,
                content: "main is broken, stop pushing".into(),
            })
            .expect("sent");
        assert_eq!(sent.recipients, ["a"]);
        let got = h.coordinator.list_messages(inbox(&a)).expect("inbox");
        assert_eq!(got.messages[0].from_name, "dana (person)");
        assert_eq!(got.messages[0].from_session, None);
        assert_eq!(
            h.coordinator
                .news(&a)
                .expect("news")
                .unread
                .map(|u| u.urgent),
            Some(1)
        );
    }
}
